"""Writing a model package to a folder and loading one back.

:func:`save_model` picks a flavor (or takes the one named), lets it write its files, records the
signature, an input example, the Python version, pinned requirements and the content hash, and
moves the finished folder into place in one rename, so a failed save leaves nothing behind.

:func:`load_package` reads a package folder into a :class:`LoadedModel`, whose ``predict``
enforces the signature. Loading compares the library versions recorded at save with the ones
installed and warns (:class:`~shipyard.errors.ShipyardWarning`) when they differ.

**Loading a pickle-based package runs code** (the sklearn, LightGBM sklearn-API, PyTorch module
and Python-function flavors): load only packages you trust. ``LoadedModel.runs_code_on_load`` and
the manifest say which packages do; XGBoost, LightGBM boosters, PyTorch state dicts and ONNX
do not.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from shipyard._version import __version__
from shipyard.errors import AlreadyExists, InvalidInput, ShipyardError, ShipyardWarning
from shipyard.models.flavors.base import Flavor, flavors
from shipyard.models.manifest import MANIFEST, Manifest, content_of, verify
from shipyard.models.signature import (
    Signature,
    enforce,
    example_from_json,
    example_to_json,
    infer_schema,
)

INPUT_EXAMPLE = "input_example.json"
REQUIREMENTS = "requirements.txt"

# Import name -> distribution names to try, for the libraries flavors use (others are looked up
# in importlib.metadata.packages_distributions(), which is slower).
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "sklearn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
    "torch": ("torch",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime",),
    "cloudpickle": ("cloudpickle",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "scipy": ("scipy",),
}
_COMMON_MODULES = ("numpy", "scipy", "pandas")


class LoadedModel:
    """A model package read back: ``predict`` checks inputs against the signature first.

    ``unwrap()`` returns the native model (a scikit-learn estimator, an XGBoost model, an
    onnxruntime session ...) for anything beyond ``predict``.
    """

    def __init__(
        self, path: Path, manifest: Manifest, flavor: Flavor, native: Any, uri: str | None = None
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.flavor = flavor
        self.uri = uri or str(path)
        self._native = native
        self._config = manifest.flavors[manifest.predict_flavor]
        self._matrix_predict = flavor.matrix_predictor(native, self._config)

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def metadata(self) -> dict[str, Any]:
        return self.manifest.metadata

    @property
    def content_hash(self) -> str:
        return self.manifest.content_hash

    @property
    def runs_code_on_load(self) -> bool:
        return self.manifest.runs_code_on_load

    def unwrap(self) -> Any:
        """The native model object."""
        return self._native

    def predict(self, data: Any) -> Any:
        """Predictions for ``data`` (DataFrame, dict of columns or arrays, numpy array).

        Raises :class:`~shipyard.errors.InvalidInput` naming a missing column or a column of the
        wrong type; safe widening (int32 -> int64, int -> float64, float32 -> float64) is done,
        extra columns are dropped and columns put in the recorded order.
        """
        sig = self.manifest.signature
        if sig is not None:
            data = enforce(sig.inputs, data)
        return self.flavor.predict(self._native, data, self._config)

    def predict_unchecked(self, data: Any) -> Any:
        """Predictions for ``data`` without checking it against the signature: for callers that
        validated the input themselves (the model server's numeric fast path, which passes a
        float64 matrix; the flavor's :meth:`~Flavor.matrix_predictor` serves it when it has one,
        and the server checks at warm-up that it predicts what :meth:`predict` does)."""
        if self._matrix_predict is not None and type(data).__module__ == "numpy":
            return self._matrix_predict(data)
        return self.flavor.predict(self._native, data, self._config)

    def input_example(self) -> Any:
        """The input example saved with the model, or ``None``."""
        if not self.manifest.input_example:
            return None
        raw = json.loads((self.path / self.manifest.input_example).read_text())
        sig = self.manifest.signature
        return example_from_json(raw, sig.inputs if sig else None)

    def __repr__(self) -> str:
        return (
            f"<LoadedModel flavor={self.manifest.predict_flavor!r} uri={self.uri!r} "
            f"sha256={self.content_hash[:12]}>"
        )


# ---------------------------------------------------------------------- save


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    signature: Signature | None = None,
    input_example: Any = None,
    *,
    flavor: str | Flavor | None = None,
    metadata: Mapping[str, Any] | None = None,
    extra_requirements: Iterable[str] = (),
) -> Manifest:
    """Write ``model`` as a Shipyard model package in the new folder ``path``.

    ``flavor`` is a registered flavor's name or a :class:`~shipyard.models.Flavor` instance; by
    default the first registered flavor that handles the model. Without ``signature``, the
    signature is inferred from ``input_example`` (a DataFrame, array or dict of arrays), the
    outputs by running the saved model on it. Raises AlreadyExists if ``path`` holds files;
    a failure leaves no folder behind.
    """
    target = Path(path).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(
            f"{target} already exists and is not empty; save the model to a new folder."
        )
    chosen = _choose_flavor(model, flavor)
    created = _first_missing(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        manifest = _write_package(
            model, tmp, chosen, signature, input_example, metadata, extra_requirements
        )
        try:
            os.rename(tmp, target)  # atomic; refuses a folder that filled up meanwhile
        except OSError as exc:
            raise AlreadyExists(
                f"{target} was filled by someone else while the model was being saved; "
                "save the model to a new folder."
            ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    return manifest


def _choose_flavor(model: Any, flavor: str | Flavor | None) -> Flavor:
    if isinstance(flavor, Flavor):
        return flavor
    if flavor is not None:
        return flavors().get(flavor)
    return flavors().infer(model)


def _first_missing(folder: Path) -> Path | None:
    missing = None
    while not folder.exists():
        missing, folder = folder, folder.parent
    return missing


def _write_package(
    model: Any,
    folder: Path,
    flavor: Flavor,
    signature: Signature | None,
    input_example: Any,
    metadata: Mapping[str, Any] | None,
    extra_requirements: Iterable[str],
) -> Manifest:
    config = dict(flavor.save(model, folder))
    config.setdefault("runs_code_on_load", flavor.runs_code_on_load)
    modules = [m for m in flavor.modules if m in sys.modules]
    config["library_versions"] = {m: v for m in modules if (v := _module_version(m))}
    if input_example is not None:
        (folder / INPUT_EXAMPLE).write_text(json.dumps(example_to_json(input_example)))
    requirements = _requirements([*flavor.modules, *_COMMON_MODULES], extra_requirements)
    (folder / REQUIREMENTS).write_text("".join(f"{r}\n" for r in requirements))
    draft = Manifest(
        predict_flavor=flavor.name,
        flavors={flavor.name: config},
        signature=signature,
        input_example=INPUT_EXAMPLE if input_example is not None else None,
        python_version=platform.python_version(),
        requirements=tuple(requirements),
        metadata=dict(metadata or {}),
        content=content_of(folder),
        shipyard_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if signature is None and input_example is not None:
        inputs = infer_schema(input_example)
        draft = _replace(draft, signature=Signature(inputs))
        outputs = _infer_outputs(folder, draft, flavor, input_example)
        if outputs is not None:
            draft = _replace(draft, signature=Signature(inputs, infer_schema_or_none(outputs)))
    draft.write(folder)
    return draft


def _replace(manifest: Manifest, **changes: Any) -> Manifest:
    from dataclasses import replace

    return replace(manifest, **changes)


def _infer_outputs(folder: Path, manifest: Manifest, flavor: Flavor, example: Any) -> Any:
    """Load the package just written and predict on the example: checks that the package
    loads, and gives the output schema. A failure is a warning, not an error."""
    try:
        native = flavor.load(folder, manifest.flavors[flavor.name])
        return LoadedModel(folder, manifest, flavor, native).predict(example)
    except Exception as exc:
        warnings.warn(
            f"The saved {flavor.name} model could not predict on its input example "
            f"({type(exc).__name__}: {exc}); the signature records inputs only. Check that the "
            "example is what the model takes.",
            ShipyardWarning,
            stacklevel=4,
        )
        return None


def infer_schema_or_none(outputs: Any) -> Any:
    try:
        return infer_schema(outputs)
    except InvalidInput:
        return None


def _requirements(modules: Iterable[str], extra: Iterable[str]) -> list[str]:
    pins: dict[str, str] = {}
    for module in modules:
        if module not in sys.modules and module not in _DISTRIBUTIONS:
            continue
        for dist in _distributions_of(module):
            version = _dist_version(dist)
            if version:
                pins[dist.lower()] = f"{dist}=={version}"
                break
    for req in extra:
        name = req.split(";")[0].strip()
        for sep in ("==", ">=", "<=", "~=", "!=", ">", "<", "["):
            name = name.split(sep)[0]
        pins[name.strip().lower()] = req.strip()
    return sorted(pins.values(), key=str.lower)


def _distributions_of(module: str) -> tuple[str, ...]:
    if module in _DISTRIBUTIONS:
        return _DISTRIBUTIONS[module]
    return tuple(_packages_distributions().get(module.split(".")[0], ()))


@lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _module_version(module: str) -> str | None:
    mod = sys.modules.get(module)
    found = getattr(mod, "__version__", None)
    if isinstance(found, str):
        return found
    for dist in _distributions_of(module):
        if v := _dist_version(dist):
            return v
    return None


# ---------------------------------------------------------------------- load


def load_package(
    path: str | os.PathLike[str],
    *,
    manifest: Manifest | None = None,
    check_content: bool = False,
    uri: str | None = None,
) -> LoadedModel:
    """Load the package in folder ``path`` (see the module docstring about trusted packages).

    ``check_content=True`` re-hashes every file against the manifest first.
    """
    folder = Path(path)
    if not folder.is_dir():
        if folder.name == MANIFEST and folder.is_file():
            folder = folder.parent
        else:
            from shipyard.errors import NotFound

            raise NotFound(
                f"No model package at {folder}: the folder does not exist. Pass the folder "
                "written by shipyard.save_model, or a runs:/ or models:/ URI."
            )
    manifest = manifest or Manifest.read(folder)
    if check_content:
        verify(folder, manifest)
    flavor = flavors().get(manifest.predict_flavor)
    config = manifest.flavors[manifest.predict_flavor]
    try:
        native = flavor.load(folder, config)
    except ShipyardError:
        raise
    except Exception as exc:
        mismatches = _version_mismatches(manifest, import_missing=False)
        hint = (
            f" Library versions differ from the saved ones: {'; '.join(mismatches)}."
            if (mismatches)
            else ""
        )
        raise ShipyardError(
            f"Could not load the {flavor.name} model in {folder}: {type(exc).__name__}: {exc}."
            f"{hint} Install the requirements in {REQUIREMENTS} and try again.",
            details={"flavor": flavor.name, "path": str(folder)},
        ) from exc
    mismatches = _version_mismatches(manifest, import_missing=False)
    if mismatches:
        warnings.warn(
            f"The model at {uri or folder} was saved with other library versions than this "
            f"process has: {'; '.join(mismatches)}. Predictions may differ or fail; install "
            f"the versions in its {REQUIREMENTS} to be sure.",
            ShipyardWarning,
            stacklevel=3,
        )
    return LoadedModel(folder, manifest, flavor, native, uri)


def _version_mismatches(manifest: Manifest, *, import_missing: bool) -> list[str]:
    config = manifest.flavors[manifest.predict_flavor]
    out = []
    for module, saved in dict(config.get("library_versions") or {}).items():
        if module not in sys.modules and not import_missing:
            continue
        installed = _module_version(module)
        if installed != saved:
            out.append(f"{module} {saved} at save, {installed or 'not installed'} now")
    saved_py = manifest.python_version.rsplit(".", 1)[0]
    here = ".".join(platform.python_version().split(".")[:2])
    if manifest.runs_code_on_load and saved_py and saved_py != here:
        out.append(f"Python {manifest.python_version} at save, {platform.python_version()} now")
    return out
