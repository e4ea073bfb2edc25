"""``shipyard pipelines``: run pipelines with live progress, inspect runs, resume, explain the
cache, manage schedules; and ``shipyard scheduler``, which fires schedules on its own.

Every command calls one function of :mod:`shipyard.pipelines` (or the scheduler).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli._context import CliState, FiniteRange, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    human_duration,
    is_terminal,
    json_option,
    print_fields,
    print_table,
    summarize,
    table,
    truncate,
)
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.store.pipelines import PipelineRun, StepRun

EXECUTOR_CHOICES = ("inprocess", "process", "ray")


def _summary(run: PipelineRun) -> dict[str, Any]:
    from shipyard.pipelines.service import step_summary

    return {
        "run_id": run.run_id,
        "status": run.status,
        "steps": [step_summary(s) for s in run.steps],
    }


def _duration(step: StepRun) -> str:
    return human_duration(step.duration_s) if step.duration_s is not None else "-"


def _steps_table(run: PipelineRun, title: str | None = None) -> Any:
    t = table("Step", "Status", "Cached", "Attempts", "Duration", "Output", "Error", title=title)
    for s in run.steps:
        out = s.output or {}
        t.add_row(
            esc(s.name),
            s.status,
            "hit" if s.cached else "-",
            str(s.attempts),
            _duration(s),
            esc(f"{out.get('kind', '-')} {str(out.get('digest', ''))[:12]}".strip()),
            esc(truncate(s.error or "-", 60)),
        )
    return t


class _LiveProgress:
    """Each step's state, redrawn as it changes (a rich live table on a terminal; one line per
    change elsewhere, on stderr)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows: dict[str, StepRun] = {}
        self.live: Any = None
        if enabled and is_terminal(sys.stderr):
            from rich.live import Live

            from shipyard.cli._output import console

            self.live = Live(self._render(), console=console(stderr=True), refresh_per_second=8)

    def _render(self) -> Any:
        t = table("Step", "Status", "Cached", "Attempt", "Duration")
        for name, s in self.rows.items():
            t.add_row(
                esc(name), s.status, "hit" if s.cached else "-", str(s.attempts), _duration(s)
            )
        return t

    def __call__(self, name: str, step: StepRun) -> None:
        self.rows[name] = step
        if self.live is not None:
            self.live.update(self._render())
        elif self.enabled:
            cached = " (cache hit)" if step.cached else ""
            click.echo(f"{name}: {step.status}{cached}", err=True)

    def __enter__(self) -> _LiveProgress:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()


def _finish(run: PipelineRun, as_json: bool) -> None:
    if as_json:
        emit_json(_summary(run))
    else:
        print_table(_steps_table(run), empty="No steps.")
        click.echo(f"Pipeline run {run.run_id}: {run.status}")
    if run.status != "SUCCEEDED":
        raise click.exceptions.Exit(1)


executor_option = click.option(
    "--executor",
    type=click.Choice(EXECUTOR_CHOICES),
    default=None,
    help="Where steps run: inprocess (threads), process (a local process pool) or ray "
    "[default: inprocess; resume: the run's own].",
)
ray_address_option = click.option(
    "--ray-address",
    metavar="ADDRESS",
    default=None,
    help="With --executor ray: the cluster to join (ray://host:10001, auto) [default: start a "
    "local Ray].",
)
workers_option = click.option(
    "--max-workers",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Steps running at once [default: the executor's].",
)
param_option = click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a pipeline parameter (repeatable); VALUE is JSON (3, true, [1,2]) or text.",
)


@click.group()
def pipelines() -> None:
    """Run pipelines of @step functions, inspect and resume their runs, explain the cache,
    and schedule them."""


