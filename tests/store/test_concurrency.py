"""Many processes writing one workspace at once: every write lands, none sees "locked".

32 writers on SQLite and on PostgreSQL. The writers open a workspace that does not exist yet at
the same moment (so they also race to create the schema), then create runs and log params, tags and metrics through ``log_batch`` and single
calls, each to its own runs and all to one shared run. Processes come from a fork server that
has imported Shipyard once, so 16 of them start in well under a second.
"""

from __future__ import annotations

import multiprocessing
import traceback
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Settings
from shipyard.entities import Metric
from shipyard.store.sql import SqlTrackingStore
from shipyard.workspace import Workspace

PROCESSES = 32
RUNS_PER_PROCESS = 3
BATCHES_PER_RUN = 4
METRICS_PER_BATCH = 20
STEPS_ON_SHARED_RUN = 5


@pytest.fixture(scope="module")
def ctx() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["shipyard.store.sql", "shipyard.workspace", __name__])
    return context


def _settings(home: str, tracking_uri: str | None = None) -> Settings:
    return Settings.from_env({}, home=Path(home), tracking_uri=tracking_uri)


def _writer(
    index: int, home: str, shared: Any, barrier: Any, results: Any, uri: str | None = None
) -> None:
    """One process's writes; puts ``(index, run ids, None)`` or ``(index, [], traceback)``.

    Writer 0 creates the shared run and leaves its id in ``shared`` for the others.
    """
    try:
        barrier.wait(timeout=60)
        with Workspace.open(_settings(home, uri)) as ws:
            store = ws.store
            if index == 0:
                shared.value = store.create_run("0", run_name="shared").info.run_id.encode()
            barrier.wait(timeout=60)
            shared_run = shared.value.decode()
            run_ids = []
            for r in range(RUNS_PER_PROCESS):
                run = store.create_run("0", run_name=f"w{index}-r{r}")
                run_id = run.info.run_id
                run_ids.append(run_id)
                store.log_batch(
                    run_id,
                    params={f"p{k}": f"{index}-{r}-{k}" for k in range(10)},
                    tags={f"t{k}": f"{index}" for k in range(5)},
                )
                for b in range(BATCHES_PER_RUN):
                    points = [
                        Metric(f"m{k}", float(index * 1000 + b), 1_700_000_000_000 + b, b)
                        for k in range(METRICS_PER_BATCH)
                    ]
                    store.log_batch(run_id, metrics=points)
                store.log_batch(run_id, tags={"single": "yes"})
                store.log_batch(run_id, metrics=[Metric("single", 1.0, 1_700_000_000_000, 0)])
                store.update_run(run_id, status="FINISHED", end_time=1_700_000_000_999)
                for step in range(STEPS_ON_SHARED_RUN):
                    store.log_batch(
                        shared_run,
                        metrics=[Metric(f"w{index}", float(step), 1_700_000_000_000, step)],
                    )
            store.log_batch(shared_run, params={f"from_{index}": str(index)})
        results.put((index, run_ids, None))
    except BaseException:
        barrier.abort()  # the others stop waiting for this one
        results.put((index, [], traceback.format_exc()))


@pytest.mark.slow
def test_thirty_two_processes_write_one_sqlite_workspace(
    ctx: ForkServerContext, tmp_path: Path
) -> None:
    home = tmp_path / "ws"  # does not exist yet: the writers race to create it
    _write_concurrently(ctx, str(home), None)


@pytest.mark.slow
@pytest.mark.postgres
def test_thirty_two_processes_write_one_postgres_workspace(
    ctx: ForkServerContext, tmp_path: Path, postgres_uri: str
) -> None:
    # An empty database: the writers race to create the schema there too.
    _write_concurrently(ctx, str(tmp_path / "ws"), postgres_uri)


def _write_concurrently(ctx: ForkServerContext, home: str, uri: str | None) -> None:
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    shared = ctx.Array("c", 32)
    procs = [
        ctx.Process(target=_writer, args=(i, home, shared, barrier, results, uri))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    failures = {i: tb for i, _, tb in outcomes if tb is not None}
    assert failures == {}, "\n".join(failures.values())

    runs_by_writer = {i: run_ids for i, run_ids, _ in outcomes}
    assert sorted(runs_by_writer) == list(range(PROCESSES))
    store = SqlTrackingStore(_settings(home, uri).tracking_uri)
    try:
        shared_run = shared.value.decode()
        found = store.search_runs(["0"], max_results=1000)
        assert found.next_page_token is None
        assert len(found.items) == PROCESSES * RUNS_PER_PROCESS + 1

        for index, run_ids in runs_by_writer.items():
            assert len(run_ids) == RUNS_PER_PROCESS
            for r, run_id in enumerate(run_ids):
                run = store.get_run(run_id)
                assert run.info.status == "FINISHED"
                assert run.info.run_name == f"w{index}-r{r}"
                assert run.data.params == {f"p{k}": f"{index}-{r}-{k}" for k in range(10)}
                assert {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")} == {
                    **{f"t{k}": f"{index}" for k in range(5)},
                    "single": "yes",
                }
                last = float(index * 1000 + BATCHES_PER_RUN - 1)
                assert {k: m.value for k, m in run.data.metrics.items()} == {
                    **{f"m{k}": last for k in range(METRICS_PER_BATCH)},
                    "single": 1.0,
                }
                history = store.get_metric_history(run_id, "m7").items
                assert [m.step for m in history] == list(range(BATCHES_PER_RUN))

        together = store.get_run(shared_run)
        assert together.data.params == {f"from_{i}": str(i) for i in range(PROCESSES)}
        assert {k: m.value for k, m in together.data.metrics.items()} == {
            f"w{i}": float(STEPS_ON_SHARED_RUN - 1) for i in range(PROCESSES)
        }
        for i in range(PROCESSES):
            history = store.get_metric_history(shared_run, f"w{i}").items
            assert len(history) == RUNS_PER_PROCESS * STEPS_ON_SHARED_RUN
    finally:
        store.close()
    # Per run: its creation, 10 params, 6 tags, the metric points, the end; per writer also its
    # points and param on the shared run.
    per_run = 1 + 10 + 6 + BATCHES_PER_RUN * METRICS_PER_BATCH + 1 + 1
    writes = PROCESSES * (RUNS_PER_PROCESS * (per_run + STEPS_ON_SHARED_RUN) + 1)
    backend = "postgresql" if uri else "sqlite"
    print(f"\nconcurrency ({backend}): {PROCESSES} writer processes, {writes} writes checked")
