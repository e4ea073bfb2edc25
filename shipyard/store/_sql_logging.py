"""Writing a run's values in SQL: params (write-once), tags, metric points with the latest point
per key, dataset inputs; and reading one metric's history page by page.

Which point of a metric is the *latest*: the higher step, then the later timestamp, then the
larger value, and a NaN loses to any real value at the same step and timestamp. A batch is reduced
to one candidate per key in Python, then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` moves
``latest_metrics`` forward only where the candidate is later, which stays correct when several
writers log the same run at once.
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
from shipyard.store._sql_common import encode_token, upsert
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
_LATEST_FIELDS = ("run_id", "key", "step", "timestamp", "value", "is_nan")


def metric_row(run_id: str, m: Metric) -> dict[str, Any]:
    """The validated ``metrics`` row for one point (NaN stored as 0 with ``is_nan``)."""
    if not isinstance(m, Metric):
        raise errors.InvalidInput(f"metrics must be Metric values, got {type(m).__name__}.")
    key = validation.key(m.key, "metric key")
    value = validation.metric_value(m.value, key)
    for field, limit in (
        ("dataset_name", validation.MAX_DATASET_NAME_LENGTH),
        ("dataset_digest", validation.MAX_DATASET_DIGEST_LENGTH),
        ("model_id", validation.MAX_MODEL_ID_LENGTH),
    ):
        if getattr(m, field) is not None:
            validation.text(getattr(m, field), f"{field} of metric {key!r}", limit)
    is_nan = math.isnan(value)
    return {
        "run_id": run_id,
        "key": key,
        "step": validation.int64(m.step, f"step of metric {key!r}"),
        "timestamp": validation.int64(m.timestamp, f"timestamp of metric {key!r}", minimum=0),
        "value": 0.0 if is_nan else value,
        "is_nan": is_nan,
        "dataset_name": m.dataset_name,
        "dataset_digest": m.dataset_digest,
        "model_id": m.model_id,
    }


def insert_params(conn: Connection, dialect: str, run_id: str, values: Mapping[str, str]) -> None:
    """Insert new params; a key already logged must hold the same value (else ``Conflict``)."""
    rows = [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(values.items())]
    conn.execute(_params_insert(dialect), rows)
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
    conn.execute(
        _tags_upsert(dialect),
        [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(values.items())],
    )
    if RUN_NAME_TAG in values:
        name = validation.run_name(values[RUN_NAME_TAG])
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(run_name=name))
    if PARENT_RUN_TAG in values:
        parent = validation.run_id(values[PARENT_RUN_TAG])
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(parent_run_id=parent))


def _rank(row: Mapping[str, Any]) -> tuple[int, int, int, float]:
    return (row["step"], row["timestamp"], 0 if row["is_nan"] else 1, row["value"])


def insert_metrics(conn: Connection, dialect: str, rows: list[dict[str, Any]]) -> None:
    """Append the points to the history and move each key's latest point forward."""
    conn.execute(sa.insert(metrics), rows)
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        ident = (row["run_id"], row["key"])
        current = best.get(ident)
        if current is None or _rank(row) > _rank(current):
            best[ident] = row
    # Sorted, so that concurrent writers lock rows in the same order (no deadlocks).
    rows = [{f: best[i][f] for f in _LATEST_FIELDS} for i in sorted(best)]
    conn.execute(_latest_upsert(dialect), rows)


# The statements are built once per dialect: building ``excluded`` is costly, running is not.


@functools.cache
def _params_insert(dialect: str) -> Any:
    return upsert(dialect, params).on_conflict_do_nothing()


@functools.cache
def _tags_upsert(dialect: str) -> Any:
    stmt = upsert(dialect, tags)
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}
    )


@functools.cache
def _latest_upsert(dialect: str) -> Any:
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
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={c: new[c] for c in ("step", "timestamp", "value", "is_nan")},
        where=later,
    )


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
    run_id: str,
    key: str,
    limit: int | None,
    after: tuple[int, int, int] | None,
) -> Page[Metric]:
    """A page of one metric's points in (step, timestamp) order.

    The token holds the last page's final (step, timestamp) and how many points with exactly
    that pair were returned so far, so points sharing a step and timestamp are never repeated or
    skipped across pages.
    """
    m = metrics.c
    query = sa.select(
        m.step, m.timestamp, m.value, m.is_nan, m.dataset_name, m.dataset_digest, m.model_id
    ).where(m.run_id == run_id, m.key == key)
    if after is not None:
        step, timestamp, seen = after
        query = query.where(
            sa.or_(m.step > step, sa.and_(m.step == step, m.timestamp >= timestamp))
        ).offset(seen)
    query = query.order_by(
        m.step, m.timestamp, m.is_nan, m.value, m.dataset_name, m.dataset_digest, m.model_id
    )
    if limit is not None:
        query = query.limit(limit + 1)
    rows = list(conn.execute(query))
    token = None
    if limit is not None and len(rows) > limit:
        rows = rows[:limit]
        last = (rows[-1].step, rows[-1].timestamp)
        seen = sum(1 for r in rows if (r.step, r.timestamp) == last)
        if after is not None and (after[0], after[1]) == last:
            seen += after[2]
        token = encode_token({"step": last[0], "timestamp": last[1], "seen": seen})
    # Positional construction from plain tuples: a history page holds up to 25,000 points.
    nan = math.nan
    points = [
        Metric(key, nan if is_nan else float(value), timestamp, step, ds_name, ds_digest, model)
        for step, timestamp, value, is_nan, ds_name, ds_digest, model in rows
    ]
    return Page(points, token)
