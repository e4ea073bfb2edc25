"""Profiles: statistics against pandas/numpy, merging, diffs and skew."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from shipyard.data.profile import Profile, diff_profiles, skew


def _table(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=n)
    x[::10] = np.nan
    return pa.table(
        {
            "x": x,
            "i": pa.array(rng.integers(0, 100, n)),
            "c": pa.array(np.array(["a", "b", "c"])[rng.integers(0, 3, n)]).dictionary_encode(),
            "flag": pa.array(rng.integers(0, 2, n).astype(bool)),
        }
    )


def test_statistics_match_numpy() -> None:
    table = _table(50_000, 1)
    p = Profile.from_batches(table.to_batches(max_chunksize=7_000))
    x = table["x"].to_numpy()
    col = p.columns["x"].summary()
    assert col["count"] == 50_000
    assert col["nulls"] == 5_000
    assert col["mean"] == pytest.approx(np.nanmean(x))
    assert col["std"] == pytest.approx(np.nanstd(x, ddof=1))
    assert (col["min"], col["max"]) == (np.nanmin(x), np.nanmax(x))
    assert col["quantiles"]["0.5"] == pytest.approx(np.nanmedian(x), abs=0.05)
    assert sum(col["histogram"]["counts"]) == pytest.approx(45_000, rel=1e-6)
    cats = p.columns["c"].summary()
    assert {e["value"] for e in cats["top"]} == {"a", "b", "c"}
    assert cats["top_exact"]
    assert p.columns["i"].summary()["distinct"] == pytest.approx(100, abs=3)
    assert p.columns["flag"].summary()["top"][0]["value"] in ("true", "false")


def test_merging_windows_equals_profiling_the_whole() -> None:
    table = _table(40_000, 2)
    whole = Profile.from_batches(table.to_batches())
    halves = [Profile.from_batches(table.slice(o, 20_000).to_batches()) for o in (0, 20_000)]
    merged = halves[0].merge(halves[1])
    a, b = whole.columns["x"].summary(), merged.columns["x"].summary()
    for key in ("count", "nulls", "min", "max"):
        assert a[key] == b[key]
    assert a["mean"] == pytest.approx(b["mean"])
    assert a["std"] == pytest.approx(b["std"])
    assert merged.columns["c"].frequent.counts == whole.columns["c"].frequent.counts  # type: ignore[union-attr]
    restored = Profile.from_dict(json.loads(json.dumps(merged.to_dict())))
    assert restored.summary() == merged.summary()


def test_diff_flags_only_the_shifted_column() -> None:
    base = Profile.from_batches(_table(20_000, 3).to_batches())
    same = Profile.from_batches(_table(20_000, 4).to_batches())
    moved = Profile.from_batches(_table(20_000, 4, shift=1.5).to_batches())
    assert diff_profiles(base, same).drifted_columns == []
    result = diff_profiles(base, moved)
    assert result.drifted_columns == ["x"]
    x = next(c for c in result.columns if c.column == "x")
    assert x.changes["mean"]["delta"] == pytest.approx(1.5, abs=0.05)
    assert x.distance["ks"] > 0.4


def test_skew_reports_the_label_absent_in_serving_and_new_categories() -> None:
    train = _table(5_000, 5)
    serving: Any = train.drop_columns(["flag"]).to_pandas()
    serving["c"] = serving["c"].astype(str)
    serving.loc[:99, "c"] = "zzz"
    result = skew(Profile.from_batches(train.to_batches()), Profile.from_batches(
        pa.Table.from_pandas(serving, preserve_index=False).to_batches()
    ))  # fmt: skip
    by_name = {c.column: c for c in result.columns}
    assert by_name["flag"].status == "removed"
    assert by_name["c"].new_categories == ["zzz"]
    assert by_name["i"].status == "unchanged"
