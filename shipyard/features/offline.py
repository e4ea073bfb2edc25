"""The offline side: point-in-time-correct training sets and materialization reads, in DuckDB.

A training set is an ASOF join run by DuckDB straight over the sources' Parquet/CSV files and the
entity rows (an Arrow table registered with DuckDB, not copied)::

    SELECT e.*, CASE WHEN f0.__ts >= e.__ts - ttl THEN f0.spend END AS spend, ...
    FROM entity_rows e
    ASOF LEFT JOIN (source 0) f0
      ON e.customer_id = f0.customer_id AND e.__ts >= f0.__ts
    ASOF LEFT JOIN ...
    ORDER BY e.__row

so each entity row gets, per view, the latest feature row with event time <= its timestamp;
the TTL ``CASE`` turns a row older than the TTL into NULLs (the entity row is kept: nothing is
ever dropped), and the entity rows come back in their order, duplicates included. Where a view's
source has a created-time column, rows sharing a key and event time are resolved to the one
created last (the tie-break) by a second, targeted pass over only the matched pairs that are
tied (see :func:`training_sql`). Timestamps are compared in UTC; naive ones are taken as UTC.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, missing_extra
from shipyard.features.definitions import DatasetSource, FeatureView, FileSource

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.features.registry import Plan, ViewRead
    from shipyard.workspace import Workspace

ROW = "__shipyard_row"
_SQL_TYPES = {"int64": "BIGINT", "float64": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}


def duckdb() -> Any:
    try:
        import duckdb as _duckdb
    except ImportError:
        raise missing_extra("duckdb", "features") from None
    return _duckdb


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_local = threading.local()


def connect() -> Any:
    """This thread's DuckDB connection (in memory, session time zone UTC), kept for the next
    call: opening one and loading the time-zone support costs tens of milliseconds."""
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb().connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
        except Exception:  # pragma: no cover - a build without ICU has no time zones at all
            pass
        _local.con = con
    return con


@dataclass(frozen=True)
class Relation:
    """A source as DuckDB reads it: the ``FROM`` expression and its event/created columns."""

    sql: str
    event_time: str
    created_time: str | None


def relation(ws: Workspace | None, view: FeatureView) -> Relation:
    """The DuckDB ``FROM`` expression reading a view's source."""
    source = view.source
    if isinstance(source, FileSource):
        paths, fmt = source.paths, source.format
    else:
        assert isinstance(source, DatasetSource)
        paths, fmt = _dataset_paths(ws, view, source)
    files = "[" + ", ".join(_lit(p) for p in paths) + "]"
    sql = (
        f"read_parquet({files})"
        if fmt == "parquet"
        else f"read_csv({files}, header = true, auto_detect = true)"
    )
    return Relation(sql, source.event_time, source.created_time)


def _dataset_paths(
    ws: Workspace | None, view: FeatureView, source: DatasetSource
) -> tuple[list[str], str]:
    if ws is None:
        raise InvalidInput(f"feature view {view.name!r} reads a dataset; it needs a workspace.")
    from shipyard.data.service import Datasets

    service = Datasets(ws)
    version = service.get(source.dataset, source.version)
    if version.format not in ("parquet", "csv"):
        raise InvalidInput(
            f"feature view {view.name!r}: {version.uri} is not a Parquet or CSV table (format "
            f"{version.format}); register the feature rows as Parquet or CSV."
        )
    cas = service._cas()
    paths = []
    for info in service._files(cas, version.storage_owner):
        local = cas.local_path(version.storage_owner, info.path)
        if local is None:
            raise InvalidInput(
                f"feature view {view.name!r}: {version.uri} is in a remote artifact store; "
                "training sets read dataset versions in place from a local one, so download "
                "the version and point a FileSource at it."
            )
        paths.append(str(local))
    return paths, version.format


def _ts(expr: str) -> str:
    return f"CAST({expr} AS TIMESTAMP)"


