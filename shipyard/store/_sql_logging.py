"""Writing a run's values in SQL: params (write-once), tags, metric points with the latest point
per key, dataset inputs; and reading one metric's history page by page.

Which point of a metric is the *latest*: the higher step, then the later timestamp, then the
larger value, and a NaN loses to any real value at the same step and timestamp. A batch is reduced
to one candidate per key in Python, then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` moves
``latest_metrics`` forward only where the candidate is later, which stays correct when several
writers log the same run at once.

These are the store's hottest statements (every logging call, every history read), so they are
compiled once per dialect and run through the driver (:func:`~._sql_common.driver_sql`), with
rows passed and read as plain tuples.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard import errors, validation
from shipyard.entities import DatasetInput, Metric, Page
from shipyard.store._sql_common import driver_execute, driver_sql, encode_token, upsert
from shipyard.store.base import HistoryRow
from shipyard.store.schema import (
    datasets,
    latest_metrics,
    metrics,
    params,
    run_inputs,
    runs,
    tags,
)

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
METRIC_COLUMNS = (
    "run_id", "key", "step", "timestamp", "value", "is_nan",
    "dataset_name", "dataset_digest", "model_id",
)  # fmt: skip
"""The columns of a :func:`metric_row`, in order; the first six are those of ``latest_metrics``."""
_KV_COLUMNS = ("run_id", "key", "value")
INT64_MAX = validation.INT64_MAX
INT64_MIN = validation.INT64_MIN

MetricRow = tuple[str, str, int, int, float, bool, str | None, str | None, str | None]
"""One ``metrics`` row: the values of :data:`METRIC_COLUMNS`."""


def metric_row(run_id: str, m: Metric) -> MetricRow:
    """The validated ``metrics`` row for one point (NaN stored as 0 with ``is_nan``)."""
    if not isinstance(m, Metric):
        raise errors.InvalidInput(f"metrics must be Metric values, got {type(m).__name__}.")
    key = validation.key(m.key, "metric key")
    # The common point (a float value, int step and timestamp in range, no dataset or model)
    # is checked inline: this runs for every point of every batch.
    value, step, timestamp = m.value, m.step, m.timestamp
    if type(value) is not float:
        value = validation.metric_value(value, key)
    if type(step) is not int or not INT64_MIN <= step <= INT64_MAX:
        step = validation.int64(step, f"step of metric {key!r}")
    if type(timestamp) is not int or not 0 <= timestamp <= INT64_MAX:
        timestamp = validation.int64(timestamp, f"timestamp of metric {key!r}", minimum=0)
    if m.dataset_name is not None or m.dataset_digest is not None or m.model_id is not None:
        for field, limit in (
            ("dataset_name", validation.MAX_DATASET_NAME_LENGTH),
            ("dataset_digest", validation.MAX_DATASET_DIGEST_LENGTH),
            ("model_id", validation.MAX_MODEL_ID_LENGTH),
        ):
            if getattr(m, field) is not None:
                validation.text(getattr(m, field), f"{field} of metric {key!r}", limit)
    is_nan = value != value
    return (
        run_id,
        key,
        step,
        timestamp,
        0.0 if is_nan else value,
        is_nan,
        m.dataset_name,
        m.dataset_digest,
        m.model_id,
    )


def run_stage(conn: Connection, dialect: str, run_id: str) -> str | None:
    """The run's ``lifecycle_stage``, or ``None`` when there is no such run (one indexed read)."""
    row = driver_execute(conn, _run_stage_select(dialect), (run_id,)).fetchone()
    return None if row is None else str(row[0])


def insert_params(conn: Connection, dialect: str, run_id: str, values: Mapping[str, str]) -> None:
    """Insert new params; a key already logged must hold the same value (else ``Conflict``)."""
    rows = [(run_id, k, v) for k, v in sorted(values.items())]
    inserted = driver_execute(conn, _params_insert(dialect), rows, many=True).rowcount
    if inserted == len(rows):  # every key is new: nothing to compare
        return
    p = params.c
    stored = conn.execute(
        sa.select(p.key, p.value).where(p.run_id == run_id, p.key.in_(list(values)))
    )
    for key, value in stored:
        if values[key] != value:
            raise errors.Conflict(
                f"param {key!r} of run {run_id} is already {value!r}; params can't change; "
                "log a new key or start a new run",
                details={"key": key, "stored": value, "sent": values[key]},
            )


