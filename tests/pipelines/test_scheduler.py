"""Schedules and triggers: cron parsing, interval firing, missed-slot policies, and event
triggers on dataset versions, model versions and alerts (polled from the database)."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from shipyard import errors
from shipyard.pipelines import fire_event
from shipyard.pipelines.scheduler import (
    GRACE_MS,
    Scheduler,
    add_schedule,
    next_cron_time,
    parse_cron,
)
from shipyard.workspace import Workspace

FAN = "tests.pipelines._example:fan"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_cron_expressions() -> None:
    assert parse_cron("*/15 3 * * 1-5")[0] == {0, 15, 30, 45}
    assert next_cron_time("0 3 * * *", _ms("2025-01-01T02:59:30")) == _ms("2025-01-01T03:00:00")
    assert next_cron_time("0 3 * * *", _ms("2025-01-01T03:00:00")) == _ms("2025-01-02T03:00:00")
    # Sunday is 0 (and 7); 2025-01-05 is a Sunday
    assert next_cron_time("30 12 * * 0", _ms("2025-01-01T00:00:00")) == _ms("2025-01-05T12:30:00")
    for bad in ("* * *", "61 * * * *", "a * * * *"):
        with pytest.raises(errors.InvalidInput):
            parse_cron(bad)


@pytest.mark.parametrize("every_s", [0.0, -1.0, float("nan"), float("inf")])
def test_an_interval_that_is_not_a_positive_finite_number_is_refused(
    workspace: Workspace, every_s: float
) -> None:
    with pytest.raises(errors.InvalidInput, match="--every must be a positive number"):
        add_schedule(workspace, "bad", FAN, every_s=every_s)
    assert workspace.pipelines.list_schedules() == []


def test_an_interval_schedule_fires_and_records_its_cause(workspace: Workspace) -> None:
    add_schedule(workspace, "often", FAN, every_s=0.2, params={"offset": 1})
    scheduler = Scheduler(workspace)
    assert scheduler.tick() == []  # not due yet
    time.sleep(0.25)
    now = int(time.time() * 1000)
    started = scheduler.tick(now)
    assert len(started) == 1
    run = workspace.pipelines.get_run(started[0])
    assert run.status == "SUCCEEDED"
    assert run.params["offset"] == 1
    assert run.trigger["schedule"] == "often"
    (firing,) = workspace.pipelines.list_firings("often")
    assert firing.status == "SUCCEEDED"
    assert firing.run_id == run.run_id
    assert firing.cause["kind"] == "interval"
    assert scheduler.tick(now) == []  # the slot is claimed: it fires once


def test_a_scheduler_running_in_the_background_fires_a_short_interval(workspace: Workspace) -> None:
    add_schedule(workspace, "bg", FAN, every_s=0.3)
    scheduler = Scheduler(workspace, poll_interval_s=0.1)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while not workspace.pipelines.list_firings("bg") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    assert workspace.pipelines.list_firings("bg")


@pytest.mark.parametrize(("policy", "runs"), [("skip", 1), ("catch_up", 4)])
def test_missed_slots_follow_the_policy(workspace: Workspace, policy: str, runs: int) -> None:
    schedule = add_schedule(workspace, "hourly", FAN, cron="0 * * * *", missed=policy)
    assert schedule.next_fire_time is not None
    # The scheduler was down for three slots, and comes back just after a fourth one.
    now = schedule.next_fire_time + 3 * 3_600_000 + GRACE_MS // 2
    started = Scheduler(workspace).tick(now)
    assert len(started) == runs
    firings = workspace.pipelines.list_firings("hourly")
    skipped = [f for f in firings if f.status == "SKIPPED"]
    if policy == "skip":
        assert len(skipped) == 1
        assert skipped[0].cause["slots"] == 3
    else:
        assert not skipped
        assert sum(1 for f in firings if f.cause.get("caught_up")) == 3
    assert (
        workspace.pipelines.get_schedule("hourly").next_fire_time
        == schedule.next_fire_time + 4 * 3_600_000
    )


def test_registering_a_dataset_version_triggers_the_attached_pipeline(workspace: Workspace) -> None:
    import pandas as pd

    from shipyard.data import Datasets

    datasets = Datasets(workspace)
    datasets.register(
        "early", pd.DataFrame({"a": [1, 2, 3]})
    )  # before the schedule: not an event for it
    add_schedule(workspace, "on-data", FAN, on="dataset_version", event_filter="churn*")
    scheduler = Scheduler(workspace)
    time.sleep(0.01)
    assert scheduler.tick() == []
    datasets.register("churn-events", pd.DataFrame({"a": [1, 2, 3, 4]}))
    datasets.register("other", pd.DataFrame({"b": [1]}))
    time.sleep(0.01)
    started = scheduler.tick()
    assert len(started) == 1
    (firing,) = workspace.pipelines.list_firings("on-data")
    assert firing.cause["name"] == "churn-events"
    assert firing.cause["version"] == 1
    assert scheduler.tick() == []  # the watermark moved


def test_registering_a_model_version_and_firing_an_alert_trigger_pipelines(
    workspace: Workspace,
) -> None:
    from shipyard.registry import Registry

    add_schedule(workspace, "on-model", FAN, on="model_version")
    add_schedule(workspace, "on-alert", FAN, on="alert", event_filter="drift-*")
    run = workspace.store.create_run("0")
    workspace.artifacts.upload(run.info.run_id, "model/MLmodel", __import__("io").BytesIO(b"x"))
    Registry(workspace).register_model_version("churn", f"runs:/{run.info.run_id}/model")
    fire_event("alert", "drift-churn", {"psi": 0.4}, workspace=workspace)
    fire_event("alert", "latency", {}, workspace=workspace)
    started = Scheduler(workspace).tick()
    assert len(started) == 2
    (model_firing,) = workspace.pipelines.list_firings("on-model")
    assert model_firing.cause["name"] == "churn"
    assert model_firing.cause["version"] == 1
    (alert_firing,) = workspace.pipelines.list_firings("on-alert")
    assert alert_firing.cause["psi"] == 0.4
    with pytest.raises(errors.InvalidInput, match="alert"):
        fire_event("model_version", "x", workspace=workspace)


def test_two_schedulers_fire_a_slot_once(workspace: Workspace) -> None:
    add_schedule(workspace, "once", FAN, every_s=0.1)
    time.sleep(0.15)
    now = int(time.time() * 1000)
    a, b = Scheduler(workspace), Scheduler(workspace)
    schedule = workspace.pipelines.get_schedule("once")
    assert workspace.pipelines.claim_fire_time(
        schedule.schedule_id, schedule.next_fire_time, now + 10_000
    )
    assert a.tick(now) == []
    assert b.tick(now) == []


@pytest.mark.parametrize("name", ["", "   ", " padded"])
def test_a_blank_schedule_name_is_refused(workspace: Workspace, name: str) -> None:
    with pytest.raises(errors.InvalidInput, match="must be 1 to 250 characters, not blank"):
        add_schedule(workspace, name, FAN, every_s=60)
    assert workspace.pipelines.list_schedules() == []
