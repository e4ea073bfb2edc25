"""The PipelineStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import errors
from shipyard.config import Settings
from shipyard.store.pipelines import PipelineRun, PipelineStore, Schedule, StepRun
from shipyard.workspace import Workspace


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PipelineStore]:
    uri = None if request.param == "sqlite" else request.getfixturevalue("postgres_uri")
    settings = Settings.from_env({}, home=tmp_path / "home", tracking_uri=uri)
    ws = Workspace.open(settings)
    try:
        yield ws.pipelines
    finally:
        ws.close()


def _run(store: PipelineStore, start: int = 1000, pipeline: str = "p") -> PipelineRun:
    run = PipelineRun(
        uuid.uuid4().hex, pipeline, "m:p", {"a": 1}, "RUNNING", "inprocess", True, start
    )
    return store.create_run(run)


def test_runs_and_step_runs_round_trip(store: PipelineStore) -> None:
    run = _run(store)
    with pytest.raises(errors.AlreadyExists):
        store.create_run(run)
    step = StepRun(
        uuid.uuid4().hex,
        run.run_id,
        "train",
        "SUCCEEDED",
        cache_key="k" * 64,
        cache_components={"code": "c"},
        attempts=2,
        start_time=1,
        end_time=1501,
        inputs={"x": [{"step": "a"}]},
        output={"kind": "json", "digest": "d", "owner": "ps-1", "files": []},
        logs="hello",
        executor="inprocess",
    )
    store.put_step_run(step)
    store.put_step_run(step)  # an upsert
    store.add_links(step.step_run_id, [{"kind": "model_version", "name": "m", "version": "3"}])
    got = store.get_run(run.run_id[:8]).step("train")
    assert got.attempts == 2
    assert got.inputs == step.inputs
    assert got.duration_s == 1.5
    assert got.links == [{"kind": "model_version", "name": "m", "version": "3"}]
    cached = store.find_cached("k" * 64)
    assert cached is not None
    assert cached.step_run_id == step.step_run_id
    assert store.find_cached("z" * 64) is None
    assert store.step_history("train")[0].step_run_id == step.step_run_id
    finished = store.finish_run(run.run_id, "FAILED", error="boom")
    assert finished.status == "FAILED"
    assert finished.end_time is not None
    assert finished.error == "boom"
    with pytest.raises(errors.NotFound):
        store.get_run("0" * 32)


def test_listing_runs_newest_first(store: PipelineStore) -> None:
    old, new = _run(store, 1000), _run(store, 2000)
    _run(store, 3000, pipeline="other")
    assert [r.run_id for r in store.list_runs(pipeline="p")] == [new.run_id, old.run_id]
    assert len(store.list_runs(max_results=2)) == 2


def test_schedules_claims_firings_and_events(store: PipelineStore) -> None:
    s = store.create_schedule(
        Schedule(0, "nightly", "m:p", "cron", "0 3 * * *", {"a": 1}, next_fire_time=5)
    )
    assert s.schedule_id > 0
    assert store.get_schedule("nightly").params == {"a": 1}
    with pytest.raises(errors.AlreadyExists):
        store.create_schedule(s)
    assert store.claim_fire_time(s.schedule_id, 5, 10)
    assert not store.claim_fire_time(s.schedule_id, 5, 11)  # someone else moved it
    assert store.claim_watermark(s.schedule_id, None, 7)
    assert not store.claim_watermark(s.schedule_id, None, 8)
    firing = store.record_firing(s, {"kind": "cron"}, "STARTED")
    store.update_firing(firing.firing_id, "SUCCEEDED", run_id="r" * 32)
    assert store.list_firings("nightly")[0].run_id == "r" * 32
    assert store.latest_event_id("alert") is None
    e1 = store.record_event("alert", "drift", {"psi": 0.3})
    e2 = store.record_event("alert", "drift", {"psi": 0.5})
    assert [e.event_id for e in store.events_after("alert", e1.event_id)] == [e2.event_id]
    assert store.latest_event_id("alert") == e2.event_id
    store.delete_schedule("nightly")
    with pytest.raises(errors.NotFound):
        store.delete_schedule("nightly")
    assert store.list_firings("nightly")  # firings outlive their schedule
