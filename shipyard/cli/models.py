"""``shipyard models``: the model registry: models, versions, aliases, approvals, history, cards.

Versions are named ``NAME/VERSION`` (``churn/3``), ``NAME@ALIAS``, ``NAME/latest`` or by a full
``models:/`` URI. Every command calls :class:`~shipyard.registry.Registry` (or the card and
MLflow-import services), so the same commands work on an embedded workspace and on a server.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli._context import (
    CliState,
    collect_pages,
    model_ref,
    parse_tags,
    pass_state,
    resolve_experiment,
)
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    human_size,
    json_option,
    note,
    print_fields,
    print_table,
    summarize,
    table,
    truncate,
    write_file,
)
from shipyard.errors import ApprovalRequired

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion, RegisteredModel
    from shipyard.registry import Registry

EVERY_ALIAS = "*"


def _registry(state: CliState) -> Registry:
    from shipyard.registry import Registry

    return Registry(state.workspace)


class TimeType(click.ParamType):
    """A moment: an ISO 8601 timestamp (local time unless it has an offset) or epoch ms."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{text!r} is not a time; write an ISO timestamp such as 2024-05-01T14:00:00 "
                "(local time), 2024-05-01T12:00:00Z, or milliseconds since the epoch.",
                param,
                ctx,
            )
        if moment.tzinfo is None:
            moment = moment.astimezone()
        return int(moment.timestamp() * 1000)


reason_option = click.option(
    "--reason", metavar="TEXT", default=None, help="Why, recorded in the audit trail."
)


def _paging_options(what: str, default: int) -> Any:
    def decorate(f: Any) -> Any:
        f = click.option(
            "--page-token",
            default=None,
            metavar="TOKEN",
            help="Start at this page (the next_page_token of an earlier --json listing).",
        )(f)
        f = click.option(
            "--all-pages", is_flag=True, help="Fetch every page instead of only the first."
        )(f)
        f = click.option(
            "--max-results",
            type=click.IntRange(min=1),
            default=default,
            show_default=True,
            metavar="N",
            help=f"{what} per page.",
        )(f)
        return f

    return decorate


@click.group()
def models() -> None:
    """Register model versions, move aliases through approvals, and inspect the audit trail."""


# ---------------------------------------------------------------------------- listing


