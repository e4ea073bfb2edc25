"""MLflow's search grammar: filter strings and order-by clauses, parsed into small values.

The parser knows nothing of SQL; :mod:`shipyard.store.sql` compiles the result. Errors are
:class:`~shipyard.errors.InvalidFilter` whose message quotes the filter, points at the offending
token (``details = {"filter": ..., "position": int, "token": str}``) and says what would be valid.

Grammar (a conjunction; no OR, no parentheses, no NOT, as in MLflow)::

    filter      := comparison ( AND comparison )*
    comparison  := identifier op value
                 | identifier IS [NOT] NULL
                 | identifier [NOT] IN '(' string ( ',' string )* ')'
    identifier  := [prefix '.'] key      key: bare word, `backticked` or "double quoted"
    op          := = | != | <> | > | >= | < | <= | LIKE | ILIKE
    value       := number | 'single quoted' | "double quoted"

Prefixes for runs: ``metrics|metric``, ``params|param|parameter|parameters``, ``tags|tag``,
``attributes|attribute|attr|run`` (or none), ``datasets|dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
Op = Literal["=", "!=", ">", ">=", "<", "<=", "LIKE", "ILIKE", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One clause, e.g. ``metrics.acc > 0.9`` -> ``Comparison("metric", "acc", ">", 0.9)``.

    ``value`` is a ``float`` for metrics and numeric attributes, a ``str`` for string
    comparisons, a ``tuple[str, ...]`` for ``IN``/``NOT IN`` and ``None`` for ``IS [NOT] NULL``.
    Attribute keys are canonical (``run_name``, ``start_time``, ``end_time``, ``status``,
    ``user_id``, ``run_id``, ``artifact_uri``, ``lifecycle_stage`` for runs; ``name``,
    ``experiment_id``, ``creation_time``, ``last_update_time`` for experiments).
    ``!=`` is normalised from ``<>``; ``LIKE``/``ILIKE`` are upper case.
    """

    kind: Kind
    key: str
    op: Op
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One order-by term, e.g. ``metrics.acc DESC`` -> ``OrderKey("metric", "acc", False)``."""

    kind: Kind
    key: str
    ascending: bool = True
