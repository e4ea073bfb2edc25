"""``shipyard experiments``: list, create, rename, delete and restore experiments.

Experiments are given by name or by id (``name:X`` / ``id:X`` when a value could be both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from shipyard.cli._context import (
    CliState,
    collect_pages,
    local_artifacts,
    pass_state,
    resolve_experiment,
)
from shipyard.cli._context import parse_tags as _parse_tags
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    human_size,
    json_option,
    print_table,
    summarize,
    table,
    truncate,
)
from shipyard.entities import LifecycleStage, ViewType

if TYPE_CHECKING:
    from shipyard.entities import Experiment

VIEW_CHOICES = {
    "active": ViewType.ACTIVE_ONLY,
    "deleted": ViewType.DELETED_ONLY,
    "all": ViewType.ALL,
}

view_option = click.option(
    "--view",
    type=click.Choice(list(VIEW_CHOICES)),
    default="active",
    show_default=True,
    help="Which experiments to include: active ones, deleted ones, or all.",
)


@click.group()
def experiments() -> None:
    """List, create, rename, delete and restore experiments."""


@experiments.command("list")
@view_option
@click.option(
    "--filter",
    "filter_string",
    default="",
    metavar="EXPR",
    help="Only experiments matching an MLflow-style filter, e.g. \"name LIKE 'churn%'\" "
    "or \"tags.team = 'search'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    metavar="CLAUSE",
    help="Sort order, e.g. 'name ASC' or 'creation_time DESC' (repeatable) "
    "[default: newest first].",
)
@click.option(
    "--max-results",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Show at most N experiments [default: all].",
)
@json_option
@pass_state
def list_experiments(
    state: CliState,
    view: str,
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int | None,
    as_json: bool,
) -> None:
    """List experiments, newest first."""
    store = state.store
    found, _ = collect_pages(
        lambda token, size: store.search_experiments(
            VIEW_CHOICES[view], size, filter_string, list(order_by) or None, token
        ),
        limit=max_results,
    )
    if as_json:
        emit_json({"experiments": found})
        return
    show_stage = view != "active"
    columns = ["ID", "Name", *(["Stage"] if show_stage else []), "Created", "Updated", "Tags"]
    t = table(*columns, no_wrap=("ID", "Created", "Updated"))
    for exp in found:
        stage = [exp.lifecycle_stage] if show_stage else []
        t.add_row(
            exp.experiment_id,
            esc(truncate(exp.name)),
            *stage,
            format_time(exp.creation_time),
            format_time(exp.last_update_time),
            esc(summarize(_user_tags(exp))),
        )
    print_table(t, empty="No experiments found.")


@experiments.command("create")
@click.argument("name")
@click.option(
    "--artifact-location",
    metavar="URI",
    default=None,
    help="Where this experiment's artifacts go [default: the workspace's artifact store].",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a tag on the new experiment (repeatable).",
)
@json_option
@pass_state
def create_experiment(
    state: CliState,
    name: str,
    artifact_location: str | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create an experiment called NAME and print its id."""
    store = state.store
    experiment_id = store.create_experiment(name, artifact_location, _parse_tags(tags) or None)
    if as_json:
        emit_json(store.get_experiment(experiment_id))
        return
    click.echo(f"Created experiment {name!r} with id {experiment_id}.")


@experiments.command("rename")
@click.argument("experiment")
@click.argument("new_name")
@json_option
@pass_state
def rename_experiment(state: CliState, experiment: str, new_name: str, as_json: bool) -> None:
    """Rename EXPERIMENT (a name or an id) to NEW_NAME."""
    store = state.store
    exp = resolve_experiment(store, experiment)
    store.rename_experiment(exp.experiment_id, new_name)
    if as_json:
        emit_json(store.get_experiment(exp.experiment_id))
        return
    click.echo(f"Renamed experiment {exp.experiment_id} from {exp.name!r} to {new_name!r}.")


@experiments.command("delete")
@click.argument("experiment")
@click.option(
    "--permanent",
    is_flag=True,
    help="Delete for good: remove its runs, free its name and the artifact bytes nothing else "
    "uses. Cannot be undone.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (with --permanent).")
@json_option
@pass_state
def delete_experiment(
    state: CliState, experiment: str, permanent: bool, yes: bool, as_json: bool
) -> None:
    """Delete EXPERIMENT (a name or an id) and its runs.

    By default the experiment is only marked deleted and `shipyard experiments restore` brings
    it back. With --permanent it is removed for good after a confirmation.
    """
    ws = state.workspace
    exp = resolve_experiment(ws.store, experiment)
    label = f"experiment {exp.name!r} (id {exp.experiment_id})"
    if not permanent:
        ws.store.delete_experiment(exp.experiment_id)
        if as_json:
            emit_json({"experiment_id": exp.experiment_id, "name": exp.name, "permanent": False})
            return
        click.echo(
            f"Deleted {label} and its runs. Undo with "
            f"`shipyard experiments restore {exp.experiment_id}`."
        )
        return
    if not yes:
        click.confirm(
            f"Permanently delete {label}, all its runs and their artifacts? This cannot be undone",
            abort=True,
            err=True,
        )
    from shipyard.tracking.gc import delete_experiment_permanently

    report = delete_experiment_permanently(
        ws.store, local_artifacts(ws, "Permanent deletion"), exp.experiment_id
    )
    if as_json:
        emit_json(
            {
                "experiment_id": exp.experiment_id,
                "name": exp.name,
                "permanent": True,
                "blobs_deleted": report.blobs_deleted,
                "bytes_freed": report.bytes_freed,
            }
        )
        return
    click.echo(
        f"Permanently deleted {label} and freed {human_size(report.bytes_freed)} of artifacts; "
        f"the name {exp.name!r} is free again."
    )


@experiments.command("restore")
@click.argument("experiment")
@json_option
@pass_state
def restore_experiment(state: CliState, experiment: str, as_json: bool) -> None:
    """Restore a deleted EXPERIMENT (a name or an id) and the runs deleted with it."""
    store = state.store
    exp = resolve_experiment(store, experiment)
    was_deleted = exp.lifecycle_stage == LifecycleStage.DELETED
    if was_deleted:
        store.restore_experiment(exp.experiment_id)
    if as_json:
        emit_json(store.get_experiment(exp.experiment_id))
    elif was_deleted:
        click.echo(f"Restored experiment {exp.name!r} (id {exp.experiment_id}) and its runs.")
    else:
        click.echo(
            f"Experiment {exp.name!r} (id {exp.experiment_id}) is not deleted; nothing to do."
        )


def _user_tags(exp: Experiment) -> dict[str, str]:
    """Tags people set (system tags such as ``mlflow.*`` are left out of tables)."""
    return {k: v for k, v in exp.tags.items() if not k.startswith(("mlflow.", "shipyard."))}
