"""Per-column profiles: counts, moments, quantiles, histograms, distinct counts, top values.

A :class:`Profile` is built from record batches (:meth:`Profile.from_batches`) with Arrow compute
and numpy, a batch at a time, so memory stays bounded whatever the table's size. Every statistic
is mergeable: counts and extrema add up, moments combine exactly (Chan et al.), and quantiles,
distinct counts and frequencies are sketches (:mod:`shipyard.data.sketches`). So the profiles of
serving windows can be computed one by one and merged (:meth:`Profile.merge`), and compared with
a training version's profile (:func:`diff_profiles`).

Column kinds: ``numeric`` (integers, floats, decimals, and timestamps/dates as their integer
value), ``categorical`` (strings, booleans, dictionary-encoded columns) and ``other`` (counted
only). NaN and infinite values count as nulls (``infinite`` counts the latter apart), so the
moments, quantiles and histograms stay finite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.data.sketches import (
    FrequentItems,
    HyperLogLog,
    QuantileSketch,
    hash_numbers,
    hash_strings,
)
from shipyard.errors import InvalidInput

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
TOP_K = 10
PROFILE_FORMAT = 1


def logical_type(arrow_type: Any) -> str:
    """The family of an Arrow type: integer, float, string, boolean, timestamp, date, other."""
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type)
    if t.is_integer(arrow_type):
        return "integer"
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "float"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "string"
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_timestamp(arrow_type):
        return "timestamp"
    if t.is_date(arrow_type):
        return "date"
    return "other"


def kind_of(logical: str) -> str:
    if logical in ("integer", "float", "timestamp", "date"):
        return "numeric"
    if logical in ("string", "boolean"):
        return "categorical"
    return "other"


def numeric_values(array: Any) -> np.ndarray:
    """The non-null, finite values of an Arrow array as float64 (NaN and infinities left out)."""
    values = _non_nan_values(array)
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def _non_nan_values(array: Any) -> np.ndarray:
    """The non-null, non-NaN values of an Arrow array as float64 (infinities kept)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        array = (
            array.cast(pa.int64()) if not pa.types.is_date32(array.type) else array.cast(pa.int32())
        )
    if array.null_count:
        array = pc.drop_null(array)
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    if values.size and not pa.types.is_integer(array.type):
        values = values[~np.isnan(values)]
    return values


