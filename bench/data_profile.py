"""Profile a 1,000,000 x 25 table (20 numeric, 5 categorical) with Shipyard and an anchor.

    .venv/bin/python bench/data_profile.py                 # Shipyard only
    bench/.venv-data/bin/python bench/data_profile.py --anchor ydata   # the anchor (own venv)

Each profiler runs in a fresh subprocess on the same table (built from a fixed seed), which
reports wall time and peak RSS above the table's baseline. The anchor (ydata-profiling, minimal
mode) is installed only into bench/.venv-data: ``python -m venv bench/.venv-data &&
bench/.venv-data/bin/pip install ydata-profiling pyarrow psutil``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

ROWS, NUMERIC, CATEGORICAL = 1_000_000, 20, 5


def make_table():  # type: ignore[no-untyped-def]
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    cols = {f"x{i}": rng.normal(loc=i, scale=1 + i, size=ROWS) for i in range(NUMERIC)}
    levels = np.array([f"level_{k}" for k in range(12)])
    for i in range(CATEGORICAL):
        cols[f"c{i}"] = pa.array(levels[rng.integers(0, 12, ROWS)])
    return pa.table(cols)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _measure(fn) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    peak = [_rss()]
    base = peak[0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    return elapsed, max(peak[0], _rss()) - base


def child(which: str) -> None:
    table = make_table()
    if which == "shipyard":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from shipyard.data.profile import Profile

        def run() -> None:
            Profile.from_batches(table.to_batches(max_chunksize=131_072)).summary()
    else:
        import pandas as pd  # noqa: F401
        from ydata_profiling import ProfileReport

        frame = table.to_pandas()

        def run() -> None:
            ProfileReport(frame, minimal=True, progress_bar=False).get_description()

    seconds, extra = _measure(run)
    print(json.dumps({"profiler": which, "seconds": seconds, "peak_extra_bytes": extra,
                      "table_bytes": table.nbytes}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["shipyard", "ydata"])
    parser.add_argument("--anchor", choices=["ydata"], help="Also run the anchor (own venv).")
    parser.add_argument("--anchor-python", default="bench/.venv-data/bin/python")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    here = Path(__file__).resolve()
    results = []
    runs = [(sys.executable, "shipyard")]
    if args.anchor:
        runs.append((args.anchor_python, args.anchor))
    for python, which in runs:
        out = subprocess.run([python, str(here), "--child", which], capture_output=True,
                             text=True, check=True)  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for r in results:
        ratio = r["peak_extra_bytes"] / r["table_bytes"]
        print(f"{r['profiler']:>9}: {r['seconds']:7.2f} s, peak +{r['peak_extra_bytes'] / 2**20:7.1f} "
              f"MiB ({ratio:.2f}x the {r['table_bytes'] / 2**20:.0f} MiB Arrow table)")  # fmt: skip
    if len(results) == 2:
        print(
            f"time ratio (anchor / shipyard): {results[1]['seconds'] / results[0]['seconds']:.1f}x"
        )


if __name__ == "__main__":
    main()
