"""Validate a table against a schema: an anomaly report, usable as a pipeline step or a gate.

:func:`validate` reads the table a batch at a time and reports, per column, missing or extra
columns, type mismatches, nulls where none are allowed, values outside [min, max], categories
outside the domain, duplicate values in unique columns, and a row count outside the bounds.
Each :class:`Anomaly` has a severity (``error`` or ``warning``), a count, the fraction of rows it
concerns and up to five example rows (row number and value). A column with a type mismatch gets
no further value checks (they would repeat the same problem). :meth:`ValidationReport.check`
raises :class:`~shipyard.errors.DataValidationFailed` when an error is present (the gate).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.data.profile import logical_type
from shipyard.data.schema import ColumnSchema, Schema
from shipyard.errors import DataValidationFailed

EXAMPLES = 5
SEVERITY = {
    "missing_column": "error",
    "extra_column": "warning",
    "type_mismatch": "error",
    "null_values": "error",
    "out_of_range": "error",
    "unseen_category": "error",
    "duplicate_values": "error",
    "row_count": "error",
}
_COMPATIBLE = {("integer", "float")}  # (found, expected): widening is fine


@dataclass
class Anomaly:
    column: str | None
    kind: str
    severity: str
    count: int
    fraction: float
    message: str
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ValidationReport:
    num_rows: int
    environment: str | None
    anomalies: list[Anomaly]

    @property
    def ok(self) -> bool:
        """No error-severity anomaly."""
        return not any(a.severity == "error" for a in self.anomalies)

    def to_dict(self) -> dict[str, Any]:
        from shipyard.entities import to_json

        return {
            "ok": self.ok,
            "num_rows": self.num_rows,
            "environment": self.environment,
            "anomalies": to_json(self.anomalies),
        }

    def check(self) -> ValidationReport:
        """Return the report when it has no errors; raise DataValidationFailed otherwise."""
        if self.ok:
            return self
        errors = [a for a in self.anomalies if a.severity == "error"]
        listed = "; ".join(a.message for a in errors[:5])
        raise DataValidationFailed(
            f"validation found {len(errors)} error(s): {listed}. Fix the data, or edit the "
            "schema if the change is intended (`shipyard data schema NAME --set FILE`).",
            details={"anomalies": self.to_dict()["anomalies"]},
        )


class _Tally:
    def __init__(self) -> None:
        self.count = 0
        self.examples: list[dict[str, Any]] = []

    def add(self, rows: np.ndarray, values: Any, offset: int) -> None:
        self.count += int(rows.size)
        room = EXAMPLES - len(self.examples)
        if room > 0 and rows.size:
            for r in rows[:room]:
                value = values[int(r)].as_py() if values is not None else None
                self.examples.append({"row": offset + int(r), "value": value})


def _value_checks(col: ColumnSchema, array: Any, offset: int, tallies: dict[str, _Tally]) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    nulls = array.is_null(nan_is_null=True) if pa.types.is_floating(array.type) else array.is_null()
    if not col.nullable and (array.null_count or pa.types.is_floating(array.type)):
        rows = np.flatnonzero(nulls.to_numpy(zero_copy_only=False))
        if rows.size:
            tallies["null_values"].add(rows, None, offset)
    numeric = pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
    if (col.min is not None or col.max is not None) and numeric:
        values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = np.zeros(values.size, dtype=bool)
            if col.min is not None:
                bad |= values < col.min
            if col.max is not None:
                bad |= values > col.max
        rows = np.flatnonzero(bad)
        if rows.size:
            tallies["out_of_range"].add(rows, array, offset)
    if col.domain is not None:
        allowed = pa.array(col.domain, type=pa.string())
        strings = array.cast(pa.string()) if not pa.types.is_string(array.type) else array
        inside = pc.is_in(strings, value_set=allowed)
        bad = pc.and_kleene(pc.invert(inside), pc.is_valid(strings))
        rows = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
        if rows.size:
            tallies["unseen_category"].add(rows, strings, offset)


def validate(
    batches: Iterable[Any],
    schema: Schema,
    *,
    environment: str | None = None,
    read_column: Any = None,
) -> ValidationReport:
    """Check record batches against ``schema`` (see the module docstring). ``read_column(name)``
    returns one whole column, for the uniqueness check of ``unique`` columns."""
    expected = {c.name: c for c in schema.expected(environment)}
    known = set(schema.columns)
    anomalies: list[Anomaly] = []
    tallies: dict[str, dict[str, _Tally]] = {}
    checked: dict[str, ColumnSchema] = {}
    num_rows = 0
    for batch in batches:
        if num_rows == 0 and not tallies:
            names = batch.schema.names
            for name, col in expected.items():
                if name not in names:
                    anomalies.append(
                        Anomaly(name, "missing_column", "error", 0, 1.0,
                                f"column {name!r} is missing")
                    )  # fmt: skip
                    continue
                arrow_type = batch.schema.field(name).type
                found = logical_type(arrow_type)
                if (
                    not _is_null_type(arrow_type)  # no values at all: only the null checks apply
                    and found != col.type
                    and (found, col.type) not in _COMPATIBLE
                ):
                    anomalies.append(
                        Anomaly(name, "type_mismatch", "error", 0, 1.0,
                                f"column {name!r} is {found}, the schema says {col.type}")
                    )  # fmt: skip
                    continue
                checked[name] = col
                tallies[name] = {k: _Tally() for k in SEVERITY}
            for name in names:
                if name not in known:
                    anomalies.append(
                        Anomaly(name, "extra_column", "warning", 0, 1.0,
                                f"column {name!r} is not in the schema")
                    )  # fmt: skip
            tallies.setdefault("", {})
        for name, col in checked.items():
            _value_checks(col, batch.column(name), num_rows, tallies[name])
        num_rows += batch.num_rows
    for a in anomalies:
        if a.kind in ("missing_column", "type_mismatch"):
            a.count = num_rows
    for name, col in checked.items():
        for kind, tally in tallies[name].items():
            if tally.count:
                anomalies.append(
                    Anomaly(name, kind, SEVERITY[kind], tally.count,
                            tally.count / num_rows if num_rows else 0.0,
                            _message(kind, name, tally.count, col), tally.examples)
                )  # fmt: skip
        if col.unique and read_column is not None:
            anomalies.extend(_duplicates(name, read_column(name), num_rows))
    low, high = schema.min_rows, schema.max_rows
    if (low is not None and num_rows < low) or (high is not None and num_rows > high):
        bounds = f"[{low if low is not None else 0}, {high if high is not None else 'inf'}]"
        anomalies.append(
            Anomaly(None, "row_count", "error", num_rows, 1.0,
                    f"{num_rows} rows, outside the bounds {bounds}")
        )  # fmt: skip
    order = {k: i for i, k in enumerate(SEVERITY)}
    anomalies.sort(key=lambda a: (a.column or "", order[a.kind]))
    return ValidationReport(num_rows, environment, anomalies)


def _is_null_type(arrow_type: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_null(arrow_type))


def _message(kind: str, name: str, count: int, col: ColumnSchema) -> str:
    if kind == "null_values":
        return f"column {name!r} has {count} null(s) but is not nullable"
    if kind == "out_of_range":
        return f"column {name!r} has {count} value(s) outside [{col.min}, {col.max}]"
    if kind == "unseen_category":
        return f"column {name!r} has {count} value(s) outside its domain"
    return f"column {name!r}: {count} {kind}"


def _duplicates(name: str, column: Any, num_rows: int) -> list[Anomaly]:
    import pyarrow.compute as pc

    counted = pc.value_counts(pc.drop_null(column))  # nulls are not values: several are fine
    counts = counted.field("counts").to_numpy()
    dup = np.flatnonzero(counts > 1)
    if not dup.size:
        return []
    extra = int((counts[dup] - 1).sum())
    values = counted.field("values")
    examples = [
        {"value": values[int(i)].as_py(), "occurrences": int(counts[i])} for i in dup[:EXAMPLES]
    ]
    return [
        Anomaly(name, "duplicate_values", "error", extra, extra / num_rows if num_rows else 0.0,
                f"column {name!r} should be unique but {extra} row(s) repeat a value", examples)
    ]  # fmt: skip
