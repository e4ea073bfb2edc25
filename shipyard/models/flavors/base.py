"""The flavor plugin interface and the registry of flavors.

A *flavor* knows how to write one kind of model to a folder and read it back:

    class MyFlavor(Flavor):
        name = "my_lib"
        modules = ("my_lib",)            # versions recorded at save, checked at load

        def handles(self, model):        # used to pick a flavor when none is named
            return type(model).__module__.startswith("my_lib")

        def save(self, model, path):     # write files under path; return a JSON config
            model.dump(path / "model.bin")
            return {"data": "model.bin"}

        def load(self, path, config):    # the native model back
            import my_lib
            return my_lib.load(path / config["data"])

    shipyard.register_flavor(MyFlavor())

``predict`` defaults to ``model.predict(data)``. Flavors can also be published by a package
through the entry-point group ``shipyard.flavors`` (each entry point names a Flavor subclass or
instance); they are looked up when a name is not registered in the process.

Flavor modules import their library only inside their methods, so importing a flavor is cheap
and a missing library becomes :class:`~shipyard.errors.MissingDependency` naming the extra.
"""

from __future__ import annotations

import importlib
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from shipyard.errors import InvalidInput, NotFound, missing_extra

ENTRY_POINT_GROUP = "shipyard.flavors"


class Flavor(ABC):
    """How one kind of model is saved, loaded and asked for predictions."""

    name: ClassVar[str]
    """Stable identifier written into the manifest (``sklearn``, ``xgboost`` ...)."""
    modules: ClassVar[tuple[str, ...]] = ()
    """Importable modules whose versions are recorded at save and compared at load."""
    runs_code_on_load: ClassVar[bool] = False
    """True when loading unpickles: loading then runs code from the package; load only
    packages you trust."""

    @abstractmethod
    def handles(self, model: Any) -> bool:
        """Whether this flavor can save ``model`` (must not import an optional library)."""

    @abstractmethod
    def save(self, model: Any, path: Path) -> dict[str, Any]:
        """Write ``model`` into the (existing, empty) folder ``path``; return a JSON-able
        config that :meth:`load` receives back."""

    @abstractmethod
    def load(self, path: Path, config: dict[str, Any]) -> Any:
        """Read the model saved in ``path`` with ``config``."""

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        """Predictions of the loaded ``model`` for ``data`` (already checked by the signature)."""
        return model.predict(data)

    def matrix_predictor(self, model: Any, config: dict[str, Any]) -> Callable[[Any], Any] | None:
        """Optionally, a cheaper :meth:`predict` for a 2-D float64 numpy matrix whose columns are
        already in the model's order (the model server's numeric fast path), computing the very
        same values; ``None`` (the default) when there is none. The server uses it only after
        warm-up showed it predicts exactly what :meth:`predict` does on the input example."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def require(module: str, extra: str) -> Any:
    """Import an optional library, or raise MissingDependency naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(module, extra) from exc


def loaded(module: str) -> Any:
    """The module if this process has imported it already, else None (cheap ``handles``)."""
    return sys.modules.get(module)


_BUILTINS = (
    "shipyard.models.flavors.onnx:OnnxFlavor",
    "shipyard.models.flavors.torch:TorchFlavor",
    "shipyard.models.flavors.xgboost:XGBoostFlavor",
    "shipyard.models.flavors.lightgbm:LightGBMFlavor",
    "shipyard.models.flavors.sklearn:SklearnFlavor",
    "shipyard.models.flavors.pyfunc:PythonFunctionFlavor",
)


class FlavorRegistry:
    """Flavors by name, in the order they are tried when inferring one for a model.

    User flavors registered with :meth:`register` are tried before the built-in ones, the
    generic Python-function flavor last.
    """

    def __init__(self, builtins: tuple[str, ...] = _BUILTINS) -> None:
        self._lock = threading.Lock()
        self._user: list[Flavor] = []
        self._builtin: list[Flavor] = [_instantiate(_load_ref(ref)) for ref in builtins]
        self._entry_points_loaded = False

    def register(self, flavor: Flavor | type[Flavor]) -> Flavor:
        """Add (or replace, by name) a flavor; returns the instance registered."""
        instance = _instantiate(flavor)
        with self._lock:
            self._user = [f for f in self._user if f.name != instance.name]
            self._user.insert(0, instance)
        return instance

    def unregister(self, name: str) -> None:
        """Remove a user-registered flavor (built-ins stay)."""
        with self._lock:
            self._user = [f for f in self._user if f.name != name]

    def all(self) -> list[Flavor]:
        with self._lock:
            return [*self._user, *self._builtin]

    def names(self) -> list[str]:
        return [f.name for f in self.all()]

    def get(self, name: str) -> Flavor:
        """The flavor called ``name``; NotFound lists the known ones."""
        for flavor in self.all():
            if flavor.name == name:
                return flavor
        self._load_entry_points()
        for flavor in self.all():
            if flavor.name == name:
                return flavor
        raise NotFound(
            f"No model flavor is called {name!r}. Known flavors: {', '.join(self.names())}. "
            "Register it with shipyard.register_flavor(...) or install the package that "
            f"provides it (entry-point group {ENTRY_POINT_GROUP!r})."
        )

    def infer(self, model: Any) -> Flavor:
        """The first flavor that handles ``model``; InvalidInput when none does."""
        self._load_entry_points()
        for flavor in self.all():
            if flavor.handles(model):
                return flavor
        raise InvalidInput(
            f"No model flavor can save a {type(model).__module__}.{type(model).__qualname__}: "
            f"it has no predict method. Known flavors: {', '.join(self.names())}; register one "
            "with shipyard.register_flavor(...), or wrap the model in an object with predict()."
        )

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            flavor = _instantiate(ep.load())
            with self._lock:
                if all(f.name != flavor.name for f in [*self._user, *self._builtin]):
                    self._user.append(flavor)


def _load_ref(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _instantiate(flavor: Any) -> Flavor:
    if isinstance(flavor, type) and issubclass(flavor, Flavor):
        flavor = flavor()
    if not isinstance(flavor, Flavor):
        raise InvalidInput(
            f"{flavor!r} is not a shipyard Flavor; subclass shipyard.models.Flavor and set "
            "name, handles, save and load."
        )
    return flavor


_default: FlavorRegistry | None = None
_default_lock = threading.Lock()


def flavors() -> FlavorRegistry:
    """The process-wide flavor registry (built on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FlavorRegistry()
        return _default


def register_flavor(flavor: Flavor | type[Flavor]) -> Flavor:
    """Make a flavor available to ``save_model``, ``log_model`` and ``load_model``."""
    return flavors().register(flavor)


def get_flavor(name: str) -> Flavor:
    """The registered flavor called ``name``."""
    return flavors().get(name)