@pipelines.command("run")
@click.argument("reference", metavar="FILE_OR_MODULE:PIPELINE")
@param_option
@executor_option
@ray_address_option
@workers_option
@click.option("--no-cache", is_flag=True, help="Run every step, ignoring earlier results.")
@json_option
@pass_state
def run_pipeline(
    state: CliState,
    reference: str,
    params: tuple[str, ...],
    executor: str | None,
    ray_address: str | None,
    max_workers: int | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Run a pipeline, showing each step's state live; exits with 1 if the run fails.

    FILE_OR_MODULE:PIPELINE is a file (examples/pipeline_demo.py:breast_cancer) or an
    importable module (mypkg.flows:train). --json prints {run_id, status, steps}.
    """
    from shipyard.pipelines import load_pipeline, parse_params
    from shipyard.pipelines import run as run_

    pipeline = load_pipeline(reference)
    values = parse_params(pipeline, params)
    with _LiveProgress(enabled=not as_json) as progress:
        result = run_(
            pipeline,
            values,
            workspace=state.workspace,
            executor=executor or "inprocess",
            cache=not no_cache,
            max_workers=max_workers,
            ray_address=ray_address,
            progress=progress,
        )
    _finish(result, as_json)


@pipelines.command("resume")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--from",
    "from_step",
    metavar="STEP",
    default=None,
    help="Run this step and everything downstream of it again [default: the steps that did not "
    "succeed].",
)
@param_option
@executor_option
@ray_address_option
@workers_option
@json_option
@pass_state
def resume_run(
    state: CliState,
    run_id: str,
    from_step: str | None,
    params: tuple[str, ...],
    executor: str | None,
    ray_address: str | None,
    max_workers: int | None,
    as_json: bool,
) -> None:
    """Run RUN's pipeline again, reusing the outputs of the steps that succeeded.

    Code edits are picked up; the steps reused keep their earlier outputs even if their code
    changed (unless their parameters did).
    """
    from shipyard.pipelines import load_pipeline, parse_params
    from shipyard.pipelines import resume as resume_

    origin = state.workspace.pipelines.get_run(run_id)
    values = parse_params(load_pipeline(origin.reference), params) if params else None
    with _LiveProgress(enabled=not as_json) as progress:
        result = resume_(
            origin.run_id,
            from_step=from_step,
            params=values,
            workspace=state.workspace,
            executor=executor,
            max_workers=max_workers,
            ray_address=ray_address,
            progress=progress,
        )
    _finish(result, as_json)


@pipelines.command("list")
@click.option(
    "--pipeline", "name", metavar="NAME", default=None, help="Only runs of this pipeline."
)
@click.option(
    "--max-results",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    metavar="N",
    help="Runs to show, newest first.",
)
@json_option
@pass_state
def list_runs(state: CliState, name: str | None, max_results: int, as_json: bool) -> None:
    """List pipeline runs, newest first."""
    runs = state.workspace.pipelines.list_runs(pipeline=name, max_results=max_results)
    if as_json:
        emit_json({"runs": runs})
        return
    t = table(
        "Run", "Pipeline", "Status", "Started", "Duration", "Executor", "Trigger", no_wrap=["Run"]
    )
    for r in runs:
        duration = human_duration((r.end_time - r.start_time) / 1000) if r.end_time else "-"
        t.add_row(
            r.run_id,
            esc(r.pipeline),
            r.status,
            format_time(r.start_time),
            duration,
            r.executor,
            esc(str(r.trigger.get("kind", "-"))),
        )
    print_table(t, empty="No pipeline runs yet. Start one with `shipyard pipelines run`.")


@pipelines.command("show")
@click.argument("run_id", metavar="RUN")
@click.option("--logs", is_flag=True, help="Also print each step's captured output and traceback.")
@json_option
@pass_state
def show_run(state: CliState, run_id: str, logs: bool, as_json: bool) -> None:
    """Show a pipeline run: its parameters, trigger and steps (RUN may be an id prefix)."""
    r = state.workspace.pipelines.get_run(run_id)
    if as_json:
        emit_json(r)
        return
    print_fields(
        [
            ("Run", r.run_id),
            ("Pipeline", esc(f"{r.pipeline} ({r.reference})")),
            ("Status", r.status),
            ("Started", format_time(r.start_time)),
            ("Ended", format_time(r.end_time)),
            ("Executor", r.executor),
            ("Cache", "on" if r.cache_enabled else "off"),
            ("Parameters", esc(summarize(r.params, 100))),
            ("Trigger", esc(summarize(r.trigger, 100))),
            ("Resumed from", r.resumed_from or "-"),
            ("Error", esc(r.error or "-")),
        ],
        title=f"Pipeline run {r.run_id}",
    )
    print_table(_steps_table(r, title="Steps"), empty="No steps.")
    links = table("Step", "Produced", "Name", "Version", title="Lineage")
    for s in r.steps:
        for link in s.links:
            links.add_row(esc(s.name), link["kind"], esc(link["name"]), link["version"])
        if s.tracking_run_id:
            links.add_row(esc(s.name), "tracking_run", s.tracking_run_id, "-")
    print_table(links, empty="No linked runs or versions.")
    if logs:
        for s in r.steps:
            if s.logs or s.traceback:
                click.echo(f"\n--- {s.name} ---")
                click.echo((s.logs or "") + (s.traceback or ""))


@pipelines.group("cache")
def cache() -> None:
    """Explain the step cache."""


@cache.command("why")
@click.argument("run_id", metavar="RUN")
@click.argument("step_name", metavar="STEP")
@json_option
@pass_state
def cache_why_cmd(state: CliState, run_id: str, step_name: str, as_json: bool) -> None:
    """Say why STEP of RUN ran or was a cache hit: what changed (code, parameters, inputs,
    declared external inputs, environment) against the closest earlier execution."""
    from shipyard.pipelines import cache_why

    why = cache_why(run_id, step_name, workspace=state.workspace)
    if as_json:
        emit_json(why)
        return
    click.echo(f"{step_name}: {why['summary']}")
    if why["changes"]:
        t = table("Component", "Item", "Before", "After")
        for c in why["changes"]:
            t.add_row(
                c["component"],
                esc(c["item"]),
                esc(truncate(c["before"], 24)),
                esc(truncate(c["after"], 24)),
            )
        print_table(t, empty="")


# ---------------------------------------------------------------------------- schedules


@pipelines.group("schedule")
def schedule() -> None:
    """Run pipelines on a cron schedule, an interval, or an event."""


@schedule.command("add")
@click.argument("name")
@click.argument("reference", metavar="FILE_OR_MODULE:PIPELINE")
@click.option(
    "--cron",
    metavar="EXPR",
    default=None,
    help="Five-field cron expression, local time ('0 3 * * *').",
)
@click.option(
    "--every",
    "every_s",
    type=FiniteRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Fire every SECONDS.",
)
@click.option(
    "--on",
    type=click.Choice(["dataset_version", "model_version", "alert"]),
    default=None,
    help="Fire when a dataset version or model version is registered, or an alert fires.",
)
@click.option(
    "--match",
    "event_filter",
    metavar="GLOB",
    default=None,
    help="With --on: only for datasets, models or alerts whose name matches.",
)
@click.option(
    "--missed",
    type=click.Choice(["skip", "catch_up"]),
    default="skip",
    show_default=True,
    help="Slots missed while no scheduler ran: record and skip them, or fire each (at most 10).",
)
@param_option
@executor_option
@json_option
@pass_state
def add_schedule_cmd(
    state: CliState,
    name: str,
    reference: str,
    cron: str | None,
    every_s: float | None,
    on: str | None,
    event_filter: str | None,
    missed: str,
    params: tuple[str, ...],
    executor: str | None,
    as_json: bool,
) -> None:
    """Schedule pipeline REFERENCE as NAME (one of --cron, --every, --on)."""
    from shipyard.pipelines import load_pipeline, parse_params
    from shipyard.pipelines.scheduler import add_schedule

    if event_filter and not on:
        raise InvalidInput("--match only applies to event schedules (--on).")
    values = parse_params(load_pipeline(reference), params)
    s = add_schedule(
        state.workspace,
        name,
        reference,
        cron=cron,
        every_s=every_s,
        on=on,
        event_filter=event_filter,
        params=values,
        missed=missed,
        executor=executor or "inprocess",
    )
    if as_json:
        emit_json(s)
        return
    click.echo(
        f"Schedule {s.name} added ({s.kind} {s.spec}); next: {format_time(s.next_fire_time)}."
    )


@schedule.command("list")
@json_option
@pass_state
def list_schedules(state: CliState, as_json: bool) -> None:
    """List schedules with their next fire time and latest firing."""
    store = state.workspace.pipelines
    schedules = store.list_schedules()
    if as_json:
        emit_json({"schedules": schedules, "firings": store.list_firings(max_results=100)})
        return
    t = table("Name", "Pipeline", "When", "Missed", "Next", "Last firing")
    for s in schedules:
        last = store.list_firings(s.name, max_results=1)
        when_text = (
            s.spec
            if s.kind != "event"
            else f"on {s.spec}" + (f" ({s.event_filter})" if s.event_filter else "")
        )
        t.add_row(
            esc(s.name),
            esc(truncate(s.reference, 40)),
            esc(when_text if s.kind != "interval" else f"every {s.spec}s"),
            s.missed,
            format_time(s.next_fire_time),
            f"{last[0].status} {format_time(last[0].fire_time)}" if last else "-",
        )
    print_table(t, empty="No schedules. Add one with `shipyard pipelines schedule add`.")


@schedule.command("delete")
@click.argument("name")
@pass_state
def delete_schedule(state: CliState, name: str) -> None:
    """Delete schedule NAME (its firings stay on record)."""
    state.workspace.pipelines.delete_schedule(name)
    click.echo(f"Schedule {name} deleted.")


@click.command("scheduler")
@click.option(
    "--interval",
    type=FiniteRange(min=0.1),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to poll for due schedules and new events.",
)
@click.option("--once", is_flag=True, help="Poll once, fire what is due, and exit.")
@pass_state
def scheduler(state: CliState, interval: float, once: bool) -> None:
    """Fire pipeline schedules and event triggers without a server (Ctrl-C stops it).

    `shipyard server` runs the same scheduler in the background.
    """
    from shipyard.pipelines.scheduler import Scheduler

    sched = Scheduler(state.workspace, poll_interval_s=interval)
    if once:
        started = sched.tick()
        click.echo(
            f"Started {len(started)} pipeline run(s){': ' + ', '.join(started) if started else '.'}"
        )
        return
    click.echo(f"Scheduler polling every {interval:g}s; Ctrl-C stops it.", err=True)
    while True:
        for run_id in sched.tick():
            click.echo(f"started pipeline run {run_id}", err=True)
        time.sleep(interval)
