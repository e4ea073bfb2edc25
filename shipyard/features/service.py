"""The feature store service: apply definitions, build training sets, materialize, serve.

:class:`FeatureStore` works on a :class:`~shipyard.workspace.Workspace`: definitions and their
versions in its metadata store, sources read by DuckDB, the online store named by the
settings (``SHIPYARD_ONLINE_STORE``; default ``sqlite:///<home>/features/online.db``).

    fs = FeatureStore(ws)
    fs.apply("features.py")                                   # versioned, diffed
    ts = fs.get_training_set(entity_df, "churn")              # point-in-time correct
    ts.register("churn-training")                             # a dataset version + lineage
    fs.materialize(incremental=True)                          # latest values -> online store
    fs.get_online_features("churn", [{"customer_id": 7}]).to_dict()
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.features import offline
from shipyard.features.definitions import Definition, FeatureService, load_definitions
from shipyard.features.online import (
    NO_CREATED,
    OnlineStore,
    Row,
    encode_key,
    loads,
    open_online_store,
    pack,
    plain_scalar,
)
from shipyard.features.registry import Catalog, Change, Plan, apply_changes, plan_changes
from shipyard.store.features import DefinitionRecord, FeatureMetadataStore, Materialization

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from shipyard.entities import DatasetVersion
    from shipyard.workspace import Workspace

ProgressCallback = Callable[[str, int, int], None]
"""``progress(view, rows_done, rows_total)`` during materialization."""
WRITE_BATCH = 5000


def default_online_uri(ws: Workspace) -> str:
    return (
        ws.settings.online_store_uri or f"sqlite:///{ws.settings.home / 'features' / 'online.db'}"
    )


def to_ms(value: datetime | int | float | str | None) -> int | None:
    """Epoch milliseconds of a datetime (naive = UTC), an ISO string or epoch seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"time {value!r} is not ISO 8601; write e.g. 2026-01-31 or 2026-01-31T12:00:00."
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(float(value) * 1000)


@dataclass
class ApplyResult:
    """What an apply changed (empty when the definitions were already applied)."""

    changes: list[Change]
    records: list[DefinitionRecord] = field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        return [line for c in self.changes for line in c.lines()] or ["No changes."]


@dataclass
class TrainingSet:
    """A point-in-time-correct training set (an Arrow table) and the view versions it used."""

    table: pa.Table
    views: dict[str, int]
    features: list[str]
    store: FeatureStore

    def to_arrow(self) -> pa.Table:
        return self.table

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def register(
        self,
        name: str,
        *,
        description: str | None = None,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> DatasetVersion:
        """Register the table as a version of dataset ``name`` with lineage to the views it
        used (tag ``shipyard.features.views`` and the store's training-set links)."""
        from shipyard.data.service import Datasets

        all_tags = {
            "shipyard.features.views": ",".join(f"{k}:{v}" for k, v in sorted(self.views.items())),
            **dict(tags or {}),
        }
        version, _ = Datasets(self.store.ws).register(
            name, self.table, description=description, tags=all_tags, run_id=run_id
        )
        self.store.meta.link_training_set(name, version.version, sorted(self.views.items()))
        return version


@dataclass
class OnlineResponse:
    """Online feature values: one list per column (entity keys, request fields, features)."""

    columns: dict[str, list[Any]]

    def to_dict(self) -> dict[str, list[Any]]:
        return self.columns

    def rows(self) -> list[dict[str, Any]]:
        names = list(self.columns)
        return [
            dict(zip(names, vals, strict=True)) for vals in zip(*self.columns.values(), strict=True)
        ]

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.columns)


