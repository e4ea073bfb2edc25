"""Drift tests: pure functions over two samples of a column, a registry, and :func:`compare`.

Numerical tests: two-sample Kolmogorov-Smirnov (``ks``), Wasserstein-1 distance divided by the
reference's standard deviation (``wasserstein``), population stability index (``psi``) and
Jensen-Shannon distance (``jensenshannon``) over the reference's deciles. Categorical tests:
two-sample chi-square on the 2 x k contingency table (``chisquare``), ``psi`` and
``jensenshannon`` over the category frequencies, and the two-proportion Z-test (``z``) for
binary columns. Each returns the statistic, the p-value (tests) or ``None`` (distances), the
threshold and the verdict; the values are scipy's (``ks_2samp``, ``chi2_contingency``,
``wasserstein_distance``, ``jensenshannon``) or the textbook definition's on the same data.

Default selection (:func:`default_test`), by column kind and by the smaller side's count ``n``:

============================  ===================  ==========================
column                        n < 1000             n >= 1000
============================  ===================  ==========================
numeric, > 5 distinct values  ``ks`` (p < 0.05)    ``wasserstein`` (>= 0.1)
numeric <= 5 values, binary   ``z`` (p < 0.05)     ``jensenshannon`` (>= 0.1)
categorical, > 2 values       ``chisquare``        ``jensenshannon`` (>= 0.1)
============================  ===================  ==========================

p-value tests answer "is this more than noise", which at large samples is true of shifts too
small to matter; distances measure the size of the shift, so above 1000 rows they decide.
Except for a column of ``k`` values with fewer than ``100 (k - 1)`` observations
(:data:`ROWS_PER_VALUE`): there sampling noise alone puts the Jensen-Shannon distance near its
threshold (on stable data it is about ``sqrt((k - 1) / 4n)``), so the p-value test stays.

Users add tests with :func:`register_drift_test`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput, missing_extra
from shipyard.monitoring.samples import (
    FEW_VALUES,
    CategoricalSample,
    NumericSample,
    Sample,
    Side,
)

LARGE_SAMPLE = 1000
"""From this many observations on the smaller side, distances decide instead of p-values."""
ROWS_PER_VALUE = 100
"""A column of ``k`` values is compared by a distance only from ``ROWS_PER_VALUE * (k - 1)``
observations: stable data's Jensen-Shannon distance is then about 0.05 or less, half the
threshold (with 40 values at 1000 rows it is 0.1, and half of all stable columns would drift)."""
DEFAULT_ALPHA = 0.05
DEFAULT_DISTANCE = 0.1
DRIFT_SHARE = 0.5
"""Dataset drift: at least this share of the compared columns drifted (Evidently's default)."""
PSI_EPS = 1e-4
"""Bin proportions are floored at this before PSI's logarithm (an empty bin is not infinite)."""
NUMERIC_BINS = 10
"""PSI and Jensen-Shannon bin numeric columns at the reference's deciles."""
CORRECTIONS = ("bonferroni", "holm", "fdr_bh")
PARALLEL_ROWS = 100_000
"""From this many rows (both sides), columns are compared in parallel threads."""

TestValue = float | tuple[float, float | None]
TestFunction = Callable[[Any, Any], TestValue]


def _scipy_stats() -> Any:
    try:
        import scipy.stats
    except ImportError:
        raise missing_extra("scipy", "data") from None
    return scipy.stats


# ---------------------------------------------------------------------------- the tests


GRID_BINS = 4096
"""A raw side compared with a stored sketch is binned on this many equal-width bins over the
sketch's range (the distance is then within about ``range / GRID_BINS`` of the exact one)."""


def _mixed(a: NumericSample, b: NumericSample) -> bool:
    """One side is a sketch (weighted) and the other raw: compare on a grid, no sort."""
    return (a.weights is None) != (b.weights is None)


def _merged(a: NumericSample, b: NumericSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both samples' values merged in order, with each CDF at every merged point (inside a run
    of equal values the CDFs are partial; the run's last point has the full value)."""
    va, vb = a.sorted_values, b.sorted_values
    values = np.concatenate([va, vb])
    order = np.argsort(values, kind="stable")  # two sorted runs: a linear merge
    merged = values[order]
    from_a = order < va.size

    def cdf(sample: NumericSample, mask: np.ndarray, offset: int) -> np.ndarray:
        if sample.weights is None:
            return np.cumsum(mask) / max(sample.values.size, 1)
        w = np.zeros(values.size)
        w[offset : offset + sample.values.size] = sample.weights
        return np.cumsum(w[order]) / max(float(sample.weights.sum()), 1e-300)

    return merged, cdf(a, from_a, 0), cdf(b, ~from_a, va.size)


def _grid(a: NumericSample, b: NumericSample) -> tuple[float, np.ndarray, np.ndarray, float, float]:
    """``(bin width, CDF of a, CDF of b, low tail, high tail)`` on a grid over the sketch's range;
    the tails are ``∫|F_a - F_b|`` outside it (exact: the sketch's CDF is 0 or 1 there)."""
    sketch = a if a.weights is not None else b
    lo, hi = float(sketch.values[0]), float(sketch.values[-1])
    if not hi > lo:
        hi = lo + max(abs(lo) * 1e-9, 1e-12)
    fa, la, ha = a.grid_cdf(lo, hi, GRID_BINS)
    fb, lb, hb = b.grid_cdf(lo, hi, GRID_BINS)
    return (hi - lo) / GRID_BINS, fa, fb, la + lb, ha + hb


def ks(reference: NumericSample, current: NumericSample) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: ``(D, p)``. Raw samples go to ``scipy.stats.ks_2samp``;
    with a sketch side D is taken over the weighted points (or the grid) and the p-value is
    Smirnov's asymptotic one for the true sample sizes."""
    stats = _scipy_stats()
    if reference.weights is None and current.weights is None:
        result = stats.ks_2samp(reference.sorted_values, current.sorted_values)
        return float(result.statistic), float(result.pvalue)
    if _mixed(reference, current):
        _, fa, fb, _, _ = _grid(reference, current)
        d = float(np.max(np.abs(fa - fb)))
    else:
        merged, fa, fb = _merged(reference, current)
        last = np.append(merged[1:] != merged[:-1], True)
        d = float(np.max(np.abs(fa - fb)[last]))
    m, n = sorted([float(reference.n), float(current.n)], reverse=True)
    en = m * n / (m + n)
    if en > 10_000:
        p = float(stats.kstwobign.sf(math.sqrt(en) * d))
    else:
        p = float(stats.kstwo.sf(d, round(en)))
    return d, min(max(p, 0.0), 1.0)


def wasserstein_distance(reference: NumericSample, current: NumericSample) -> float:
    """Wasserstein-1 distance between the two samples, in the column's units: exactly
    ``scipy.stats.wasserstein_distance`` (with the sketch's weights on a sketch side); a raw side
    against a sketch is binned on :data:`GRID_BINS` bins instead of sorted."""
    if reference.values.size == 0 or current.values.size == 0:
        return math.nan
    if _mixed(reference, current):
        width, fa, fb, low, high = _grid(reference, current)
        d0, d1 = (fa - fb)[:-1], (fa - fb)[1:]
        a0, a1 = np.abs(d0), np.abs(d1)
        same = np.sign(d0) * np.sign(d1) >= 0
        with np.errstate(invalid="ignore", divide="ignore"):
            crossing = (d0 * d0 + d1 * d1) / (2 * (a0 + a1))
        inner = np.where(same, (a0 + a1) / 2, np.nan_to_num(crossing))
        return float(low + high + width * inner.sum())
    merged, fa, fb = _merged(reference, current)
    return float(np.dot(np.abs(fa[:-1] - fb[:-1]), np.diff(merged)))


def wasserstein(reference: NumericSample, current: NumericSample) -> float:
    """Wasserstein-1 distance divided by the reference's standard deviation (floor 0.001), so
    0.1 means "the mass moved a tenth of a standard deviation on average"."""
    return wasserstein_distance(reference, current) / max(reference.std, 0.001)


def decile_bins(
    reference: NumericSample, current: NumericSample
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(edges, reference counts, current counts)`` over the reference's deciles (values at an
    edge count in the bin below it)."""
    edges = np.unique(reference.quantiles(np.arange(1, NUMERIC_BINS) / NUMERIC_BINS))

    def counts(sample: NumericSample) -> np.ndarray:
        cdf = np.concatenate([[0.0], sample.cdf(edges), [1.0]])
        return np.diff(cdf) * sample.n

    return edges, counts(reference), counts(current)


def _frequencies(
    reference: CategoricalSample, current: CategoricalSample
) -> tuple[list[str], np.ndarray, np.ndarray]:
    keys = sorted(set(reference.counts) | set(current.counts))
    ref = np.asarray([reference.counts.get(k, 0.0) for k in keys], float)
    cur = np.asarray([current.counts.get(k, 0.0) for k in keys], float)
    return keys, ref, cur


def _counts(reference: Sample, current: Sample) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(reference, NumericSample) and isinstance(current, NumericSample):
        _, ref, cur = decile_bins(reference, current)
        return ref, cur
    if isinstance(reference, CategoricalSample) and isinstance(current, CategoricalSample):
        _, ref, cur = _frequencies(reference, current)
        return ref, cur
    raise InvalidInput("both samples of a test must be of the same kind.")


def psi_of(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: ``sum((a - e) * ln(a / e))`` over bin proportions floored at
    :data:`PSI_EPS`."""
    e = np.maximum(expected / max(expected.sum(), 1e-12), PSI_EPS)
    a = np.maximum(actual / max(actual.sum(), 1e-12), PSI_EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: Sample, current: Sample) -> float:
    """PSI over the reference's deciles (numeric) or the categories (categorical)."""
    return psi_of(*_counts(reference, current))


def js_of(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log; the square root of the divergence), as
    ``scipy.spatial.distance.jensenshannon(p, q)``."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(math.sqrt(max((kl_p.sum() + kl_q.sum()) / 2, 0.0)))


def jensenshannon(reference: Sample, current: Sample) -> float:
    """Jensen-Shannon distance over the reference's deciles (numeric) or the categories."""
    return js_of(*_counts(reference, current))


def chisquare(reference: CategoricalSample, current: CategoricalSample) -> tuple[float, float]:
    """Two-sample chi-square on the 2 x k table of counts (``chi2_contingency`` without Yates'
    correction): ``(chi2, p)``. Unlike a goodness-of-fit test it counts the reference's own noise,
    so its false-alarm rate on stable data is the nominal one."""
    _, ref, cur = _frequencies(reference, current)
    table = np.vstack([ref, cur])
    total = table.sum()
    if table.shape[1] < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    dof = table.shape[1] - 1
    return chi2, float(_scipy_stats().chi2.sf(chi2, dof))


def z(reference: CategoricalSample, current: CategoricalSample) -> tuple[float, float]:
    """Two-proportion Z-test (pooled) on the share of the first value of a binary column:
    ``(z, p)``, two-sided."""
    keys, ref, cur = _frequencies(reference, current)
    if len(keys) > 2:
        raise InvalidInput(
            f"the z test compares binary columns; this one has {len(keys)} values. Use "
            "chisquare or jensenshannon."
        )
    n1, n2 = ref.sum(), cur.sum()
    if len(keys) < 2 or n1 == 0 or n2 == 0:
        return 0.0, 1.0
    p1, p2 = ref[0] / n1, cur[0] / n2
    pooled = (ref[0] + cur[0]) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    stat = float((p1 - p2) / se)
    return stat, float(2 * _scipy_stats().norm.sf(abs(stat)))


# ---------------------------------------------------------------------------- the registry


@dataclass(frozen=True, slots=True)
class DriftTest:
    """A registered test: ``fn(reference, current)`` returns a distance (a float) or
    ``(statistic, p_value)``. ``measure`` says which: ``"p_value"`` drifts when p < threshold,
    ``"distance"`` when the statistic >= threshold."""

    name: str
    fn: TestFunction
    kinds: tuple[str, ...]
    measure: str
    threshold: float
    description: str = ""


_REGISTRY: dict[str, DriftTest] = {}


def register_drift_test(
    name: str,
    fn: TestFunction | None = None,
    *,
    kinds: Iterable[str] = ("numeric",),
    measure: str = "distance",
    threshold: float | None = None,
    description: str = "",
    replace: bool = False,
) -> Any:
    """Add a drift test (usable as a decorator). ``fn`` gets two
    :class:`~shipyard.monitoring.samples.NumericSample` or
    :class:`~shipyard.monitoring.samples.CategoricalSample` (by ``kinds``) and returns a distance or
    ``(statistic, p_value)``; the test's default threshold is 0.05 for p-values and 0.1 for
    distances unless given."""
    kinds = tuple(kinds)
    if measure not in ("p_value", "distance"):
        raise InvalidInput(f"measure must be 'p_value' or 'distance', not {measure!r}.")
    if not kinds or set(kinds) - {"numeric", "categorical"}:
        raise InvalidInput(f"kinds must be 'numeric' and/or 'categorical', not {list(kinds)}.")
    if name in _REGISTRY and not replace:
        raise InvalidInput(
            f"a drift test named {name!r} is registered already; pass replace=True to override it."
        )

    def add(f: TestFunction) -> TestFunction:
        default = DEFAULT_ALPHA if measure == "p_value" else DEFAULT_DISTANCE
        _REGISTRY[name] = DriftTest(
            name,
            f,
            kinds,
            measure,
            default if threshold is None else float(threshold),
            description or (f.__doc__ or "").strip().split("\n")[0],
        )
        return f

    return add(fn) if fn is not None else add


def drift_tests() -> dict[str, DriftTest]:
    """Every registered test by name."""
    return dict(_REGISTRY)


def get_test(name: str) -> DriftTest:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidInput(
            f"no drift test is named {name!r}; known tests: {', '.join(sorted(_REGISTRY))} "
            "(add one with shipyard.monitoring.register_drift_test)."
        ) from None


register_drift_test("ks", ks, kinds=("numeric",), measure="p_value")
register_drift_test("wasserstein", wasserstein, kinds=("numeric",), measure="distance")
register_drift_test("psi", psi, kinds=("numeric", "categorical"), measure="distance")
register_drift_test(
    "jensenshannon", jensenshannon, kinds=("numeric", "categorical"), measure="distance"
)
register_drift_test("chisquare", chisquare, kinds=("categorical",), measure="p_value")
register_drift_test("z", z, kinds=("categorical",), measure="p_value")


def default_test(kind: str, n: int, distinct: int | None) -> str:
    """The default test for a column of ``kind`` whose smaller side has ``n`` observations and
    ``distinct`` values over both sides (``None``: many); see the module docstring."""
    large = n >= LARGE_SAMPLE
    if kind == "numeric" and (distinct is None or distinct > FEW_VALUES):
        return "wasserstein" if large else "ks"
    if large and (distinct is None or n >= ROWS_PER_VALUE * (distinct - 1)):
        return "jensenshannon"
    return "z" if distinct is not None and distinct <= 2 else "chisquare"


# ---------------------------------------------------------------------------- reports


@dataclass
class ColumnDrift:
    """One column's verdict. ``p_value`` is ``None`` for distances; with a multiple-testing
    correction it is the adjusted p-value."""

    column: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    kind: str = "numeric"
    measure: str = "distance"
    n_reference: int = 0
    n_current: int = 0
    distribution: dict[str, Any] = field(default_factory=dict)
    """Reference and current shares on common bins (for reports)."""

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.column,
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
        }
        if full:
            out.update(
                kind=self.kind,
                measure=self.measure,
                n_reference=self.n_reference,
                n_current=self.n_current,
                distribution=self.distribution,
            )
        return out


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass
class DriftReport:
    """Per-column results and the dataset verdict (``share_drifted >= drift_share``)."""

    columns: list[ColumnDrift]
    drift_share: float = DRIFT_SHARE
    correction: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    """Columns not compared, with the reason (no values on a side, unsupported type)."""

    @property
    def share_drifted(self) -> float:
        return sum(c.drifted for c in self.columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.share_drifted >= self.drift_share

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        """``{"dataset_drift", "share_drifted", "columns": [{"column", "test", "statistic",
        "p_value", "threshold", "drifted"}]}``; ``full`` adds sizes, distributions and settings."""
        out: dict[str, Any] = {
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "columns": [c.to_dict(full) for c in self.columns],
        }
        if full:
            out.update(drift_share=self.drift_share, correction=self.correction,
                       skipped=self.skipped)  # fmt: skip
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        columns = [
            ColumnDrift(
                column=c["column"],
                test=c["test"],
                statistic=c["statistic"],
                p_value=c["p_value"],
                threshold=c["threshold"],
                drifted=c["drifted"],
                kind=c.get("kind", "numeric"),
                measure=c.get("measure", "distance"),
                n_reference=c.get("n_reference", 0),
                n_current=c.get("n_current", 0),
                distribution=c.get("distribution", {}),
            )
            for c in d["columns"]
        ]
        return cls(
            columns, d.get("drift_share", DRIFT_SHARE), d.get("correction"), d.get("skipped", {})
        )


def adjust(p_values: list[float], method: str) -> list[float]:
    """p-values adjusted for multiple testing: ``bonferroni``, ``holm`` (step-down) or
    ``fdr_bh`` (Benjamini-Hochberg), as statsmodels' ``multipletests`` computes them."""
    m = len(p_values)
    if m == 0:
        return []
    p = np.asarray(p_values, float)
    if method == "bonferroni":
        return [float(v) for v in np.minimum(p * m, 1.0)]
    order = np.argsort(p)
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum((m - np.arange(m)) * ranked, 1.0))
    elif method == "fdr_bh":
        adj = np.minimum.accumulate(m / np.arange(m, 0, -1) * ranked[::-1])[::-1]
        adj = np.minimum(adj, 1.0)
    else:
        raise InvalidInput(
            f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)} or none."
        )
    out = np.empty(m)
    out[order] = adj
    return [float(v) for v in out]


