"""Search for the SQL registry store: MLflow's filter grammar compiled to SQL over the registry
tables, with the same keyset pagination as run search (:func:`shipyard.store._sql_search._page`).

Tag clauses become ``EXISTS`` subqueries on the tag tables' primary keys. ``tags.k != 'v'`` is an
anti-join: it also matches models or versions that have no tag ``k``, which is what MLflow's
clients rely on (``tags.`mlflow.prompt.is_prompt` != 'true'`` must keep ordinary models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from shipyard.errors import InvalidFilter
from shipyard.store._sql_registry_common import VERSION_COLUMNS
from shipyard.store._sql_search import (
    _numeric_condition,
    _page,
    _signature,
    _Sort,
    _string_condition,
)
from shipyard.store.filters import Comparison, OrderKey
from shipyard.store.schema import (
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)

_m, _v = registered_models.c, model_versions.c

_MODEL_STRINGS = {"name": _m.name}
_MODEL_NUMBERS = {
    "creation_timestamp": _m.creation_time,
    "last_updated_timestamp": _m.last_updated_time,
}
_VERSION_STRINGS = {
    "name": _m.name,
    "run_id": _v.run_id,
    "source_path": _v.source,
    "current_stage": _v.current_stage,
    "status": _v.status,
    "user_id": _v.user_id,
    "storage_owner": _v.storage_owner,
}
_VERSION_NUMBERS = {
    "version_number": _v.version,
    "creation_timestamp": _v.creation_time,
    "last_updated_timestamp": _v.last_updated_time,
}


def _bad(clause: Comparison | OrderKey, what: str, valid: Sequence[str]) -> InvalidFilter:
    return InvalidFilter(
        f"can't {what} {clause.kind} {clause.key!r}; use {', '.join(valid)} or tags.<key>.",
        details={"token": f"{clause.kind}.{clause.key}"},
    )


def _tag_condition(
    clause: Comparison, dialect: str, owner: Sequence[tuple[Any, Any]], table: sa.Table
) -> ColumnElement[bool]:
    """A tag clause as (NOT) EXISTS over ``table``; ``owner`` pairs its key columns with the
    searched row's."""
    t = table.c
    same_owner = [tag_col == row_col for tag_col, row_col in owner]
    if clause.op == "IS NULL":
        return ~sa.exists().where(*same_owner, t.key == clause.key)
    if clause.op == "IS NOT NULL":
        return sa.exists().where(*same_owner, t.key == clause.key)
    if clause.op == "!=":
        equal = Comparison(clause.kind, clause.key, "=", clause.value)
        return ~sa.exists().where(
            *same_owner, t.key == clause.key, _string_condition(t.value, equal, dialect)
        )
    return sa.exists().where(
        *same_owner, t.key == clause.key, _string_condition(t.value, clause, dialect)
    )


def _attribute_condition(
    clause: Comparison,
    dialect: str,
    strings: dict[str, Any],
    numbers: dict[str, Any],
) -> ColumnElement[bool]:
    if clause.key in strings:
        return _string_condition(strings[clause.key], clause, dialect)
    if clause.key in numbers:
        return _numeric_condition(numbers[clause.key], clause)
    raise _bad(clause, "filter on", [*strings, *numbers])


def _sorts(
    order_by: Sequence[OrderKey],
    columns: dict[str, Any],
    defaults: Sequence[tuple[str, bool]],
    what: str,
) -> list[_Sort]:
    keys = list(order_by) or [OrderKey("attribute", k, asc) for k, asc in defaults]
    sorts = []
    for key in keys:
        if key.kind != "attribute" or key.key not in columns:
            raise _bad(key, f"order {what} by", list(columns))
        sorts.append(_Sort(columns[key.key], key.ascending))
    ordered = {k.key for k in keys}
    sorts += [_Sort(columns[k], asc) for k, asc in defaults if k not in ordered]
    return sorts


def search_registered_models(
    conn: Connection,
    dialect: str,
    comparisons: Sequence[Comparison],
    order_by: Sequence[OrderKey],
    max_results: int,
    page_token: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """One page of ``registered_models`` rows and the next page token."""
    conditions = [
        _tag_condition(c, dialect, [(registered_model_tags.c.model_id, _m.model_id)],
                       registered_model_tags)
        if c.kind == "tag"
        else _attribute_condition(c, dialect, _MODEL_STRINGS, _MODEL_NUMBERS)
        for c in comparisons
    ]  # fmt: skip
    sorts = _sorts(
        order_by,
        {"name": _m.name, **_MODEL_NUMBERS},
        [("name", True)],
        "registered models",
    )
    signature = _signature(order_by, "registered_models")
    columns = tuple(registered_models.c)
    return _page(
        conn, columns, registered_models, conditions, sorts, max_results, page_token, signature
    )


def search_model_versions(
    conn: Connection,
    dialect: str,
    comparisons: Sequence[Comparison],
    order_by: Sequence[OrderKey],
    max_results: int,
    page_token: str | None,
) -> tuple[list[Row[Any]], str | None]:
    """One page of version rows (with their model's name) and the next page token."""
    t = model_version_tags.c
    owner = [(t.model_id, _v.model_id), (t.version, _v.version)]
    conditions = [
        _tag_condition(c, dialect, owner, model_version_tags)
        if c.kind == "tag"
        else _attribute_condition(c, dialect, _VERSION_STRINGS, _VERSION_NUMBERS)
        for c in comparisons
    ]
    sorts = _sorts(
        order_by,
        {"name": _m.name, **_VERSION_NUMBERS},
        [("name", True), ("version_number", False)],
        "model versions",
    )
    signature = _signature(order_by, "model_versions")
    from_ = model_versions.join(registered_models, _m.model_id == _v.model_id)
    return _page(
        conn, VERSION_COLUMNS, from_, conditions, sorts, max_results, page_token, signature
    )
