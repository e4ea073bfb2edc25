"""``shipyard deploy`` (apply a deployment spec, see its state and timeline, promote, roll back,
pause, resume, export to Kubernetes), ``shipyard gates check`` (for CI: exit 0 when a version
passes an environment's gates, 1 when not) and ``shipyard controller`` (the controller alone).

Every command calls :class:`shipyard.deploy.Deployments` (or the controller).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli._context import CliState, FiniteRange, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    json_option,
    print_fields,
    print_table,
    table,
    write_file,
)

if TYPE_CHECKING:
    from shipyard.deploy import Deployments, GateReport
    from shipyard.store.deployments import DeploymentRecord

EXIT_GATE_FAILED = 1


def _service(state: CliState) -> Deployments:
    from shipyard.deploy import Deployments

    return Deployments(state.workspace)


def _traffic(rec: DeploymentRecord) -> str:
    arms = ", ".join(f"{a['name']} {a['weight']:g}%" for a in rec.traffic.get("arms", []))
    shadow = ", ".join(a["name"] for a in rec.traffic.get("shadow", []))
    return (arms or "-") + (f" (shadow: {shadow})" if shadow else "")


def _state(rec: DeploymentRecord) -> str:
    from shipyard.deploy import State

    if rec.state == State.CANARY:
        policy = rec.policy.get("environments", [])
        steps: list[float] = next(
            (e["rollout"]["canary"]["steps"] for e in policy if e.get("rollout")), []
        )
        return f"canary step {rec.step + 1}/{len(steps) or '?'}"
    if rec.state == State.PAUSED:
        return f"paused (in {rec.paused_state})"
    return str(rec.state)


@click.group()
def deploy() -> None:
    """Continuous deployment: apply deployment specs (environments, gates, rollout, abort
    conditions, triggers), follow the controller's decisions, and step in by hand."""


@deploy.command("apply")
@click.argument("spec", type=click.Path(dir_okay=False))
@json_option
@pass_state
def apply(state: CliState, spec: str, as_json: bool) -> None:
    """Create or update the deployment a SPEC file (YAML or JSON) describes."""
    from shipyard.deploy import DeploymentPolicy

    policy = DeploymentPolicy.from_file(spec)
    rec = _service(state).apply(policy)
    if as_json:
        emit_json(rec.summary())
        return
    click.echo(
        f"Applied deployment {rec.name!r} (model {rec.model!r}, {len(policy.environments)} "
        f"environment(s), serving {policy.served.name}); it is {_state(rec)}. The controller "
        "(`shipyard controller`, or `shipyard server`) rolls out new versions."
    )


@deploy.command("status")
@click.argument("name", required=False)
@click.option(
    "--events",
    "max_events",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Most recent decisions to show.",
)
@json_option
@pass_state
def status(state: CliState, name: str | None, max_events: int, as_json: bool) -> None:
    """The deployments, or one deployment's state, traffic and decision timeline."""
    service = _service(state)
    if name is None:
        records = service.list()
        if as_json:
            emit_json([r.summary() for r in records])
            return
        t = table("Name", "Model", "State", "Stable", "Candidate", "Traffic", "Updated")
        for r in records:
            t.add_row(
                esc(r.name),
                esc(r.model),
                _state(r),
                str(r.stable_version or "-"),
                str(r.candidate_version or "-"),
                esc(_traffic(r)),
                format_time(r.last_update_time),
            )
        print_table(t, empty="No deployments yet; create one with `shipyard deploy apply SPEC`.")
        return
    info = service.status(name)
    if as_json:
        emit_json(info)
        return
    rec = service.get(name)
    print_fields(
        [
            ("deployment", rec.name),
            ("model", rec.model),
            ("state", _state(rec)),
            ("stable", f"version {rec.stable_version}" if rec.stable_version else "-"),
            ("candidate", f"version {rec.candidate_version}" if rec.candidate_version else "-"),
            ("traffic", _traffic(rec) + f" (revision {rec.traffic_revision})"),
        ]
    )
    waiting = info.get("last_signals")
    if waiting and waiting.get("missing") and rec.state in ("shadow", "canary"):
        click.echo(f"analysis window: waiting for {', '.join(waiting['missing'])}")
    t = table("Time", "Decision", "Version", "State", "Details", title="Timeline")
    for e in info["timeline"][-max_events:] if max_events else []:  # [-0:] is all
        t.add_row(
            format_time(e["time"]),
            e["action"],
            str(e["version"] or "-"),
            f"{e['from_state'] or ''} -> {e['to_state'] or ''}",
            esc(e["message"]),
        )
    print_table(t, empty="No decisions yet.")


@deploy.command("promote")
@click.argument("name")
@click.option(
    "--version",
    "version",
    type=int,
    default=None,
    help="Promote this version directly (it must pass every environment's gates) "
    "instead of the candidate in rollout.",
)
@click.option("--reason", default=None, help="Why, for the audit trail.")
@json_option
@pass_state
def promote(
    state: CliState, name: str, version: int | None, reason: str | None, as_json: bool
) -> None:
    """Promote now: the candidate in rollout skips its remaining analysis, or --version N
    replaces the stable version (refused, exit 1, when it fails a gate)."""
    rec = _service(state).promote(name, version, reason=reason)
    _done(rec, as_json, f"Promoted version {rec.stable_version} of {rec.model!r}")


@deploy.command("rollback")
@click.argument("name")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@json_option
@pass_state
def rollback(state: CliState, name: str, reason: str | None, as_json: bool) -> None:
    """Abort the rollout in flight, or go back to the version stable before the last
    promotion."""
    rec = _service(state).rollback(name, reason=reason)
    _done(rec, as_json, f"Rolled back; version {rec.stable_version} takes all traffic")


