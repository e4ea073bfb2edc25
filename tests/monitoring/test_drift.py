"""Drift tests: values equal scipy's, defaults flag exactly the shifted columns at every size,
stable columns false-alarm at (or below) the nominal rate, stored profiles stand in for the
reference, plugins, corrections and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.stats as st
from scipy.spatial.distance import jensenshannon

from shipyard.data.profile import Profile
from shipyard.errors import InvalidInput
from shipyard.monitoring import compare, drift_tests, register_drift_test
from shipyard.monitoring import drift as d
from shipyard.monitoring.samples import categorical_sample, numeric_sample

LEVELS = np.array([f"level_{k}" for k in range(8)])


def _table(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    """6 numeric + 3 categorical + 1 binary column; with ``shifted``, x0, x1 (0.5 sd), c0 (a
    category's share moves from 1/8 to 1/3) and b0 (30% -> 50%) move, and x5 shifts by a
    negligible 0.02 sd that must not count."""
    cols: dict[str, object] = {}
    for i in range(6):
        shift = 0.5 if shifted and i < 2 else (0.02 if shifted and i == 5 else 0.0)
        cols[f"x{i}"] = rng.normal(loc=i + shift * (1 + i), scale=1 + i, size=n)
    for i in range(3):
        p = np.full(8, 1 / 8)
        if shifted and i == 0:
            p = np.array([1 / 3] + [2 / 21] * 7)
        cols[f"c{i}"] = LEVELS[rng.choice(8, size=n, p=p)]
    cols["b0"] = rng.random(n) < (0.5 if shifted else 0.3)
    return pd.DataFrame(cols)


SHIFTED = {"x0", "x1", "c0", "b0"}


# ---------------------------------------------------------------------------- values


def test_numeric_values_equal_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=700), rng.normal(0.2, 1.3, size=911)
    a[::50] = a[1::50]  # ties
    ra, rb = numeric_sample(a), numeric_sample(b)
    assert d.wasserstein_distance(ra, rb) == pytest.approx(st.wasserstein_distance(a, b), 1e-12)
    assert d.wasserstein(ra, rb) == pytest.approx(st.wasserstein_distance(a, b) / np.std(a))
    stat, p = d.ks(ra, rb)
    ref = st.ks_2samp(a, b)
    assert (stat, p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    edges = np.quantile(a, np.arange(1, 10) / 10, method="inverted_cdf")
    ca = np.diff(np.concatenate([[0], np.searchsorted(np.sort(a), edges, "right"), [a.size]]))
    cb = np.diff(np.concatenate([[0], np.searchsorted(np.sort(b), edges, "right"), [b.size]]))
    assert d.jensenshannon(ra, rb) == pytest.approx(jensenshannon(ca, cb))
    pa_, pb = np.maximum(ca / ca.sum(), 1e-4), np.maximum(cb / cb.sum(), 1e-4)
    assert d.psi(ra, rb) == pytest.approx(float(np.sum((pb - pa_) * np.log(pb / pa_))))


def test_categorical_values_equal_scipy() -> None:
    ra = categorical_sample({"a": 30, "b": 50, "c": 20})
    rb = categorical_sample({"a": 40, "b": 41, "c": 25, "d": 3})
    chi2, p = d.chisquare(ra, rb)
    ref = st.chi2_contingency([[30, 50, 20, 0], [40, 41, 25, 3]], correction=False)
    assert (chi2, p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert d.jensenshannon(ra, rb) == pytest.approx(jensenshannon([30, 50, 20, 0], [40, 41, 25, 3]))
    ea, eb = np.array([30, 50, 20, 0]) / 100, np.array([40, 41, 25, 3]) / 109
    ea, eb = np.maximum(ea, 1e-4), np.maximum(eb, 1e-4)
    assert d.psi(ra, rb) == pytest.approx(float(np.sum((eb - ea) * np.log(eb / ea))))
    # the Z-test for two proportions is the square root of the 2x2 chi-square
    ba, bb = categorical_sample({True: 30, False: 70}), categorical_sample({True: 45, False: 55})
    z, pz = d.z(ba, bb)
    ref2 = st.chi2_contingency([[70, 30], [55, 45]], correction=False)
    assert z * z == pytest.approx(ref2.statistic)
    assert pz == pytest.approx(ref2.pvalue)


def test_stored_profile_reference_is_close_to_the_exact_values() -> None:
    rng = np.random.default_rng(2)
    ref, cur = _table(rng, 50_000, False), _table(rng, 50_000, True)
    profile = Profile.from_batches(pa.Table.from_pandas(ref).to_batches(8192))
    exact, sketched = compare(ref, cur), compare(profile, cur)
    assert exact.drifted_columns == sketched.drifted_columns
    for a, b in zip(exact.columns, sketched.columns, strict=True):
        assert (a.column, a.test) == (b.column, b.test)
        assert b.statistic == pytest.approx(a.statistic, abs=0.03)


# ---------------------------------------------------------------------------- defaults


@pytest.mark.parametrize("n", [1000, 20_000, 200_000])
def test_exactly_the_shifted_columns_drift(n: int) -> None:
    rng = np.random.default_rng(n)
    report = compare(_table(rng, n, False), _table(rng, n, True))
    assert set(report.drifted_columns) == SHIFTED
    assert report.share_drifted == pytest.approx(len(SHIFTED) / 10)
    assert not report.dataset_drift
    tests = {c.column: c.test for c in report.columns}
    assert tests["x0"] == "wasserstein"
    assert tests["c0"] == "jensenshannon"


@pytest.mark.slow
def test_exactly_the_shifted_columns_drift_at_a_million_rows() -> None:
    rng = np.random.default_rng(7)
    report = compare(_table(rng, 1_000_000, False), _table(rng, 1_000_000, True))
    assert set(report.drifted_columns) == SHIFTED


def test_small_samples_use_two_sample_tests_and_find_the_shifts() -> None:
    rng = np.random.default_rng(3)
    report = compare(_table(rng, 800, False), _table(rng, 800, True))
    tests = {c.column: c.test for c in report.columns}
    assert tests == {**dict.fromkeys([f"x{i}" for i in range(6)], "ks"),
                     **dict.fromkeys(["c0", "c1", "c2"], "chisquare"), "b0": "z"}  # fmt: skip
    assert set(report.drifted_columns) >= SHIFTED


def test_false_alarms_on_stable_data_are_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(4)
    trials, alarms = 300, {"ks": 0, "chisquare": 0, "z": 0}
    for _ in range(trials):
        a, b = rng.normal(size=200), rng.normal(size=200)
        ca, cb = LEVELS[rng.integers(0, 8, 200)], LEVELS[rng.integers(0, 8, 200)]
        ba, bb = rng.random(200) < 0.3, rng.random(200) < 0.3
        report = compare(pd.DataFrame({"x": a, "c": ca, "b": ba}),
                         pd.DataFrame({"x": b, "c": cb, "b": bb}), distributions=False)  # fmt: skip
        for c in report.columns:
            alarms[c.test] += c.drifted
    # alpha 0.05: 15 of 300 expected; a binomial 99.9% band is about [4, 30]
    for test, count in alarms.items():
        assert 4 <= count <= 30, (test, count)


def test_many_valued_columns_keep_the_two_sample_test_until_the_distance_is_quiet() -> None:
    # 40 values at 1500 rows: stable data's Jensen-Shannon distance is about 0.08, so a 0.1
    # threshold would flag a third of stable columns; chi-square keeps the nominal 5%
    rng = np.random.default_rng(12)
    levels = np.array([f"v{i}" for i in range(40)])
    trials, alarms = 300, 0
    for _ in range(trials):
        a, b = levels[rng.integers(0, 40, 1500)], levels[rng.integers(0, 40, 1500)]
        (c,) = compare(pd.DataFrame({"c": a}), pd.DataFrame({"c": b}), distributions=False).columns
        assert c.test == "chisquare"
        alarms += c.drifted
    assert 4 <= alarms <= 30
    big = [levels[rng.integers(0, 40, 4000)] for _ in range(2)]
    (c,) = compare(pd.DataFrame({"c": big[0]}), pd.DataFrame({"c": big[1]})).columns
    assert (c.test, c.drifted) == ("jensenshannon", False)  # 4000 >= 100 x 39
    assert d.default_test("categorical", 1500, 40) == "chisquare"
    assert d.default_test("categorical", 3900, 40) == "jensenshannon"


@pytest.mark.slow
def test_false_alarms_where_the_distances_take_over_are_at_most_nominal() -> None:
    # at 1000 rows (the smallest size where distances decide), stable normal columns cross the
    # Wasserstein threshold about 4% of the time and categorical ones almost never
    rng = np.random.default_rng(13)
    trials, alarms = 200, {"numeric": 0, "categorical": 0}
    for _ in range(trials):
        report = compare(_table(rng, 1000, False), _table(rng, 1000, False), distributions=False)
        assert {c.test for c in report.columns} == {"wasserstein", "jensenshannon"}
        for c in report.columns:
            alarms["numeric" if c.test == "wasserstein" else "categorical"] += c.drifted
    # 1200 numeric trials at about 4%: 48 expected, 99.9% band about [28, 72]
    assert alarms["numeric"] / (trials * 6) <= 0.065
    assert alarms["categorical"] / (trials * 4) <= 0.01


def test_large_samples_do_not_flag_negligible_shifts() -> None:
    rng = np.random.default_rng(5)
    alarms = 0
    for _ in range(40):
        report = compare(_table(rng, 5000, False), _table(rng, 5000, False), distributions=False)
        alarms += len(report.drifted_columns)
    assert alarms / (40 * 10) <= 0.05


# ---------------------------------------------------------------------------- options


def test_choosing_tests_thresholds_and_corrections() -> None:
    rng = np.random.default_rng(6)
    ref, cur = _table(rng, 600, False), _table(rng, 600, True)
    report = compare(ref, cur, tests={"numeric": "psi", "c0": "jensenshannon"},
                     thresholds={"psi": 0.2}, columns=["x0", "x2", "c0", "c1"])  # fmt: skip
    assert [(c.column, c.test) for c in report.columns] == [
        ("x0", "psi"), ("x2", "psi"), ("c0", "jensenshannon"), ("c1", "chisquare")]  # fmt: skip
    assert report.column("x0").threshold == 0.2
    plain = compare(ref, cur)
    corrected = compare(ref, cur, correction="bonferroni")
    tested = [c for c in plain.columns if c.p_value is not None]
    for a in tested:
        b = corrected.column(a.column)
        assert b.p_value == pytest.approx(min(a.p_value * len(tested), 1.0))
        assert b.drifted == (b.p_value < 0.05)
    holm = d.adjust([0.01, 0.04, 0.03], "holm")
    assert holm == pytest.approx([0.03, 0.06, 0.06])
    bh = d.adjust([0.01, 0.04, 0.03], "fdr_bh")
    assert bh == pytest.approx([0.03, 0.04, 0.04])


def test_user_tests_are_plugins() -> None:
    @register_drift_test("mean_gap", kinds=("numeric",), threshold=0.5, replace=True)
    def mean_gap(reference, current):  # type: ignore[no-untyped-def]
        """Difference of means in reference standard deviations."""
        return abs(current.mean - reference.mean) / reference.std

    assert "mean_gap" in drift_tests()
    rng = np.random.default_rng(8)
    report = compare(
        _table(rng, 2000, False), _table(rng, 2000, True), tests={"numeric": "mean_gap"}
    )
    assert {c.column for c in report.columns if c.drifted and c.test == "mean_gap"} == {"x0", "x1"}
    with pytest.raises(InvalidInput, match="already"):
        register_drift_test("mean_gap", mean_gap)


def test_report_shape_and_bad_input() -> None:
    rng = np.random.default_rng(9)
    report = compare(_table(rng, 300, False), _table(rng, 300, True))
    out = report.to_dict()
    assert set(out) == {"dataset_drift", "share_drifted", "columns"}
    assert set(out["columns"][0]) == {"column", "test", "statistic", "p_value", "threshold",
                                      "drifted"}  # fmt: skip
    full = report.to_dict(full=True)
    assert d.DriftReport.from_dict(full).to_dict() == out
    with pytest.raises(InvalidInput, match="not in both"):
        compare(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}), columns=["a"])
    with pytest.raises(InvalidInput, match="no column in common"):
        compare(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}))
    with pytest.raises(InvalidInput, match="no drift test"):
        compare(pd.DataFrame({"a": [1.0, 2]}), pd.DataFrame({"a": [1.0, 3]}), tests="nope")
    with pytest.raises(InvalidInput, match="DataFrame"):
        compare([1, 2], pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InvalidInput, match="compares categorical"):
        compare(pd.DataFrame({"a": np.arange(10.0)}), pd.DataFrame({"a": np.arange(10.0)}),
                tests="chisquare")  # fmt: skip
    empty = compare(pd.DataFrame({"a": [math.nan] * 3, "b": [1.0, 2, 3]}),
                    pd.DataFrame({"a": [1.0, 2, 3], "b": [1.0, 2, 4]}))  # fmt: skip
    assert "a" in empty.skipped
    assert [c.column for c in empty.columns] == ["b"]


def test_files_and_arrow_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(10)
    ref, cur = _table(rng, 3000, False), _table(rng, 3000, True)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    from_files = compare(tmp_path / "ref.parquet", str(tmp_path / "cur.csv"))
    from_frames = compare(pa.Table.from_pandas(ref), cur)
    assert set(from_files.drifted_columns) == set(from_frames.drifted_columns) == SHIFTED


def test_numeric_columns_with_few_values_are_compared_by_frequency() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"k": rng.integers(0, 3, 500).astype(float), "b": rng.integers(0, 2, 500)})
    cur = pd.DataFrame({"k": rng.integers(0, 3, 500).astype(float), "b": rng.integers(0, 2, 500)})
    small = compare(ref, cur)
    assert [(c.column, c.test, c.kind) for c in small.columns] == [
        ("k", "chisquare", "categorical"),
        ("b", "z", "categorical"),
    ]
    counts = [np.bincount(ref["k"].astype(int), minlength=3),
              np.bincount(cur["k"].astype(int), minlength=3)]  # fmt: skip
    assert small.column("k").statistic == pytest.approx(
        st.chi2_contingency(counts, correction=False).statistic
    )
    big = compare(pd.concat([ref] * 4), pd.concat([cur] * 4))
    assert [c.test for c in big.columns] == ["jensenshannon", "jensenshannon"]


def test_infinite_values_do_not_hide_drift() -> None:
    """An infinite value is not an observation (like NaN): it must not turn the distance into
    NaN, which reads as "no drift" however far the rest moved."""
    rng = np.random.default_rng(21)
    ref = pd.DataFrame({"a": np.r_[rng.normal(size=2999), -np.inf]})
    cur = pd.DataFrame({"a": np.r_[rng.normal(loc=1.0, size=2999), np.inf]})
    raw = compare(ref, cur).column("a")
    assert raw.test == "wasserstein"
    assert raw.drifted
    assert raw.statistic is not None
    assert math.isfinite(raw.statistic)
    assert raw.n_reference == raw.n_current == 2999
    profile = Profile.from_batches(pa.Table.from_pandas(ref).to_batches())  # inf: a null
    stored = compare(profile, cur).column("a")
    assert stored.drifted
    assert stored.statistic == pytest.approx(raw.statistic, rel=0.05)
    stable = compare(profile, pd.DataFrame({"a": rng.normal(size=3000)})).column("a")
    assert not stable.drifted
