"""Feature definitions: entities, sources, feature views, on-demand views and feature services.

Definitions are plain Python objects written in a module and applied with
``shipyard features apply FILE_OR_MODULE``::

    customer = Entity("customer", join_keys=["customer_id"])
    orders = FileSource("data/orders.parquet", event_time="ts", created_time="loaded_at")
    stats = FeatureView(
        "customer_stats", entities=[customer], source=orders, ttl=timedelta(days=7),
        features=[Field("orders_7d", "int64"), Field("spend_7d", "float64")],
        owner="growth", description="Rolling order counts and spend",
    )

    @on_demand_feature_view(sources=[stats], request=[Field("basket", "float64")],
                            features=[Field("basket_vs_spend", "float64")])
    def basket_ratio(df):
        return pd.DataFrame({"basket_vs_spend": df["basket"] / df["spend_7d"]})

    churn = FeatureService("churn", features=[stats, "basket_ratio:basket_vs_spend"])

Each object has a stable JSON ``spec`` (what the metadata store versions and diffs); an
on-demand view's function is stored as a reference (module, qualified name and source file)
and imported again where it runs.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

KINDS = ("entity", "feature_view", "on_demand_feature_view", "feature_service")
DTYPES = ("int64", "float64", "string", "bool")
"""Feature value types (a feature's values are stored and served as JSON numbers, strings,
booleans or null)."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-.]{0,199}")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


def check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r} is not allowed; use 1-200 letters, digits, '_', '-' or '.', "
            "starting with a letter or '_'."
        )
    return name


def _column(name: object, what: str) -> str:
    if not isinstance(name, str) or not _COLUMN.fullmatch(name):
        raise InvalidInput(
            f"{what} {name!r} is not a column name Shipyard accepts; use letters, digits and "
            "'_', starting with a letter or '_'."
        )
    return name


@dataclass(frozen=True)
class Field:
    """A typed feature (or request field): ``Field("spend_7d", "float64")``."""

    name: str
    dtype: str = "float64"
    description: str = ""

    def __post_init__(self) -> None:
        _column(self.name, "feature")
        if self.dtype not in DTYPES:
            raise InvalidInput(
                f"feature {self.name!r} has type {self.dtype!r}; use one of {', '.join(DTYPES)}."
            )

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "description": self.description}


@dataclass(frozen=True)
class Entity:
    """What features describe (a customer, a driver), named by its join keys."""

    name: str
    join_keys: Sequence[str] = ()
    description: str = ""

    def __post_init__(self) -> None:
        check_name(self.name, "entity")
        keys = tuple(self.join_keys) or (self.name,)
        for k in keys:
            _column(k, f"join key of entity {self.name!r}")
        object.__setattr__(self, "join_keys", keys)

    kind = "entity"

    def spec(self) -> dict[str, Any]:
        return {"join_keys": list(self.join_keys), "description": self.description}


@dataclass(frozen=True)
class FileSource:
    """Parquet or CSV files (a path, a glob or a list) with an event-time column and, optionally,
    a created-time column (when the row was written; it breaks ties between equal event times
    and drives incremental materialization)."""

    path: str | Sequence[str]
    event_time: str = "event_timestamp"
    created_time: str | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        paths = [self.path] if isinstance(self.path, str | Path) else list(self.path)
        if not paths:
            raise InvalidInput("a FileSource needs at least one path.")
        # Relative paths are taken from the folder the definitions are applied in.
        object.__setattr__(self, "path", [os.path.abspath(p) for p in paths])
        _column(self.event_time, "event-time column")
        if self.created_time is not None:
            _column(self.created_time, "created-time column")
        fmt = self.format or _format_of(self.paths[0])
        if fmt not in ("parquet", "csv"):
            raise InvalidInput(
                f"FileSource {self.paths[0]!r}: can't tell the format from the name; pass "
                "format='parquet' or format='csv'."
            )
        object.__setattr__(self, "format", fmt)

    @property
    def paths(self) -> list[str]:
        return list(self.path)

    def spec(self) -> dict[str, Any]:
        return {
            "type": "file",
            "paths": self.paths,
            "format": self.format,
            "event_time": self.event_time,
            "created_time": self.created_time,
        }