def category_counts(array: Any) -> dict[str, int]:
    """Occurrences of each non-null value, as strings (booleans as ``true`` / ``false``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    counted = pc.value_counts(array)
    values = counted.field("values")
    if pa.types.is_boolean(values.type):
        names = ["true" if v else "false" if v is not None else None for v in values.to_pylist()]
    else:
        names = values.to_pylist()
    counts = counted.field("counts").to_pylist()
    return {n: c for n, c in zip(names, counts, strict=True) if n is not None}


@dataclass
class ColumnProfile:
    """The mergeable statistics of one column (see the module docstring)."""

    name: str
    type: str
    kind: str
    count: int = 0
    nulls: int = 0
    infinite: int = 0
    minimum: float | None = None
    maximum: float | None = None
    mean: float = 0.0
    m2: float = 0.0
    quantiles: QuantileSketch | None = None
    distinct: HyperLogLog = field(default_factory=HyperLogLog)
    frequent: FrequentItems | None = None

    @classmethod
    def empty(cls, name: str, logical: str) -> ColumnProfile:
        kind = kind_of(logical)
        return cls(
            name=name,
            type=logical,
            kind=kind,
            quantiles=QuantileSketch() if kind == "numeric" else None,
            frequent=FrequentItems() if kind == "categorical" else None,
        )

    @property
    def valid(self) -> int:
        return self.count - self.nulls

    @property
    def std(self) -> float | None:
        return math.sqrt(self.m2 / (self.valid - 1)) if self.valid > 1 else None

    def update(self, array: Any) -> None:
        length = len(array)
        self.count += length
        if self.kind == "numeric":
            values = _non_nan_values(array)
            finite = np.isfinite(values)
            infinite = values.size - int(np.count_nonzero(finite))
            if infinite:
                self.infinite += infinite
                values = values[finite]
            self.nulls += length - values.size
            self._add_moments(values)
            assert self.quantiles is not None
            self.quantiles.update(values)
            self.distinct.update(hash_numbers(values))
        elif self.kind == "categorical":
            counts = category_counts(array)
            self.nulls += length - sum(counts.values())
            assert self.frequent is not None
            self.frequent.update(counts)
            self.distinct.update(hash_strings(counts))
        else:
            self.nulls += array.null_count

    def _add_moments(self, values: np.ndarray) -> None:
        n_b = values.size
        if n_b == 0:
            return
        lo, hi = float(values.min()), float(values.max())
        self.minimum = lo if self.minimum is None else min(self.minimum, lo)
        self.maximum = hi if self.maximum is None else max(self.maximum, hi)
        mean_b = float(values.mean())
        m2_b = float(np.square(values - mean_b).sum())
        self._combine(n_b, mean_b, m2_b)

    def _combine(self, n_b: int, mean_b: float, m2_b: float) -> None:
        n_a = self.valid - n_b if self.kind == "numeric" else 0
        # ``valid`` already includes the new batch (count and nulls were updated first).
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * n_a * n_b / n

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        if other.kind != self.kind:
            raise InvalidInput(
                f"column {self.name!r} is {self.type} in one profile and {other.type} in the "
                "other; profiles merge only when each column has the same kind."
            )
        out = ColumnProfile.empty(self.name, self.type)
        out.count = self.count + other.count
        out.nulls = self.nulls + other.nulls
        out.infinite = self.infinite + other.infinite
        n_a, n_b = self.valid, other.valid
        if n_a + n_b:
            delta = other.mean - self.mean
            out.mean = self.mean + delta * n_b / (n_a + n_b)
            out.m2 = self.m2 + other.m2 + delta * delta * n_a * n_b / (n_a + n_b)
        extrema = [v for v in (self.minimum, other.minimum) if v is not None]
        out.minimum = min(extrema) if extrema else None
        extrema = [v for v in (self.maximum, other.maximum) if v is not None]
        out.maximum = max(extrema) if extrema else None
        if self.quantiles is not None and other.quantiles is not None:
            out.quantiles = self.quantiles.merge(other.quantiles)
        out.distinct = self.distinct.merge(other.distinct)
        if self.frequent is not None and other.frequent is not None:
            out.frequent = self.frequent.merge(other.frequent)
        return out

    def histogram(self, bins: int = HISTOGRAM_BINS) -> dict[str, list[float]]:
        """Approximate counts in ``bins`` equal-width bins over [min, max] (from the sketch)."""
        if self.quantiles is None or self.minimum is None or self.maximum is None:
            return {"edges": [], "counts": []}
        if self.minimum == self.maximum:
            return {"edges": [self.minimum, self.maximum], "counts": [float(self.valid)]}
        edges = np.linspace(self.minimum, self.maximum, bins + 1)
        cdf = np.asarray(self.quantiles.cdf(edges))
        cdf[0], cdf[-1] = 0.0, 1.0
        counts = np.diff(cdf) * self.valid
        return {"edges": [float(e) for e in edges], "counts": [round(float(c), 1) for c in counts]}

    def summary(self) -> dict[str, Any]:
        """The statistics people read (what ``shipyard data profile`` prints)."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": self.nulls / self.count if self.count else 0.0,
            **({"infinite": self.infinite} if self.infinite else {}),
            "distinct": round(self.distinct.estimate()),
        }
        if self.kind == "numeric":
            assert self.quantiles is not None
            out.update(
                mean=self.mean if self.valid else None,
                std=self.std,
                min=self.minimum,
                max=self.maximum,
                quantiles=dict(
                    zip(
                        [str(q) for q in QUANTILES],
                        self.quantiles.quantiles(QUANTILES),
                        strict=True,
                    )
                ),
                histogram=self.histogram(),
            )
        if self.frequent is not None:
            out["top"] = [{"value": v, "count": c} for v, c in self.frequent.top(TOP_K)]
            out["top_exact"] = self.frequent.exact
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            **({"infinite": self.infinite} if self.infinite else {}),
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "m2": self.m2,
            "quantiles": self.quantiles.to_dict() if self.quantiles else None,
            "distinct": self.distinct.to_dict(),
            "frequent": self.frequent.to_dict() if self.frequent else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            name=d["name"],
            type=d["type"],
            kind=d["kind"],
            count=int(d["count"]),
            nulls=int(d["nulls"]),
            infinite=int(d.get("infinite", 0)),
            minimum=d["min"],
            maximum=d["max"],
            mean=float(d["mean"]),
            m2=float(d["m2"]),
            quantiles=QuantileSketch.from_dict(d["quantiles"]) if d["quantiles"] else None,
            distinct=HyperLogLog.from_dict(d["distinct"]),
            frequent=FrequentItems.from_dict(d["frequent"]) if d["frequent"] else None,
        )


