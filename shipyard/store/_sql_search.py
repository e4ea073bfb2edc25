"""Search for the SQL store: parsed filters and order-by keys compiled to SQL, keyset pagination.

Filters (:class:`~shipyard.store.filters.Comparison`) become ``run_id IN (subquery)`` conditions
on the index-backed tables (``params``, ``tags``, ``latest_metrics``, ``run_inputs``), so a
filter costs one index range scan whatever the number of clauses.

Ordering follows MLflow: for every order key, runs that have a real value come first (in the
requested direction), then runs whose metric is NaN, then runs without the key; ties are broken
by ``start_time DESC`` and ``run_id``. Each key is compiled to a pair of sort columns, a *rank*
(0 value, 1 NaN, 2 missing; always ascending) and a NULL-free *value*, so the whole order is a
plain tuple comparison.

When the order starts with a metric, the page is read segment by segment (real values, NaN,
missing) walking the ``latest_metrics`` index ``(key, is_nan, value, run_id)`` in order, with
filters checked per run through ``EXISTS``, and stops once the page is full: a page costs about
the runs walked past, not the runs stored (see :func:`_metric_first_page`).

Pagination is by keyset: the page token holds the sort tuple of the page's last row, and the next
page asks for rows after it. Deep pages cost the same as the first, and runs logged between two
calls never make a page repeat or skip a row.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from shipyard.entities import ViewType
from shipyard.errors import InvalidFilter, InvalidInput
from shipyard.store._sql_common import (
    EXPERIMENT_COLUMNS,
    RUN_COLUMNS,
    decode_token,
    encode_token,
)
from shipyard.store.filters import Comparison, OrderKey
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
from shipyard.validation import INT64_MAX, INT64_MIN

RUN_STRING_ATTRIBUTES = (
    "run_id",
    "run_name",
    "status",
    "user_id",
    "artifact_uri",
    "lifecycle_stage",
)
RUN_NUMERIC_ATTRIBUTES = ("start_time", "end_time")
EXPERIMENT_STRING_ATTRIBUTES = ("name",)
EXPERIMENT_NUMERIC_ATTRIBUTES = ("creation_time", "last_update_time")
DATASET_KEYS = ("name", "digest", "context")
CONTEXT_TAG = "mlflow.data.context"

_NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")


@dataclass(frozen=True, slots=True)
class _Sort:
    expr: ColumnElement[Any]
    ascending: bool


# ---------------------------------------------------------------------------- comparisons


def _bad(clause: Comparison, why: str) -> InvalidFilter:
    return InvalidFilter(
        f"can't filter on {clause.kind} {clause.key!r} with {clause.op}: {why}",
        details={"token": f"{clause.kind}.{clause.key}"},
    )


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, backslash escapes) as a case-sensitive SQLite GLOB."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            ch = next(chars, "\\")
            out.append(f"[{ch}]" if ch in "*?[" else ch)
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(f"[{ch}]" if ch in "*?[" else ch)
    return "".join(out)


def _string_condition(
    col: ColumnElement[Any], clause: Comparison, dialect: str
) -> ColumnElement[bool]:
    op, value = clause.op, clause.value
    if op in ("IN", "NOT IN"):
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            raise _bad(clause, "IN takes a list of quoted strings, such as ('a', 'b')")
        return col.in_(value) if op == "IN" else col.not_in(value)
    if not isinstance(value, str):
        raise _bad(clause, f"the value must be a quoted string, not {value!r}")
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "LIKE":
        if dialect == "sqlite":  # SQLite's LIKE ignores case; GLOB does not
            return col.op("GLOB", is_comparison=True)(_like_to_glob(value))
        return col.like(value)
    if op == "ILIKE":
        return col.ilike(value, escape="\\") if dialect == "sqlite" else col.ilike(value)
    raise _bad(clause, f"use one of {', '.join(_STRING_OPS)}")


def _number(clause: Comparison) -> float | int:
    value = clause.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(clause, f"the value must be a number, not {value!r}")
    if isinstance(value, float) and value.is_integer() and INT64_MIN <= value <= INT64_MAX:
        return int(value)  # exact on integer columns; larger whole numbers stay floats
    return value


def _numeric_condition(col: ColumnElement[Any], clause: Comparison) -> ColumnElement[bool]:
    value = _number(clause)
    ops = {
        "=": col.__eq__,
        "!=": col.__ne__,
        ">": col.__gt__,
        ">=": col.__ge__,
        "<": col.__lt__,
        "<=": col.__le__,
    }
    if clause.op not in ops:
        raise _bad(clause, f"use one of {', '.join(_NUMERIC_OPS)}")
    return ops[clause.op](value)  # type: ignore[no-any-return]


def _metric_condition(clause: Comparison, correlated: bool) -> ColumnElement[bool]:
    lm = latest_metrics.c
    value = _number(clause)
    if clause.op not in _NUMERIC_OPS:
        raise _bad(clause, f"metrics compare with {', '.join(_NUMERIC_OPS)}")
    if isinstance(value, float) and math.isnan(value):
        cond: ColumnElement[bool] = {"=": lm.is_nan, "!=": sa.not_(lm.is_nan)}.get(
            clause.op, sa.false()
        )
    elif clause.op == "!=":
        cond = sa.or_(lm.is_nan, lm.value != value)
    else:
        cond = sa.and_(sa.not_(lm.is_nan), _numeric_condition(lm.value, clause))
    if correlated:
        return sa.exists().where(lm.run_id == runs.c.run_id, lm.key == clause.key, cond)
    sub = sa.select(lm.run_id).where(lm.key == clause.key, cond)
    return runs.c.run_id.in_(sub)


def _key_value_condition(
    table: sa.Table,
    owner: sa.Column[Any],
    clause: Comparison,
    dialect: str,
    correlated: bool = False,
) -> ColumnElement[bool]:
    """A param or tag clause; ``owner`` is the id column of the searched table.

    ``correlated`` checks each candidate row with a primary-key lookup (``EXISTS``) instead
    of collecting every matching owner first (``IN``).
    """
    t = table.c
    owner_col = t.run_id if "run_id" in t else t.experiment_id
    if clause.op == "IS NULL":
        return ~sa.exists().where(owner_col == owner, t.key == clause.key)
    conds = [t.key == clause.key]
    if clause.op != "IS NOT NULL":
        conds.append(_string_condition(t.value, clause, dialect))
    if correlated:
        return sa.exists().where(owner_col == owner, *conds)
    return owner.in_(sa.select(owner_col).where(*conds))


def _dataset_condition(clause: Comparison, dialect: str) -> ColumnElement[bool]:
    ri, d = run_inputs.c, datasets.c
    col: ColumnElement[Any]
    if clause.key == "name":
        col = d.name
    elif clause.key == "digest":
        col = d.digest
    elif clause.key == "context":
        if dialect == "postgresql":
            col = sa.func.json_extract_path_text(sa.cast(ri.tags, sa.JSON), CONTEXT_TAG)
        else:
            col = sa.func.json_extract(ri.tags, f'$."{CONTEXT_TAG}"')
    else:
        raise _bad(clause, f"datasets can be filtered by {', '.join(DATASET_KEYS)}")
    sub = (
        sa.select(ri.run_id)
        .join_from(run_inputs, datasets, d.dataset_id == ri.dataset_id)
        .where(_string_condition(col, clause, dialect))
    )
    return runs.c.run_id.in_(sub)


def run_condition(
    clause: Comparison, dialect: str, correlated: bool = False
) -> ColumnElement[bool]:
    """The SQL condition on ``runs`` for one clause of a run filter.

    ``correlated`` writes metric, param and tag clauses as ``EXISTS`` lookups by primary key,
    for queries that walk runs in an index order and stop after a page.
    """
    if clause.kind == "metric":
        return _metric_condition(clause, correlated)
    if clause.kind == "param":
        return _key_value_condition(params, runs.c.run_id, clause, dialect, correlated)
    if clause.kind == "tag":
        return _key_value_condition(tags, runs.c.run_id, clause, dialect, correlated)
    if clause.kind == "dataset":
        return _dataset_condition(clause, dialect)
    if clause.key in RUN_NUMERIC_ATTRIBUTES:
        return _numeric_condition(runs.c[clause.key], clause)
    if clause.key in RUN_STRING_ATTRIBUTES:
        return _string_condition(runs.c[clause.key], clause, dialect)
    raise _bad(
        clause,
        f"runs have the attributes {', '.join(RUN_STRING_ATTRIBUTES + RUN_NUMERIC_ATTRIBUTES)}",
    )


def experiment_condition(clause: Comparison, dialect: str) -> ColumnElement[bool]:
    """The SQL condition on ``experiments`` for one clause of an experiment filter."""
    e = experiments.c
    if clause.kind == "tag":
        return _key_value_condition(experiment_tags, e.experiment_id, clause, dialect)
    if clause.kind != "attribute":
        raise _bad(clause, "experiments are filtered by attributes and tags only")
    if clause.key == "experiment_id":
        return _experiment_id_condition(clause)
    if clause.key in EXPERIMENT_NUMERIC_ATTRIBUTES:
        return _numeric_condition(e[clause.key], clause)
    if clause.key in EXPERIMENT_STRING_ATTRIBUTES:
        return _string_condition(e[clause.key], clause, dialect)
    raise _bad(clause, "experiments have the attributes name, experiment_id, creation_time, "
               "last_update_time")  # fmt: skip


def _experiment_id_condition(clause: Comparison) -> ColumnElement[bool]:
    col = experiments.c.experiment_id
    raw = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    try:
        ids = [int(str(v)) for v in raw]
    except ValueError:
        raise _bad(clause, "experiment ids are whole numbers such as '1'") from None
    ops = {
        "=": lambda: col == ids[0],
        "!=": lambda: col != ids[0],
        "IN": lambda: col.in_(ids),
        "NOT IN": lambda: col.not_in(ids),
    }
    if clause.op not in ops:
        raise _bad(clause, "experiment_id takes =, !=, IN and NOT IN")
    return ops[clause.op]()  # type: ignore[no-untyped-call, no-any-return]


# ---------------------------------------------------------------------------- ordering


def _run_sorts(
    order_by: Sequence[OrderKey], from_: sa.FromClause = runs, first: int = 0
) -> tuple[list[_Sort], sa.FromClause]:
    """Sort columns for the order keys plus MLflow's tie-breakers, and the joins they need.

    The joins are added to ``from_``; ``first`` numbers the join aliases after earlier ones.
    """
    sorts: list[_Sort] = []
    seen: set[tuple[str, str]] = set()
    for i, key in enumerate(order_by, start=first):
        seen.add((key.kind, key.key))
        if key.kind == "metric":
            lm = latest_metrics.alias(f"order_{i}")
            from_ = from_.outerjoin(lm, sa.and_(lm.c.run_id == runs.c.run_id, lm.c.key == key.key))
            present = sa.and_(lm.c.run_id.is_not(None), sa.not_(lm.c.is_nan))
            rank = sa.case((lm.c.run_id.is_(None), 2), (lm.c.is_nan, 1), else_=0)
            value = sa.case((present, lm.c.value), else_=sa.literal(0.0))
            sorts += [_Sort(rank, True), _Sort(value, key.ascending)]
        elif key.kind in ("param", "tag"):
            t = (params if key.kind == "param" else tags).alias(f"order_{i}")
            from_ = from_.outerjoin(t, sa.and_(t.c.run_id == runs.c.run_id, t.c.key == key.key))
            rank = sa.case((t.c.run_id.is_(None), 2), else_=0)
            sorts += [_Sort(rank, True), _Sort(sa.func.coalesce(t.c.value, ""), key.ascending)]
        elif key.kind == "attribute" and key.key == "end_time":
            col = runs.c.end_time
            rank = sa.case((col.is_(None), 2), else_=0)
            sorts += [_Sort(rank, True), _Sort(sa.func.coalesce(col, 0), key.ascending)]
        elif key.kind == "attribute" and key.key in (*RUN_STRING_ATTRIBUTES, "start_time"):
            sorts.append(_Sort(runs.c[key.key], key.ascending))
        elif key.kind == "attribute" and key.key == "experiment_id":
            sorts.append(_Sort(runs.c.experiment_id, key.ascending))
        else:
            raise InvalidFilter(
                f"can't order runs by {key.kind} {key.key!r}; order by metrics, params, tags or "
                f"the attributes {', '.join((*RUN_STRING_ATTRIBUTES, *RUN_NUMERIC_ATTRIBUTES))}.",
                details={"token": f"{key.kind}.{key.key}"},
            )
    if ("attribute", "start_time") not in seen:
        sorts.append(_Sort(runs.c.start_time, False))
    if ("attribute", "run_id") not in seen:
        sorts.append(_Sort(runs.c.run_id, True))
    return sorts, from_


def _experiment_sorts(order_by: Sequence[OrderKey]) -> list[_Sort]:
    e = experiments.c
    allowed = ("name", "experiment_id", "creation_time", "last_update_time")
    keys = list(order_by) or [OrderKey("attribute", "creation_time", False)]
    sorts = []
    for key in keys:
        if key.kind != "attribute" or key.key not in allowed:
            raise InvalidFilter(
                f"can't order experiments by {key.kind} {key.key!r}; use {', '.join(allowed)}.",
                details={"token": f"{key.kind}.{key.key}"},
            )
        sorts.append(_Sort(e[key.key], key.ascending))
    if not any(k.key == "experiment_id" for k in keys):
        sorts.append(_Sort(e.experiment_id, True))
    return sorts


# ---------------------------------------------------------------------------- keyset paging


def _signature(order_by: Sequence[OrderKey], what: str) -> str:
    spec = "|".join(f"{k.kind}:{k.key}:{int(k.ascending)}" for k in order_by)
    return hashlib.sha256(f"{what}|{spec}".encode()).hexdigest()[:16]


def _after(columns: Sequence[ColumnElement[Any]], sorts: Sequence[_Sort], values: Sequence[Any]):  # type: ignore[no-untyped-def]
    """Rows strictly after ``values`` in the order of ``sorts`` (a lexicographic comparison)."""
    cond: ColumnElement[bool] | None = None
    for col, sort, value in reversed(list(zip(columns, sorts, values, strict=True))):
        beyond = col > value if sort.ascending else col < value
        cond = beyond if cond is None else sa.or_(beyond, sa.and_(col == value, cond))
    return cond if cond is not None else sa.true()


def _page(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
    from_: sa.FromClause,
    conditions: Sequence[ColumnElement[bool]],
    sorts: Sequence[_Sort],
    max_results: int,
    page_token: str | None,
    signature: str,
) -> tuple[list[Row[Any]], str | None]:
    labels = [f"sort_{i}" for i in range(len(sorts))]
    inner = (
        sa.select(*columns, *(s.expr.label(name) for s, name in zip(sorts, labels, strict=True)))
        .select_from(from_)
        .where(*conditions)
        .subquery("candidates")
    )
    sort_cols = [inner.c[name] for name in labels]
    query = sa.select(*(inner.c[c.name] for c in columns), *sort_cols)
    values = _token_values(page_token, signature, len(sorts))
    if values is not None:
        query = query.where(_after(sort_cols, sorts, values))
    query = query.order_by(
        *(c.asc() if s.ascending else c.desc() for c, s in zip(sort_cols, sorts, strict=True))
    ).limit(max_results + 1)
    rows = list(conn.execute(query))
    if len(rows) <= max_results:
        return rows, None
    rows = rows[:max_results]
    last = rows[-1]._mapping
    token = encode_token({"order": signature, "after": [last[name] for name in labels]})
    return rows, token


def _token_values(page_token: str | None, signature: str, count: int) -> list[Any] | None:
    """The sort tuple a page token continues after (``None`` for the first page)."""
    if not page_token:
        return None
    payload = decode_token(page_token, "search")
    values = payload.get("after")
    if payload.get("order") != signature or not isinstance(values, list):
        raise InvalidInput(
            "page_token belongs to a search with a different order_by. Repeat the search "
            "with the same order_by, or leave page_token out to start from the first page."
        )
    if len(values) != count:
        raise InvalidInput("page_token is damaged; leave it out to start from the first page.")
    return values


def _metric_first_page(
    conn: Connection,
    conditions: Sequence[ColumnElement[bool]],
    order_by: Sequence[OrderKey],
    max_results: int,
    page_token: str | None,
    signature: str,
) -> tuple[list[Row[Any]], str | None]:
    """A page of runs ordered first by a metric, walking that metric's index in order.

    The order's first key splits runs into three segments, read one after the other until the
    page is full: runs with a real value (in the ``latest_metrics`` index order of
    ``(key, is_nan, value)``), runs whose value is NaN, runs without the metric. Filters are
    checked per run by primary key (``EXISTS``), so a page costs about as many lookups as the
    runs it walks past, however many runs the experiments hold. Rows and tokens are those of
    :func:`_page` for the same order.
    """
    head, rest = order_by[0], order_by[1:]
    o = latest_metrics.alias("order_0")
    joined = runs.join(o, sa.and_(o.c.run_id == runs.c.run_id, o.c.key == head.key))
    missing = ~sa.exists().where(o.c.run_id == runs.c.run_id, o.c.key == head.key)
    segments: list[tuple[sa.FromClause, ColumnElement[bool], ColumnElement[Any]]] = [
        (joined, sa.not_(o.c.is_nan), o.c.value),
        (joined, o.c.is_nan, sa.literal(0.0)),
        (runs, missing, sa.literal(0.0)),
    ]
    count = len(_run_sorts(rest)[0]) + 2
    labels = [f"sort_{i}" for i in range(count)]
    after = _token_values(page_token, signature, count)
    if after is not None and after[0] not in (0, 1, 2):
        raise InvalidInput("page_token is damaged; leave it out to start from the first page.")
    rows: list[Row[Any]] = []
    for rank, (base, where, value) in enumerate(segments):
        if after is not None and rank < after[0]:
            continue
        rest_sorts, from_ = _run_sorts(rest, base, first=1)
        # The sort columns that vary inside the segment (its rank and NaN/missing values don't).
        sorts = [_Sort(value, head.ascending), *rest_sorts] if rank == 0 else rest_sorts
        conds = [*conditions, where]
        if after is not None and rank == after[0]:
            given = after[1:] if rank == 0 else after[2:]
            conds.append(_after([x.expr for x in sorts], sorts, given))
        query = (
            sa.select(
                *RUN_COLUMNS,
                sa.literal(rank).label(labels[0]),
                value.label(labels[1]),
                *(x.expr.label(name) for x, name in zip(rest_sorts, labels[2:], strict=True)),
            )
            .select_from(from_)
            .where(*conds)
            .order_by(*(x.expr.asc() if x.ascending else x.expr.desc() for x in sorts))
            .limit(max_results + 1 - len(rows))
        )
        rows += conn.execute(query)
        if len(rows) > max_results:
            break
    if len(rows) <= max_results:
        return rows, None
    rows = rows[:max_results]
    last = rows[-1]._mapping
    return rows, encode_token({"order": signature, "after": [last[name] for name in labels]})


def view_condition(column: sa.Column[Any], view_type: ViewType | str) -> ColumnElement[bool]:
    try:
        view = ViewType(str(view_type).upper())
    except ValueError:
        raise InvalidInput(
            f"view_type {view_type!r} is not valid; use ACTIVE_ONLY, DELETED_ONLY or ALL."
        ) from None
    if view is ViewType.ACTIVE_ONLY:
        return column == "active"
    if view is ViewType.DELETED_ONLY:
        return column == "deleted"
    return sa.true()


def search_runs(
    conn: Connection,
    dialect: str,
    experiment_ids: Sequence[int],
    comparisons: Sequence[Comparison],
    order_by: Sequence[OrderKey],
    view_type: ViewType | str,
    max_results: int,
    page_token: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """One page of ``runs`` rows (every column but ``deleted_time``) and the next page token."""
    by_metric = bool(order_by) and order_by[0].kind == "metric"
    conditions = [
        runs.c.experiment_id.in_(experiment_ids),
        view_condition(runs.c.lifecycle_stage, view_type),
        *(run_condition(c, dialect, correlated=by_metric) for c in comparisons),
    ]
    signature = _signature(order_by, "runs")
    if by_metric:
        return _metric_first_page(conn, conditions, order_by, max_results, page_token, signature)
    sorts, from_ = _run_sorts(order_by)
    return _page(conn, RUN_COLUMNS, from_, conditions, sorts, max_results, page_token, signature)


def search_experiments(
    conn: Connection,
    dialect: str,
    comparisons: Sequence[Comparison],
    order_by: Sequence[OrderKey],
    view_type: ViewType | str,
    max_results: int,
    page_token: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """One page of ``experiments`` rows and the next page token."""
    conditions = [
        view_condition(experiments.c.lifecycle_stage, view_type),
        *(experiment_condition(c, dialect) for c in comparisons),
    ]
    sorts = _experiment_sorts(order_by)
    signature = _signature(order_by, "experiments")
    return _page(
        conn, EXPERIMENT_COLUMNS, experiments, conditions, sorts, max_results, page_token, signature
    )
