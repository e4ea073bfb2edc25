"""Dataset schemas: inferred from a version's profile, edited by people as YAML kept in git.

A schema lists columns with their type family, nullability, value range (numeric), domain
(categorical), uniqueness and the environments they belong to (the label is in ``training`` but
not in ``serving``), plus row-count bounds. :func:`infer_schema` derives one from a
:class:`~shipyard.data.profile.Profile`; :meth:`Schema.to_yaml` / :func:`load_schema` round-trip
the YAML form::

    environments: [training, serving]
    rows: {min: 1}
    columns:
      alcohol: {type: float, nullable: false, min: 11.03, max: 14.83}
      target:  {type: string, domain: [class_0, class_1, class_2], environments: [training]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from shipyard.errors import InvalidInput

TYPES = ("integer", "float", "string", "boolean", "timestamp", "date", "other")
MAX_DOMAIN = 50
"""A categorical column gets a domain when it has at most this many distinct values."""


@dataclass
class ColumnSchema:
    name: str
    type: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    domain: list[str] | None = None
    unique: bool = False
    environments: list[str] | None = None
    """Where the column is expected (None: every environment)."""

    def in_environment(self, environment: str | None) -> bool:
        return environment is None or self.environments is None or environment in self.environments

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        for key in ("min", "max", "domain", "environments"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.unique:
            out["unique"] = True
        return out


@dataclass
class Schema:
    columns: dict[str, ColumnSchema] = field(default_factory=dict)
    min_rows: int | None = None
    max_rows: int | None = None
    environments: list[str] = field(default_factory=list)

    def expected(self, environment: str | None) -> list[ColumnSchema]:
        if environment is not None and self.environments and environment not in self.environments:
            raise InvalidInput(
                f"the schema has no environment {environment!r}; it knows "
                f"{', '.join(self.environments)}. Pick one of those, or add it under "
                "`environments:` in the schema file."
            )
        return [c for c in self.columns.values() if c.in_environment(environment)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.environments:
            out["environments"] = list(self.environments)
        rows = {k: v for k, v in (("min", self.min_rows), ("max", self.max_rows)) if v is not None}
        if rows:
            out["rows"] = rows
        out["columns"] = {c.name: c.to_dict() for c in self.columns.values()}
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)


def _fail(where: str, problem: str) -> InvalidInput:
    return InvalidInput(
        f"schema {where}: {problem}. See docs/data.md (Schemas) for the format, or start from "
        "`shipyard data schema NAME > schema.yaml`."
    )


def schema_from_dict(d: Any, where: str = "document") -> Schema:
    """A :class:`Schema` from its dict form (the YAML's), checked field by field."""
    if not isinstance(d, Mapping):
        raise _fail(where, f"expected a mapping with a `columns:` key, got {type(d).__name__}")
    unknown = set(d) - {"columns", "rows", "environments"}
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)}")
    envs = d.get("environments") or []
    if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
        raise _fail(where, "`environments` must be a list of names")
    rows = d.get("rows") or {}
    if not isinstance(rows, Mapping) or set(rows) - {"min", "max"}:
        raise _fail(where, "`rows` takes only `min` and `max`")
    for k, v in rows.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise _fail(where, f"`rows.{k}` must be a non-negative integer, got {v!r}")
    columns_in = d.get("columns")
    if not isinstance(columns_in, Mapping) or not columns_in:
        raise _fail(where, "`columns` must map column names to their settings")
    columns: dict[str, ColumnSchema] = {}
    for name, spec in columns_in.items():
        at = f"column {name!r}"
        if not isinstance(spec, Mapping):
            raise _fail(where, f"{at} must be a mapping such as {{type: float}}")
        extra = set(spec) - {"type", "nullable", "min", "max", "domain", "unique", "environments"}
        if extra:
            raise _fail(where, f"{at} has unknown keys {sorted(extra)}")
        kind = spec.get("type")
        if kind not in TYPES:
            raise _fail(where, f"{at} has type {kind!r}; use one of {', '.join(TYPES)}")
        for bound in ("min", "max"):
            value = spec.get(bound)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise _fail(where, f"{at}: `{bound}` must be a number, got {value!r}")
        domain = spec.get("domain")
        if domain is not None and not isinstance(domain, list):
            raise _fail(where, f"{at}: `domain` must be a list of values")
        col_envs = spec.get("environments")
        if col_envs is not None:
            if not isinstance(col_envs, list):
                raise _fail(where, f"{at}: `environments` must be a list of names")
            stray = [e for e in col_envs if envs and e not in envs]
            if stray:
                raise _fail(where, f"{at} names environments {stray} not listed in `environments`")
        columns[str(name)] = ColumnSchema(
            name=str(name),
            type=kind,
            nullable=bool(spec.get("nullable", True)),
            min=spec.get("min"),
            max=spec.get("max"),
            domain=[str(v) for v in domain] if domain is not None else None,
            unique=bool(spec.get("unique", False)),
            environments=[str(e) for e in col_envs] if col_envs is not None else None,
        )
    return Schema(columns, rows.get("min"), rows.get("max"), [str(e) for e in envs])


def load_schema(text: str, where: str = "document") -> Schema:
    """Parse a schema's YAML (or JSON) text."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(where, f"is not valid YAML ({str(exc).splitlines()[0]})") from None
    return schema_from_dict(data, where)


def infer_schema(profile: Any, unique_columns: set[str] | None = None) -> Schema:
    """The schema a version's :class:`~shipyard.data.profile.Profile` implies: observed types,
    nullability and ranges, domains of low-cardinality categorical columns, at least one row."""
    columns: dict[str, ColumnSchema] = {}
    for c in profile.columns.values():
        # A column with no values at all (no rows, or only nulls) may hold nulls later.
        col = ColumnSchema(name=c.name, type=c.type, nullable=c.nulls > 0 or c.valid == 0)
        if c.kind == "numeric" and c.minimum is not None and not c.infinite:
            col.min, col.max = c.minimum, c.maximum  # infinities seen: the range is open
        if (
            c.frequent is not None
            and c.frequent.exact
            and c.type == "string"
            and 0 < len(c.frequent.counts) <= MAX_DOMAIN
            and len(c.frequent.counts) < c.valid
        ):
            col.domain = sorted(c.frequent.counts)
        col.unique = c.name in (unique_columns or set())
        columns[c.name] = col
    return Schema(columns, min_rows=1 if profile.num_rows else None)


def unique_candidates(profile: Any) -> list[str]:
    """Integer and string columns whose distinct estimate says every value may be unique (the
    exact check reads just those columns)."""
    return [
        c.name
        for c in profile.columns.values()
        if c.type in ("integer", "string")
        and c.valid > 1
        and c.nulls == 0
        and c.distinct.estimate() >= 0.95 * c.valid
    ]