def _feature_rows(rel: Relation, read: ViewRead) -> str:
    """One view's rows for the ASOF join: keys, ``__ts`` and the features cast to their types."""
    cols = [q(k) for k in read.join_keys]
    cols.append(f"{_ts(q(rel.event_time))} AS __ts")
    cols += [f"CAST({q(f.name)} AS {_SQL_TYPES[f.dtype]}) AS {q(f.name)}" for f in read.features]
    return f"SELECT {', '.join(cols)} FROM {rel.sql}"


def _tied_pairs(rel: Relation, read: ViewRead, i: int) -> str:
    """The (key, event time) pairs the join matched that several source rows share."""
    keys = ", ".join(q(k) for k in read.join_keys)
    ts = _ts(q(rel.event_time))
    return (
        f"SELECT {keys}, {ts} AS __ts{i} FROM {rel.sql} WHERE ({keys}, {ts}) IN "
        f"(SELECT {keys}, __ts{i} FROM __j WHERE __ts{i} IS NOT NULL) "
        "GROUP BY ALL HAVING count(*) > 1"
    )


def _winners(rel: Relation, read: ViewRead, i: int) -> str:
    """For each tied pair in ``__t<i>``, the features of the row created last (the tie-break)."""
    keys = [q(k) for k in read.join_keys]
    ts = f"CAST(s.{q(rel.event_time)} AS TIMESTAMP)"
    packed = ", ".join(
        f"{q(f.name)} := CAST(s.{q(f.name)} AS {_SQL_TYPES[f.dtype]})" for f in read.features
    )
    on = " AND ".join([*(f"s.{k} = t.{k}" for k in keys), f"{ts} = t.__ts{i}"])
    return (
        f"SELECT {', '.join(f's.{k}' for k in keys)}, {ts} AS __ts{i}, "
        f"arg_max(struct_pack({packed}), CAST(s.{q(rel.created_time or '')} AS TIMESTAMP)) "
        f"AS __w FROM {rel.sql} s SEMI JOIN __t{i} t ON {on} GROUP BY ALL"
    )


@dataclass(frozen=True)
class TrainingQuery:
    """A training set's statements (see :func:`training_sql`)."""

    joined: str
    """``__j``: the entity rows ASOF-joined with every view."""
    ties: dict[int, str]
    """Per view with a created time, the statement of its tied matched pairs (``__t<i>``)."""
    final: Any
    """``final(views_with_ties)``: the statement of the result."""


