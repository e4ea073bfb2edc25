"""The controller's state machine on real stores and prediction logs: gate, shadow, canary
steps, promotion, automatic rollback, alerts, people's levers, and a restart mid-canary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.deploy import AbortConditions, Deployments, State, Window
from shipyard.errors import GateFailed, InvalidState
from shipyard.pipelines import fire_event
from shipyard.registry import Registry
from shipyard.store.deployments import DeploymentRecord
from shipyard.workspace import Workspace

from .conftest import MODEL, FakeTraffic, policy, register


def _deployed(ws: Workspace, deployments: Deployments, **kw: object) -> None:
    register(ws, {"auc": 0.80})
    deployments.apply(policy(**kw))
    rec = deployments.tick("churn-prod")
    assert rec.state == State.PROMOTED
    assert rec.stable_version == 1


def _actions(deployments: Deployments) -> list[str]:
    return [e.action for e in deployments.events("churn-prod")]


def test_first_version_is_gated_and_deployed(
    workspace: Workspace, deployments: Deployments
) -> None:
    _deployed(workspace, deployments)
    rec = deployments.get("churn-prod")
    assert rec.traffic == {
        "arms": [{"name": "v1", "model": "models:/churn/1", "weight": 100.0}],
        "shadow": [],
    }
    assert Registry(workspace).get_version_by_alias(MODEL, "champion").version == 1
    assert _actions(deployments) == ["applied", "gating", "gates_passed", "deployed"]
    history = Registry(workspace).history(MODEL)
    alias = [e for e in history if e.action == "alias_set"][-1]
    assert alias.user_id == "shipyard-controller"
    assert "churn-prod" in (alias.reason or "")
    assert deployments.tick("churn-prod").revision == rec.revision  # nothing new: no write


def test_a_failed_gate_blocks_with_value_and_threshold(
    workspace: Workspace, deployments: Deployments
) -> None:
    _deployed(workspace, deployments)
    register(workspace, {"auc": 0.70})  # champion has 0.80, max drop 0.02
    rec = deployments.tick("churn-prod")
    assert rec.state == State.BLOCKED
    assert rec.stable_version == 1
    event = deployments.events("churn-prod")[-1]
    assert event.action == "gates_failed"
    assert "auc vs champion" in event.message
    assert "0.7" in event.message
    assert "0.78" in event.message
    assert event.evidence["results"][1]["passed"] is False
    assert deployments.tick("churn-prod").state == State.BLOCKED  # not retried


def test_shadow_then_canary_steps_then_promotion(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    _deployed(workspace, deployments)
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    assert rec.state == State.SHADOW
    assert rec.candidate_version == 2
    assert rec.traffic["shadow"] == [{"name": "v2", "model": "models:/churn/2"}]
    traffic.send(rec.traffic, 10)
    assert deployments.tick("churn-prod").state == State.SHADOW  # window not full: 10/20
    traffic.send(rec.traffic, 15)
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.step) == (State.CANARY, 0)
    assert [a["weight"] for a in rec.traffic["arms"]] == [80.0, 20.0]
    assert rec.traffic["shadow"] == [{"name": "v1-baseline", "model": "models:/churn/1"}]
    traffic.send(rec.traffic, 200)
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.step) == (State.CANARY, 1)
    assert [a["weight"] for a in rec.traffic["arms"]] == [40.0, 60.0]
    traffic.send(rec.traffic, 100)
    rec = deployments.tick("churn-prod")
    assert rec.state == State.PROMOTED
    assert rec.stable_version == 2
    assert rec.traffic["arms"] == [{"name": "v2", "model": "models:/churn/2", "weight": 100.0}]
    assert Registry(workspace).get_version_by_alias(MODEL, "champion").version == 2
    actions = _actions(deployments)
    assert actions[4:] == [
        "gating",
        "gates_passed",
        "shadow_started",
        "analysis_passed",
        "canary_step",
        "analysis_passed",
        "canary_step",
        "analysis_passed",
        "promoted",
    ]
    assert actions[-1] == "promoted"
    passed = [e for e in deployments.events("churn-prod") if e.action == "analysis_passed"]
    signals = passed[-1].evidence["signals"]
    assert signals["labels"] >= 20
    assert signals["online"][0]["passed"] is True
    assert signals["latency_p99_ms"] == 5.0


def test_online_regression_rolls_back_during_canary(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    _deployed(workspace, deployments, abort=AbortConditions(error_rate=None, latency_p99_ms=100))
    register(workspace, {"auc": 0.81})  # offline fine, but it ranks at chance on live traffic
    rec = deployments.tick("churn-prod")
    traffic.send(rec.traffic, 25, quality={"v2": 0.5})
    rec = deployments.tick("churn-prod")
    assert rec.state == State.CANARY  # the shadow judges no labels (min_labels 0)
    traffic.send(rec.traffic, 300, quality={"v2": 0.5, "v1": 0.95})
    rec = deployments.tick("churn-prod")
    assert rec.state == State.ROLLED_BACK
    assert rec.stable_version == 1
    assert rec.traffic["arms"] == [{"name": "v1", "model": "models:/churn/1", "weight": 100.0}]
    last = deployments.events("churn-prod")[-1]
    assert last.action == "rolled_back"
    assert "during canary step 1" in last.message
    assert "online gate 'auc vs champion" in last.message
    assert Registry(workspace).get_version_by_alias(MODEL, "champion").version == 1
    assert deployments.tick("churn-prod").state == State.ROLLED_BACK  # v2 is not retried


def test_a_shadow_of_a_duration_waits_for_the_time_not_a_request_count(
    workspace: Workspace, traffic: FakeTraffic
) -> None:
    now = [time.time()]
    deployments = Deployments(workspace, clock=lambda: now[0])
    _deployed(
        workspace,
        deployments,
        shadow=Window(requests=1, duration_s=600),
        abort=AbortConditions(error_rate=None, prediction_drift=0.3),
    )
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    assert rec.state == State.SHADOW
    traffic.send(rec.traffic, 5, shift={"v2": 0.5})  # drifted, but 5 requests into 600 s
    rec = deployments.tick("churn-prod")
    assert rec.state == State.SHADOW
    assert rec.context["last_signals"]["missing"] == ["0/600s"]
    now[0] += 400  # past half the window: the distributions are judged now
    traffic.send(rec.traffic, 5, shift={"v2": 0.5})
    rec = deployments.tick("churn-prod")
    assert rec.state == State.ROLLED_BACK
    assert "prediction drift between arms" in deployments.events("churn-prod")[-1].message


def test_a_shadow_of_a_duration_passes_once_the_time_is_up(
    workspace: Workspace, traffic: FakeTraffic
) -> None:
    now = [time.time()]
    deployments = Deployments(workspace, clock=lambda: now[0])
    _deployed(workspace, deployments, shadow=Window(requests=1, duration_s=600))
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    traffic.send(rec.traffic, 3)
    assert deployments.tick("churn-prod").state == State.SHADOW
    now[0] += 601
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.step) == (State.CANARY, 0)
    passed = deployments.events("churn-prod")[-2]
    assert passed.action == "analysis_passed"
    assert passed.evidence["window"]["duration_s"] == 600
    assert passed.evidence["signals"]["requests"] == 3


def test_latency_abort_during_shadow(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    _deployed(workspace, deployments)
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    traffic.send(rec.traffic, 25, latency_ms=400)
    rec = deployments.tick("churn-prod")
    assert rec.state == State.ROLLED_BACK
    assert "latency p99 400.0 ms > 100" in deployments.events("churn-prod")[-1].message


def _in_canary(deployments: Deployments, traffic: FakeTraffic) -> DeploymentRecord:
    rec = deployments.tick("churn-prod")
    assert rec.state == State.SHADOW
    traffic.send(rec.traffic, 25)  # the shadow window (20 requests) passes cleanly
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.step) == (State.CANARY, 0)
    return rec


@pytest.mark.parametrize(
    ("abort", "phase", "send", "tripped"),
    [
        (
            AbortConditions(error_rate=0.05),
            "canary",
            {"errors": {"v2": 0.5}},
            "error rate",
        ),
        (
            AbortConditions(error_rate=None, prediction_drift=0.3),
            "shadow",
            {"shift": {"v2": 0.5}},
            "prediction drift between arms (KS)",
        ),
        (
            AbortConditions(error_rate=None, min_agreement=0.8),
            "shadow",
            {"quality": {"v2": 0.1}},
            "arm agreement",
        ),
        (
            AbortConditions(error_rate=None, latency_p99_ms=100),
            "canary",
            {"latency_ms": 400.0},
            "latency p99 400.0 ms > 100",
        ),
    ],
    ids=["error-rate", "prediction-drift", "agreement", "latency-p99"],
)
def test_each_abort_condition_rolls_back(
    workspace: Workspace,
    deployments: Deployments,
    traffic: FakeTraffic,
    abort: AbortConditions,
    phase: str,
    send: dict[str, object],
    tripped: str,
) -> None:
    _deployed(workspace, deployments, abort=abort)
    register(workspace, {"auc": 0.81})
    if phase == "canary":
        rec = _in_canary(deployments, traffic)
    else:
        rec = deployments.tick("churn-prod")
        assert rec.state == State.SHADOW
    if phase == "shadow":  # distributions are judged on half a window, not on 5 requests
        traffic.send(rec.traffic, 5, **send)  # type: ignore[arg-type]
        assert deployments.tick("churn-prod").state == State.SHADOW
    traffic.send(rec.traffic, 200, **send)  # type: ignore[arg-type]
    rec = deployments.tick("churn-prod")
    assert rec.state == State.ROLLED_BACK
    assert rec.stable_version == 1
    assert rec.traffic["arms"] == [{"name": "v1", "model": "models:/churn/1", "weight": 100.0}]
    last = deployments.events("churn-prod")[-1]
    assert last.action == "rolled_back"
    assert f"during {phase}" in last.message
    assert tripped in last.message
    assert last.evidence["phase"] == phase
    assert Registry(workspace).get_version_by_alias(MODEL, "champion").version == 1


def test_the_same_traffic_without_a_breach_is_not_rolled_back(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    abort = AbortConditions(error_rate=0.05, prediction_drift=0.3, min_agreement=0.6)
    _deployed(workspace, deployments, abort=abort)
    register(workspace, {"auc": 0.81})
    rec = _in_canary(deployments, traffic)
    traffic.send(rec.traffic, 200, errors={"v2": 0.01})
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.step) == (State.CANARY, 1), deployments.events("churn-prod")[-1].message
    signals = deployments.events("churn-prod")[-2].evidence["signals"]
    assert signals["error_rate"] is not None
    assert signals["error_rate"] <= 0.05
    assert signals["agreement"] >= 0.6
    assert signals["prediction_drift"] <= 0.3


def test_alerts_hold_and_roll_back(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    _deployed(workspace, deployments)
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    payload = {"deployment": "churn-prod", "metric": "psi", "value": 0.4, "threshold": 0.2}
    fire_event("alert", "churn-drift", {**payload, "action": "hold"}, workspace=workspace)
    fire_event(
        "alert",
        "other-drift",
        {**payload, "deployment": "x", "action": "rollback"},
        workspace=workspace,
    )
    rec = deployments.tick("churn-prod")
    assert rec.state == State.PAUSED
    assert rec.paused_state == State.SHADOW
    traffic.send(rec.traffic, 30)
    assert deployments.tick("churn-prod").state == State.PAUSED  # no decision while paused
    rec = deployments.resume("churn-prod")
    assert rec.state == State.SHADOW
    fire_event("alert", "churn-drift", {**payload, "action": "rollback"}, workspace=workspace)
    rec = deployments.tick("churn-prod")
    assert rec.state == State.ROLLED_BACK
    assert [e.action for e in deployments.events("churn-prod")].count("alert") == 2


def test_apply_keeps_the_trigger_schedules_in_step_with_the_spec(
    workspace: Workspace, deployments: Deployments
) -> None:
    from dataclasses import replace

    from shipyard.deploy import Triggers

    register(workspace, {"auc": 0.80})
    triggers = Triggers(
        drift_pipeline="shipyard.deploy.flights:train",
        drift_params={"max_iter": 5},
        drift_filter="churn-*",
        schedule="0 3 * * *",
        schedule_pipeline="shipyard.deploy.flights:train",
    )
    deployments.apply(replace(policy(), triggers=triggers))
    schedules = {s.name: s for s in workspace.pipelines.list_schedules()}
    assert set(schedules) == {"deploy-churn-prod-drift", "deploy-churn-prod-schedule"}
    drift, cron = schedules["deploy-churn-prod-drift"], schedules["deploy-churn-prod-schedule"]
    assert (drift.reference, drift.params, drift.event_filter) == (
        "shipyard.deploy.flights:train",
        {"max_iter": 5},
        "churn-*",
    )
    assert (drift.kind, drift.spec) == ("event", "alert")
    assert (cron.reference, cron.kind, cron.spec) == (
        "shipyard.deploy.flights:train",
        "cron",
        "0 3 * * *",
    )
    deployments.apply(replace(policy(), triggers=replace(triggers, schedule=None)))
    assert [s.name for s in workspace.pipelines.list_schedules()] == ["deploy-churn-prod-drift"]
    deployments.delete("churn-prod")
    assert workspace.pipelines.list_schedules() == []


def test_a_cron_trigger_retrains_and_the_new_version_rolls_out(
    workspace: Workspace, deployments: Deployments
) -> None:
    """The schedule trigger end to end: the pipeline scheduler fires the deployment's cron
    schedule, the pipeline registers a version, and the controller gates it and starts its
    shadow."""
    from dataclasses import replace

    from shipyard.deploy import Triggers
    from shipyard.pipelines.scheduler import Scheduler, next_cron_time

    _deployed(workspace, deployments)
    triggers = Triggers(schedule="0 3 * * *", schedule_pipeline="tests.deploy._retrain:retrain",
                        schedule_params={"auc": 0.82})  # fmt: skip
    deployments.apply(replace(policy(), triggers=triggers))
    scheduler = Scheduler(workspace)
    applied = int(time.time() * 1000)
    assert scheduler.tick(applied) == []  # 03:00 has not come yet
    due = next_cron_time("0 3 * * *", applied) + 1_000
    (run_id,) = scheduler.tick(due)
    run = workspace.pipelines.get_run(run_id)
    assert run.status == "SUCCEEDED"
    assert run.trigger["schedule"] == "deploy-churn-prod-schedule"
    assert Registry(workspace).get_version(MODEL, 2) is not None
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.candidate_version, rec.stable_version) == (State.SHADOW, 2, 1)
    assert _actions(deployments)[-3:] == ["gating", "gates_passed", "shadow_started"]


def test_a_version_a_deployment_adopted_meanwhile_is_not_deleted(
    workspace: Workspace, deployments: Deployments
) -> None:
    """The registry checks deployments before a delete, and the store asks again inside the
    delete's transaction, so a version a controller adopted in between (a new rollout's
    candidate) is kept; so is a model a deployment still serves."""
    _deployed(workspace, deployments)
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.candidate_version) == (State.SHADOW, 2)
    # The store's own delete, as if the caller's check had run before the controller's tick.
    with pytest.raises(InvalidState, match="deployment 'churn-prod' still refer"):
        workspace.registry.delete_model_version(MODEL, 2)
    assert Registry(workspace).get_version(MODEL, 2).version == 2
    workspace.registry.delete_alias(MODEL, "champion")
    with pytest.raises(InvalidState, match="deployment 'churn-prod' still serve"):
        workspace.registry.delete_registered_model(MODEL)
    assert Registry(workspace).get_model(MODEL).name == MODEL


def test_people_promote_roll_back_pause(workspace: Workspace, deployments: Deployments) -> None:
    _deployed(workspace, deployments)
    with pytest.raises(InvalidState, match="no candidate in rollout"):
        deployments.promote("churn-prod")
    register(workspace, {"auc": 0.81})
    deployments.tick("churn-prod")
    rec = deployments.promote("churn-prod", user="alice", reason="urgent fix")
    assert rec.state == State.PROMOTED
    assert rec.stable_version == 2
    assert deployments.events("churn-prod")[-1].user_id == "alice"
    rec = deployments.rollback("churn-prod", user="bob")
    assert rec.state == State.ROLLED_BACK
    assert rec.stable_version == 1
    assert Registry(workspace).get_version_by_alias(MODEL, "champion").version == 1
    register(workspace, {"auc": 0.5})
    with pytest.raises(GateFailed) as err:
        deployments.promote("churn-prod", 3)
    assert "auc >= 0.6" in err.value.message
    assert "0.5" in err.value.message
    assert err.value.code == "GATE_FAILED"
    assert deployments.pause("churn-prod").state == State.PAUSED
    assert deployments.resume("churn-prod").state == State.ROLLED_BACK


def _controller(ws: Workspace, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHIPYARD_ARTIFACT_URI": ws.settings.artifact_uri}
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "--home",
                str(ws.settings.home),
                "controller",
                "--poll-interval",
                "0.2",
                "--no-scheduler",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _wait(deployments: Deployments, pred: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred(deployments.get("churn-prod")):  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out; deployment is {deployments.get('churn-prod')}")


@pytest.mark.slow
def test_a_killed_controller_resumes_the_canary_at_the_same_step(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic, tmp_path: Path
) -> None:
    _deployed(
        workspace,
        deployments,
        window=Window(requests=40, min_labels=40),
        abort=AbortConditions(error_rate=None),
    )
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    traffic.send(rec.traffic, 25)
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.step) == (State.CANARY, 0)
    log = tmp_path / "controller.log"
    proc = _controller(workspace, log)
    try:
        traffic.send(rec.traffic, 300)  # fills step 1's window: the controller moves on
        _wait(deployments, lambda r: r.step == 1)
        at_kill = deployments.get("churn-prod")
        traffic.send(at_kill.traffic, 40)  # ~24 of step 2's 40 requests before the kill
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    after = deployments.get("churn-prod")
    assert (after.state, after.step, after.step_started) == (State.CANARY, 1, at_kill.step_started)
    proc = _controller(workspace, log)
    try:
        time.sleep(1.0)  # it ticks a few times: the half-full window is not complete
        resumed = deployments.get("churn-prod")
        assert (resumed.state, resumed.step, resumed.step_started) == (
            State.CANARY,
            1,
            at_kill.step_started,
        )
        traffic.send(resumed.traffic, 60)  # the rest of the same window
        _wait(deployments, lambda r: r.state == State.PROMOTED)
    finally:
        proc.terminate()
        proc.wait(10)
    steps = [e for e in deployments.events("churn-prod") if e.action == "canary_step"]
    assert [e.evidence["step"] for e in steps] == [0, 1]  # no step repeated after the restart
    assert deployments.get("churn-prod").stable_version == 2