@models.command("list")
@click.option(
    "--filter",
    "filter_string",
    default="",
    metavar="EXPR",
    help="Only models matching an MLflow-style filter, e.g. \"name LIKE 'churn%'\" or "
    "\"tags.team = 'risk'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    metavar="CLAUSE",
    help="Sort order, e.g. 'name DESC' or 'last_updated_timestamp DESC' (repeatable) "
    "[default: by name].",
)
@_paging_options("Models", 100)
@json_option
@pass_state
def list_models(
    state: CliState,
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    all_pages: bool,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List registered models with their latest version, aliases and approval policy."""
    registry = _registry(state)
    found, next_token = collect_pages(
        lambda token, size: registry.search_models(
            filter_string, max_results=size, order_by=list(order_by) or None, page_token=token
        ),
        page_size=max_results,
        page_token=page_token,
        all_pages=all_pages,
    )
    if as_json:
        emit_json({"models": found, "next_page_token": next_token})
        return
    t = table(
        "Name",
        "Latest",
        "Aliases",
        "Approvals",
        "Updated",
        "Description",
        "Tags",
        no_wrap=("Latest", "Updated"),
    )
    for m in found:
        latest = max((v.version for v in m.latest_versions), default=None)
        t.add_row(
            esc(truncate(m.name, 32)),
            str(latest) if latest is not None else "-",
            esc(_aliases(m)),
            esc(_policy(m)),
            format_time(m.last_updated_timestamp),
            esc(truncate(m.description or "-", 32)),
            esc(summarize(m.tags, 32)),
        )
    print_table(t, empty="No registered models found.")
    if next_token:
        note(
            f"Showing the first {len(found)} models; more exist. Add --all-pages, or "
            f"--page-token {next_token} for the next page."
        )


@models.command("show")
@click.argument("model", metavar="MODEL")
@json_option
@pass_state
def show_model(state: CliState, model: str, as_json: bool) -> None:
    """Show a model (MODEL is a name) or one version (churn/3, churn@champion, churn/latest).

    A model is shown with its tags, aliases, approval policy and versions; a version with its
    tags, approvals and what refers to it.
    """
    registry = _registry(state)
    name, uri = model_ref(model)
    if uri is not None:
        _show_version(registry, registry.resolve(uri), as_json)
        return
    m = registry.get_model(name)
    versions, _ = collect_pages(
        lambda token, size: registry.list_versions(name, max_results=size, page_token=token)
    )
    if as_json:
        emit_json({"model": m, "versions": versions})
        return
    print_fields(
        [
            ("Name", esc(m.name)),
            ("Description", esc(m.description or "-")),
            ("Created", f"{format_time(m.creation_timestamp)} by {esc(m.user_id or '-')}"),
            ("Updated", format_time(m.last_updated_timestamp)),
            ("Aliases", esc(_aliases(m))),
            ("Approvals", esc(_policy(m, long=True))),
            ("Tags", esc(summarize(m.tags, 80))),
        ],
        title=f"Model {esc(m.name)}",
    )
    print_table(_versions_table(versions, title="Versions"), empty="No versions yet.")


def _show_version(registry: Registry, v: ModelVersion, as_json: bool) -> None:
    approvals = registry.approvals(v.name, v.version)
    references = registry.references(v.name, v.version)
    if as_json:
        emit_json({"version": v, "approvals": approvals, "references": references})
        return
    print_fields(
        [
            ("Model", esc(v.name)),
            ("Version", str(v.version)),
            ("Status", v.status + (f" ({esc(v.status_message)})" if v.status_message else "")),
            ("Stage", v.current_stage),
            ("Aliases", esc(", ".join(v.aliases) or "-")),
            ("Source", esc(v.source)),
            ("Run", v.run_id or "-"),
            ("Registered", f"{format_time(v.creation_timestamp)} by {esc(v.user_id or '-')}"),
            ("Description", esc(v.description or "-")),
            ("Files sha256", v.content_digest or "-"),
            ("Referenced by", esc(", ".join(references) or "nothing")),
        ],
        title=f"Model {esc(v.name)} version {v.version}",
    )
    tags = table("Tag", "Value", title="Tags")
    for key in sorted(v.tags):
        tags.add_row(esc(key), esc(truncate(v.tags[key], 80)))
    print_table(tags, empty="No tags.")
    t = table("Approver", "When", "Comment", title="Approvals")
    for a in approvals:
        t.add_row(esc(a.approver), format_time(a.timestamp), esc(truncate(a.comment or "-", 80)))
    print_table(t, empty="No approvals.")


@models.command("versions")
@click.argument("name")
@click.option(
    "--filter",
    "filter_string",
    default="",
    metavar="EXPR",
    help="Only versions matching an MLflow-style filter, e.g. 'version_number > 2' or "
    "\"tags.validated = 'true'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    metavar="CLAUSE",
    help="Sort order, e.g. 'creation_timestamp ASC' (repeatable) [default: newest first].",
)
@_paging_options("Versions", 100)
@json_option
@pass_state
def list_versions(
    state: CliState,
    name: str,
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    all_pages: bool,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List the versions of model NAME, newest first."""
    registry = _registry(state)
    found, next_token = collect_pages(
        lambda token, size: registry.list_versions(
            name, filter_string, max_results=size, order_by=order_by, page_token=token
        ),
        page_size=max_results,
        page_token=page_token,
        all_pages=all_pages,
    )
    if as_json:
        emit_json({"name": name, "versions": found, "next_page_token": next_token})
        return
    print_table(_versions_table(found), empty=f"Model {name!r} has no versions matching that.")
    if next_token:
        note(
            f"Showing the first {len(found)} versions; more exist. Add --all-pages, or "
            f"--page-token {next_token} for the next page."
        )


# ---------------------------------------------------------------------------- registering


@models.command("register")
@click.argument("source")
@click.argument("name")
@click.option("--description", metavar="TEXT", default=None, help="Describe the new version.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a tag on the new version (repeatable).",
)
@click.option(
    "--experiment",
    "-e",
    "experiment_ref",
    default=None,
    metavar="NAME|ID",
    help="For a local folder: the experiment of the run its files are logged to "
    "[default: Default].",
)
@click.option(
    "--run-id",
    default=None,
    metavar="RUN_ID",
    help="For a local folder: log its files to this existing run instead of a new one. For a "
    "runs:/ source: must be the source's run.",
)
@json_option
@pass_state
def register_version(
    state: CliState,
    source: str,
    name: str,
    description: str | None,
    tags: tuple[str, ...],
    experiment_ref: str | None,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Register SOURCE as the next version of model NAME (created if it does not exist).

    SOURCE is files a run logged (runs:/<run_id>/<path>), a Shipyard model package folder
    (written by shipyard.save_model), or an MLflow model folder (with an MLmodel file, sklearn
    or python_function flavor). A local folder is first logged to a run. Pickle-based models
    (sklearn, cloudpickle, MLflow Python models) run code when they are loaded: register only
    models you trust.
    """
    ws = state.workspace
    version_tags = parse_tags(tags) or None
    if source.startswith("runs:/"):
        if experiment_ref is not None:
            raise click.UsageError("--experiment applies to local folders, not runs:/ sources.")
        version = _registry(state).register_model_version(
            name, source, run_id=run_id, description=description, tags=version_tags
        )
        _registered(version, as_json)
        return
    if "://" in source or source.startswith("models:/"):
        raise click.BadParameter(
            f"{source!r} is not a source Shipyard registers from; pass runs:/<run_id>/<path>, a "
            "Shipyard model package folder or an MLflow model folder.",
            param_hint="SOURCE",
        )
    from shipyard.models.manifest import MANIFEST
    from shipyard.models.mlflow_import import MLMODEL, import_mlflow_model, is_mlflow_model

    folder = Path(source)
    if folder.is_file() and folder.name in (MANIFEST, MLMODEL):
        folder = folder.parent
    experiment_id = (
        resolve_experiment(ws.store, experiment_ref).experiment_id if experiment_ref else None
    )
    if (folder / MANIFEST).is_file():
        version = _registry(state).register_package(
            name,
            folder,
            run_id=run_id,
            experiment_id=experiment_id,
            description=description,
            tags=version_tags,
        )
    elif is_mlflow_model(folder):
        version = import_mlflow_model(
            folder,
            name,
            run_id=run_id,
            experiment_id=experiment_id,
            description=description,
            tags=version_tags,
            workspace=ws,
        )
        note(
            f"Imported the MLflow model in {folder}. A pickle or cloudpickle model runs code "
            "when it is loaded: load it only if you trust where it came from."
        )
    elif not folder.exists():
        raise click.BadParameter(
            f"{source!r} is neither a runs:/ URI nor an existing folder.", param_hint="SOURCE"
        )
    else:
        raise click.BadParameter(
            f"{folder} holds neither a Shipyard model package ({MANIFEST}) nor an MLflow model "
            f"({MLMODEL}).",
            param_hint="SOURCE",
        )
    _registered(version, as_json)


def _registered(version: ModelVersion, as_json: bool) -> None:
    if as_json:
        emit_json(version)
        return
    click.echo(
        f"Registered {version.name!r} version {version.version} from {version.source}. "
        f"Load it with shipyard.load_model('models:/{version.name}/{version.version}')."
    )


# ---------------------------------------------------------------------------- approvals, aliases


@models.command("approve")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option(
    "--approver",
    metavar="USER",
    default=None,
    help="Who approves [default: the user running the command].",
)
@click.option("--comment", metavar="TEXT", default=None, help="A note kept with the approval.")
@click.option(
    "--alias",
    metavar="ALIAS",
    default=None,
    help="Then point ALIAS at the version, if it now has the approvals the policy requires.",
)
@reason_option
@json_option
@pass_state
def approve_version(
    state: CliState,
    name: str,
    version: int,
    approver: str | None,
    comment: str | None,
    alias: str | None,
    reason: str | None,
    as_json: bool,
) -> None:
    """Approve VERSION of model NAME (and with --alias, move an alias to it).

    Approving twice keeps the first approval. An alias moves to a version only once the
    model's policy (`shipyard models require-approvals`) is met.
    """
    registry = _registry(state)
    approval = registry.approve(name, version, approver, comment)
    count = len(registry.approvals(name, version))
    if alias is not None:
        try:
            registry.set_alias(name, alias, version, user=approver, reason=reason)
        except ApprovalRequired as exc:
            raise ApprovalRequired(
                f"Recorded {approval.approver}'s approval of {name!r} version {version}, but "
                f"{exc.message[:1].lower()}{exc.message[1:]}",
                details=exc.details,
            ) from exc
    if as_json:
        emit_json(
            {"approval": approval, "approvals": count, "alias": alias, "alias_set": bool(alias)}
        )
        return
    message = (
        f"Recorded {approval.approver}'s approval of {name!r} version {version} "
        f"({count} approval{'s' if count != 1 else ''} in all)."
    )
    if alias is not None:
        message += f" Alias {alias!r} now points at version {version}."
    click.echo(message)


@models.command("require-approvals")
@click.argument("name")
@click.argument("count", type=click.IntRange(min=0), metavar="N")
@click.option(
    "--alias",
    metavar="ALIAS",
    default=EVERY_ALIAS,
    help="The alias the rule is for [default: every alias without a rule of its own].",
)
@reason_option
@json_option
@pass_state
def require_approvals(
    state: CliState, name: str, count: int, alias: str, reason: str | None, as_json: bool
) -> None:
    """Require N distinct approvals before an alias of model NAME moves to a version.

    0 removes the rule. A rule for one alias (--alias champion) takes precedence over the rule
    for every alias.
    """
    model = _registry(state).require_approvals(name, count, alias=alias, reason=reason)
    if as_json:
        emit_json(model)
        return
    scope = "any alias" if alias == EVERY_ALIAS else f"alias {alias!r}"
    if count:
        click.echo(
            f"Model {name!r} now requires {count} approval{'s' if count != 1 else ''} before "
            f"{scope} moves to a version."
        )
    else:
        click.echo(f"Model {name!r} no longer requires approvals for {scope}.")


@models.group("alias")
def alias() -> None:
    """Point named aliases (champion, challenger ...) at versions, or remove them."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=click.IntRange(min=1))
@reason_option
@json_option
@pass_state
def set_alias(
    state: CliState, name: str, alias_name: str, version: int, reason: str | None, as_json: bool
) -> None:
    """Point ALIAS of model NAME at VERSION (refused until the version has the approvals the
    model's policy requires)."""
    registry = _registry(state)
    registry.set_alias(name, alias_name, version, reason=reason)
    if as_json:
        emit_json({"name": name, "alias": alias_name, "version": version})
        return
    click.echo(f"Alias {alias_name!r} of {name!r} now points at version {version}.")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@reason_option
@json_option
@pass_state
def delete_alias(
    state: CliState, name: str, alias_name: str, reason: str | None, as_json: bool
) -> None:
    """Remove ALIAS from model NAME."""
    _registry(state).delete_alias(name, alias_name, reason=reason)
    if as_json:
        emit_json({"name": name, "alias": alias_name, "deleted": True})
        return
    click.echo(f"Removed alias {alias_name!r} from {name!r}.")


# ---------------------------------------------------------------------------- history, card


@models.command("history")
@click.argument("name")
@click.option("--alias", metavar="ALIAS", default=None, help="Only the events of this alias.")
@click.option(
    "--at",
    type=TimeType(),
    default=None,
    help="With --alias: say which version the alias pointed at at TIME (ISO 8601, local time "
    "unless an offset is given, or epoch milliseconds).",
)
@json_option
@pass_state
def history(state: CliState, name: str, alias: str | None, at: int | None, as_json: bool) -> None:
    """Show the audit trail of model NAME: who did what, when and why, oldest first.

    With --alias A --at TIME, answer which version alias A pointed at at that moment.
    """
    registry = _registry(state)
    if at is not None:
        if alias is None:
            raise click.UsageError("--at needs --alias: say which alias to look up.")
        version = registry.alias_at(name, alias, at)
        if as_json:
            emit_json({"name": name, "alias": alias, "at": at, "version": version})
            return
        when = format_time(at)
        if version is None:
            click.echo(f"At {when}, alias {alias!r} of {name!r} pointed at no version.")
        else:
            click.echo(f"At {when}, alias {alias!r} of {name!r} pointed at version {version}.")
        return
    events = registry.history(name)
    if alias is not None:
        events = [e for e in events if e.alias == alias]
    if as_json:
        emit_json({"name": name, "events": events})
        return
    t = table("When", "Action", "Version", "Alias", "Change", "User", "Reason", no_wrap=("When",))
    for e in events:
        change = f"{e.from_value or '-'} -> {e.to_value or '-'}"
        t.add_row(
            format_time(e.timestamp),
            e.action,
            str(e.version) if e.version is not None else "-",
            esc(e.alias or "-"),
            esc(truncate(change, 40) if (e.from_value or e.to_value) else "-"),
            esc(e.user_id or "-"),
            esc(truncate(e.reason or "-", 40)),
        )
    print_table(t, empty=f"No events for {name!r}" + (f" alias {alias!r}." if alias else "."))


@models.command("card")
@click.argument("model", metavar="MODEL")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "html"]),
    default="markdown",
    show_default=True,
    help="Markdown, or one self-contained HTML page.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    metavar="FILE",
    help="Write the card to FILE instead of stdout.",
)
@json_option
@pass_state
def card(state: CliState, model: str, fmt: str, output: str | None, as_json: bool) -> None:
    """Render the model card of a version: churn/3, churn@champion, churn/latest (a bare NAME
    is its latest version).

    The card shows the version, its run's metrics, params and slice metrics
    (slice/<slice>/<metric>), the datasets it was trained on, its signature, lineage,
    approvals and audit events.
    """
    from shipyard.registry.card import model_card, to_html, to_markdown

    name, uri = model_ref(model)
    the_card = model_card(state.workspace, uri or f"models:/{name}/latest")
    if as_json:
        emit_json(the_card)
        return
    text = to_html(the_card) if fmt == "html" else to_markdown(the_card)
    if output is None:
        click.echo(text, nl=False)
        return
    write_file(output, text)
    v = the_card.version
    click.echo(f"Wrote the {fmt} card of {v.name!r} version {v.version} to {output}.")