def _distribution(reference: Sample, current: Sample) -> dict[str, Any]:
    """Shares of each side on common bins: 20 equal-width bins over the middle 99% of both
    (numeric), or the 12 most frequent categories plus "other"."""
    if isinstance(reference, NumericSample) and isinstance(current, NumericSample):
        ends = np.array([0.005, 0.995])
        span = [_span(reference, ends), _span(current, ends)]
        lo, hi = min(s[0] for s in span), max(s[1] for s in span)
        if not hi > lo:
            hi = lo + 1.0

        def shares(s: NumericSample) -> list[float]:
            cdf = s.grid_cdf(lo, hi, 20)[0]
            cdf[0] = 0.0
            cdf[-1] = 1.0
            return [round(float(v), 6) for v in np.diff(cdf)]

        return {
            "edges": [float(e) for e in np.linspace(lo, hi, 21)],
            "reference": shares(reference),
            "current": shares(current),
        }
    assert isinstance(reference, CategoricalSample)
    assert isinstance(current, CategoricalSample)
    keys, ref, cur = _frequencies(reference, current)
    rs, cs = ref / max(ref.sum(), 1e-12), cur / max(cur.sum(), 1e-12)
    order = np.argsort(-(rs + cs), kind="stable")[:12]
    out = {
        "categories": [keys[i] for i in order],
        "reference": [round(float(rs[i]), 6) for i in order],
        "current": [round(float(cs[i]), 6) for i in order],
    }
    if len(keys) > len(order):
        out["categories"].append("(other)")
        out["reference"].append(round(1 - sum(out["reference"]), 6))
        out["current"].append(round(1 - sum(out["current"]), 6))
    return out


