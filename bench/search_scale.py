"""Search at scale: time ``search_runs`` of the SQL store over N runs, in process.

Populates one experiment with N runs (10 params, 5 tags + the run name tag, 20 metrics each,
seeded values) by bulk inserts straight into the tables, then times each query a number of
times and prints the medians. The store is what the SDK and the server call, so these figures
are the database part of a search (no HTTP)::

    .venv/bin/python bench/search_scale.py --runs 10000
    .venv/bin/python bench/search_scale.py --runs 100000 --backend sqlite
    .venv/bin/python bench/search_scale.py --runs 10000 --backend postgres \\
        --url postgresql://postgres@127.0.0.1:5432/test

With ``--backend postgres`` the runs go to a throwaway database created on the server of
``--url`` (default: ``$SHIPYARD_TEST_POSTGRES_URI``) and dropped afterwards. With sqlite the file
lives in a temp folder unless ``--db`` names one (an existing file with enough runs is reused).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shipyard.store import schema
from shipyard.store.db import Database
from shipyard.store.sql import SqlTrackingStore

EXPERIMENT = "search-scale"
PARAMS, TAGS, METRICS = 10, 5, 20
CHUNK = 1000  # runs per insert transaction
FILTER = "metrics.m1 > 0.5 and params.p1 = 'x'"
ORDER = ["metrics.m2 DESC"]
PAGE = 100
PAGES = 5


def rows_for(rng: random.Random, exp_id: int, first: int, count: int) -> dict[str, list[dict]]:
    """The rows of runs ``first .. first + count - 1``."""
    out: dict[str, list[dict]] = {"runs": [], "params": [], "tags": [], "metrics": []}
    base_ms = 1_700_000_000_000
    for i in range(first, first + count):
        run_id = f"{rng.getrandbits(128):032x}"
        start = base_ms + i * 1000
        out["runs"].append(
            {
                "run_id": run_id,
                "experiment_id": exp_id,
                "run_name": f"run-{i}",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": start,
                "end_time": start + 500,
                "lifecycle_stage": "active",
                "artifact_uri": f"mlflow-artifacts:/{exp_id}/{run_id}/artifacts",
                "parent_run_id": None,
            }
        )
        out["params"] += [
            {"run_id": run_id, "key": "p1", "value": rng.choice("xyzw")},
            *(
                {"run_id": run_id, "key": f"p{k}", "value": f"v{rng.randrange(100)}"}
                for k in range(PARAMS)
                if k != 1
            ),
        ]
        out["tags"] += [
            {"run_id": run_id, "key": "mlflow.runName", "value": f"run-{i}"},
            *(
                {"run_id": run_id, "key": f"t{k}", "value": f"tag-{rng.randrange(10)}"}
                for k in range(TAGS)
            ),
        ]
        out["metrics"] += [
            {
                "run_id": run_id,
                "key": f"m{k}",
                "step": 0,
                "timestamp": start + 100,
                "value": rng.random(),
                "is_nan": False,
            }
            for k in range(METRICS)
        ]
    return out


TABLES = (
    (schema.runs, "runs"),
    (schema.params, "params"),
    (schema.tags, "tags"),
    (schema.latest_metrics, "metrics"),
    (schema.metrics, "metrics"),
)


def _insert_many(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """One driver-level ``executemany`` (SQLAlchemy's per-row work would dominate otherwise)."""
    names = list(rows[0])
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    columns = ", ".join(f'"{n}"' for n in names)
    sql = f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join([mark] * len(names))})"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, [tuple(r[n] for n in names) for r in rows])
    finally:
        cursor.close()