def upsert_tags(conn: Connection, dialect: str, run_id: str, values: Mapping[str, str]) -> None:
    """Set tags (overwriting), keeping the run columns that two tags mirror in step."""
    driver_execute(
        conn, _tags_upsert(dialect), [(run_id, k, v) for k, v in sorted(values.items())], many=True
    )
    if RUN_NAME_TAG in values:
        name = validation.run_name(values[RUN_NAME_TAG])
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(run_name=name))
    if PARENT_RUN_TAG in values:
        parent = validation.run_id(values[PARENT_RUN_TAG])
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(parent_run_id=parent))


def _rank(row: MetricRow) -> tuple[int, int, int, float]:
    # (step, timestamp, real before NaN, value)
    return (row[2], row[3], 0 if row[5] else 1, row[4])


def insert_metrics(conn: Connection, dialect: str, rows: list[MetricRow]) -> None:
    """Append the points to the history and move each key's latest point forward."""
    driver_execute(conn, _metrics_insert(dialect), rows, many=True)
    best: dict[tuple[str, str], MetricRow] = {}
    for row in rows:
        ident = (row[0], row[1])
        current = best.get(ident)
        if current is None or _rank(row) > _rank(current):
            best[ident] = row
    # Sorted, so that concurrent writers lock rows in the same order (no deadlocks).
    latest = [best[i][:6] for i in sorted(best)]
    driver_execute(conn, _latest_upsert(dialect), latest, many=True)


# The statements are built and compiled once per dialect: building ``excluded`` and compiling
# are costly, running is not.


@functools.cache
def _run_stage_select(dialect: str) -> str:
    stmt = sa.select(runs.c.lifecycle_stage).where(runs.c.run_id == sa.bindparam("run_id"))
    return driver_sql(stmt, dialect, ("run_id",))


@functools.cache
def _metrics_insert(dialect: str) -> str:
    return driver_sql(sa.insert(metrics), dialect, METRIC_COLUMNS)


@functools.cache
def _params_insert(dialect: str) -> str:
    return driver_sql(upsert(dialect, params).on_conflict_do_nothing(), dialect, _KV_COLUMNS)


@functools.cache
def _tags_upsert(dialect: str) -> str:
    stmt = upsert(dialect, tags)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
    )
    return driver_sql(stmt, dialect, _KV_COLUMNS)


@functools.cache
def _latest_upsert(dialect: str) -> str:
    stmt = upsert(dialect, latest_metrics)
    new, old = stmt.excluded, latest_metrics.c
    later = sa.or_(
        new.step > old.step,
        sa.and_(new.step == old.step, new.timestamp > old.timestamp),
        sa.and_(
            new.step == old.step,
            new.timestamp == old.timestamp,
            sa.not_(new.is_nan),
            sa.or_(old.is_nan, new.value > old.value),
        ),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={c: new[c] for c in ("step", "timestamp", "value", "is_nan")},
        where=later,
    )
    return driver_sql(stmt, dialect, METRIC_COLUMNS[:6])


def insert_inputs(
    conn: Connection,
    dialect: str,
    run_id: str,
    experiment_id: int,
    inputs: Mapping[tuple[str, str], DatasetInput],
) -> None:
    """Record dataset inputs (keyed by name and digest); datasets are shared per experiment."""
    rows = [
        {
            "experiment_id": experiment_id,
            "name": item.dataset.name,
            "digest": item.dataset.digest,
            "source_type": item.dataset.source_type,
            "source": item.dataset.source,
            "schema": item.dataset.schema,
            "profile": item.dataset.profile,
        }
        for item in inputs.values()
    ]
    conn.execute(
        upsert(dialect, datasets).on_conflict_do_nothing(
            index_elements=["experiment_id", "name", "digest"]
        ),
        rows,
    )
    d = datasets.c
    names = sorted({name for name, _ in inputs})
    ids = {
        (name, digest): dataset_id
        for name, digest, dataset_id in conn.execute(
            sa.select(d.name, d.digest, d.dataset_id).where(
                d.experiment_id == experiment_id, d.name.in_(names)
            )
        )
    }
    links = [
        {"run_id": run_id, "dataset_id": ids[ident], "tags": json.dumps(item.tags, sort_keys=True)}
        for ident, item in sorted(inputs.items())
    ]
    conn.execute(upsert(dialect, run_inputs).on_conflict_do_nothing(), links)