@dataclass
class Profile:
    """The profiles of a table's columns, in column order, and its row count."""

    num_rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    @classmethod
    def from_batches(cls, batches: Iterable[Any], *, schema: Any = None) -> Profile:
        """Profile a stream of Arrow record batches (one pass, bounded memory). ``schema`` (an
        Arrow schema) names the columns when no batch comes (a table without rows)."""
        profile = cls()
        if schema is not None:
            for f in schema:
                profile.columns[f.name] = ColumnProfile.empty(f.name, logical_type(f.type))
        for batch in batches:
            if not profile.columns:
                for f in batch.schema:
                    profile.columns[f.name] = ColumnProfile.empty(f.name, logical_type(f.type))
            profile.num_rows += batch.num_rows
            for name, column in profile.columns.items():
                column.update(batch.column(name))
        return profile

    def merge(self, other: Profile) -> Profile:
        """The profile of both tables stacked (columns only one side has are kept as they are)."""
        out = Profile(self.num_rows + other.num_rows)
        for name in [*self.columns, *(c for c in other.columns if c not in self.columns)]:
            a, b = self.columns.get(name), other.columns.get(name)
            out.columns[name] = a.merge(b) if a and b else (a or b)  # type: ignore[assignment]
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "num_rows": self.num_rows,
            "columns": [c.summary() for c in self.columns.values()],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "num_rows": self.num_rows,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        columns = [ColumnProfile.from_dict(c) for c in d["columns"]]
        return cls(int(d["num_rows"]), {c.name: c for c in columns})


# ---------------------------------------------------------------------------- diffs and skew


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins."""
    eps = 1e-4
    e = np.maximum(expected / max(expected.sum(), 1e-12), eps)
    a = np.maximum(actual / max(actual.sum(), 1e-12), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def _column_distance(base: ColumnProfile, other: ColumnProfile) -> dict[str, float]:
    """How far ``other``'s distribution moved from ``base``'s: PSI and a KS-like maximum CDF
    gap (numeric), or PSI and L-infinity over the categories' frequencies (categorical)."""
    if base.kind == "numeric" and base.quantiles and other.quantiles:
        if not base.valid or not other.valid:
            return {}
        # Bins at the base's deciles, so each holds ~10% of the base's values.
        edges = np.unique(np.asarray(base.quantiles.quantiles(np.linspace(0, 1, 11)), float))
        inner = edges[1:-1]
        cdf_b = np.asarray([0.0, *base.quantiles.cdf(inner), 1.0])
        cdf_o = np.asarray([0.0, *other.quantiles.cdf(inner), 1.0])
        probe = np.asarray(base.quantiles.quantiles(np.linspace(0, 1, 101)), float)
        ks = float(
            np.max(np.abs(np.asarray(base.quantiles.cdf(probe)) - other.quantiles.cdf(probe)))
        )
        return {"psi": _psi(np.diff(cdf_b), np.diff(cdf_o)), "ks": ks}
    if base.kind == "categorical" and base.frequent and other.frequent:
        keys = sorted(set(base.frequent.counts) | set(other.frequent.counts))
        if not keys:
            return {}
        b = np.asarray([base.frequent.counts.get(k, 0) for k in keys], float)
        o = np.asarray([other.frequent.counts.get(k, 0) for k in keys], float)
        linf = float(np.max(np.abs(b / max(b.sum(), 1) - o / max(o.sum(), 1))))
        return {"psi": _psi(b, o), "linf": linf}
    return {}


