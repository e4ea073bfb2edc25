"""Feature store: Shipyard vs Feast (default local offline store, SQLite online store) vs bare
DuckDB, side by side in one run.

    .venv/bin/python bench/features.py                 # full size: 1,000,000 feature rows
    .venv/bin/python bench/features.py --scale 0.1     # a tenth, to develop

Data (fixed seed): ``--rows`` feature rows (three features, an event time and a created time)
over ``--entities`` entities spread over 30 days, and ``--entity-rows`` entity rows with
timestamps; TTL one day, so some entity rows have only out-of-TTL candidates (Shipyard and
bare DuckDB return NULL features for them; the count Feast returns is printed too).

Measured in two fresh subprocesses (Shipyard with bare DuckDB interleaved in one, Feast in the
other): the training set (point-in-time join; Shipyard's ``get_training_set`` from the entity
Parquet file, Feast's ``get_historical_features`` on the ``file`` offline store, and the bare
DuckDB ``ASOF LEFT JOIN`` + TTL ``CASE`` over the same Parquet files; medians of 5 runs, Feast's
of 2), materializing the latest values into SQLite, and online reads of 1 and 100 keys (median
of many calls).
Feast runs from its own environment, ``bench/.venv-feast``::

    python -m venv bench/.venv-feast && bench/.venv-feast/bin/pip install feast==0.67.0 duckdb
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FEAST_PYTHON = ROOT / "bench" / ".venv-feast" / "bin" / "python"
T0 = datetime(2026, 1, 1)
DAYS = 30
TTL = timedelta(days=1)
FEATURES = ("f0", "f1", "f2")
REPEATS = 5


def make_data(folder: Path, rows: int, entities: int, entity_rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    span_us = DAYS * 86_400 * 1_000_000
    base = int(T0.replace(tzinfo=UTC).timestamp() * 1_000_000)
    ts = base + rng.integers(0, span_us, rows)
    created = ts + rng.integers(0, 3_600_000_000, rows)
    table = pa.table(
        {
            "customer_id": rng.integers(0, entities, rows).astype("int64"),
            "ts": pa.array(ts, pa.timestamp("us")),
            "created": pa.array(created, pa.timestamp("us")),
            "f0": rng.normal(size=rows),
            "f1": rng.normal(size=rows),
            "f2": rng.integers(0, 1000, rows).astype("int64"),
        }
    )
    pq.write_table(table, folder / "features.parquet")
    ets = base + rng.integers(0, span_us, entity_rows)
    pq.write_table(
        pa.table(
            {
                "customer_id": rng.integers(0, entities, entity_rows).astype("int64"),
                "event_timestamp": pa.array(ets, pa.timestamp("us")),
            }
        ),
        folder / "entities.parquet",
    )


def measure(fn: Any) -> tuple[float, int, Any]:
    """Seconds, peak RSS growth and the result of ``fn()`` (the data benchmark's probe)."""
    from data_profile import _measure

    out: list[Any] = []
    seconds, extra = _measure(lambda: out.append(fn()))
    return seconds, extra, out[0]


def per_call(fn: Any, n: int) -> float:
    """Median seconds per call over ``n`` calls (after 20 warm-up calls)."""
    for _ in range(20):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _keys(entities: int, n: int, seed: int) -> list[list[dict[str, int]]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [[{"customer_id": int(k)} for k in rng.integers(0, entities, n)] for _ in range(50)]


# ---------------------------------------------------------------------------- children


def bare_duckdb(folder: Path) -> Any:
    """The bare DuckDB point-in-time join: ``ASOF LEFT JOIN`` + TTL ``CASE`` over the Parquet
    files (no created-time tie-break, no order kept); returns a function that runs it."""
    import duckdb

    con = duckdb.connect()
    entity = str(folder / "entities.parquet")
    feats = str(folder / "features.parquet")
    ttl_us = int(TTL.total_seconds() * 1_000_000)
    cases = ", ".join(
        f"CASE WHEN f.ts >= e.event_timestamp - to_microseconds({ttl_us}) THEN f.{c} END AS {c}"
        for c in FEATURES
    )
    sql = (
        f"SELECT e.customer_id, e.event_timestamp, {cases} FROM read_parquet('{entity}') e "
        f"ASOF LEFT JOIN read_parquet('{feats}') f "
        "ON e.customer_id = f.customer_id AND e.event_timestamp >= f.ts"
    )
    return lambda: con.sql(sql).to_arrow_table()


def _rows(table: Any) -> list[tuple[Any, ...]]:
    """A table's (key, timestamp, features) rows in a canonical order (NULLs as a marker)."""
    cols = [table.column(c).to_pylist() for c in ("customer_id", "event_timestamp", *FEATURES)]
    return sorted(tuple("null" if v is None else v for v in row) for row in zip(*cols, strict=True))


def child_shipyard(folder: Path, entities: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import pyarrow.parquet as pq

    from shipyard.config import Settings
    from shipyard.features import (
        Entity,
        FeatureService,
        FeatureStore,
        FeatureView,
        Field,
        FileSource,
    )
    from shipyard.workspace import Workspace

    ws = Workspace.open(Settings.from_env({}, home=folder / "shipyard"))
    fs = FeatureStore(ws)
    customer = Entity("customer", join_keys=["customer_id"])
    view = FeatureView(
        "stats",
        entities=[customer],
        features=[Field("f0", "float64"), Field("f1", "float64"), Field("f2", "int64")],
        source=FileSource(
            str(folder / "features.parquet"), event_time="ts", created_time="created"
        ),
        ttl=TTL,
    )
    fs.apply([customer, view, FeatureService("svc", features=[view])])
    bare = bare_duckdb(folder)
    runs, bare_runs = [], []
    for _ in range(REPEATS):  # interleaved, so both see the same load
        bare_runs.append(measure(bare))
        # what a user pays: the Parquet entity rows read, the join, the table back
        runs.append(
            measure(
                lambda: fs.get_training_set(
                    pq.read_table(folder / "entities.parquet"), "svc"
                ).to_arrow()
            )
        )
    table, bare_table = runs[-1][2], bare_runs[-1][2]
    mat_s, _, _ = measure(lambda: fs.materialize(end=T0 + timedelta(days=DAYS + 1)))
    now = T0 + timedelta(days=DAYS)
    one, hundred = _keys(entities, 1, 1), _keys(entities, 100, 2)
    it1, it100 = iter(range(10**9)), iter(range(10**9))
    refs = ["stats:f0", "stats:f1", "stats:f2"]
    t1 = per_call(lambda: fs.get_online_features(refs, one[next(it1) % 50], now=now), 2000)
    t100 = per_call(lambda: fs.get_online_features(refs, hundred[next(it100) % 50], now=now), 300)
    sample = fs.get_online_features(refs, hundred[0], now=now).to_dict()
    fs.close()
    ws.close()
    return {
        "training_s": statistics.median(r[0] for r in runs),
        "training_all_s": [round(r[0], 3) for r in runs],
        "training_rss": max(r[1] for r in runs),
        "rows": table.num_rows,
        "null_rows": table.column("f0").null_count,
        "materialize_s": mat_s,
        "online_1_s": t1,
        "online_100_s": t100,
        "online_sample_nonnull": sum(v is not None for v in sample["f0"]),
        "agrees_with_duckdb": _rows(table) == _rows(bare_table),
        "duckdb": {
            "training_s": statistics.median(r[0] for r in bare_runs),
            "training_all_s": [round(r[0], 3) for r in bare_runs],
            "training_rss": max(r[1] for r in bare_runs),
            "rows": bare_table.num_rows,
            "null_rows": bare_table.column("f0").null_count,
        },
    }


def child_feast(folder: Path, entities: int) -> dict[str, Any]:
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    repo = folder / "feast"
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        "online_store:\n  type: sqlite\n"
        f"  path: {repo / 'online.db'}\n"
        "offline_store:\n  type: file\n"
        "entity_key_serialization_version: 3\n"
    )
    store = FeatureStore(repo_path=str(repo))
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="stats",
        entities=[customer],
        ttl=TTL,
        schema=[Field(name="f0", dtype=Float64), Field(name="f1", dtype=Float64),
                Field(name="f2", dtype=Int64)],
        source=FileSource(
            path=str(folder / "features.parquet"),
            timestamp_field="ts",
            created_timestamp_column="created",
        ),
        online=True,
    )  # fmt: skip
    store.apply([customer, view])
    entity = pd.read_parquet(folder / "entities.parquet")
    refs = ["stats:f0", "stats:f1", "stats:f2"]
    runs = [
        measure(lambda: store.get_historical_features(entity_df=entity, features=refs).to_df())
        for _ in range(2)
    ]
    frame = runs[-1][2]
    mat_s, _, _ = measure(
        lambda: store.materialize(
            start_date=T0 - timedelta(days=1), end_date=T0 + timedelta(days=DAYS + 1)
        )
    )
    one, hundred = _keys(entities, 1, 1), _keys(entities, 100, 2)
    it1, it100 = iter(range(10**9)), iter(range(10**9))
    t1 = per_call(
        lambda: store.get_online_features(features=refs, entity_rows=one[next(it1) % 50]).to_dict(),
        500,
    )
    t100 = per_call(
        lambda: store.get_online_features(
            features=refs, entity_rows=hundred[next(it100) % 50]
        ).to_dict(),
        60,
    )
    return {
        "training_s": statistics.median(r[0] for r in runs),
        "training_rss": max(r[1] for r in runs),
        "rows": len(frame),
        "null_rows": int(frame["f0"].isna().sum()),
        "materialize_s": mat_s,
        "online_1_s": t1,
        "online_100_s": t100,
    }


# ---------------------------------------------------------------------------- driver


def _run_child(python: Path | str, which: str, folder: Path, entities: int) -> dict[str, Any]:
    out = subprocess.run(
        [str(python), __file__, "--child", which, "--folder", str(folder),
         "--entities", str(entities)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"{which} failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--child")
    parser.add_argument("--folder")
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--no-feast", action="store_true")
    args = parser.parse_args()
    if args.child:
        folder = Path(args.folder)
        fn = {"shipyard": child_shipyard, "feast": child_feast}[args.child]
        print(json.dumps(fn(folder, args.entities)))
        return
    rows, entity_rows = int(1_000_000 * args.scale), int(100_000 * args.scale)
    entities = max(100, int(10_000 * args.scale))
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-features-") as tmp:
        folder = Path(tmp)
        make_data(folder, rows, entities, entity_rows)
        print(
            f"{rows:,} feature rows, {entities:,} entities, {entity_rows:,} entity rows, TTL {TTL}"
        )
        results = {"shipyard": _run_child(sys.executable, "shipyard", folder, entities)}
        results["duckdb"] = results["shipyard"].pop("duckdb")
        if not args.no_feast:
            if not FEAST_PYTHON.exists():
                raise SystemExit(
                    f"no Feast environment at {FEAST_PYTHON}; see this file's docstring"
                )
            results["feast"] = _run_child(FEAST_PYTHON, "feast", folder, entities)
    s, d = results["shipyard"], results["duckdb"]
    print(f"\n{'':24}{'shipyard':>12}{'bare duckdb':>14}{'feast':>12}")
    f = results.get("feast", {})

    def line(label: str, key: str, scale: float, unit: str) -> None:
        def cell(r: dict[str, Any], w: int) -> str:
            return f"{r[key] * scale:>{w}.3f}" if key in r else f"{'-':>{w}}"

        print(f"{label:<24}{cell(s, 12)}{cell(d, 14)}{cell(f, 12)}  {unit}")

    line("training set", "training_s", 1, "s")
    line("training set peak RSS", "training_rss", 1 / 2**20, "MiB")
    print(f"{'training rows / NULL':<24}{s['rows']:>7,}/{s['null_rows']:<5,}"
          f"{d['rows']:>9,}/{d['null_rows']:<5,}"
          + (f"{f['rows']:>7,}/{f['null_rows']:<5,}" if f else ""))  # fmt: skip
    line("materialize (SQLite)", "materialize_s", 1, "s")
    line("online read, 1 key", "online_1_s", 1000, "ms")
    line("online read, 100 keys", "online_100_s", 1000, "ms")
    print(
        f"\ntraining set runs (s): shipyard {s['training_all_s']}, bare duckdb {d['training_all_s']}"
    )
    print(f"training set vs bare DuckDB: {s['training_s'] / d['training_s']:.2f}x the time "
          "(goal: within 1.5x)")  # fmt: skip
    print(f"training set rows equal to bare DuckDB's: {s['agrees_with_duckdb']}")
    if f:
        print(f"training set vs Feast:       {f['training_s'] / s['training_s']:.1f}x faster "
              "(goal: >= 10x)")  # fmt: skip
        print(f"online, 1 key vs Feast:      {f['online_1_s'] / s['online_1_s']:.1f}x faster "
              "(goal: >= 10x)")  # fmt: skip
        print(f"online, 100 keys vs Feast:   {f['online_100_s'] / s['online_100_s']:.1f}x faster "
              "(goal: >= 10x)")  # fmt: skip
        dropped = s["rows"] - f["rows"]
        print(f"Feast dropped {dropped:,} of {s['rows']:,} entity rows "
              f"({dropped / max(1, s['rows']):.1%}); Shipyard kept them with NULL features")  # fmt: skip


if __name__ == "__main__":
    main()
