"""``shipyard runs``: find, inspect, compare, delete and restore runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli._context import (
    CliState,
    collect_pages,
    get_run,
    local_artifacts,
    pass_state,
    resolve_experiment,
)
from shipyard.cli._output import (
    emit_json,
    esc,
    format_duration,
    format_time,
    format_value,
    human_size,
    json_option,
    note,
    print_fields,
    print_table,
    summarize,
    table,
    truncate,
)
from shipyard.entities import LifecycleStage, RunStatus, ViewType

if TYPE_CHECKING:
    from shipyard.entities import Run
    from shipyard.store.base import TrackingStore

VIEW_CHOICES = {
    "active": ViewType.ACTIVE_ONLY,
    "deleted": ViewType.DELETED_ONLY,
    "all": ViewType.ALL,
}
SUMMARY_WIDTH = 36
"""Width of the params and metrics summaries in ``runs list``."""


@click.group()
def runs() -> None:
    """Find, inspect, compare, delete and restore runs."""


@runs.command("list")
@click.option(
    "--experiment",
    "-e",
    "experiment_refs",
    multiple=True,
    metavar="NAME|ID",
    help="Only runs of this experiment (repeatable) [default: every experiment].",
)
@click.option(
    "--filter",
    "filter_string",
    default="",
    metavar="EXPR",
    help='Only runs matching an MLflow-style filter, e.g. "metrics.acc > 0.9 AND '
    "params.model = 'rf'\" or \"status = 'FINISHED'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    metavar="CLAUSE",
    help="Sort order, e.g. 'metrics.acc DESC' or 'start_time' (repeatable) "
    "[default: newest first].",
)
@click.option(
    "--max-results",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    metavar="N",
    help="Runs per page.",
)
@click.option("--all-pages", is_flag=True, help="Fetch every page instead of only the first.")
@click.option(
    "--page-token",
    default=None,
    metavar="TOKEN",
    help="Start at this page (the next_page_token of an earlier --json listing).",
)
@click.option(
    "--view",
    type=click.Choice(list(VIEW_CHOICES)),
    default="active",
    show_default=True,
    help="Which runs to include: active ones, deleted ones, or all.",
)
@json_option
@pass_state
def list_runs(
    state: CliState,
    experiment_refs: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    all_pages: bool,
    page_token: str | None,
    view: str,
    as_json: bool,
) -> None:
    """List runs, newest first, with their status, duration, params and metrics."""
    store = state.store
    names = _experiment_names(store, experiment_refs, VIEW_CHOICES[view])
    found: list[Run] = []
    next_token: str | None = None
    if names:
        found, next_token = collect_pages(
            lambda token, size: store.search_runs(
                list(names), filter_string, VIEW_CHOICES[view], size, list(order_by) or None, token
            ),
            page_size=max_results,
            page_token=page_token,
            all_pages=all_pages,
        )
    if as_json:
        emit_json({"runs": found, "next_page_token": next_token})
        return
    t = table(
        "Run ID",
        "Name",
        "Experiment",
        "Status",
        "Started",
        "Duration",
        "Params",
        "Metrics",
        no_wrap=("Run ID", "Status", "Started", "Duration"),
    )
    for run in found:
        info = run.info
        t.add_row(
            info.run_id,
            esc(truncate(info.run_name, 32)),
            esc(truncate(names.get(info.experiment_id, info.experiment_id), 24)),
            _status(run),
            format_time(info.start_time),
            _duration(run),
            esc(summarize(run.data.params, SUMMARY_WIDTH)),
            esc(summarize({k: m.value for k, m in run.data.metrics.items()}, SUMMARY_WIDTH)),
        )
    print_table(t, empty="No runs found.")
    if next_token:
        note(
            f"Showing the first {len(found)} runs; more exist. Add --all-pages, or "
            f"--page-token {next_token} for the next page."
        )


@runs.command("show")
@click.argument("run_id")
@json_option
@pass_state
def show_run(state: CliState, run_id: str, as_json: bool) -> None:
    """Show everything about RUN_ID: info, params, latest metrics, tags, inputs, artifacts."""
    ws = state.workspace
    run = get_run(ws.store, run_id)
    info = run.info
    experiment = ws.store.get_experiment(info.experiment_id)
    artifacts = ws.artifacts.list(info.run_id)
    if as_json:
        emit_json(
            {
                "run": run,
                "experiment": {"experiment_id": experiment.experiment_id, "name": experiment.name},
                "artifacts": artifacts,
            }
        )
        return
    print_fields(
        [
            ("Run ID", info.run_id),
            ("Name", esc(info.run_name)),
            ("Experiment", f"{esc(experiment.name)} (id {experiment.experiment_id})"),
            ("Status", _status(run)),
            ("User", esc(info.user_id or "-")),
            ("Started", format_time(info.start_time)),
            ("Ended", format_time(info.end_time)),
            ("Duration", _duration(run)),
            ("Parent run", info.parent_run_id or "-"),
            ("Artifact URI", esc(info.artifact_uri)),
        ],
        title=f"Run {info.run_id}",
    )
    params = table("Param", "Value", title="Params")
    for key in sorted(run.data.params):
        params.add_row(esc(key), esc(truncate(run.data.params[key], 80)))
    print_table(params, empty="No params.")
    metrics = table("Metric", "Value", "Step", "Logged at", title="Metrics (latest values)")
    for key in sorted(run.data.metrics):
        m = run.data.metrics[key]
        metrics.add_row(esc(key), format_value(m.value), str(m.step), format_time(m.timestamp))
    print_table(metrics, empty="No metrics.")
    tags = table("Tag", "Value", title="Tags")
    for key in sorted(run.data.tags):
        tags.add_row(esc(key), esc(truncate(run.data.tags[key], 80)))
    print_table(tags, empty="No tags.")
    inputs = table("Dataset", "Digest", "Source", "Context", title="Inputs")
    for item in run.inputs:
        d = item.dataset
        context = ", ".join(f"{k}={v}" for k, v in sorted(item.tags.items())) or "-"
        inputs.add_row(
            esc(truncate(d.name)),
            d.digest,
            esc(truncate(d.source or d.source_type or "-")),
            context,
        )
    print_table(inputs, empty="No dataset inputs.")
    files = table("Artifact", "Size", title="Artifacts")
    for a in artifacts:
        files.add_row(
            esc(a.path + ("/" if a.is_dir else "")), "" if a.is_dir else human_size(a.file_size)
        )
    print_table(files, empty="No artifacts.")


@runs.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID RUN_ID...")
@click.option("--only-diff", is_flag=True, help="Show only the params and metrics that differ.")
@json_option
@pass_state
def compare_runs(state: CliState, run_ids: tuple[str, ...], only_diff: bool, as_json: bool) -> None:
    """Compare the params and latest metrics of two or more runs side by side.

    Values that differ between the runs are highlighted; a missing value counts as different.
    """
    if len(run_ids) < 2:
        raise click.UsageError("Give at least two run ids to compare.")
    store = state.store
    found = [get_run(store, rid) for rid in run_ids]
    params = _rows([r.data.params for r in found])
    metrics = _rows([{k: m.value for k, m in r.data.metrics.items()} for r in found])
    if only_diff:
        params = [row for row in params if row[2]]
        metrics = [row for row in metrics if row[2]]
    if as_json:
        emit_json(
            {
                "run_ids": [r.info.run_id for r in found],
                "params": [{"key": k, "values": v, "differs": d} for k, v, d in params],
                "metrics": [{"key": k, "values": v, "differs": d} for k, v, d in metrics],
            }
        )
        return
    headers = [f"{truncate(r.info.run_name, 24)}\n{r.info.run_id[:8]}" for r in found]
    t = table("", *headers)
    t.add_row("[bold]status[/]", *(_status(r) for r in found))
    t.add_row("[bold]duration[/]", *(_duration(r) for r in found))
    for section, rows in (("params", params), ("metrics", metrics)):
        if rows:
            t.add_section()
        for key, values, differs in rows:
            cells = [esc(format_value(v)) if v is not None else "-" for v in values]
            label = f"{section}.{esc(key)}"
            if differs:
                cells = [f"[bold yellow]{c}[/]" for c in cells]
                label = f"[bold yellow]{label} *[/]"
                t.caption = "* values differ"
            t.add_row(label, *cells)
    print_table(t, empty="")
    if only_diff and not params and not metrics:
        click.echo("The runs have the same params and metrics.")


@runs.command("delete")
@click.argument("run_id")
@click.option(
    "--permanent",
    is_flag=True,
    help="Delete for good, with its metrics, params and the artifact bytes nothing else uses. "
    "Cannot be undone.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (with --permanent).")
@json_option
@pass_state
def delete_run(state: CliState, run_id: str, permanent: bool, yes: bool, as_json: bool) -> None:
    """Delete RUN_ID. Restorable with `shipyard runs restore` unless --permanent is given."""
    ws = state.workspace
    run = get_run(ws.store, run_id)
    rid = run.info.run_id
    if not permanent:
        ws.store.delete_run(rid)
        if as_json:
            emit_json({"run_id": rid, "permanent": False})
            return
        click.echo(f"Deleted run {rid}. Undo with `shipyard runs restore {rid}`.")
        return
    if not yes:
        click.confirm(
            f"Permanently delete run {rid} ({run.info.run_name!r}) and its artifacts? "
            "This cannot be undone",
            abort=True,
            err=True,
        )
    from shipyard.tracking.gc import delete_run_permanently

    report = delete_run_permanently(ws.store, local_artifacts(ws, "Permanent deletion"), rid)
    if as_json:
        emit_json(
            {
                "run_id": rid,
                "permanent": True,
                "blobs_deleted": report.blobs_deleted,
                "bytes_freed": report.bytes_freed,
            }
        )
        return
    click.echo(
        f"Permanently deleted run {rid} and freed {human_size(report.bytes_freed)} of artifacts."
    )


@runs.command("restore")
@click.argument("run_id")
@json_option
@pass_state
def restore_run(state: CliState, run_id: str, as_json: bool) -> None:
    """Restore the deleted run RUN_ID."""
    store = state.store
    run = get_run(store, run_id)
    rid = run.info.run_id
    was_deleted = run.info.lifecycle_stage == LifecycleStage.DELETED
    if was_deleted:
        store.restore_run(rid)
    if as_json:
        emit_json(store.get_run(rid).info)
    elif was_deleted:
        click.echo(f"Restored run {rid}.")
    else:
        click.echo(f"Run {rid} is not deleted; nothing to restore.")


# ---------------------------------------------------------------- helpers


def _experiment_names(store: TrackingStore, refs: Sequence[str], view: ViewType) -> dict[str, str]:
    """Ids and names of the experiments to search: the given ones, or every one in view."""
    if refs:
        chosen = [resolve_experiment(store, ref) for ref in refs]
    else:
        exp_view = ViewType.ACTIVE_ONLY if view == ViewType.ACTIVE_ONLY else ViewType.ALL
        chosen, _ = collect_pages(
            lambda token, size: store.search_experiments(exp_view, size, "", None, token)
        )
    return {e.experiment_id: e.name for e in chosen}


def _status(run: Run) -> str:
    """The run status, with ``(deleted)`` for soft-deleted runs."""
    status = run.info.status
    deleted = run.info.lifecycle_stage == LifecycleStage.DELETED
    return f"{status} (deleted)" if deleted else status


def _duration(run: Run) -> str:
    running = run.info.status == RunStatus.RUNNING
    return format_duration(run.info.start_time, run.info.end_time, running=running)


def _rows(per_run: list[dict[str, Any]]) -> list[tuple[str, list[Any], bool]]:
    """``(key, value per run or None, values differ)`` for every key any run has."""
    keys = sorted({k for values in per_run for k in values})
    rows = []
    for key in keys:
        values = [values.get(key) for values in per_run]
        rows.append((key, values, len({_same(v) for v in values}) > 1))
    return rows


def _same(value: Any) -> Any:
    """A hashable stand-in under which equal values (NaN included) compare equal."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value