_COMPARED = ("count", "null_fraction", "distinct", "mean", "std", "min", "max")


@dataclass(frozen=True, slots=True)
class ColumnChange:
    """What moved in one column between two profiles."""

    column: str
    status: str  # "changed", "unchanged", "added", "removed", "type_changed"
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    distance: dict[str, float] = field(default_factory=dict)
    new_categories: list[str] = field(default_factory=list)
    missing_categories: list[str] = field(default_factory=list)
    drifted: bool = False


@dataclass(frozen=True, slots=True)
class ProfileDiff:
    """Column by column, what moved from the ``base`` profile to the ``other`` and by how much."""

    base_rows: int
    other_rows: int
    columns: list[ColumnChange]
    threshold: float

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        from shipyard.entities import to_json

        return {
            "base_rows": self.base_rows,
            "other_rows": self.other_rows,
            "threshold": self.threshold,
            "drifted_columns": self.drifted_columns,
            "columns": to_json(self.columns),
        }


def diff_profiles(base: Profile, other: Profile, *, threshold: float = 0.2) -> ProfileDiff:
    """Compare two profiles. A column counts as drifted when its PSI reaches ``threshold``
    (0.2: a significant shift by the usual reading), its type changed, or it appeared or went."""
    changes: list[ColumnChange] = []
    for name in [*base.columns, *(c for c in other.columns if c not in base.columns)]:
        a, b = base.columns.get(name), other.columns.get(name)
        if a is None or b is None:
            changes.append(ColumnChange(name, "added" if a is None else "removed", drifted=True))
            continue
        if a.type != b.type:
            changes.append(
                ColumnChange(
                    name,
                    "type_changed",
                    {"type": {"base": a.type, "other": b.type}},
                    drifted=True,
                )
            )
            continue
        sa_, sb = a.summary(), b.summary()
        moved: dict[str, dict[str, Any]] = {}
        for key in _COMPARED:
            va, vb = sa_.get(key), sb.get(key)
            if va != vb and not (va is None and vb is None):
                entry: dict[str, Any] = {"base": va, "other": vb}
                if isinstance(va, int | float) and isinstance(vb, int | float):
                    entry["delta"] = vb - va
                moved[key] = entry
        distance = _column_distance(a, b)
        new_cats: list[str] = []
        missing: list[str] = []
        if a.frequent and b.frequent and a.frequent.exact and b.frequent.exact:
            new_cats = sorted(set(b.frequent.counts) - set(a.frequent.counts))
            missing = sorted(set(a.frequent.counts) - set(b.frequent.counts))
        changed = bool(moved or new_cats or missing)
        changes.append(
            ColumnChange(
                name,
                "changed" if changed else "unchanged",
                moved,
                distance,
                new_cats,
                missing,
                drifted=distance.get("psi", 0.0) >= threshold,
            )
        )
    return ProfileDiff(base.num_rows, other.num_rows, changes, threshold)


def skew(training: Profile, serving: Profile, *, threshold: float = 0.2) -> ProfileDiff:
    """Training-serving skew: how a serving window's profile departs from the training
    version's (columns absent from serving, such as the label, are reported as removed)."""
    return diff_profiles(training, serving, threshold=threshold)