def _span(sample: NumericSample, ends: np.ndarray) -> tuple[float, float]:
    """The middle of a sample: its 0.5% and 99.5% quantiles, or mean +- 3 std for raw values
    not sorted (so a report never sorts what the tests did not)."""
    if sample.weights is None and not sample.is_sorted:
        return sample.mean - 3 * sample.std, sample.mean + 3 * sample.std
    q = sample.quantiles(ends)
    return float(q[0]), float(q[1])


def _choose(
    column: str, kind: str, tests: str | Mapping[str, str] | None, n: int, distinct: int | None
) -> str:
    if isinstance(tests, str):
        return tests
    if tests:
        if column in tests:
            return tests[column]
        if kind in tests:
            return tests[kind]
    return default_test(kind, n, distinct)


@dataclass(frozen=True)
class _Settings:
    thresholds: dict[str, float]
    tests: str | Mapping[str, str] | None
    distributions: bool


def _column(work: tuple[str, Side, Side, _Settings]) -> ColumnDrift | str:
    """One column's result, or why it was skipped."""
    name, ref_side, cur_side, settings = work
    tests, thresholds = settings.tests, settings.thresholds
    kind, cur_kind = ref_side.kind(name), cur_side.kind(name)
    if "other" in (kind, cur_kind):
        for side in (ref_side, cur_side):
            if not side.has_values(name):  # all null: typed null by a CSV or Arrow reader
                return f"no values in the {side.what} data"
        return "unsupported type (neither numeric nor categorical)"
    if kind != cur_kind:
        return ColumnDrift(name, "type_changed", None, None, 0.0, True, kind, "distance")
    ref, cur = ref_side.sample(name, kind), cur_side.sample(name, kind)
    if ref.n == 0 or cur.n == 0:
        return f"no values in the {'reference' if ref.n == 0 else 'current'} data"
    distinct: int | None = None
    if isinstance(ref, NumericSample) and isinstance(cur, NumericSample):
        a = ref.distinct(FEW_VALUES)
        b = cur.distinct(FEW_VALUES) if a is not None else None
        if a is not None and b is not None:
            distinct = int(np.union1d(a, b).size)
    else:
        assert isinstance(ref, CategoricalSample)
        assert isinstance(cur, CategoricalSample)
        distinct = len(set(ref.counts) | set(cur.counts))
    test = get_test(_choose(name, kind, tests, min(ref.n, cur.n), distinct))
    as_kind = kind
    if kind == "numeric" and distinct is not None and "categorical" in test.kinds:
        as_kind = "categorical"  # at most FEW_VALUES values: compared by their frequencies
    if as_kind not in test.kinds:
        raise InvalidInput(
            f"test {test.name!r} compares {' or '.join(test.kinds)} columns; column "
            f"{name!r} is {kind}."
        )
    if as_kind != kind:
        assert isinstance(ref, NumericSample)
        assert isinstance(cur, NumericSample)
        ref_in: Sample = ref.as_categorical()
        cur_in: Sample = cur.as_categorical()
    else:
        ref_in, cur_in = ref, cur
    value = test.fn(ref_in, cur_in)
    stat, p = value if isinstance(value, tuple) else (value, None)
    threshold = float(thresholds.get(name, thresholds.get(test.name, test.threshold)))
    if test.measure == "p_value":
        drifted = p is not None and p < threshold
    else:
        drifted = stat is not None and math.isfinite(stat) and stat >= threshold
    return ColumnDrift(
        name,
        test.name,
        None if stat is None else float(stat),
        None if p is None else float(p),
        threshold,
        bool(drifted),
        as_kind,
        test.measure,
        ref.n,
        cur.n,
        _distribution(ref_in, cur_in) if settings.distributions else {},
    )


