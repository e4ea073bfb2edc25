"""``shipyard deploy``, ``shipyard gates check`` (exit codes for CI) and ``shipyard controller``."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import click
import yaml

from shipyard.workspace import Workspace
from tests.cli.conftest import Shipyard
from tests.deploy.conftest import policy, register


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(policy().to_dict()), encoding="utf-8")
    return path


def test_gates_check_exits_0_on_pass_and_1_with_a_table_on_failure(
    shipyard: Shipyard, open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    ws = open_workspace()
    register(ws, {"auc": 0.8})
    register(ws, {"auc": 0.55})
    shipyard("deploy", "apply", str(_spec(tmp_path)))
    ok = shipyard("gates", "check", "churn/1", "--env", "production")
    assert "auc >= 0.6" in ok.stdout
    assert "pass" in ok.stdout
    assert "passes the 2" in ok.stdout
    bad = shipyard("gates", "check", "models:/churn/2", "--env", "production", expect=1)
    assert "FAIL" in bad.stdout
    assert "0.55" in bad.stdout
    assert ">= 0.6" in bad.stdout
    assert "fails 1 offline gate(s) of production" in bad.stdout
    report = shipyard("gates", "check", "churn/2", "--env", "production", "--json", expect=1)
    assert '"passed": false' in report.stdout
    line = shipyard.fails("gates", "check", "churn/1", "--env", "staging")
    assert "no environment 'staging'" in line
    assert "production" in line


def test_apply_status_and_the_levers(
    shipyard: Shipyard, open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    ws = open_workspace()
    register(ws, {"auc": 0.8})
    applied = shipyard.json("deploy", "apply", str(_spec(tmp_path)))
    assert applied["state"] == "idle"
    shipyard("controller", "--once", "--no-scheduler")
    listed = shipyard.json("deploy", "status")
    assert [(d["name"], d["state"], d["stable_version"]) for d in listed] == [
        ("churn-prod", "promoted", 1)
    ]
    register(ws, {"auc": 0.81})
    shipyard("controller", "--once")
    out = shipyard("deploy", "status", "churn-prod").stdout
    assert "shadow" in out
    assert "v2" in out
    assert "Timeline" in out
    assert "deployed" in out
    paused = shipyard.json("deploy", "pause", "churn-prod", "--reason", "looking")
    assert paused["state"] == "paused"
    assert shipyard.json("deploy", "resume", "churn-prod")["state"] == "shadow"
    promoted = shipyard.json("deploy", "promote", "churn-prod", "--reason", "hotfix")
    assert (promoted["state"], promoted["stable_version"]) == ("promoted", 2)
    back = shipyard("deploy", "rollback", "churn-prod").stdout
    assert "version 1 takes all traffic" in back
    timeline = shipyard.json("deploy", "status", "churn-prod")["timeline"]
    assert [e["action"] for e in timeline][-4:] == ["paused", "resumed", "promoted", "rolled_back"]
    register(ws, {"auc": 0.3})
    line = shipyard.fails("deploy", "promote", "churn-prod", "--version", "3")
    assert "auc >= 0.6" in line
    assert "is 0.3" in line
    assert shipyard.fails("deploy", "status", "nope").startswith("Error: No deployment is named")


def test_export_writes_manifests(
    shipyard: Shipyard, open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    ws = open_workspace()
    register(ws, {"auc": 0.8})
    shipyard("deploy", "apply", str(_spec(tmp_path)))
    shipyard("controller", "--once", "--no-scheduler")
    out = tmp_path / "isvc.yaml"
    shipyard("deploy", "export", "churn-prod", "--format", "kserve", "-o", str(out))
    (isvc,) = yaml.safe_load_all(out.read_text())
    assert isvc["kind"] == "InferenceService"
    argo = shipyard("deploy", "export", "churn-prod", "--format", "argo").stdout
    assert [d["kind"] for d in yaml.safe_load_all(argo)][:2] == ["Rollout", "AnalysisTemplate"]


def test_bad_spec_is_one_line(shipyard: Shipyard, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: churn\nenvironments: [{name: p, gates: [{type: nope}]}]\n")
    line = shipyard.fails("deploy", "apply", str(bad))
    assert "environments[0].gates[0]" in line
    assert "use one of metric" in line


def _workflow() -> dict[str, object]:
    docs = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
    text = docs.read_text(encoding="utf-8")
    body = text.split("### A GitHub Actions workflow", 1)[1].split("```yaml\n", 1)[1]
    workflow: dict[str, object] = yaml.safe_load(body.split("```", 1)[0])
    return workflow


def _parse(args: list[str]) -> list[str]:
    """Parse ``shipyard ARGS`` as click would run it; the command path."""
    from shipyard.cli.main import cli

    ctx = cli.make_context("shipyard", list(args))
    command: click.Command = cli
    path = []
    rest = _remaining(ctx)
    while isinstance(command, click.Group) and rest:
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None
        assert name is not None
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        command, rest = sub, _remaining(ctx)
    return path


def _remaining(ctx: click.Context) -> list[str]:
    """The tokens a group left for its subcommand (click 8.2 keeps the name apart)."""
    return [*getattr(ctx, "_protected_args", []), *ctx.args]


def test_the_documented_github_workflow_trains_checks_the_gates_and_promotes(
    shipyard: Shipyard, open_workspace: Callable[[], Workspace]
) -> None:
    (job,) = _workflow()["jobs"].values()  # type: ignore[attr-defined]
    lines = [
        line.strip()
        for step in job["steps"]
        if "run" in step
        for line in step["run"].splitlines()
        if "shipyard" in line and not line.strip().startswith("pip ")
    ]
    commands = []
    for line in lines:
        inner = re.search(r"\$\((shipyard [^|)]*)", line)
        command = inner.group(1) if inner else line.split(">", 1)[0]
        args = shlex.split(command.replace("$VERSION", "2").replace("$GITHUB_RUN_ID", "7"))
        assert args[0] == "shipyard"
        commands.append(_parse(args[1:]))
    assert commands == [
        ["deploy", "apply"],
        ["pipelines", "run"],
        ["models", "versions"],
        ["gates", "check"],
        ["deploy", "promote"],
    ]
    # the version the gates check is the newest, read from `models versions --json` with jq
    (jq,) = re.findall(r"jq '([^']*)'", "\n".join(lines))
    assert jq == ".versions[0].version"
    ws = open_workspace()
    register(ws, {"auc": 0.8})
    register(ws, {"auc": 0.81})
    listed = shipyard.json("models", "versions", "churn")
    assert int(listed["versions"][0]["version"]) == 2


def test_a_spec_with_a_bad_trigger_writes_nothing(
    shipyard: Shipyard, open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    """The triggers are checked before the deployment is written: a bad cron or a pipeline that
    does not load used to leave an idle deployment behind an exit code of 1."""
    ws = open_workspace()
    register(ws, {"auc": 0.8})
    spec = policy().to_dict()
    for name, schedule, fails_with in (
        ("bad-cron", {"cron": "bad cron", "pipeline": "tests.deploy._retrain:retrain"}, "cron"),
        ("bad-pipeline", {"cron": "0 3 * * *", "pipeline": str(tmp_path / "nope.py") + ":p"},
         "nope.py"),
    ):  # fmt: skip
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**spec, "name": name, "triggers": {"schedule": schedule}}))
        assert fails_with in shipyard.fails("deploy", "apply", str(path))
    assert shipyard.json("deploy", "status") == []
    assert ws.pipelines.list_schedules() == []
