"""Drift report over a 1,000,000 x 25 table (20 numeric, 5 categorical): Shipyard vs Evidently's
data drift preset vs a bare numpy computation of the same statistics, in one run.

    .venv/bin/python bench/monitoring.py                  # full size, every system
    .venv/bin/python bench/monitoring.py --rows 100000    # smaller, while developing
    .venv/bin/python bench/monitoring.py --skip evidently

Systems (each in a fresh subprocess, on the same seeded tables; wall time and peak RSS above the
process's baseline once the tables are built):

* ``shipyard``: ``shipyard.monitoring.compare(reference, current)`` on two DataFrames;
* ``shipyard-profile``: the current side alone against the reference's stored profile
  (``Profile.from_batches`` once, not timed; then ``compare(profile, current)``);
* ``numpy``: the same statistics written by hand with numpy, as a competent engineer would (the
  goal's baseline): Wasserstein-1 by its textbook definition (sort both samples, merge them,
  integrate ``|F_ref - F_cur|`` over the merged support) / the reference's std for numeric
  columns, ``scipy.spatial.distance.jensenshannon`` over ``value_counts`` for categorical ones
  (the statistics Shipyard's defaults compute at this size); one thread, column by column. Before
  the timed run its Wasserstein is asserted equal to ``scipy.stats.wasserstein_distance`` on a
  subsample of every numeric column;
* ``numpy-threads``: the same with the columns on a thread pool of one thread per core (at most
  8), as Shipyard's ``compare`` does from 100,000 rows: Shipyard's overhead over the arithmetic;
* ``scipy``: the same with ``scipy.stats.wasserstein_distance`` for the numeric columns (the
  earlier baseline, kept for reference only: scipy 1.17's is several times slower than the
  sort it needs, so it is no yardstick for the goal);
* ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` (Evidently 0.7, in its
  own venv: ``python -m venv bench/.venv-evidently && bench/.venv-evidently/bin/pip install
  evidently==0.7.23 'pandas<3' psutil pyarrow``).

Five columns are shifted (x0-x2 by half a standard deviation, c0 and c1 moved shares); every
system's drifted columns are printed, and Evidently's per-column scores are compared with
Shipyard's (same definitions: Wasserstein over the reference's std, Jensen-Shannon over value
frequencies). Goals: >= 40x faster than Evidently, within 1.5x of numpy (not scipy), memory
under 2x the data, the stored-profile current side under half of Shipyard's full report.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMERIC, CATEGORICAL = 20, 5
EVIDENTLY_PY = ROOT / "bench" / ".venv-evidently" / "bin" / "python"


def make_tables(rows: int):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    levels = np.array([f"level_{k}" for k in range(12)], dtype=object)

    def table(seed: int, shifted: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        cols = {}
        for i in range(NUMERIC):
            shift = 0.5 * (1 + i) if shifted and i < 3 else 0.0
            cols[f"x{i}"] = rng.normal(loc=i + shift, scale=1 + i, size=rows)
        for i in range(CATEGORICAL):
            p = np.full(12, 1 / 12)
            if shifted and i < 2:
                p = np.array([0.3] + [0.7 / 11] * 11)
            cols[f"c{i}"] = levels[rng.choice(12, size=rows, p=p)]
        return pd.DataFrame(cols)

    return table(0, False), table(1, True)


def _measure(fn):  # type: ignore[no-untyped-def]
    """``(fn(), seconds, peak RSS above the baseline)``, with data_profile.py's sampler."""
    sys.path.insert(0, str(ROOT / "bench"))
    from data_profile import _measure as measure

    box = []
    elapsed, peak = measure(lambda: box.append(fn()))
    return box[0], elapsed, peak


def _wasserstein1(r, c) -> float:  # type: ignore[no-untyped-def]
    """Wasserstein-1 between two samples: ``∫|F_r - F_c|`` over the merged sorted values."""
    import numpy as np

    values = np.concatenate([np.sort(r), np.sort(c)])
    order = np.argsort(values, kind="stable")  # two sorted runs: a linear merge
    from_r = order < r.size
    cdf_r = np.cumsum(from_r) / r.size
    cdf_c = np.cumsum(~from_r) / c.size
    return float(np.dot(np.abs(cdf_r[:-1] - cdf_c[:-1]), np.diff(values[order])))


