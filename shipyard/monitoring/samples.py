"""One column of one side of a drift comparison, in the form the drift tests read.

A side is raw data (a pandas DataFrame, a pyarrow Table, a Parquet/CSV file) or a stored
:class:`~shipyard.data.profile.Profile` (a dataset version's, or a monitor's reference window's).
Each column becomes a :class:`NumericSample` (sorted values with optional weights, the exact count,
mean and standard deviation) or a :class:`CategoricalSample` (counts per value). From a profile the
numeric values are the weighted items of its quantile sketch (about 1% rank error), so a stored
reference is never rescanned; from raw data everything is exact.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.data.profile import ColumnProfile, Profile

FEW_VALUES = 5
"""A numeric column with at most this many distinct values is compared by value frequencies."""


@dataclass
class NumericSample:
    """Finite values (``weights`` ``None``: each counts once) and exact summary numbers.

    Raw values are sorted only when a test needs the order (the exact two-sample tests); a
    comparison against a stored sketch bins them instead, in one linear pass."""

    values: np.ndarray
    weights: np.ndarray | None
    n: int
    """How many valid observations the sample stands for (the true count, also for a sketch)."""
    mean: float
    std: float
    """Population standard deviation (``ddof=0``)."""
    exact: bool = True
    is_sorted: bool = True
    _cum: np.ndarray | None = field(default=None, repr=False)

    @property
    def sorted_values(self) -> np.ndarray:
        if not self.is_sorted:
            self.values.sort()
            self.is_sorted = True
        return self.values

    @property
    def cumulative(self) -> np.ndarray:
        """``[0, w1, w1+w2, ...]`` normalised to end at 1 (in sorted order)."""
        if self._cum is None:
            values = self.sorted_values
            w = np.ones(values.size) if self.weights is None else np.asarray(self.weights, float)
            cum = np.concatenate([[0.0], np.cumsum(w)])
            self._cum = cum / cum[-1] if cum[-1] > 0 else cum
        return self._cum

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """Fraction of the sample at or below each point."""
        points = np.asarray(points, dtype=np.float64)
        if not self.is_sorted and self.weights is None and points.size <= 16:
            total = max(self.values.size, 1)
            return np.asarray([np.count_nonzero(self.values <= p) / total for p in points])
        idx = np.searchsorted(self.sorted_values, points, side="right")
        if self.weights is None:
            return idx / max(self.values.size, 1)
        return self.cumulative[idx]

    def quantiles(self, qs: np.ndarray) -> np.ndarray:
        """Values at ranks ``qs``: the smallest value whose CDF reaches the rank."""
        qs = np.asarray(qs, dtype=np.float64)
        if self.weights is None:
            if not self.is_sorted:
                return np.quantile(self.values, qs, method="inverted_cdf")
            idx = np.clip(np.ceil(qs * self.values.size).astype(np.int64) - 1, 0, None)
            return self.values[np.minimum(idx, self.values.size - 1)]
        cum = self.cumulative[1:]
        idx = np.searchsorted(cum, qs, side="left")
        return self.values[np.minimum(idx, self.values.size - 1)]

    def grid_cdf(self, lo: float, hi: float, bins: int) -> tuple[np.ndarray, float, float]:
        """The CDF at ``bins + 1`` equal-width edges over [lo, hi], and the tail integrals
        ``∫_{-inf}^{lo} F`` and ``∫_{hi}^{inf} (1 - F)``. Raw unsorted values are binned in one
        linear pass (the CDF inside a bin is then its left limit)."""
        edges = np.linspace(lo, hi, bins + 1)
        if self.weights is not None or self.is_sorted:
            v = self.sorted_values
            w = np.ones(v.size) if self.weights is None else self.weights
            total = max(float(w.sum()), 1e-300)
            k_lo = int(np.searchsorted(v, lo, side="left"))
            k_hi = int(np.searchsorted(v, hi, side="right"))
            low = float(np.dot(lo - v[:k_lo], w[:k_lo])) / total
            high = float(np.dot(v[k_hi:] - hi, w[k_hi:])) / total
            return self.cdf(edges), low, high
        x = self.values
        total = max(x.size, 1)
        below, above = x < lo, x > hi
        idx = np.floor((x - lo) * (bins / (hi - lo)))
        np.clip(idx, 0, bins - 1, out=idx)
        counts = np.bincount(idx.astype(np.intp), minlength=bins)[:bins].astype(np.float64)
        n_below, n_above = np.count_nonzero(below), np.count_nonzero(above)
        counts[0] -= n_below
        counts[-1] -= n_above
        cdf = (n_below + np.concatenate([[0.0], np.cumsum(counts)])) / total
        cdf[-1] = (total - n_above) / total
        low = float((lo - x[below]).sum()) / total
        high = float((x[above] - hi).sum()) / total
        return cdf, low, high

    def distinct(self, limit: int) -> np.ndarray | None:
        """The distinct values when there are at most ``limit`` of them, else ``None``."""
        values = self.sorted_values
        if values.size == 0:
            return values
        changes = np.flatnonzero(values[1:] != values[:-1])
        if changes.size + 1 > limit:
            return None
        return values[np.concatenate([[0], changes + 1])]

    def as_categorical(self) -> CategoricalSample:
        """Frequencies per distinct value (for columns with few values)."""
        values = self.sorted_values
        keys, start = np.unique(values, return_index=True)
        bounds = np.append(start, values.size)
        cum = self.cumulative if self.weights is not None else None
        counts: dict[str, float] = {}
        for key, lo, hi in zip(keys, bounds[:-1], bounds[1:], strict=True):
            share = (cum[hi] - cum[lo]) * self.n if cum is not None else float(hi - lo)
            counts[_number_label(float(key))] = share
        return CategoricalSample(counts, self.n, exact=self.exact)


@dataclass
class CategoricalSample:
    """Occurrences per value (strings; booleans as ``true`` / ``false``)."""

    counts: dict[str, float]
    n: int
    exact: bool = True


Sample = NumericSample | CategoricalSample


def _number_label(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


# ---------------------------------------------------------------------------- sides


class Side:
    """The columns of one side of a comparison, read one at a time (see the module docstring)."""

    def __init__(self, data: Any, what: str) -> None:
        from shipyard.data.profile import Profile

        self.what = what
        self.profile: Profile | None = None
        self.frame: Any = None
        self.table: Any = None
        if isinstance(data, Profile):
            self.profile = data
        elif isinstance(data, str | os.PathLike):
            self.table = _read_file(Path(data), what)
        elif _is_pandas(data):
            self.frame = data
        elif _is_arrow_table(data):
            self.table = data
        else:
            raise InvalidInput(
                f"the {what} is a {type(data).__name__}; give a pandas DataFrame, a pyarrow "
                "Table, a Parquet or CSV file path, or a stored Profile."
            )

    @property
    def columns(self) -> list[str]:
        if self.profile is not None:
            return [c.name for c in self.profile.columns.values() if c.kind != "other"]
        if self.frame is not None:
            return [str(c) for c in self.frame.columns]
        return list(self.table.column_names)

    @property
    def num_rows(self) -> int:
        if self.profile is not None:
            return self.profile.num_rows
        if self.frame is not None:
            return len(self.frame)
        return int(self.table.num_rows)

    def kind(self, column: str) -> str:
        """``numeric``, ``categorical`` or ``other``."""
        if self.profile is not None:
            return self.profile.columns[column].kind
        if self.frame is not None:
            import pandas as pd

            s = self.frame[column]
            if pd.api.types.is_bool_dtype(s.dtype):
                return "categorical"
            if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(
                s.dtype
            ):
                return "numeric"
            return "categorical"
        from shipyard.data.profile import kind_of, logical_type

        return kind_of(logical_type(self.table.schema.field(column).type))

    def has_values(self, column: str) -> bool:
        """Whether the column holds any non-null value (an all-null one has no type to test)."""
        if self.profile is not None:
            return self.profile.columns[column].valid > 0
        if self.frame is not None:
            return bool(self.frame[column].notna().any())
        array = self.table.column(column)
        return bool(array.null_count < len(array))

    def sample(self, column: str, kind: str) -> Sample:
        """The column as a sample of ``kind`` (``numeric`` or ``categorical``)."""
        if self.profile is not None:
            return _from_profile(self.profile.columns[column], kind, self.what)
        if self.frame is not None:
            return _from_series(self.frame[column], kind)
        return _from_arrow(self.table.column(column), kind)


def _is_pandas(data: Any) -> bool:
    module = type(data).__module__
    return module.startswith("pandas") and hasattr(data, "columns") and hasattr(data, "iloc")


def _is_arrow_table(data: Any) -> bool:
    return type(data).__module__.startswith("pyarrow") and hasattr(data, "column_names")


def _read_file(path: Path, what: str) -> Any:
    from shipyard.data.sources import open_source

    if not path.exists():
        raise InvalidInput(f"the {what} file {path} does not exist; check the path.")
    with open_source(path) as source:
        if not source.tabular:
            raise InvalidInput(
                f"the {what} {path} is not a Parquet or CSV table; give a .parquet or .csv file."
            )
        import pyarrow as pa

        batches = list(source.batches())
        return pa.Table.from_batches(batches, schema=source.arrow_schema())


def numeric_sample(values: np.ndarray, *, sorted_already: bool = False) -> NumericSample:
    """A sample of raw numbers (NaNs and infinities dropped: one infinite value would make
    every distance and the mean infinite or NaN; sorted later, only if a test needs the order)."""
    x = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(x)
    finite = x[~bad] if bad.any() else x.copy()
    n = int(finite.size)
    mean = float(finite.mean()) if n else math.nan
    std = float(finite.std()) if n else math.nan
    return NumericSample(finite, None, n, mean, std, is_sorted=sorted_already)


def categorical_sample(counts: dict[Any, int]) -> CategoricalSample:
    """A sample from counts per value (keys are turned into strings)."""
    out: dict[str, float] = {}
    for key, count in counts.items():
        label = ("true" if key else "false") if isinstance(key, bool | np.bool_) else str(key)
        out[label] = out.get(label, 0.0) + float(count)
    return CategoricalSample(out, int(sum(out.values())))


def _from_series(series: Any, kind: str) -> Sample:
    import pandas as pd

    if kind == "numeric":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            raw = series.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
            raw[series.isna().to_numpy()] = np.nan
        elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            raw = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        return numeric_sample(raw)
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        tally = np.bincount(codes[codes >= 0], minlength=len(series.cat.categories))
        return categorical_sample(
            {c: int(t) for c, t in zip(series.cat.categories, tally, strict=True) if t}
        )
    counted = series.value_counts(dropna=True, sort=False)
    return categorical_sample(dict(zip(counted.index, counted.to_numpy(), strict=True)))


def _from_arrow(array: Any, kind: str) -> Sample:
    if kind == "numeric":
        from shipyard.data.profile import numeric_values

        return numeric_sample(numeric_values(array))
    import pyarrow as pa

    from shipyard.data.profile import category_counts

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if not any(f(t) for f in (pa.types.is_string, pa.types.is_large_string,
                              pa.types.is_boolean, pa.types.is_dictionary)):  # fmt: skip
        array = array.cast(pa.string())
    return categorical_sample(category_counts(array))


def _from_profile(col: ColumnProfile, kind: str, what: str) -> Sample:
    if kind == "numeric":
        if col.kind != "numeric" or col.quantiles is None:
            raise InvalidInput(
                f"column {col.name!r} of the {what} profile is {col.type}, not numeric."
            )
        levels = col.quantiles.levels
        items = np.concatenate(levels) if levels else np.empty(0)
        weights = np.concatenate([np.full(lv.size, 2.0**h) for h, lv in enumerate(levels)])
        # A profile counts infinities as nulls (shipyard.data.profile): its sketch and moments
        # are finite already.
        order = np.argsort(items, kind="stable")
        valid = col.valid
        std = math.sqrt(col.m2 / valid) if valid else math.nan
        return NumericSample(
            items[order], weights[order], valid, col.mean if valid else math.nan, std, exact=False
        )
    if col.frequent is None:
        raise InvalidInput(
            f"column {col.name!r} of the {what} profile is {col.type}; its values were not "
            "counted, so it can only be compared as a numeric column."
        )
    return CategoricalSample(
        {k: float(v) for k, v in col.frequent.counts.items()}, col.valid, col.frequent.exact
    )
