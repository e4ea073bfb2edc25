"""How close the tracking store's hot paths are to what SQLite itself costs.

For the log-batch workload of ``bench/run`` (a) (one batch of 10 params, 5 tags and 20 metrics per
run) and the 10,000-point history read of (b), this times, in one process on one SQLite file:

* ``store``: Shipyard's ``SqlTrackingStore`` (``log_batch``, ``get_metric_history_rows``);
* ``driver``: the standard library's ``sqlite3`` running the very same statements (the run check,
  the param insert, the tag upsert, the metric insert and the latest-metric upsert, in one
  ``BEGIN IMMEDIATE`` ... ``COMMIT``; the same history query with ``fetchall``) with no
  validation, no SQLAlchemy and no Python objects beyond the driver's tuples.

The driver's figure is a ceiling for any server on this store design: a log-batch over HTTP costs
at least that plus the request. Figures are CPU time (``time.process_time``) and wall time per
operation, medians of ``--repeat`` rounds.

    .venv/bin/python bench/store_floor.py            # --runs 200 --points 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from shipyard.config import Settings
from shipyard.entities import Metric
from shipyard.store._sql_logging import (
    _history_select,
    _latest_upsert,
    _metrics_insert,
    _params_insert,
    _run_stage_select,
    _tags_upsert,
)
from shipyard.workspace import Workspace

Batch = tuple[list[Metric], dict[str, str], dict[str, str]]


def _timed(fn, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shipyard-floor-") as tmp:
        ws = Workspace.open(Settings.from_env({"SHIPYARD_HOME": str(Path(tmp) / "home")}))
        store = ws.store
        eid = store.create_experiment("floor")
        db = sqlite3.connect(
            ws.settings.tracking_uri.removeprefix("sqlite:///"), isolation_level=None
        )
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        stage, params, tags = (
            _run_stage_select("sqlite"),
            _params_insert("sqlite"),
            _tags_upsert("sqlite"),
        )
        metrics, latest = _metrics_insert("sqlite"), _latest_upsert("sqlite")
        now = int(time.time() * 1000)
        results: dict[str, list[tuple[float, float]]] = {"store": [], "driver": []}

        for round_ in range(args.repeat):
            runs = [store.create_run(eid).info.run_id for _ in range(2 * args.runs)]
            store_runs, driver_runs = runs[: args.runs], runs[args.runs :]
            batch = (
                [Metric(f"m{i}", 0.5 + i, now, round_) for i in range(20)],
                {f"p{i}": "v" * 10 for i in range(10)},
                {f"t{i}": "v" * 10 for i in range(5)},
            )

            def with_store(store_runs: list[str] = store_runs, batch: Batch = batch) -> None:
                for rid in store_runs:
                    store.log_batch(rid, *batch)

            def with_driver(driver_runs: list[str] = driver_runs, batch: Batch = batch) -> None:
                for rid in driver_runs:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute(stage, (rid,)).fetchone()
                    db.executemany(params, [(rid, k, v) for k, v in batch[1].items()])
                    db.executemany(tags, [(rid, k, v) for k, v in batch[2].items()])
                    rows = [(rid, m.key, m.step, m.timestamp, m.value, False, None, None, None)
                            for m in batch[0]]  # fmt: skip
                    db.executemany(metrics, rows)
                    db.executemany(latest, [r[:6] for r in rows])
                    db.execute("COMMIT")

            results["store"].append(_timed(with_store, args.runs))
            results["driver"].append(_timed(with_driver, args.runs))

        rid = store.create_run(eid).info.run_id
        for start in range(0, args.points, 1000):
            store.log_batch(
                rid, [Metric("h", float(i), now, i) for i in range(start, start + 1000)]
            )
        query = _history_select("sqlite", False)
        reads: dict[str, list[tuple[float, float]]] = {"store": [], "driver": []}
        for _ in range(args.repeat):
            reads["store"].append(_timed(lambda: store.get_metric_history_rows(rid, "h"), 1))
            reads["driver"].append(
                _timed(lambda: db.execute(query, (rid, "h", 2**62, 0)).fetchall(), 1)
            )
        db.close()
        ws.close()

    def med(samples: list[tuple[float, float]]) -> tuple[float, float]:
        return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)

    print(f"log-batch of 35 values, {args.runs} runs x {args.repeat} rounds (ms per batch):")
    for name, samples in results.items():
        cpu, wall = med(samples)
        print(
            f"  {name:<7} cpu {cpu:6.3f}  wall {wall:6.3f}  -> at most {35 / wall * 1000:9,.0f} values/s"
        )
    print(f"history read of {args.points:,} points (ms per read):")
    for name, samples in reads.items():
        cpu, wall = med(samples)
        print(f"  {name:<7} cpu {cpu:6.2f}  wall {wall:6.2f}")


if __name__ == "__main__":
    main()
