"""The mergeable sketches against exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.data.sketches import (
    FrequentItems,
    HyperLogLog,
    QuantileSketch,
    hash_numbers,
    hash_strings,
)


def _rank_error(sketch: QuantileSketch, data: np.ndarray, qs: list[float]) -> float:
    ordered = np.sort(data)
    got = sketch.quantiles(qs)
    ranks = [np.searchsorted(ordered, g) / data.size for g in got]
    return float(max(abs(r - q) for r, q in zip(ranks, qs, strict=True)))


def test_quantiles_are_within_two_percent_rank_and_merge() -> None:
    rng = np.random.default_rng(7)
    data = rng.lognormal(size=300_000)
    whole = QuantileSketch()
    for chunk in np.array_split(data, 17):
        whole.update(chunk)
    qs = [0.01, 0.1, 0.5, 0.9, 0.99]
    assert _rank_error(whole, data, qs) < 0.02
    a, b = QuantileSketch(), QuantileSketch()
    a.update(data[:100_000])
    b.update(data[100_000:])
    merged = a.merge(b)
    assert merged.n == data.size
    assert _rank_error(merged, data, qs) < 0.02
    again = QuantileSketch.from_dict(merged.to_dict())
    assert again.quantiles(qs) == merged.quantiles(qs)
    assert abs(merged.cdf([float(np.median(data))])[0] - 0.5) < 0.02


def test_small_quantile_sketches_are_exact() -> None:
    s = QuantileSketch()
    s.update(np.array([5.0, 1.0, 3.0]))
    assert s.quantiles([0.0, 0.5, 1.0]) == [1.0, 3.0, 5.0]
    assert QuantileSketch().quantiles([0.5]) == [None]


@pytest.mark.parametrize("n", [10, 1_000, 100_000])
def test_hyperloglog_estimates_and_merges(n: int) -> None:
    h = HyperLogLog()
    h.update(hash_numbers(np.arange(n)))
    h.update(hash_numbers(np.arange(n)))  # duplicates don't count
    assert abs(h.estimate() - n) / n < 0.05
    other = HyperLogLog()
    other.update(hash_numbers(np.arange(n, 2 * n)))
    assert abs(h.merge(other).estimate() - 2 * n) / (2 * n) < 0.05
    assert HyperLogLog.from_dict(h.to_dict()).estimate() == h.estimate()


def test_hashes_are_stable_and_type_blind() -> None:
    assert hash_numbers(np.array([1, 2]))[0] == hash_numbers(np.array([1.0, 2.0]))[0]
    assert hash_numbers(np.array([-0.0]))[0] == hash_numbers(np.array([0.0]))[0]
    assert hash_strings(["a"])[0] != hash_strings(["b"])[0]


def test_frequent_items_exact_then_bounded() -> None:
    f = FrequentItems(capacity=3)
    f.update({"a": 10, "b": 5})
    assert f.exact
    assert f.top(1) == [("a", 10)]
    f.update({"c": 1, "d": 1, "e": 1})
    assert not f.exact
    assert f.top(1)[0][0] == "a"
    merged = f.merge(FrequentItems.from_dict(f.to_dict()))
    assert merged.top(1)[0][0] == "a"
    assert merged.error == 2 * f.error