def compare(
    reference: Any,
    current: Any,
    *,
    columns: Iterable[str] | None = None,
    tests: str | Mapping[str, str] | None = None,
    correction: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = DRIFT_SHARE,
    distributions: bool = True,
) -> DriftReport:
    """Compare the columns of ``reference`` and ``current`` for drift.

    Each side is a pandas DataFrame, a pyarrow Table, a Parquet/CSV path or a stored
    :class:`~shipyard.data.profile.Profile` (so a reference is summarised once). ``columns``:
    which to compare (default: those both sides have). ``tests``: one test name for every column,
    or a mapping from column name or kind (``numeric`` / ``categorical``) to a test name; others
    get :func:`default_test`. ``thresholds``: per column or per test name. ``correction``:
    ``bonferroni``, ``holm`` or ``fdr_bh`` over the p-value tests. ``distributions``: keep
    per-column bin shares for reports.
    """
    if correction is not None and correction not in CORRECTIONS:
        raise InvalidInput(
            f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)} or none."
        )
    if not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share must be in (0, 1], not {drift_share}.")
    ref_side, cur_side = Side(reference, "reference"), Side(current, "current")
    ref_cols, cur_cols = ref_side.columns, set(cur_side.columns)
    if columns is None:
        names = [c for c in ref_cols if c in cur_cols]
    else:
        names = list(columns)
        missing = [c for c in names if c not in ref_cols or c not in cur_cols]
        if missing:
            raise InvalidInput(
                f"column(s) {missing} are not in both tables; the reference has "
                f"{sorted(ref_cols)}, the current {sorted(cur_cols)}."
            )
    if not names:
        raise InvalidInput(
            "the two tables have no column in common; compare tables with the same columns."
        )
    settings = _Settings(dict(thresholds or {}), tests, distributions)
    work = [(name, ref_side, cur_side, settings) for name in names]
    if len(names) > 1 and ref_side.num_rows + cur_side.num_rows >= PARALLEL_ROWS:
        # numpy's sorts and scans release the GIL: columns run side by side.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1, 8)) as pool:
            outcomes = list(pool.map(_column, work))
    else:
        outcomes = [_column(w) for w in work]
    results = [o for o in outcomes if isinstance(o, ColumnDrift)]
    skipped = {name: o for name, o in zip(names, outcomes, strict=True) if isinstance(o, str)}
    if correction is not None:
        tested = [r for r in results if r.measure == "p_value" and r.p_value is not None]
        raw = [float(r.p_value) for r in tested if r.p_value is not None]
        for r, adjusted in zip(tested, adjust(raw, correction), strict=True):
            r.p_value = adjusted
            r.drifted = adjusted < r.threshold
    return DriftReport(results, drift_share, correction, skipped)