def _jensenshannon(ref, cur, name: str) -> float:  # type: ignore[no-untyped-def]
    from scipy.spatial.distance import jensenshannon

    a, b = ref[name].value_counts(), cur[name].value_counts()
    keys = a.index.union(b.index)
    return float(jensenshannon(a.reindex(keys, fill_value=0).to_numpy(),
                               b.reindex(keys, fill_value=0).to_numpy()))  # fmt: skip


def _score(ref, cur, name: str, wasserstein) -> float:  # type: ignore[no-untyped-def]
    """One column's score by hand: Wasserstein-1 (``wasserstein``) over the reference's
    spread for a numeric column, the Jensen-Shannon distance of the value counts otherwise."""
    import numpy as np

    if ref[name].dtype.kind == "f":
        r, c = ref[name].to_numpy(), cur[name].to_numpy()
        return float(wasserstein(r, c) / max(np.std(r), 0.001))
    return _jensenshannon(ref, cur, name)


def _numpy(ref, cur):  # type: ignore[no-untyped-def]
    """The goal's baseline: the statistics by hand, numpy for Wasserstein."""
    return {name: _score(ref, cur, name, _wasserstein1) for name in ref.columns}


def _numpy_threads(ref, cur):  # type: ignore[no-untyped-def]
    """The same, columns on a thread pool of one thread per core (as Shipyard's compare)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    names = list(ref.columns)
    with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1, 8)) as pool:
        scores = pool.map(lambda name: _score(ref, cur, name, _wasserstein1), names)
        return dict(zip(names, scores, strict=True))


def _scipy(ref, cur):  # type: ignore[no-untyped-def]
    """The earlier baseline: ``scipy.stats.wasserstein_distance`` (slow in scipy 1.17)."""
    from scipy.stats import wasserstein_distance

    return {name: _score(ref, cur, name, wasserstein_distance) for name in ref.columns}


def _check_numpy(ref, cur, rows: int = 20_000) -> None:
    """The hand-written Wasserstein equals scipy's, on a subsample of every numeric column."""
    from scipy.stats import wasserstein_distance

    for name in ref.columns:
        if ref[name].dtype.kind == "f":
            r, c = ref[name].to_numpy()[:rows], cur[name].to_numpy()[: rows // 2]
            mine, theirs = _wasserstein1(r, c), wasserstein_distance(r, c)
            assert abs(mine - theirs) <= 1e-12 * max(1.0, abs(theirs)), (name, mine, theirs)


def _evidently(ref, cur):  # type: ignore[no-untyped-def]
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    return snapshot.dict()


def _evidently_scores(snapshot: dict) -> dict[str, float]:
    out = {}
    for metric in snapshot.get("metrics", []):
        config = metric.get("config") or {}
        if str(config.get("type", "")).endswith(":ValueDrift") and "column" in config:
            value = metric.get("value")
            if isinstance(value, int | float):
                out[str(config["column"])] = float(value)
    return out


def child(system: str, rows: int) -> None:
    """Run one system and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    ref, cur = make_tables(rows)
    data_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    result: dict = {"system": system, "rows": rows, "data_bytes": data_bytes}
    if system == "shipyard":
        from shipyard.monitoring import compare

        compare(ref.head(1000), cur.head(1000))  # imports and first-call costs
        report, elapsed, peak = _measure(lambda: compare(ref, cur))
        result["drifted"] = report.drifted_columns
        result["scores"] = {c.column: c.statistic for c in report.columns}
    elif system == "shipyard-profile":
        import pyarrow as pa

        from shipyard.data.profile import Profile
        from shipyard.monitoring import compare

        start = time.perf_counter()
        profile = Profile.from_batches(pa.Table.from_pandas(ref).to_batches(131_072))
        result["profile_s"] = time.perf_counter() - start
        compare(profile, cur.head(1000))
        report, elapsed, peak = _measure(lambda: compare(profile, cur))
        result["drifted"] = report.drifted_columns
        result["scores"] = {c.column: c.statistic for c in report.columns}
    elif system in ("numpy", "numpy-threads", "scipy"):
        fn = {"numpy": _numpy, "numpy-threads": _numpy_threads, "scipy": _scipy}[system]
        if system == "numpy":
            _check_numpy(ref, cur)
        fn(ref.head(1000), cur.head(1000))
        scores, elapsed, peak = _measure(lambda: fn(ref, cur))
        result["scores"] = scores
        result["drifted"] = [k for k, v in scores.items() if v >= 0.1]
    elif system == "evidently":
        snapshot, elapsed, peak = _measure(lambda: _evidently(ref, cur))
        scores = _evidently_scores(snapshot)
        result["scores"] = scores
        result["drifted"] = [k for k, v in scores.items() if v >= 0.1]
    else:
        raise SystemExit(f"unknown system {system}")
    result.update(seconds=elapsed, peak_bytes=peak)
    print(json.dumps(result))


def _run(system: str, rows: int) -> dict:
    python = str(EVIDENTLY_PY) if system == "evidently" else sys.executable
    env_cmd = [python, __file__, "--child", system, "--rows", str(rows)]
    out = subprocess.run(env_cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{system} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip", default="", help="comma-separated systems to skip")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows)
        return
    every = ("shipyard", "shipyard-profile", "numpy", "numpy-threads", "scipy", "evidently")
    systems = [s for s in every
               if s not in args.skip.split(",")]  # fmt: skip
    if "evidently" in systems and not EVIDENTLY_PY.exists():
        print(f"{EVIDENTLY_PY} is missing; see the docstring, or --skip evidently.")
        systems.remove("evidently")
    results = {s: _run(s, args.rows) for s in systems}
    data = results[systems[0]]["data_bytes"]
    print(f"drift report, {args.rows:,} x {NUMERIC + CATEGORICAL} reference and current "
          f"({data / 1e6:.0f} MB of data in memory)\n")  # fmt: skip
    print(f"{'system':<18}{'seconds':>10}{'peak MB':>10}{'x data':>8}  drifted columns")
    for s, r in results.items():
        print(f"{s:<18}{r['seconds']:>10.2f}{r['peak_bytes'] / 1e6:>10.0f}"
              f"{r['peak_bytes'] / data:>8.2f}  {','.join(sorted(r['drifted']))}")  # fmt: skip
    ship = results.get("shipyard")
    if ship:
        print()
        if "evidently" in results:
            print(f"Evidently / Shipyard time: {results['evidently']['seconds'] / ship['seconds']:.1f}x"
                  " (goal >= 40x)")  # fmt: skip
            common = set(results["evidently"]["scores"]) & set(ship["scores"])
            if common:
                gap = max(
                    abs(results["evidently"]["scores"][c] - ship["scores"][c]) for c in common
                )
                print(f"largest |Evidently - Shipyard| score over {len(common)} columns: {gap:.2e}")
        if "numpy" in results:
            print(f"Shipyard / numpy time: {ship['seconds'] / results['numpy']['seconds']:.2f}x "
                  "(goal <= 1.5x)")  # fmt: skip
        if "numpy-threads" in results:
            print(f"Shipyard / numpy-threads time: "
                  f"{ship['seconds'] / results['numpy-threads']['seconds']:.2f}x "
                  "(the same on a thread pool, as Shipyard's compare)")  # fmt: skip
        if "scipy" in results:
            print(f"Shipyard / scipy time: {ship['seconds'] / results['scipy']['seconds']:.2f}x "
                  "(the earlier, slow baseline; not the goal's)")  # fmt: skip
        for base in ("numpy", "numpy-threads", "scipy"):
            if base in results:
                gap = max(
                    abs(results[base]["scores"][c] - ship["scores"][c]) for c in ship["scores"]
                )
                print(f"largest |{base} - Shipyard| score: {gap:.2e}")
        print(f"Shipyard peak memory / data: {ship['peak_bytes'] / data:.2f}x (goal < 2x)")
        if "shipyard-profile" in results:
            prof = results["shipyard-profile"]
            print(f"stored-profile current side / full report: "
                  f"{prof['seconds'] / ship['seconds']:.2f} (goal < 0.5); reference profiled "
                  f"once in {prof['profile_s']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
