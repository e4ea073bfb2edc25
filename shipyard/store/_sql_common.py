"""Helpers shared by the SQL store's modules: dialect-aware upserts, statements compiled to the
driver's own SQL for the hot paths, page tokens, and turning rows into entities (loading the
details of many runs or experiments in a few ``IN`` queries)."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Row
from sqlalchemy.sql import ClauseElement

from shipyard.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    Run,
    RunData,
    RunInfo,
)
from shipyard.errors import InvalidInput
from shipyard.store.schema import (
    datasets,
    experiment_tags,
    experiments,
    latest_metrics,
    params,
    run_inputs,
    runs,
    tags,
)

IN_CHUNK = 500
"""Ids per ``IN (...)`` list (well under SQLite's bound-parameter limit)."""

Insert = sqlite.Insert | postgresql.Insert


def now_ms() -> int:
    """The current time in integer milliseconds since the Unix epoch."""
    return int(time.time() * 1000)


def json_text(value: Any) -> str:
    """A JSON column's text: compact, keys sorted, no NaN (what the SQL stores write)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def json_value(text: str | None) -> Any:
    """A JSON column's value (``None`` for NULL or empty text)."""
    return json.loads(text) if text else None


def inserted_id(result: Any) -> int:
    """The integer primary key an INSERT assigned."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def upsert(dialect: str, table: sa.Table) -> Insert:
    """An INSERT that supports ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@functools.cache
def _positional_dialect(name: str) -> Dialect:
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        return PGDialect_psycopg(paramstyle="format")
    return sqlite.dialect(paramstyle="qmark")


def driver_sql(stmt: ClauseElement, dialect: str, names: Sequence[str]) -> str:
    """``stmt`` compiled to the driver's SQL, for ``connection.exec_driver_sql(sql, values)``.

    The hot paths (logging a value, reading a metric's history) run the same few statements
    thousands of times a second; through the driver they skip SQLAlchemy's per-execution work
    (cache key, parameter processing, result rows), which costs more than SQLite itself. The
    statement is still written in SQLAlchemy against :mod:`shipyard.store.schema`, compiled once
    (cache the result per dialect) with positional parameters; ``names`` is the order the
    caller passes values in, checked against the compiled statement so a change of columns can't
    silently misplace them. Values go to the driver as they are: pass what the column's driver
    type takes (``bool`` for booleans, ``float`` for floats).
    """
    compiled = stmt.compile(dialect=_positional_dialect(dialect))
    order = tuple(getattr(compiled, "positiontup", None) or ())
    if order != tuple(names):
        raise AssertionError(f"statement takes parameters {order}, the caller passes {names}")
    return compiled.string


def driver_execute(conn: Connection, sql: str, values: Any, *, many: bool = False) -> Any:
    """Run ``sql`` (from :func:`driver_sql`) on the DBAPI cursor of ``conn``'s transaction and
    return the cursor (``fetchone``, ``fetchall``, ``rowcount``).

    Cheaper again than ``exec_driver_sql``, which still dispatches events and builds an execution
    context per statement: on the logging hot path that is more than half of a call's time. A
    driver error is raised as SQLAlchemy's wrapped exception, exactly as ``exec_driver_sql``
    would (a lost connection invalidated, ``connection_invalidated`` set), so the store's
    retries on locks and its error translation see no difference.
    """
    cursor = conn.connection.cursor()
    dbapi = conn.dialect.loaded_dbapi
    try:
        if many:
            cursor.executemany(sql, values)
        else:
            cursor.execute(sql, values)
    except dbapi.Error as exc:
        dbapi_conn = conn.connection.dbapi_connection
        lost = conn.dialect.is_disconnect(exc, dbapi_conn, cursor)
        try:
            cursor.close()
        except dbapi.Error:
            pass  # a cursor on a lost connection may not close; the connection goes anyway
        if lost and not conn.invalidated:
            conn.invalidate(exc)  # as SQLAlchemy does: the pool never hands this one out again
        raise sa_exc.DBAPIError.instance(
            sql,
            values,
            exc,
            dbapi.Error,
            connection_invalidated=lost,
            dialect=conn.dialect,
            ismulti=many,
        ) from exc
    return cursor


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def metric_value(value: float, is_nan: bool) -> float:
    return math.nan if is_nan else float(value)


# ---------------------------------------------------------------------------- page tokens


def encode_token(payload: dict[str, Any]) -> str:
    """An opaque, URL-safe page token carrying ``payload``."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, what: str) -> dict[str, Any]:
    """The payload of a token made by :func:`encode_token`; ``InvalidInput`` if it isn't one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise InvalidInput(
            f"page_token {token[:60]!r} is not a valid {what} token. Pass back the "
            "next_page_token of the previous page unchanged, or leave it out to start over."
        )
    return payload