class FeatureStore:
    """The feature store of one workspace (see the module docstring)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        online_store: str | OnlineStore | None = None,
        cache_ttl_s: float = 5.0,
    ) -> None:
        self.ws = workspace
        self._online_arg = online_store
        self._online: OnlineStore | None = (
            online_store if isinstance(online_store, OnlineStore) else None
        )
        self.cache_ttl_s = cache_ttl_s
        self._catalog: Catalog | None = None
        self._catalog_at = 0.0
        self._plans: dict[Any, Plan] = {}

    @property
    def meta(self) -> FeatureMetadataStore:
        return self.ws.features

    @property
    def online(self) -> OnlineStore:
        if self._online is None:
            uri = self._online_arg if isinstance(self._online_arg, str) else None
            self._online = open_online_store(uri or default_online_uri(self.ws))
        return self._online

    def close(self) -> None:
        if self._online is not None and not isinstance(self._online_arg, OnlineStore):
            self._online.close()
            self._online = None

    # ------------------------------------------------------------------ definitions

    def catalog(self, *, fresh: bool = False) -> Catalog:
        """The applied definitions (cached for ``cache_ttl_s`` seconds)."""
        now = time.monotonic()
        if fresh or self._catalog is None or now - self._catalog_at > self.cache_ttl_s:
            self._catalog = Catalog.load(self.meta)
            self._catalog_at = now
            self._plans = {}
        return self._catalog

    def plan(self, definitions: str | Sequence[Definition], *, prune: bool = False) -> list[Change]:
        """The changes applying ``definitions`` (a file, a module or objects) would make."""
        defs = load_definitions(definitions) if isinstance(definitions, str) else definitions
        return plan_changes(self.meta, list(defs), prune=prune)

    def apply(
        self,
        definitions: str | Sequence[Definition],
        *,
        prune: bool = False,
        dry_run: bool = False,
        user_id: str = "",
    ) -> ApplyResult:
        """Apply definitions: each new or changed one becomes a new version (with ``prune``,
        applied ones missing here are removed). ``dry_run`` only computes the diff."""
        changes = self.plan(definitions, prune=prune)
        if dry_run or not changes:
            return ApplyResult(changes, dry_run=dry_run)
        return self.apply_planned(changes, user_id=user_id)

    def apply_planned(self, changes: Sequence[Change], *, user_id: str = "") -> ApplyResult:
        """Write exactly the changes :meth:`plan` returned (the diff a user was shown), in one
        transaction; ``Conflict`` (and nothing written) if any of those definitions was applied
        by someone else since."""
        records = apply_changes(self.meta, changes, user_id=user_id) if changes else []
        self.catalog(fresh=True)
        return ApplyResult(list(changes), records)

    def definitions(self, kind: str | None = None) -> list[DefinitionRecord]:
        """The applied definitions (of ``kind``, when given), by kind then name."""
        return self.meta.current(kind)

    def get(self, kind: str, name: str, version: int | None = None) -> DefinitionRecord:
        return self.meta.get(kind, name, version)

    def _resolve(self, features: Sequence[str] | str | FeatureService, full: bool) -> Plan:
        catalog = self.catalog()
        key = (
            (features.name, tuple(features.refs()), full)
            if isinstance(features, FeatureService)
            else (features if isinstance(features, str) else tuple(features), full)
        )
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = catalog.resolve(features, full_names=full)
        return plan

    # ------------------------------------------------------------------ training sets

    def get_training_set(
        self,
        entity_rows: Any,
        features: Sequence[str] | str | FeatureService,
        *,
        timestamp_column: str = "event_timestamp",
        full_feature_names: bool = False,
    ) -> TrainingSet:
        """For each entity row, the latest feature values with event time <= the row's
        timestamp and within each view's TTL (NULL where none qualifies; no row is dropped,
        the rows' order is kept). ``features`` is a feature service (or its name) or a list of
        ``view:feature`` / ``view`` references."""
        plan = self._resolve(features, full_feature_names)
        table = offline.training_table(self.ws, plan, entity_rows, timestamp_column)
        if plan.on_demand:
            table = self._on_demand_offline(plan, table)
        return TrainingSet(table, plan.views_used, [o for _, _, o in plan.outputs], self)

    def _on_demand_offline(self, plan: Plan, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        names = {(v, f): o for v, f, o in plan.outputs}
        frame = table.to_pandas()
        for odfv, _ in plan.on_demand:
            inputs = {}
            for src in odfv.source_names:
                view = next(r for r in plan.reads if r.view.name == src)
                for f in view.features:
                    inputs[f.name] = frame[names.get((src, f.name), f"__{src}__{f.name}")]
            for f in odfv.request:
                if f.name not in frame:
                    raise InvalidInput(
                        f"on-demand view {odfv.name!r} needs request field {f.name!r}; add it "
                        "as a column of the entity rows."
                    )
                inputs[f.name] = frame[f.name]
            import pandas as pd

            out = _call_on_demand(odfv, pd.DataFrame(inputs))
            for f in odfv.features:
                column = names.get((odfv.name, f.name))
                if column is not None:
                    table = table.append_column(column, pa.array(out[f.name].tolist()))
        # The on-demand inputs that were not asked for (named as in offline.training_sql);
        # entity columns are kept, whatever their names.
        internal = {f"__{r.view.name}__{f.name}" for r in plan.reads for f in r.features}
        hidden = [c for c in table.column_names if c in internal and c not in names.values()]
        return table.drop_columns(hidden) if hidden else table

    # ------------------------------------------------------------------ materialization

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        start: datetime | int | float | str | None = None,
        end: datetime | int | float | str | None = None,
        incremental: bool = False,
        progress: ProgressCallback | None = None,
    ) -> list[Materialization]:
        """Write the latest row per entity into the online store: with event time in
        ``[start, end]`` (default: everything up to now), or with ``incremental`` what the
        view's last materialization into this online store (of the same view version) did not
        write: rows created since (where the source has a created time, so late-arriving rows
        are picked up) and rows with event times outside its window. The first incremental run
        of a view version reads everything up to ``end``."""
        if incremental and start is not None:
            raise InvalidInput("give either --incremental or --start/--end, not both.")
        catalog = self.catalog(fresh=True)
        applied = catalog.of("feature_view")
        names = list(views) if views else sorted(n for n, v in applied.items() if v.online)
        if not names:
            raise InvalidInput(
                "no online feature views are applied; apply definitions with "
                "`shipyard features apply FILE` first."
            )
        end_ms = to_ms(end) if end is not None else int(time.time() * 1000)
        assert end_ms is not None
        start_ms = None if incremental else to_ms(start)
        if start_ms is not None and start_ms > end_ms:
            raise InvalidInput(
                f"the window starts ({start}) after it ends ({end if end is not None else 'now'}); "
                "give --start before --end."
            )
        mode = "range" if start is not None or end is not None else "full"
        if incremental:
            mode = "incremental"
        out = []
        for name in names:
            view = catalog.view(name)
            version = catalog.version("feature_view", name)
            read = catalog.resolve([name]).reads[0]
            covered = None
            if incremental:
                previous = [
                    m
                    for m in self.meta.materializations(name, self.online.uri)
                    if m.view_version == version
                ]
                if previous:
                    last = previous[0]
                    covered = offline.Covered(last.start_time, last.end_time, last.watermark)
            table = offline.latest_rows(
                self.ws, read, start_ms=start_ms, end_ms=end_ms, covered=covered
            )
            rows = self._write_online(
                name, read.join_keys, [f.name for f in read.features], table, progress
            )
            watermark = end_ms + 1
            if view.source.created_time:
                created = [c for c in table.column("__created_ms").to_pylist() if c is not None]
                floor = covered.watermark if covered is not None else 0
                watermark = max(floor, max(created) + 1) if created else floor
            out.append(
                self.meta.record_materialization(
                    name, version, self.online.uri, mode, start_ms, end_ms, watermark, rows
                )
            )
        return out

    def _write_online(
        self,
        view: str,
        keys: Sequence[str],
        features: Sequence[str],
        table: pa.Table,
        progress: ProgressCallback | None,
    ) -> int:
        total = table.num_rows
        if progress:
            progress(view, 0, total)
        done = 0
        for batch in table.to_batches(max_chunksize=WRITE_BATCH):
            cols = batch.to_pydict()
            key_cols = [cols[k] for k in keys]
            feats = [(f, cols[f]) for f in features]
            rows = []
            for i in range(batch.num_rows):
                values = {f: _json_value(col[i]) for f, col in feats}
                created = cols["__created_ms"][i]
                rows.append(
                    (
                        encode_key([c[i] for c in key_cols]),
                        cols["__event_ms"][i],
                        NO_CREATED if created is None else created,
                        pack(values),
                    )
                )
            self.online.write(view, rows)
            done += batch.num_rows
            if progress:
                progress(view, done, total)
        return done

    # ------------------------------------------------------------------ online reads

    def get_online_features(
        self,
        features: Sequence[str] | str | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]],
        *,
        full_feature_names: bool = False,
        now: datetime | int | float | None = None,
    ) -> OnlineResponse:
        """The latest materialized values for each entity row (a dict of join keys, plus the
        request fields on-demand features need); NULL (None) where there is no value or it is
        older than the view's TTL."""
        plan = self._resolve(features, full_feature_names)
        if not isinstance(entity_rows, Sequence) or isinstance(entity_rows, str | bytes):
            raise InvalidInput("entity_rows must be a list of objects such as {'customer_id': 7}.")
        now_ms = to_ms(now) if now is not None else int(time.time() * 1000)
        assert now_ms is not None
        columns: dict[str, list[Any]] = {k: [] for k in plan.join_keys}
        for i, row in enumerate(entity_rows):
            for k in plan.join_keys:
                try:
                    columns[k].append(row[k])
                except (KeyError, TypeError):
                    raise InvalidInput(
                        f"entity row {i} has no join key {k!r}; each row needs "
                        f"{list(plan.join_keys)}."
                    ) from None
        for f in plan.request:
            values = []
            for i, row in enumerate(entity_rows):
                if f.name not in row:
                    raise InvalidInput(
                        f"entity row {i} lacks request field {f.name!r}, which an on-demand "
                        "feature needs."
                    )
                values.append(row[f.name])
            columns[f.name] = values
        n = len(entity_rows)
        fetched: dict[str, list[dict[str, Any] | None]] = {}
        for read in plan.reads:
            if len(read.join_keys) == 1:
                keys = [
                    str(v) if type(v) is int else encode_key([v])
                    for v in columns[read.join_keys[0]]
                ]
            else:
                key_cols = [columns[k] for k in read.join_keys]
                keys = [encode_key([c[i] for c in key_cols]) for i in range(n)]
            stored = self.online.read(read.view.name, keys)
            if len(read.join_keys) == 1:
                self._read_retyped(read.view.name, columns[read.join_keys[0]], stored)
            ttl = read.view.ttl_seconds
            oldest = now_ms - int(ttl * 1000) if ttl else -(2**63)
            live = [r if r is not None and oldest <= r[0] <= now_ms else None for r in stored]
            values = iter(loads("[" + ",".join(r[1] for r in live if r is not None) + "]"))
            fetched[read.view.name] = [None if r is None else next(values) for r in live]
        computed: dict[str, list[dict[str, Any]]] = {}
        if plan.on_demand:
            computed = self._on_demand_online(plan, fetched, columns, n)
        for view, feature, out in plan.outputs:
            source = fetched.get(view)
            if source is not None:
                columns[out] = [None if r is None else r.get(feature) for r in source]
            else:
                columns[out] = [r.get(feature) for r in computed[view]]
        return OnlineResponse(columns)

    def _read_retyped(self, view: str, values: Sequence[Any], stored: list[Row | None]) -> None:
        """Fill misses in ``stored`` whose key was given with the other type: ``"7"`` for an
        integer key 7 (JSON from a client that quotes ids), ``7`` or ``7.0`` for a string key
        ``"7"``. An exact match always wins; only misses are retried (a read per other form)."""
        pending = {i: _other_keys(v) for i, v in enumerate(values) if stored[i] is None}
        while pending := {i: alt for i, alt in pending.items() if alt and stored[i] is None}:
            keys = [alt.pop(0) for alt in pending.values()]
            for i, row in zip(pending, self.online.read(view, keys), strict=True):
                stored[i] = row

    def _on_demand_online(
        self,
        plan: Plan,
        fetched: dict[str, list[dict[str, Any] | None]],
        columns: dict[str, list[Any]],
        n: int,
    ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for odfv, _ in plan.on_demand:
            inputs: dict[str, tuple[str, list[Any]]] = {}
            for src in odfv.source_names:
                read = next(r for r in plan.reads if r.view.name == src)
                rows = fetched[src]
                for f in read.features:
                    values = [None if r is None else r.get(f.name) for r in rows]
                    inputs[f.name] = (f.dtype, values)
            for f in odfv.request:
                inputs[f.name] = (f.dtype, columns[f.name])
            frame = _call_on_demand(odfv, _typed_frame(odfv.name, inputs, n))
            records = frame.to_dict("records")
            out[odfv.name] = [{k: _json_value(v) for k, v in r.items()} for r in records]
        return out

    # ------------------------------------------------------------------ lineage

    def training_sets_of(self, view: str) -> list[tuple[str, int, int]]:
        """``(dataset, version, view version)`` of the registered training sets built from
        ``view``."""
        return self.meta.training_sets_of(view)

    def training_set_views(self, dataset: str, version: int) -> list[tuple[str, int]]:
        return self.meta.training_set_views(dataset, version)


def _other_keys(value: Any) -> list[str]:
    """The online keys of a single join-key value given as another type, most likely first
    (see :meth:`FeatureStore._read_retyped`): a float with an integer value as that integer and
    its text, an integer as its text, a decimal integer's text (``"7"``, not ``"07"``) as the
    number."""
    value = plain_scalar(value)  # numpy.int64 from a DataFrame is an int
    if isinstance(value, bool):
        return []
    if isinstance(value, float) and value.is_integer():
        return [encode_key([int(value)]), encode_key([str(int(value))])]
    if isinstance(value, int):
        return [encode_key([str(value)])]
    if isinstance(value, str) and value.strip() == value:
        try:
            number = int(value)
        except ValueError:
            return []
        return [encode_key([number])] if str(number) == value else []
    return []


_ARROW_TYPES = {"int64": "int64", "float64": "float64", "string": "string", "bool": "bool_"}


def _typed_frame(view: str, inputs: Mapping[str, tuple[str, list[Any]]], n: int) -> pd.DataFrame:
    """An on-demand function's online input, typed as the training set's input is (an Arrow
    table of the declared types converted to pandas: an int64 column with NULLs becomes
    float64 with NaN, a column of NULLs keeps its type), so the function sees the same dtypes
    offline and online."""
    import pandas as pd
    import pyarrow as pa

    if not inputs:
        return pd.DataFrame(index=range(n))
    arrays = {}
    for name, (dtype, values) in inputs.items():
        try:
            arrays[name] = pa.array(values, getattr(pa, _ARROW_TYPES[dtype])())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise InvalidInput(
                f"on-demand view {view!r}: {name!r} must hold {dtype} values ({exc})."
            ) from None
    return pa.table(arrays).to_pandas()


def _call_on_demand(odfv: Any, frame: pd.DataFrame) -> pd.DataFrame:
    try:
        result = odfv.function(frame)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"on-demand view {odfv.name!r} failed: {type(exc).__name__}: {exc}."
        ) from exc
    missing = [f.name for f in odfv.features if f.name not in getattr(result, "columns", ())]
    if missing:
        raise InvalidInput(
            f"on-demand view {odfv.name!r} returned no column(s) {missing}; its function must "
            "return a DataFrame with every declared feature."
        )
    if len(result) != len(frame):
        raise InvalidInput(
            f"on-demand view {odfv.name!r} returned {len(result)} rows for {len(frame)}."
        )
    return result.reset_index(drop=True)


def _json_value(v: Any) -> Any:
    """A plain JSON-able value (NaN and infinities become None: JSON has no such numbers, and
    one would make every online read of the entity fail; numpy scalars become Python ones)."""
    if v is None:
        return None
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def definitions_of(
    records: Sequence[DefinitionRecord],
) -> list[dict[str, Any]]:
    """Records as plain dicts (what `features list --json` prints)."""
    return [
        {
            "kind": r.kind,
            "name": r.name,
            "version": r.version,
            "spec": r.spec,
            "user_id": r.user_id,
            "creation_time": r.creation_time,
        }
        for r in records
    ]