def populate(url: str, n: int, seed: int) -> str:
    """Make sure the experiment holds ``n`` runs; return its id."""
    with SqlTrackingStore(url) as store:
        exp = store.get_experiment_by_name(EXPERIMENT)
        exp_id = exp.experiment_id if exp else store.create_experiment(EXPERIMENT)
    db = Database(url, pool_size=1)
    try:
        r = schema.runs.c
        have = db.read(
            lambda c: c.scalar(sa.select(sa.func.count()).where(r.experiment_id == int(exp_id)))
        )
        if have == n:
            print(f"reusing {n:,} runs in experiment {exp_id}")
            return exp_id
        if have:
            raise SystemExit(f"experiment {exp_id} holds {have:,} runs, not {n:,}; use a new --db")
        rng = random.Random(seed)
        started = time.perf_counter()
        for first in range(0, n, CHUNK):
            rows = rows_for(rng, int(exp_id), first, min(CHUNK, n - first))

            def insert(conn: sa.Connection, rows: dict[str, list[dict]] = rows) -> None:
                for table, name in TABLES:
                    _insert_many(conn, table, rows[name])

            db.write(insert)
        seconds = time.perf_counter() - started
        print(f"populated {n:,} runs in {seconds:.1f} s ({n / seconds:,.0f} runs/s)")
        return exp_id
    finally:
        db.dispose()


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median milliseconds of ``fn()`` over ``repeats`` calls after one warm-up, and a result."""
    result = fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def run_queries(url: str, exp_id: str, repeats: int) -> None:
    with SqlTrackingStore(url) as store:

        def search(
            filter_string: str = "", order_by: list[str] | None = None, token: str | None = None
        ) -> Any:
            return store.search_runs(
                [exp_id], filter_string, max_results=PAGE, order_by=order_by, page_token=token
            )

        def pages() -> list[str | None]:
            tokens: list[str | None] = [None]
            for _ in range(PAGES - 1):
                tokens.append(search(FILTER, ORDER, tokens[-1]).next_page_token)
            return tokens

        tokens = pages()
        cases: list[tuple[str, Callable[[], Any]]] = [
            (f"filter {FILTER!r} order {ORDER[0]!r}, page 1", lambda: search(FILTER, ORDER)),
            (f"same, page {PAGES} (keyset token)", lambda: search(FILTER, ORDER, tokens[-1])),
            (f"same, pages 1-{PAGES} one after another", pages),
            ("no filter, default order (newest first)", lambda: search()),
            ("no filter, order 'metrics.m2 DESC'", lambda: search("", ORDER)),
            (
                "filter \"tags.t1 = 'tag-3'\" order 'params.p2'",
                lambda: search("tags.t1 = 'tag-3'", ["params.p2"]),
            ),
        ]
        print(f"{'query (' + str(PAGE) + ' runs a page)':<66} {'median ms':>10} {'runs':>6}")
        for label, fn in cases:
            ms, result = timed(fn, repeats)
            found = len(result) if hasattr(result, "items") else PAGES * PAGE
            print(f"{label:<66} {ms:10.1f} {found:6}")


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.backend == "sqlite":
        if args.db:
            yield f"sqlite:///{Path(args.db).absolute()}"
            return
        with tempfile.TemporaryDirectory(prefix="shipyard-search-") as tmp:
            yield f"sqlite:///{tmp}/search.db"
        return
    server = args.url or os.environ.get("SHIPYARD_TEST_POSTGRES_URI")
    if not server:
        raise SystemExit("--backend postgres needs --url or $SHIPYARD_TEST_POSTGRES_URI")
    server = server.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"shipyard_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10_000, help="runs in the experiment")
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--url", help="postgres: the server to create a throwaway database on")
    p.add_argument("--db", help="sqlite: keep the database in this file (reused if populated)")
    p.add_argument("--repeats", type=int, default=15, help="timed calls per query")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--analyze", action="store_true", help="run ANALYZE after populating (planner stats)"
    )
    args = p.parse_args(argv)
    with database(args) as url:
        print(f"backend {args.backend}, {args.runs:,} runs, median of {args.repeats} calls")
        exp_id = populate(url, args.runs, args.seed)
        if args.analyze:
            db = Database(url, pool_size=1)
            db.write(lambda c: c.exec_driver_sql("ANALYZE"))
            db.dispose()
        run_queries(url, exp_id, args.repeats)


if __name__ == "__main__":
    main()
