"""Applied definitions: the diff an apply shows, versioning, and resolving feature references.

:func:`plan_changes` compares definitions with what the metadata store holds and says, per
definition, whether it is new, changed (with the fields that changed) or removed (with
``prune``). :class:`Catalog` is the applied state rebuilt from the store's specs, and
:meth:`Catalog.resolve` turns ``["view:feature", "view", ...]`` or a feature service into a
:class:`Plan`: which views to read, which columns to output, which request fields are needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.features.definitions import (
    KINDS,
    DatasetSource,
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    load_function,
)
from shipyard.store.features import DefinitionChange, DefinitionRecord, FeatureMetadataStore

LABELS = {
    "entity": "entity",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
}


def digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- specs -> objects


class _Deferred:
    """An on-demand function imported on first call (the catalog is rebuilt from specs in
    processes that may never call it)."""

    def __init__(self, reference: dict[str, Any]) -> None:
        self.reference = reference
        self._fn: Callable[[Any], Any] | None = None

    def __call__(self, df: Any) -> Any:
        if self._fn is None:
            self._fn = load_function(self.reference)
        return self._fn(df)


def _fields(raw: Iterable[dict[str, Any]]) -> list[Field]:
    return [Field(f["name"], f["dtype"], f.get("description", "")) for f in raw]


def from_spec(kind: str, name: str, spec: dict[str, Any]) -> Definition:
    """The definition object a stored spec describes."""
    if kind == "entity":
        return Entity(name, spec["join_keys"], spec.get("description", ""))
    if kind == "feature_view":
        src = spec["source"]
        source: FileSource | DatasetSource
        if src["type"] == "file":
            source = FileSource(src["paths"], src["event_time"], src["created_time"], src["format"])
        else:
            source = DatasetSource(
                src["dataset"], src["version"], src["event_time"], src["created_time"]
            )
        return FeatureView(
            name,
            spec["entities"],
            _fields(spec["features"]),
            source,
            spec["ttl_seconds"],
            spec.get("owner", ""),
            spec.get("description", ""),
            dict(spec.get("tags") or {}),
            bool(spec.get("online", True)),
        )
    if kind == "on_demand_feature_view":
        return OnDemandFeatureView(
            name,
            spec["sources"],
            _fields(spec["features"]),
            _Deferred(spec["function"]),
            _fields(spec["request"]),
            spec.get("owner", ""),
            spec.get("description", ""),
        )
    return FeatureService(
        name, spec["features"], spec.get("owner", ""), spec.get("description", "")
    )


# ---------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class ViewRead:
    """One feature view a plan reads, and the features it needs from it."""

    view: FeatureView
    version: int
    join_keys: tuple[str, ...]
    features: tuple[Field, ...]


@dataclass(frozen=True)
class Plan:
    """What serving a list of feature references takes."""

    reads: tuple[ViewRead, ...]
    on_demand: tuple[tuple[OnDemandFeatureView, int], ...]
    outputs: tuple[tuple[str, str, str], ...]
    """``(view, feature, output column)`` in the order asked for."""
    join_keys: tuple[str, ...]
    request: tuple[Field, ...]

    @property
    def views_used(self) -> dict[str, int]:
        used = {r.view.name: r.version for r in self.reads}
        used.update({v.name: n for v, n in self.on_demand})
        return used


@dataclass
class Catalog:
    """The applied definitions, rebuilt from the metadata store."""

    records: dict[tuple[str, str], DefinitionRecord] = field(default_factory=dict)
    objects: dict[tuple[str, str], Definition] = field(default_factory=dict)

    @classmethod
    def load(cls, store: FeatureMetadataStore) -> Catalog:
        catalog = cls()
        for r in store.current():
            assert r.spec is not None
            catalog.records[(r.kind, r.name)] = r
            catalog.objects[(r.kind, r.name)] = from_spec(r.kind, r.name, r.spec)
        return catalog

    def of(self, kind: str) -> dict[str, Any]:
        return {n: o for (k, n), o in self.objects.items() if k == kind}

    def version(self, kind: str, name: str) -> int:
        return self.records[(kind, name)].version

    def view(self, name: str) -> FeatureView:
        obj = self.objects.get(("feature_view", name))
        if obj is None:
            raise NotFound(
                f"No feature view {name!r} is applied; applied views: "
                f"{sorted(self.of('feature_view')) or 'none'}. Apply it with "
                "`shipyard features apply FILE`."
            )
        assert isinstance(obj, FeatureView)
        return obj

    def service(self, name: str) -> FeatureService:
        obj = self.objects.get(("feature_service", name))
        if obj is None:
            raise NotFound(
                f"No feature service {name!r} is applied; applied services: "
                f"{sorted(self.of('feature_service')) or 'none'}."
            )
        assert isinstance(obj, FeatureService)
        return obj

    def join_keys(self, view: FeatureView) -> tuple[str, ...]:
        keys: list[str] = []
        for e in view.entity_names:
            entity = self.objects.get(("entity", e))
            if entity is None:
                raise NotFound(
                    f"feature view {view.name!r} names entity {e!r}, which is not applied."
                )
            assert isinstance(entity, Entity)
            keys.extend(k for k in entity.join_keys if k not in keys)
        return tuple(keys)

    def resolve(
        self, features: Sequence[str] | str | FeatureService, *, full_names: bool = False
    ) -> Plan:
        """The plan for feature references, a feature service or a service's name."""
        if isinstance(features, FeatureService):
            refs = features.refs()
        elif isinstance(features, str):
            refs = self.service(features).refs()
        else:
            refs = list(features)
        if not refs:
            raise InvalidInput("no features were asked for; give 'view:feature' references.")
        wanted: dict[str, list[Field]] = {}
        on_demand: dict[str, OnDemandFeatureView] = {}
        outputs: list[tuple[str, str, str]] = []
        for ref in refs:
            if not isinstance(ref, str):
                raise InvalidInput(f"feature reference {ref!r} is not a string 'view:feature'.")
            view_name, _, feature = ref.partition(":")
            odfv = self.objects.get(("on_demand_feature_view", view_name))
            if isinstance(odfv, OnDemandFeatureView):
                fields = list(odfv.features)
                on_demand[view_name] = odfv
                for src in odfv.source_names:
                    v = self.view(src)
                    have = wanted.setdefault(src, [])
                    have.extend(f for f in v.features if f not in have)
            else:
                fields = list(self.view(view_name).features)
            chosen = fields if not feature else [f for f in fields if f.name == feature]
            if not chosen:
                raise NotFound(
                    f"feature view {view_name!r} has no feature {feature!r}; it has "
                    f"{[f.name for f in fields]}."
                )
            if odfv is None:
                have = wanted.setdefault(view_name, [])
                have.extend(f for f in chosen if f not in have)
            for f in chosen:
                out = f"{view_name}__{f.name}" if full_names else f.name
                outputs.append((view_name, f.name, out))
        names = [o for _, _, o in outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInput(
                f"features {dupes} are asked for more than once (or from several views); ask "
                "for each once, or pass full_feature_names=True to name columns view__feature."
            )
        reads = []
        join_keys: list[str] = []
        for name, fields in wanted.items():
            view = self.view(name)
            keys = self.join_keys(view)
            join_keys.extend(k for k in keys if k not in join_keys)
            reads.append(ViewRead(view, self.version("feature_view", name), keys, tuple(fields)))
        request: list[Field] = []
        for odfv in on_demand.values():
            request.extend(f for f in odfv.request if f not in request)
        return Plan(
            tuple(reads),
            tuple((v, self.version("on_demand_feature_view", v.name)) for v in on_demand.values()),
            tuple(outputs),
            tuple(join_keys),
            tuple(request),
        )


# ---------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class Change:
    """One difference between the definitions applied and the ones given."""

    kind: str
    name: str
    action: str
    """``create``, ``update`` or ``remove``."""
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    base_version: int

    def lines(self) -> list[str]:
        """Human-readable diff lines (``+`` created, ``~`` changed fields, ``-`` removed)."""
        what = f"{LABELS[self.kind]} {self.name}"
        if self.action == "create":
            return [f"+ {what}"]
        if self.action == "remove":
            return [f"- {what} (version {self.base_version})"]
        out = [f"~ {what} (version {self.base_version} -> {self.base_version + 1})"]
        assert self.old is not None
        assert self.new is not None
        for key in sorted(set(self.old) | set(self.new)):
            a, b = self.old.get(key), self.new.get(key)
            if a != b:
                out.append(f"    {key}: {_short(a)} -> {_short(b)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "version": self.base_version + (0 if self.action == "remove" else 1),
            "diff": self.lines(),
        }


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


def plan_changes(
    store: FeatureMetadataStore, definitions: Sequence[Definition], *, prune: bool = False
) -> list[Change]:
    """What applying ``definitions`` would change (nothing for unchanged ones). With ``prune``,
    definitions applied before but missing from ``definitions`` are removed. Raises
    ``InvalidInput`` when a definition refers to something that would not exist."""
    current = {(r.kind, r.name): r for r in store.current()}
    given: dict[tuple[str, str], dict[str, Any]] = {}
    for d in definitions:
        key = (d.kind, d.name)
        if key in given:
            raise InvalidInput(f"{LABELS[d.kind]} {d.name!r} is defined twice.")
        given[key] = d.spec()
    after = {k: r.spec for k, r in current.items()}
    after.update(given)
    if prune:
        after = {k: v for k, v in after.items() if k in given}
    _check_references(after)
    changes: list[Change] = []
    for key in sorted(given, key=lambda k: (KINDS.index(k[0]), k[1])):
        spec = given[key]
        old = current.get(key)
        if old is None:
            base = store.history(*key)
            changes.append(Change(*key, "create", None, spec, base[0].version if base else 0))
        elif old.spec != spec:
            changes.append(Change(*key, "update", old.spec, spec, old.version))
    if prune:
        for key in sorted(set(current) - set(given), key=lambda k: (KINDS.index(k[0]), k[1])):
            changes.append(Change(*key, "remove", current[key].spec, None, current[key].version))
    return changes


def _check_references(specs: dict[tuple[str, str], dict[str, Any] | None]) -> None:
    def has(kind: str, name: str) -> bool:
        return specs.get((kind, name)) is not None

    for (kind, name), spec in specs.items():
        if spec is None:
            continue
        if kind == "feature_view":
            for e in spec["entities"]:
                if not has("entity", e):
                    raise InvalidInput(
                        f"feature view {name!r} uses entity {e!r}, which is neither applied nor "
                        "in these definitions; define the Entity too."
                    )
        elif kind == "on_demand_feature_view":
            for s in spec["sources"]:
                if not has("feature_view", s):
                    raise InvalidInput(
                        f"on-demand view {name!r} reads feature view {s!r}, which is neither "
                        "applied nor in these definitions."
                    )
        elif kind == "feature_service":
            for ref in spec["features"]:
                view, _, feature = ref.partition(":")
                target = specs.get(("feature_view", view)) or specs.get(
                    ("on_demand_feature_view", view)
                )
                if target is None:
                    raise InvalidInput(
                        f"feature service {name!r} lists {ref!r}, but no feature view "
                        f"{view!r} is applied or defined."
                    )
                if feature and feature not in {f["name"] for f in target["features"]}:
                    raise InvalidInput(
                        f"feature service {name!r} lists {ref!r}, but view {view!r} has no "
                        f"feature {feature!r}."
                    )


def apply_changes(
    store: FeatureMetadataStore, changes: Sequence[Change], *, user_id: str = ""
) -> list[DefinitionRecord]:
    """Write the changes as new versions, in one transaction."""
    return store.apply(
        [
            DefinitionChange(
                c.kind, c.name, c.new, digest(c.new) if c.new is not None else "", c.base_version
            )
            for c in changes
        ],
        user_id=user_id,
    )