def training_sql(
    plan: Plan, relations: Sequence[Relation], entity_columns: Sequence[str], timestamp: str
) -> TrainingQuery:
    """The statements of a training set over the registered table ``__entity``.

    ``__j`` is the entity rows ASOF-joined with every view on its keys and event time. Rows
    sharing a key and event time are rare, and which of them an ASOF join picks is arbitrary, so
    for views whose source has a created time ``__t<i>`` lists the matched pairs that are tied
    (a scan of the key and time columns only); only when there are any does the result join
    ``__w<i>``, the row created last for each of them, whose values replace the picked ones (a
    targeted pass instead of sorting every feature row by created time)."""
    names = {(view, feature): out for view, feature, out in plan.outputs}
    inner = ["e.*"]
    joins = []
    for i, (read, rel) in enumerate(zip(plan.reads, relations, strict=True)):
        on = " AND ".join(
            [*(f"e.{q(k)} = f{i}.{q(k)}" for k in read.join_keys), f"e.__ts >= f{i}.__ts"]
        )
        joins.append(f"ASOF LEFT JOIN ({_feature_rows(rel, read)}) f{i} ON {on}")
        inner.append(f"f{i}.__ts AS __ts{i}")
        inner += [f"f{i}.{q(f.name)} AS {q(f'__v{i}_{f.name}')}" for f in read.features]
    entity = f"(SELECT *, {_ts(q(timestamp))} AS __ts FROM __entity) e"
    joined = f"SELECT {', '.join(inner)} FROM {entity} {' '.join(joins)}"
    ties = {
        i: _tied_pairs(rel, read, i)
        for i, (read, rel) in enumerate(zip(plan.reads, relations, strict=True))
        if rel.created_time
    }

    def final(tied: set[int]) -> str:
        ctes = []
        selects = [f"j.{q(c)}" for c in entity_columns]
        tie_joins = []
        for i, (read, rel) in enumerate(zip(plan.reads, relations, strict=True)):
            if i in tied:
                ctes.append(f"__w{i} AS ({_winners(rel, read, i)})")
                on = " AND ".join(
                    [*(f"j.{q(k)} = w{i}.{q(k)}" for k in read.join_keys),
                     f"j.__ts{i} = w{i}.__ts{i}"]
                )  # fmt: skip
                tie_joins.append(f"LEFT JOIN __w{i} w{i} ON {on}")
            ttl = read.view.ttl_seconds
            for f in read.features:
                out = names.get((read.view.name, f.name), f"__{read.view.name}__{f.name}")
                value = f"j.{q(f'__v{i}_{f.name}')}"
                if i in tied:
                    value = (
                        f"CASE WHEN w{i}.__w IS NULL THEN {value} "
                        f"ELSE struct_extract(w{i}.__w, {_lit(f.name)}) END"
                    )
                if ttl:
                    micros = round(ttl * 1_000_000)
                    value = (
                        f"CASE WHEN j.__ts{i} >= j.__ts - to_microseconds({micros}) "
                        f"THEN {value} END"
                    )
                selects.append(f"{value} AS {q(out)}")
        with_ = f"WITH {', '.join(ctes)} " if ctes else ""
        return (
            f"{with_}SELECT {', '.join(selects)} FROM __j j {' '.join(tie_joins)} "
            f"ORDER BY j.{q(ROW)}"
        )

    return TrainingQuery(joined, ties, final)


def to_arrow(data: Any) -> pa.Table:
    """A pandas DataFrame, Arrow table or list of dicts as an Arrow table."""
    try:
        import pyarrow as pa
    except ImportError:
        raise missing_extra("pyarrow", "features") from None
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if type(data).__module__.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InvalidInput(
        f"entity rows must be a pandas DataFrame, a pyarrow Table or a list of dicts, not "
        f"{type(data).__name__}."
    )


def training_table(ws: Workspace | None, plan: Plan, entity_rows: Any, timestamp: str) -> pa.Table:
    """The training set's feature columns for ``entity_rows`` (see the module docstring)."""
    import pyarrow as pa

    table = to_arrow(entity_rows)
    columns = list(table.column_names)
    if timestamp not in columns:
        raise InvalidInput(
            f"the entity rows have no timestamp column {timestamp!r} (they have {columns}); "
            "add it or pass timestamp_column=..."
        )
    missing = [k for k in plan.join_keys if k not in columns]
    if missing:
        raise InvalidInput(
            f"the entity rows lack join keys {missing} (they have {columns}); every row needs "
            f"the keys of the views it reads: {list(plan.join_keys)}."
        )
    if not pa.types.is_timestamp(table.schema.field(timestamp).type) and not pa.types.is_date(
        table.schema.field(timestamp).type
    ):
        raise InvalidInput(
            f"entity column {timestamp!r} is {table.schema.field(timestamp).type}, not a "
            "timestamp; convert it (pandas.to_datetime) first."
        )
    if ROW in columns:
        raise InvalidInput(f"the entity rows may not have a column named {ROW!r}.")
    clash = [out for _, _, out in plan.outputs if out in columns]
    if clash:
        raise InvalidInput(
            f"the entity rows already have column(s) {clash}, which the training set adds as "
            "features; rename or drop those columns, or pass full_feature_names=True to name "
            "the features view__feature."
        )
    table = table.append_column(ROW, pa.array(range(table.num_rows), pa.int64()))
    relations = [relation(ws, r.view) for r in plan.reads]
    query = training_sql(plan, relations, columns, timestamp)
    con = connect()
    con.register("__entity", table)
    temps = ["__j"]
    try:
        _run(con, f"CREATE OR REPLACE TEMP TABLE __j AS {query.joined}", plan)
        tied = set()
        for i, sql in query.ties.items():
            temps.append(f"__t{i}")
            _run(con, f"CREATE OR REPLACE TEMP TABLE __t{i} AS {sql}", plan)
            if con.execute(f"SELECT count(*) FROM __t{i}").fetchall()[0][0]:
                tied.add(i)
        return _run(con, query.final(tied), plan, arrow=True)
    finally:
        for name in temps:
            con.execute(f"DROP TABLE IF EXISTS {name}").fetchall()
        con.unregister("__entity")


