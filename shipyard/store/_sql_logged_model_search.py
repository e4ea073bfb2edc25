"""Search for the SQL logged-model store: MLflow's filter grammar compiled to SQL over
``logged_models`` and its tag, param and metric rows, with the keyset pagination of run search
(:func:`shipyard.store._sql_search._page`).

A metric clause or order term reads the model's *latest* point of that metric (highest step, then
timestamp, then value) among the points logged with the model's id -- restricted to the request's
datasets when it names any -- as a correlated scalar subquery that walks ``ix_metrics_model``. A
NaN latest point matches no comparison. Order terms sort models lacking the value last, in either
direction: each term is a "has no value" flag followed by the value (so every sort key is non-null
and page tokens stay exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from shipyard.errors import InvalidFilter
from shipyard.store import filters
from shipyard.store._sql_search import (
    _numeric_condition,
    _page,
    _signature,
    _Sort,
    _string_condition,
)
from shipyard.store.filters import Comparison, OrderKey
from shipyard.store.logged_models import DatasetScope, LoggedModelOrder
from shipyard.store.schema import logged_model_params, logged_model_tags, logged_models, metrics

_l, _mt = logged_models.c, metrics.c

_STRINGS: dict[str, sa.Column[Any]] = {
    "name": _l.name,
    "model_id": _l.model_id,
    "model_type": _l.model_type,
    "status": _l.status,
    "source_run_id": _l.source_run_id,
}
_NUMBERS: dict[str, sa.Column[Any]] = {
    "creation_timestamp": _l.creation_time,
    "last_updated_timestamp": _l.last_updated_time,
}
_NULLABLE = {"model_type", "source_run_id"}
ACTIVE = "active"


def _dataset_condition(datasets: Sequence[DatasetScope]) -> ColumnElement[bool] | None:
    if not datasets:
        return None
    terms = []
    for d in datasets:
        term = _mt.dataset_name == d.name
        if d.digest is not None:
            term = sa.and_(term, _mt.dataset_digest == d.digest)
        terms.append(term)
    return sa.or_(*terms)


def latest_metric(key: str, datasets: Sequence[DatasetScope]) -> ColumnElement[Any]:
    """The value of the candidate model's latest point of metric ``key`` (NULL if it has none or
    the point is NaN), as a correlated scalar subquery."""
    where = [_mt.model_id == _l.model_id, _mt.key == key]
    scope = _dataset_condition(datasets)
    if scope is not None:
        where.append(scope)
    return (
        sa.select(sa.case((_mt.is_nan, sa.null()), else_=_mt.value))
        .where(*where)
        .order_by(_mt.step.desc(), _mt.timestamp.desc(), _mt.is_nan.asc(), _mt.value.desc())
        .limit(1)
        .correlate(logged_models)
        .scalar_subquery()
    )


def _key_value_condition(table: sa.Table, clause: Comparison, dialect: str) -> ColumnElement[bool]:
    t = table.c
    same = (t.model_id == _l.model_id, t.key == clause.key)
    if clause.op == "IS NULL":
        return ~sa.exists().where(*same)
    if clause.op == "IS NOT NULL":
        return sa.exists().where(*same)
    return sa.exists().where(*same, _string_condition(t.value, clause, dialect))


def _condition(
    clause: Comparison, dialect: str, datasets: Sequence[DatasetScope]
) -> ColumnElement[bool]:
    if clause.kind == "metric":
        return _numeric_condition(latest_metric(clause.key, datasets), clause)
    if clause.kind == "param":
        return _key_value_condition(logged_model_params, clause, dialect)
    if clause.kind == "tag":
        return _key_value_condition(logged_model_tags, clause, dialect)
    if clause.key in _STRINGS:
        return _string_condition(_STRINGS[clause.key], clause, dialect)
    if clause.key in _NUMBERS:
        return _numeric_condition(_NUMBERS[clause.key], clause)
    raise InvalidFilter(  # pragma: no cover - the parser only lets known attributes through
        f"can't filter logged models on {clause.kind} {clause.key!r}.",
        details={"token": f"{clause.kind}.{clause.key}"},
    )


def parse_order(order_by: Sequence[LoggedModelOrder | str] | None) -> list[LoggedModelOrder]:
    """Order terms as :class:`LoggedModelOrder`, each field checked by the filter grammar."""
    out: list[LoggedModelOrder] = []
    for i, term in enumerate(order_by or ()):
        if isinstance(term, str):
            (key,) = filters.parse_logged_model_order_by([term])
            out.append(LoggedModelOrder(_field(key), key.ascending))
            continue
        direction = "ASC" if term.ascending else "DESC"
        try:
            (key,) = filters.parse_logged_model_order_by([f"{term.field} {direction}"])
        except InvalidFilter as error:
            raise InvalidFilter(error.message, details={**error.details, "index": i}) from None
        if term.dataset is not None and key.kind != "metric":
            raise InvalidFilter(
                f"order_by[{i}] ({term.field}) names a dataset, but only metrics are scoped to "
                "datasets; drop the dataset, or order by metrics.<key>.",
                details={"order_by": term.field, "index": i},
            )
        out.append(LoggedModelOrder(_field(key), term.ascending, term.dataset))
    seen = [(o.field, o.dataset) for o in out]
    if len(set(seen)) != len(seen):
        raise InvalidFilter("order_by names the same field twice; give each field once.")
    return out


def _field(key: OrderKey) -> str:
    return f"metrics.{key.key}" if key.kind == "metric" else key.key


def _sorts(order: Sequence[LoggedModelOrder], datasets: Sequence[DatasetScope]) -> list[_Sort]:
    sorts: list[_Sort] = []
    fields = set()
    for term in order:
        fields.add(term.field)
        value: ColumnElement[Any]
        if term.field.startswith("metrics."):
            scope = [term.dataset] if term.dataset is not None else datasets
            value = latest_metric(term.field[len("metrics.") :], scope)
            sorts.append(_Sort(sa.case((value.is_(None), 1), else_=0), True))
            sorts.append(_Sort(sa.func.coalesce(value, 0.0), term.ascending))
        elif term.field in _NULLABLE:
            column = _STRINGS[term.field]
            sorts.append(_Sort(sa.case((column.is_(None), 1), else_=0), True))
            sorts.append(_Sort(sa.func.coalesce(column, ""), term.ascending))
        else:
            plain = _STRINGS.get(term.field, _NUMBERS.get(term.field))
            assert plain is not None, term.field
            sorts.append(_Sort(plain, term.ascending))
    if "creation_timestamp" not in fields:
        sorts.append(_Sort(_l.creation_time, False))
    if "model_id" not in fields:
        sorts.append(_Sort(_l.model_id, True))
    return sorts


def search(
    conn: Connection,
    dialect: str,
    experiment_ids: Sequence[int],
    comparisons: Sequence[Comparison],
    datasets: Sequence[DatasetScope],
    order: Sequence[LoggedModelOrder],
    max_results: int,
    page_token: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """One page of active ``logged_models`` rows and the next page token."""
    conditions = [
        _l.experiment_id.in_(list(experiment_ids)),
        _l.lifecycle_stage == ACTIVE,
        *(_condition(c, dialect, datasets) for c in comparisons),
    ]
    if datasets and not any(c.kind == "metric" for c in comparisons):
        # As in MLflow: naming datasets keeps the models with a metric on one of them.
        scope = _dataset_condition(datasets)
        assert scope is not None
        conditions.append(sa.exists().where(_mt.model_id == _l.model_id, scope))
    keys = [
        OrderKey("metric" if o.field.startswith("metrics.") else "attribute", o.field, o.ascending)
        for o in order
    ]
    scopes = (
        "|".join(f"{o.dataset.name}:{o.dataset.digest}" if o.dataset else "" for o in order)
        + "|"
        + "|".join(f"{d.name}:{d.digest}" for d in datasets)
    )
    signature = _signature(keys, f"logged_models|{scopes}")
    columns = tuple(logged_models.c)
    return _page(
        conn,
        columns,
        logged_models,
        conditions,
        _sorts(order, datasets),
        max_results,
        page_token,
        signature,
    )
