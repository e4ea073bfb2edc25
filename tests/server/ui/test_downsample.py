from __future__ import annotations

import numpy as np
import pytest

from shipyard.server.ui._downsample import minmax_buckets, series_json


def test_short_series_pass_through_unchanged() -> None:
    x, y = minmax_buckets([0, 1, 2], [3.0, 1.0, 2.0], points=100)
    assert x.tolist() == [0, 1, 2]
    assert y.tolist() == [3.0, 1.0, 2.0]


def test_long_series_keep_every_bucket_extreme_and_the_ends() -> None:
    rng = np.random.default_rng(3)
    n = 100_000
    x = np.arange(n, dtype=float)
    y = rng.normal(size=n)
    y[12_345] = 99.0  # a spike an average would hide
    y[77_777] = -99.0
    xs, ys = minmax_buckets(x, y, points=1000)
    assert len(xs) <= 1000
    assert np.all(np.diff(xs) > 0)  # x still ascending, no duplicates
    assert xs[0] == 0
    assert xs[-1] == n - 1
    assert 99.0 in ys
    assert -99.0 in ys
    assert ys.max() == y.max()
    assert ys.min() == y.min()
    # every kept point is a real point of the series
    assert np.array_equal(y[xs.astype(int)], ys)


@pytest.mark.parametrize("n", [5, 999, 1001, 4097])
def test_bucket_edges_do_not_lose_the_tail(n: int) -> None:
    y = np.arange(n, dtype=float)
    xs, ys = minmax_buckets(np.arange(n), y, points=10)
    assert ys[-1] == n - 1
    assert len(xs) <= max(10, 4) or n <= 10


def test_non_finite_values_are_left_out() -> None:
    xs, ys = minmax_buckets([0, 1, 2, 3], [1.0, float("nan"), float("inf"), 2.0])
    assert xs.tolist() == [0, 3]
    assert ys.tolist() == [1.0, 2.0]


def test_series_json_reports_what_it_dropped() -> None:
    out = series_json(np.arange(50_000), np.sin(np.arange(50_000) / 100), points=500)
    assert out["total"] == 50_000
    assert out["downsampled"] is True
    assert out["shown"] == len(out["x"]) == len(out["y"]) <= 500