@dataclass(frozen=True)
class DatasetSource:
    """A registered dataset version (the latest when ``version`` is None, resolved at read time)."""

    dataset: str
    version: int | None = None
    event_time: str = "event_timestamp"
    created_time: str | None = None

    def __post_init__(self) -> None:
        _column(self.event_time, "event-time column")
        if self.created_time is not None:
            _column(self.created_time, "created-time column")

    def spec(self) -> dict[str, Any]:
        return {
            "type": "dataset",
            "dataset": self.dataset,
            "version": self.version,
            "event_time": self.event_time,
            "created_time": self.created_time,
        }


Source = FileSource | DatasetSource


def _format_of(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq", ".parquet/*", "/*.parquet")):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz", "/*.csv")):
        return "csv"
    return None


def _ttl_seconds(ttl: timedelta | float | None) -> float | None:
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if seconds < 0:
        raise InvalidInput(f"ttl {ttl!r} is negative; give a timedelta, seconds, or None.")
    if not math.isfinite(seconds):
        raise InvalidInput(
            f"ttl {ttl!r} is not a finite duration; give a timedelta or seconds, or None for "
            "values that never expire."
        )
    return seconds or None  # 0 means unbounded, as in Feast


@dataclass(frozen=True)
class FeatureView:
    """Features of one or more entities read from a source, valid for ``ttl`` after their event
    time (None: forever)."""

    name: str
    entities: Sequence[Entity | str]
    features: Sequence[Field]
    source: Source
    ttl: timedelta | float | None = None
    owner: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    online: bool = True

    kind = "feature_view"

    def __post_init__(self) -> None:
        check_name(self.name, "feature view")
        if not self.entities:
            raise InvalidInput(f"feature view {self.name!r} needs at least one entity.")
        if not self.features:
            raise InvalidInput(f"feature view {self.name!r} needs at least one feature.")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise InvalidInput(f"feature view {self.name!r} lists a feature twice: {names}.")
        if not isinstance(self.source, FileSource | DatasetSource):
            raise InvalidInput(
                f"feature view {self.name!r}: source must be a FileSource or DatasetSource."
            )
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "ttl", _ttl_seconds(self.ttl))

    @property
    def entity_names(self) -> list[str]:
        return [e if isinstance(e, str) else e.name for e in self.entities]

    @property
    def ttl_seconds(self) -> float | None:
        """The TTL in seconds (None: unbounded); ``ttl`` is normalized to this on creation."""
        return None if self.ttl is None else float(self.ttl)  # type: ignore[arg-type]

    def spec(self) -> dict[str, Any]:
        return {
            "entities": self.entity_names,
            "features": [f.spec() for f in self.features],
            "source": self.source.spec(),
            "ttl_seconds": self.ttl_seconds,
            "owner": self.owner,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
            "online": self.online,
        }


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed at request time by ``function(df) -> DataFrame`` from request fields and
    other views' features; the same function runs for training sets and for online reads."""

    name: str
    sources: Sequence[FeatureView | str]
    features: Sequence[Field]
    function: Callable[[Any], Any]
    request: Sequence[Field] = ()
    owner: str = ""
    description: str = ""

    kind = "on_demand_feature_view"

    def __post_init__(self) -> None:
        check_name(self.name, "on-demand feature view")
        if not self.features:
            raise InvalidInput(f"on-demand view {self.name!r} needs at least one feature.")
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "request", tuple(self.request))

    @property
    def source_names(self) -> list[str]:
        return [s if isinstance(s, str) else s.name for s in self.sources]

    def spec(self) -> dict[str, Any]:
        return {
            "sources": self.source_names,
            "request": [f.spec() for f in self.request],
            "features": [f.spec() for f in self.features],
            "function": getattr(self.function, "reference", None)
            or function_reference(self.function),
            "owner": self.owner,
            "description": self.description,
        }


def on_demand_feature_view(
    *,
    sources: Sequence[FeatureView | str],
    features: Sequence[Field],
    request: Sequence[Field] = (),
    name: str | None = None,
    owner: str = "",
    description: str = "",
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Decorate ``function(df) -> DataFrame`` as an :class:`OnDemandFeatureView`."""

    def wrap(fn: Callable[[Any], Any]) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name or fn.__name__,
            sources,
            features,
            fn,
            request,
            owner,
            description or (fn.__doc__ or "").strip(),
        )

    return wrap


@dataclass(frozen=True)
class FeatureService:
    """The named set of features a model uses: views (all their features) and ``view:feature``
    references."""

    name: str
    features: Sequence[FeatureView | OnDemandFeatureView | str]
    owner: str = ""
    description: str = ""

    kind = "feature_service"

    def __post_init__(self) -> None:
        check_name(self.name, "feature service")
        if not self.features:
            raise InvalidInput(f"feature service {self.name!r} lists no features.")
        object.__setattr__(self, "features", tuple(self.features))

    def refs(self) -> list[str]:
        out: list[str] = []
        for f in self.features:
            if isinstance(f, str):
                out.append(f)
            else:
                out.extend(f"{f.name}:{x.name}" for x in f.features)
        return out

    def spec(self) -> dict[str, Any]:
        return {"features": self.refs(), "owner": self.owner, "description": self.description}


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService


# ---------------------------------------------------------------------------- functions


def function_reference(fn: Callable[..., Any]) -> dict[str, Any]:
    """Where a function lives, so another process can import it again."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise InvalidInput(
            f"on-demand function {fn!r} must be a module-level function (not a lambda or a "
            "nested function) so the model server can import it."
        )
    try:
        source: str | None = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    return {
        "module": module,
        "qualname": qualname,
        "file": str(Path(source).resolve()) if source else None,
    }


def load_function(ref: dict[str, Any]) -> Callable[[Any], Any]:
    """Import the function a :func:`function_reference` names (from its file if need be)."""
    from shipyard.pipelines.dsl import load_attribute

    try:
        value = load_attribute(ref["module"], ref["qualname"], ref.get("file"))
    except (ImportError, AttributeError, OSError) as exc:
        raise InvalidInput(
            f"can't import on-demand function {ref['module']}:{ref['qualname']} ({exc}); make "
            f"its module importable here, or keep its file at {ref.get('file')}."
        ) from None
    if isinstance(value, OnDemandFeatureView):
        value = value.function
    if not callable(value):
        raise InvalidInput(f"{ref['module']}:{ref['qualname']} is not a function.")
    return value  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- loading


def collect(objects: Iterable[Any]) -> list[Definition]:
    """The definitions among ``objects`` (module attributes, say), entities first, each once;
    entities, views and sources referenced by other definitions are included too."""
    found: dict[tuple[str, str], Definition] = {}

    def add(obj: Any) -> None:
        if not isinstance(obj, Entity | FeatureView | OnDemandFeatureView | FeatureService):
            return
        key = (obj.kind, obj.name)
        if key in found:
            if found[key] is not obj and found[key].spec() != obj.spec():
                raise InvalidInput(
                    f"two different {obj.kind.replace('_', ' ')}s are named {obj.name!r}; "
                    "rename one."
                )
            return
        found[key] = obj
        if isinstance(obj, FeatureView):
            for e in obj.entities:
                add(e)
        elif isinstance(obj, OnDemandFeatureView):
            for s in obj.sources:
                add(s)
        elif isinstance(obj, FeatureService):
            for f in obj.features:
                add(f)

    for obj in objects:
        add(obj)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(found.values(), key=lambda d: (order[d.kind], d.name))


def load_definitions(target: str) -> list[Definition]:
    """The definitions in a Python file (``defs/features.py``) or an importable module
    (``myproject.features``)."""
    from shipyard.pipelines.dsl import load_module

    module = load_module(target)
    defs = collect(vars(module).values())
    if not defs:
        raise InvalidInput(
            f"{target} defines no Entity, FeatureView, OnDemandFeatureView or FeatureService at "
            "module level; define them as module attributes."
        )
    return defs