def history_page(
    conn: Connection,
    dialect: str,
    run_id: str,
    key: str,
    limit: int | None,
    after: tuple[int, int, int] | None,
) -> Page[HistoryRow]:
    """A page of one metric's points in (step, timestamp) order, as plain rows.

    Points sharing a step and timestamp come in a stable order: the order they were logged in
    (SQLite), or by value (PostgreSQL). The token holds the last page's final (step, timestamp)
    and how many points with exactly that pair were returned so far, so such points are never
    repeated or skipped across pages.

    The query reads four columns (the links as one flag), because most of a long history's cost
    is the driver making a Python value per column per row; a page where some point has a
    dataset or model is read a second time for those (same statement, same transaction).
    """
    # One more row than asked for tells whether there is a next page.
    fetch = INT64_MAX if limit is None else limit + 1
    if after is None:
        values: tuple[Any, ...] = (run_id, key, fetch, 0)
    else:
        step, timestamp, seen = after
        values = (run_id, key, step, step, timestamp, fetch, seen)
    # The driver's own tuples: a page holds up to 25,000 points, and SQLAlchemy's rows would
    # cost as much again as the query.
    rows: list[HistoryRow] = _driver_rows(conn, _history_select(dialect, after is not None), values)
    if any(row[3] for row in rows):
        links = _driver_rows(conn, _history_select(dialect, after is not None, True), values)
        rows = [(s, t, v, link if flag else None)
                for (s, t, v, flag), link in zip(rows, links, strict=True)]  # fmt: skip
    token = None
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        last = (rows[-1][0], rows[-1][1])
        seen = sum(1 for r in rows if (r[0], r[1]) == last)
        if after is not None and (after[0], after[1]) == last:
            seen += after[2]
        token = encode_token({"step": last[0], "timestamp": last[1], "seen": seen})
    return Page(rows, token)


def _driver_rows(conn: Connection, sql: str, values: tuple[Any, ...]) -> list[Any]:
    result = conn.exec_driver_sql(sql, values)
    rows = list(result.cursor.fetchall())  # type: ignore[union-attr]
    result.close()
    return rows


def history_metrics(key: str, rows: list[HistoryRow]) -> list[Metric]:
    """The points of :func:`history_page` as entities."""
    nan = math.nan
    # Positional construction from plain tuples: a history page holds up to 25,000 points.
    return [
        Metric(key, nan if value is None else float(value), timestamp, step, *(links or _NO_LINKS))
        for step, timestamp, value, links in rows
    ]


_NO_LINKS = (None, None, None)


@functools.cache
def _history_select(dialect: str, after: bool, links: bool = False) -> str:
    """The history page query: ``(step, timestamp, value or NULL for NaN, has links)`` per
    point, or with ``links`` the ``(dataset_name, dataset_digest, model_id)`` of the same
    points."""
    m = metrics.c
    names: tuple[str, ...] = ("run_id", "key")
    columns: tuple[Any, ...]
    if links:
        columns = (m.dataset_name, m.dataset_digest, m.model_id)
    else:
        columns = (
            m.step,
            m.timestamp,
            sa.case((m.is_nan, sa.null()), else_=m.value),
            sa.or_(
                m.dataset_name.is_not(None), m.dataset_digest.is_not(None), m.model_id.is_not(None)
            ),
        )
    query = sa.select(*columns).where(
        m.run_id == sa.bindparam("run_id"), m.key == sa.bindparam("key")
    )
    if after:
        query = query.where(
            sa.or_(
                m.step > sa.bindparam("after_step"),
                sa.and_(
                    m.step == sa.bindparam("after_step"),
                    m.timestamp >= sa.bindparam("after_timestamp"),
                ),
            )
        )
        names += ("after_step", "after_step", "after_timestamp")
    if dialect == "sqlite":
        # Ties in the order they were logged: the index on (run_id, key, step, timestamp) holds
        # its entries in that order already (rowid last), so SQLite reads without sorting.
        tie_break: tuple[Any, ...] = (sa.literal_column("metrics.rowid"),)
    else:
        tie_break = (m.is_nan, m.value, m.dataset_name, m.dataset_digest, m.model_id)
    query = (
        query.order_by(m.step, m.timestamp, *tie_break)
        .limit(sa.bindparam("limit", type_=sa.BigInteger))
        .offset(sa.bindparam("seen", type_=sa.BigInteger))
    )
    return driver_sql(query, dialect, (*names, "limit", "seen"))
