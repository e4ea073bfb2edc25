"""State-machine edges of the controller: a policy re-applied mid-rollout, a promotion that
waits for registry approvals, and levers pulled from states that must refuse them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shipyard.deploy import AbortConditions, Deployments, State, Window
from shipyard.errors import InvalidState
from shipyard.registry import Registry
from shipyard.workspace import Workspace

from .conftest import MODEL, FakeTraffic, policy, register


def _deployed(ws: Workspace, deployments: Deployments, **kw: object) -> None:
    register(ws, {"auc": 0.80})
    deployments.apply(policy(**kw))
    assert deployments.tick("churn-prod").state == State.PROMOTED


def test_a_policy_reapplied_without_a_rollout_mid_canary_promotes_instead_of_sticking(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    _deployed(workspace, deployments, shadow=None, abort=AbortConditions(error_rate=None))
    register(workspace, {"auc": 0.81})
    assert deployments.tick("churn-prod").state == State.CANARY
    p = policy(shadow=None, abort=AbortConditions(error_rate=None))
    deployments.apply(replace(p, environments=(replace(p.environments[0], rollout=None),)))
    rec = deployments.tick("churn-prod")  # was: AssertionError on every tick, stuck in canary
    assert rec.state == State.PROMOTED
    assert rec.stable_version == 2
    assert rec.traffic["arms"] == [{"name": "v2", "model": "models:/churn/2", "weight": 100.0}]
    assert "no longer configures a rollout" in deployments.events("churn-prod")[-1].message


def test_a_promotion_waiting_for_approvals_waits_in_the_last_step_without_new_events(
    workspace: Workspace, deployments: Deployments, traffic: FakeTraffic
) -> None:
    _deployed(
        workspace,
        deployments,
        shadow=None,
        steps=(20.0,),
        window=Window(requests=20),
        abort=AbortConditions(error_rate=None),
    )
    registry = Registry(workspace)
    registry.require_approvals(MODEL, 1, alias="champion")
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    assert rec.state == State.CANARY
    traffic.send(rec.traffic, 200)
    before = len(deployments.events("churn-prod"))
    for _ in range(3):  # was: ApprovalRequired each tick, one more analysis_passed event each
        rec = deployments.tick("churn-prod")
    assert rec.state == State.CANARY
    assert len(deployments.events("churn-prod")) == before
    assert "approval" in " ".join(rec.context["last_signals"]["missing"]).lower()
    registry.approve(MODEL, 2, approver="carol")
    rec = deployments.tick("churn-prod")
    assert rec.state == State.PROMOTED
    assert rec.stable_version == 2
    assert registry.get_version_by_alias(MODEL, "champion").version == 2


def test_a_first_version_waiting_for_approvals_is_blocked_not_regated_every_tick(
    workspace: Workspace, deployments: Deployments
) -> None:
    register(workspace, {"auc": 0.80})
    Registry(workspace).require_approvals(MODEL, 1, alias="champion")
    deployments.apply(policy())
    rec = deployments.tick("churn-prod")
    assert rec.state == State.BLOCKED
    event = deployments.events("churn-prod")[-1]
    assert event.action == "gates_failed"
    assert "approval" in event.message.lower()
    count = len(deployments.events("churn-prod"))
    assert deployments.tick("churn-prod").state == State.BLOCKED
    assert len(deployments.events("churn-prod")) == count


def test_promoting_the_stable_version_by_hand_is_refused(
    workspace: Workspace, deployments: Deployments
) -> None:
    _deployed(workspace, deployments)
    with pytest.raises(InvalidState, match="already the stable version"):
        deployments.promote("churn-prod", 1)
    rec = deployments.get("churn-prod")
    assert rec.context.get("previous_stable") is None  # a later rollback still means something


def test_status_events_zero_shows_no_timeline_rows(
    workspace: Workspace, deployments: Deployments
) -> None:
    from click.testing import CliRunner

    from shipyard.cli.main import cli

    _deployed(workspace, deployments)
    home = ["--home", str(workspace.settings.home)]
    env = {"SHIPYARD_ARTIFACT_URI": workspace.settings.artifact_uri}
    runner = CliRunner()
    shown = runner.invoke(cli, [*home, "deploy", "status", "churn-prod", "--events", "1"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "deployed" in shown.output
    none = runner.invoke(cli, [*home, "deploy", "status", "churn-prod", "--events", "0"], env=env)
    assert none.exit_code == 0, none.output
    assert "gates_passed" not in none.output  # was: --events 0 listed the whole timeline
    assert "applied" not in none.output
    bad = runner.invoke(cli, [*home, "deploy", "status", "churn-prod", "--events", "-1"], env=env)
    assert bad.exit_code == 2


def test_rolling_back_a_first_version_in_gating_says_none_serves(
    workspace: Workspace, deployments: Deployments
) -> None:
    register(workspace, {"auc": 0.80})
    deployments.apply(policy())
    rec = deployments.get("churn-prod")
    workspace.deployments.update(
        "churn-prod", rec.revision, {"state": "gating", "candidate_version": 1}
    )
    rec = deployments.rollback("churn-prod", reason="not yet")
    assert (rec.state, rec.stable_version) == (State.ROLLED_BACK, None)
    message = deployments.events("churn-prod")[-1].message
    assert "none serves traffic" in message
    assert "version None" not in message  # was: "all traffic to version None"


def test_a_promotion_that_loses_a_race_puts_the_alias_back(
    workspace: Workspace, deployments: Deployments, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alias moves before the state is written; when a pause lands in between, the write
    fails and the alias must follow the record (still version 1), not the lost promotion."""
    _deployed(workspace, deployments)
    register(workspace, {"auc": 0.81})
    move = deployments._move_alias

    def move_then_pause(rec, env, version, *args, **kwargs):  # type: ignore[no-untyped-def]
        move(rec, env, version, *args, **kwargs)
        if version == 2:
            deployments.pause("churn-prod", reason="a person acted at the same time")

    monkeypatch.setattr(deployments, "_move_alias", move_then_pause)
    with pytest.raises(InvalidState, match="changed while this command ran"):
        deployments.promote("churn-prod", 2)
    assert Registry(workspace).get_version_by_alias(MODEL, "champion").version == 1
    rec = deployments.get("churn-prod")
    assert (rec.state, rec.stable_version) == (State.PAUSED, 1)