# ---------------------------------------------------------------------------- rows -> entities


def run_info(row: Row[Any]) -> RunInfo:
    m = row._mapping
    return RunInfo(
        run_id=m["run_id"],
        experiment_id=str(m["experiment_id"]),
        run_name=m["run_name"],
        user_id=m["user_id"],
        status=m["status"],
        start_time=m["start_time"],
        end_time=m["end_time"],
        lifecycle_stage=m["lifecycle_stage"],
        artifact_uri=m["artifact_uri"],
        parent_run_id=m["parent_run_id"],
    )


RUN_COLUMNS = tuple(c for c in runs.c if c.name != "deleted_time")
EXPERIMENT_COLUMNS = tuple(c for c in experiments.c if c.name != "deleted_time")


def load_runs(conn: Connection, rows: Sequence[Row[Any]]) -> list[Run]:
    """Whole runs (latest metrics, params, tags, inputs) for rows of the ``runs`` table."""
    ids = [row._mapping["run_id"] for row in rows]
    run_params: dict[str, dict[str, str]] = {i: {} for i in ids}
    run_tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    run_metrics: dict[str, dict[str, Metric]] = {i: {} for i in ids}
    run_inputs_: dict[str, list[DatasetInput]] = {i: [] for i in ids}
    for chunk in chunks(ids):
        for table, target in ((params, run_params), (tags, run_tags)):
            query = (
                sa.select(table.c.run_id, table.c.key, table.c.value)
                .where(table.c.run_id.in_(chunk))
                .order_by(table.c.run_id, table.c.key)
            )
            for run_id, key, value in conn.execute(query):
                target[run_id][key] = value
        lm = latest_metrics.c
        query = (
            sa.select(lm.run_id, lm.key, lm.step, lm.timestamp, lm.value, lm.is_nan)
            .where(lm.run_id.in_(chunk))
            .order_by(lm.run_id, lm.key)
        )
        for row in conn.execute(query):
            run_metrics[row.run_id][row.key] = Metric(
                key=row.key,
                value=metric_value(row.value, row.is_nan),
                timestamp=row.timestamp,
                step=row.step,
            )
        ri, d = run_inputs.c, datasets.c
        query = (
            sa.select(ri.run_id, ri.tags, d.name, d.digest, d.source_type, d.source, d.schema)
            .add_columns(d.profile)
            .join_from(run_inputs, datasets, d.dataset_id == ri.dataset_id)
            .where(ri.run_id.in_(chunk))
            .order_by(ri.run_id, ri.dataset_id)
        )
        for row in conn.execute(query):
            dataset = Dataset(
                name=row.name,
                digest=row.digest,
                source_type=row.source_type,
                source=row.source,
                schema=row.schema,
                profile=row.profile,
            )
            run_inputs_[row.run_id].append(DatasetInput(dataset, json.loads(row.tags)))
    return [
        Run(
            info=run_info(row),
            data=RunData(
                metrics=run_metrics[row.run_id],
                params=run_params[row.run_id],
                tags=run_tags[row.run_id],
            ),
            inputs=tuple(run_inputs_[row.run_id]),
        )
        for row in rows
    ]


def load_experiments(conn: Connection, rows: Sequence[Row[Any]]) -> list[Experiment]:
    """Experiments with their tags for rows of the ``experiments`` table."""
    ids = [row._mapping["experiment_id"] for row in rows]
    exp_tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    et = experiment_tags.c
    for chunk in chunks(ids):
        query = (
            sa.select(et.experiment_id, et.key, et.value)
            .where(et.experiment_id.in_(chunk))
            .order_by(et.experiment_id, et.key)
        )
        for experiment_id, key, value in conn.execute(query):
            exp_tags[experiment_id][key] = value
    result = []
    for row in rows:
        m = row._mapping
        result.append(
            Experiment(
                experiment_id=str(m["experiment_id"]),
                name=m["name"],
                artifact_location=m["artifact_location"],
                lifecycle_stage=m["lifecycle_stage"],
                creation_time=m["creation_time"],
                last_update_time=m["last_update_time"],
                tags=exp_tags[m["experiment_id"]],
            )
        )
    return result