def _run(con: Any, sql: str, plan: Plan, *, arrow: bool = False) -> Any:
    ddb = duckdb()
    try:
        if not arrow:
            return con.execute(sql).fetchall()
        return con.sql(sql).to_arrow_table()
    except (ddb.BinderException, ddb.ConversionException, ddb.IOException) as exc:
        views = ", ".join(r.view.name for r in plan.reads)
        raise InvalidInput(
            f"reading feature view(s) {views} failed: {str(exc).splitlines()[0]}. Check that "
            "each source has the join keys, event-time column and features the view declares, "
            "with types matching the entity rows."
        ) from None
    except ddb.InvalidInputException as exc:
        raise InvalidInput(f"reading the feature sources failed: {exc}") from None


@dataclass(frozen=True)
class Covered:
    """What an earlier materialization already wrote: every row with event time in
    ``[start, end]`` and, where the source has a created time, created before ``watermark``
    (without one, ``watermark`` is ``end + 1`` and adds nothing)."""

    start_ms: int | None
    end_ms: int
    watermark: int


def latest_rows(
    ws: Workspace | None,
    read: ViewRead,
    *,
    start_ms: int | None,
    end_ms: int,
    covered: Covered | None = None,
) -> pa.Table:
    """The latest row per entity key with event time in ``[start, end]`` (and, for an
    incremental run, outside what ``covered`` says was written already: created at or after
    its watermark, or with an event time outside its window): the keys, ``__event_ms``,
    ``__created_ms`` and the features. Ties break on created time."""
    rel = relation(ws, read.view)
    keys = [q(k) for k in read.join_keys]
    ev = _ts(q(rel.event_time))
    cr = _ts(q(rel.created_time)) if rel.created_time else "NULL::TIMESTAMP"
    where = [f"{ev} <= make_timestamp({end_ms * 1000})"]
    if start_ms is not None:
        where.append(f"{ev} >= make_timestamp({start_ms * 1000})")
    if covered is not None:
        new = [f"{ev} > make_timestamp({covered.end_ms * 1000})"]
        if covered.start_ms is not None:
            new.append(f"{ev} < make_timestamp({covered.start_ms * 1000})")
        if rel.created_time:
            new.append(f"{cr} >= make_timestamp({covered.watermark * 1000})")
        where.append(f"({' OR '.join(new)})")
    where += [f"{k} IS NOT NULL" for k in keys]
    feats = [f"CAST({q(f.name)} AS {_SQL_TYPES[f.dtype]}) AS {q(f.name)}" for f in read.features]
    sql = (
        f"SELECT {', '.join(keys)}, epoch_ms({ev}) AS __event_ms, epoch_ms({cr}) AS __created_ms, "
        f"{', '.join(feats)} FROM {rel.sql} WHERE {' AND '.join(where)} "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} "
        f"ORDER BY {ev} DESC, {cr} DESC NULLS LAST) = 1"
    )
    ddb = duckdb()
    try:
        return connect().sql(sql).to_arrow_table()
    except (ddb.BinderException, ddb.ConversionException, ddb.IOException) as exc:
        raise InvalidInput(
            f"reading feature view {read.view.name!r} failed: {str(exc).splitlines()[0]}. "
            "Check its source's columns against the view."
        ) from None