@deploy.command("pause")
@click.argument("name")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@json_option
@pass_state
def pause(state: CliState, name: str, reason: str | None, as_json: bool) -> None:
    """Hold the deployment where it is (traffic stays; the controller takes no decision)."""
    rec = _service(state).pause(name, reason=reason)
    _done(rec, as_json, "Paused")


@deploy.command("resume")
@click.argument("name")
@json_option
@pass_state
def resume(state: CliState, name: str, as_json: bool) -> None:
    """Resume a paused deployment (an analysis window in flight starts again)."""
    rec = _service(state).resume(name)
    _done(rec, as_json, "Resumed")


def _done(rec: DeploymentRecord, as_json: bool, what: str) -> None:
    if as_json:
        emit_json(rec.summary())
    else:
        click.echo(f"{what}: deployment {rec.name!r} is {_state(rec)}; traffic {_traffic(rec)}.")


@deploy.command("export")
@click.argument("name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["kserve", "argo"]),
    required=True,
    help="kserve: an InferenceService with canary traffic; argo: an Argo Rollouts "
    "Rollout with an AnalysisTemplate over the model server's Prometheus metrics.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the YAML here (default: stdout).",
)
@click.option("--namespace", default="default", show_default=True,
              help="The Kubernetes namespace the manifests name.")  # fmt: skip
@click.option(
    "--image",
    default="shipyard:latest",
    show_default=True,
    help="Container image with Shipyard installed.",
)
@click.option(
    "--tracking-uri-in-cluster",
    "cluster_uri",
    default="http://shipyard:5000",
    show_default=True,
    help="Where the model servers reach the Shipyard server.",
)
@click.option(
    "--prometheus",
    default="http://prometheus.monitoring:9090",
    show_default=True,
    help="The Prometheus the analysis queries.",
)
@pass_state
def export_cmd(
    state: CliState,
    name: str,
    fmt: str,
    output: str | None,
    namespace: str,
    image: str,
    cluster_uri: str,
    prometheus: str,
) -> None:
    """Write Kubernetes manifests equivalent to deployment NAME."""
    from shipyard.deploy.export import export, to_yaml

    service = _service(state)
    rec = service.get(name)
    text = to_yaml(
        export(
            rec,
            service.policy(rec),
            fmt,
            namespace=namespace,
            image=image,
            tracking_uri=cluster_uri,
            prometheus=prometheus,
        )
    )
    if output is None:
        click.echo(text, nl=False)
        return
    write_file(output, text)
    click.echo(f"Wrote the {fmt} manifests of {name!r} to {output}.")


# ---------------------------------------------------------------------------- gates


@click.group()
def gates() -> None:
    """Deployment gates, for people and CI: check a version against an environment."""


@gates.command("check")
@click.argument("model_uri")
@click.option("--env", "environment", required=True, help="The environment whose gates apply.")
@click.option(
    "--deployment",
    default=None,
    help="The deployment whose spec holds the gates (default: the model's only one).",
)
@json_option
@pass_state
def check(
    state: CliState, model_uri: str, environment: str, deployment: str | None, as_json: bool
) -> None:
    """Measure the gates of ENV for MODEL_URI (models:/name/3, models:/name@challenger).

    Exit code 0 when every gate passes, 1 when one fails (the table names the gate, the
    measured value and the threshold).
    """
    from shipyard.cli._context import model_ref

    name, uri = model_ref(model_uri)
    report = _service(state).check_gates(
        uri or f"models:/{name}/latest", environment, deployment=deployment
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        _gate_table(report)
    if not report.passed:
        sys.exit(EXIT_GATE_FAILED)


def _gate_table(report: GateReport) -> None:
    t = table(
        "Gate",
        "Result",
        "Value",
        "Threshold",
        "Details",
        title=f"Gates of {report.environment} for {report.model} version {report.version}",
    )
    for r in report.results:
        result = {True: "pass", False: "FAIL", None: "n/a"}[r.passed]
        t.add_row(esc(r.gate), result, esc(_value(r.value)), esc(r.threshold), esc(r.message))
    print_table(t, empty="This environment has no gates.")
    click.echo(report.message())


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


# ---------------------------------------------------------------------------- controller


@click.command()
@click.option(
    "--poll-interval",
    type=FiniteRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between the controller's ticks.",
)
@click.option("--once", is_flag=True, help="Tick every deployment once, then exit.")
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Also run the pipeline scheduler (drift alerts -> the training pipeline).",
)
@pass_state
def controller(state: CliState, poll_interval: float, once: bool, scheduler: bool) -> None:
    """Run the continuous-deployment controller alone (`shipyard server` runs one too):
    roll out new versions, judge analysis windows, roll back on abort conditions. Its state
    is in the database, so a restarted controller resumes each rollout where it was."""
    from shipyard.deploy import Controller

    def show(event: Any) -> None:
        click.echo(f"{event.deployment}: {event.action}: {event.message}")

    ctl = Controller(state.workspace, poll_interval_s=poll_interval, on_event=show)
    sched = None
    if scheduler:
        from shipyard.pipelines.scheduler import Scheduler

        sched = Scheduler(state.workspace, poll_interval_s=poll_interval)
    if once:
        if sched is not None:
            sched.tick()
        ctl.tick()
        return
    click.echo(f"Controller polling every {poll_interval:g}s; stop it with Ctrl-C.", err=True)
    if sched is not None:
        sched.start()
    try:
        ctl.run_forever()
    finally:
        if sched is not None:
            sched.stop()