# ---------------------------------------------------------------------------- deleting


@models.command("delete")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1), required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@reason_option
@json_option
@pass_state
def delete(
    state: CliState,
    name: str,
    version: int | None,
    yes: bool,
    reason: str | None,
    as_json: bool,
) -> None:
    """Delete VERSION of model NAME, or without VERSION the model and all its versions.

    Deleting is permanent (the audit trail stays) and frees the artifact bytes nothing else
    uses. It is refused while an alias, or anything else, refers to the version.
    """
    registry = _registry(state)
    what = f"version {version} of model {name!r}" if version else f"model {name!r}"
    if version is not None:
        registry.get_version(name, version)  # NotFound before asking
    else:
        registry.get_model(name)
    if not yes:
        click.confirm(
            f"Permanently delete {what}{' and all its versions' if not version else ''}? "
            "This cannot be undone",
            abort=True,
            err=True,
        )
    if version is not None:
        freed = registry.delete_version(name, version, reason=reason)
    else:
        freed = registry.delete_model(name, reason=reason)
    if as_json:
        emit_json({"name": name, "version": version, "deleted": True, "bytes_freed": freed})
        return
    click.echo(f"Deleted {what} and freed {human_size(freed)} of artifacts.")


# ---------------------------------------------------------------------------- helpers


def _aliases(m: RegisteredModel) -> str:
    return ", ".join(f"{a.alias}={a.version}" for a in m.aliases) or "-"


def _policy(m: RegisteredModel, *, long: bool = False) -> str:
    if not m.approval_policy:
        return "none required" if long else "-"
    parts = []
    for key, count in sorted(m.approval_policy.items(), key=lambda kv: kv[0] == EVERY_ALIAS):
        label = ("every other alias" if long else "*") if key == EVERY_ALIAS else key
        parts.append(f"{label}: {count}")
    return ", ".join(parts)


def _versions_table(versions: list[ModelVersion], *, title: str | None = None) -> Any:
    t = table(
        "Version",
        "Status",
        "Stage",
        "Aliases",
        "Run",
        "Registered",
        "User",
        "Description",
        title=title,
        no_wrap=("Version", "Registered", "Run"),
    )
    for v in versions:
        t.add_row(
            str(v.version),
            v.status,
            v.current_stage,
            esc(", ".join(v.aliases) or "-"),
            v.run_id or "-",
            format_time(v.creation_timestamp),
            esc(v.user_id or "-"),
            esc(truncate(v.description or "-", 40)),
        )
    return t
