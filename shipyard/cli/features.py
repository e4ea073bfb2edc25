"""``shipyard features``: apply feature definitions (with a diff), list and show them,
materialize the latest values into the online store, and schedule that.

Every command calls :class:`~shipyard.features.FeatureStore`; ``apply`` prints the diff before it
writes anything (and asks on a terminal unless ``--yes``).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli._context import CliState, FiniteRange, pass_state
from shipyard.cli._output import (
    emit_json,
    esc,
    format_time,
    is_terminal,
    json_option,
    note,
    print_fields,
    print_table,
    table,
    truncate,
)

if TYPE_CHECKING:
    from shipyard.features import FeatureStore
    from shipyard.store.features import DefinitionRecord

KIND_CHOICES = ("entity", "feature_view", "on_demand_feature_view", "feature_service")
_SHORT = {"entity": "entity", "feature_view": "view", "on_demand_feature_view": "on-demand",
          "feature_service": "service"}  # fmt: skip


def _store(state: CliState) -> FeatureStore:
    from shipyard.features import FeatureStore

    return FeatureStore(state.workspace)


def _summary(r: DefinitionRecord) -> str:
    spec = r.spec or {}
    if r.kind == "entity":
        return "keys: " + ", ".join(spec.get("join_keys", []))
    if r.kind == "feature_service":
        return ", ".join(spec.get("features", []))
    names = ", ".join(f["name"] for f in spec.get("features", []))
    if r.kind == "feature_view":
        ttl = spec.get("ttl_seconds")
        return f"{names} (ttl {ttl:g}s)" if ttl else names
    return names


def _record_json(r: DefinitionRecord) -> dict[str, Any]:
    return {
        "kind": r.kind,
        "name": r.name,
        "version": r.version,
        "spec": r.spec,
        "user_id": r.user_id,
        "creation_time": r.creation_time,
    }


@click.group()
def features() -> None:
    """Feature views, training sets and the online store: apply definitions, list them,
    materialize the latest values."""


@features.command("apply")
@click.argument("target", metavar="FILE_OR_MODULE")
@click.option("--prune", is_flag=True, help="Remove applied definitions missing from TARGET.")
@click.option("--dry-run", is_flag=True, help="Show the diff; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (on a terminal).")
@json_option
@pass_state
def apply_cmd(
    state: CliState, target: str, prune: bool, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Apply the definitions in FILE_OR_MODULE (a .py file or an importable module): print the
    diff against what is applied, then write each new or changed definition as a new version."""
    fs = _store(state)
    changes = fs.plan(target, prune=prune)
    if not as_json:
        for c in changes:
            for line in c.lines():
                click.echo(line)
        if not changes:
            click.echo("No changes: the definitions are already applied.")
            return
    if dry_run or not changes:
        if as_json:
            emit_json({"applied": False, "changes": [c.to_dict() for c in changes]})
        return
    if not yes and not as_json and is_terminal(sys.stdin) and is_terminal(sys.stdout):
        click.confirm(f"Apply {len(changes)} change(s)?", abort=True)
    from shipyard.tracking.context import current_user

    # Exactly the diff printed above: a concurrent apply in between is a Conflict, not a
    # silent overwrite.
    result = fs.apply_planned(changes, user_id=current_user())
    if as_json:
        emit_json({"applied": True, "changes": [c.to_dict() for c in result.changes]})
        return
    note(f"Applied {len(result.records)} change(s).")


@features.command("list")
@click.option("--kind", type=click.Choice(KIND_CHOICES), default=None, help="Only this kind.")
@json_option
@pass_state
def list_cmd(state: CliState, kind: str | None, as_json: bool) -> None:
    """List the applied entities, feature views, on-demand views and feature services."""
    records = _store(state).definitions(kind)
    if as_json:
        emit_json({"definitions": [_record_json(r) for r in records]})
        return
    t = table("Kind", "Name", "Version", "Features / keys", "Owner", "Applied", no_wrap=("Name",))
    for r in records:
        spec = r.spec or {}
        t.add_row(
            _SHORT[r.kind],
            esc(r.name),
            str(r.version),
            esc(truncate(_summary(r), 60)),
            esc(spec.get("owner", "")),
            format_time(r.creation_time),
        )
    print_table(t, empty="No feature definitions applied; run `shipyard features apply FILE`.")


@features.command("show")
@click.argument("name")
@click.option("--kind", type=click.Choice(KIND_CHOICES), default=None,
              help="The kind, when several definitions share NAME.")  # fmt: skip
@click.option("--version", "version", type=click.IntRange(min=1), default=None, metavar="V",
              help="Version number [default: the latest].")  # fmt: skip
@click.option("--history", is_flag=True, help="List every version instead.")
@json_option
@pass_state
def show(
    state: CliState,
    name: str,
    kind: str | None,
    version: int | None,
    history: bool,
    as_json: bool,
) -> None:
    """Show a definition: its spec, version, who applied it and when; for a feature view, its
    materializations and the training sets built from it."""
    from shipyard.errors import InvalidInput, NotFound

    fs = _store(state)
    kinds = [kind] if kind else list(KIND_CHOICES)
    found = []
    for k in kinds:
        try:
            found.append(fs.get(k, name, version))
        except NotFound:
            continue
    if not found:
        raise NotFound(
            f"No definition named {name!r} is applied; list them with `shipyard features list`."
        )
    if len(found) > 1:
        raise InvalidInput(
            f"{name!r} names a {found[0].kind} and a {found[1].kind}; pass --kind to choose."
        )
    r = found[0]
    if history:
        records = fs.meta.history(r.kind, r.name)
        if as_json:
            emit_json({"versions": [_record_json(x) for x in records]})
            return
        t = table("Version", "Applied", "By", "State")
        for x in records:
            t.add_row(str(x.version), format_time(x.creation_time), esc(x.user_id or "-"),
                      "removed" if x.removed else "")  # fmt: skip
        print_table(t, empty="No versions.")
        return
    extra: dict[str, Any] = {}
    if r.kind == "feature_view":
        extra["materializations"] = [
            {"mode": m.mode, "online_store": m.online_store, "end_time": m.end_time,
             "rows": m.num_rows, "view_version": m.view_version, "time": m.creation_time}
            for m in fs.meta.materializations(r.name)[:5]
        ]  # fmt: skip
        extra["training_sets"] = [
            {"dataset": d, "version": v, "view_version": n}
            for d, v, n in fs.training_sets_of(r.name)
        ]
    if as_json:
        emit_json({**_record_json(r), **extra})
        return
    rows = [
        ("kind", r.kind),
        ("name", r.name),
        ("version", str(r.version)),
        ("applied", format_time(r.creation_time)),
        ("applied by", r.user_id or "-"),
    ]
    rows += [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in (r.spec or {}).items()]
    for m in extra.get("materializations", [])[:1]:
        rows.append(
            ("last materialized", f"{format_time(m['time'])} ({m['mode']}, {m['rows']} rows)")
        )
    for ts in extra.get("training_sets", [])[:5]:
        rows.append(("training set", f"datasets:/{ts['dataset']}/{ts['version']}"))
    print_fields([(k, esc(v)) for k, v in rows])


@features.command("materialize")
@click.argument("views", nargs=-1, metavar="[VIEW]...")
@click.option("--start", default=None, metavar="TIME", help="Event times from (ISO 8601).")
@click.option("--end", default=None, metavar="TIME", help="Event times up to [default: now].")
@click.option("--incremental", is_flag=True,
              help="Only what arrived since each view's last materialization.")  # fmt: skip
@json_option
@pass_state
def materialize(
    state: CliState,
    views: tuple[str, ...],
    start: str | None,
    end: str | None,
    incremental: bool,
    as_json: bool,
) -> None:
    """Write the latest feature values per entity into the online store (every online view, or
    the VIEWs named): the whole history, a --start/--end window, or --incremental."""
    fs = _store(state)
    show_bar = not as_json and is_terminal(sys.stderr)
    if show_bar:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from shipyard.cli._output import console

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console(stderr=True),
            transient=True,
        ) as progress:
            tasks: dict[str, Any] = {}

            def advance(view: str, done: int, total: int) -> None:
                if view not in tasks:
                    tasks[view] = progress.add_task(f"Materializing {view}", total=total)
                progress.update(tasks[view], completed=done, total=total)

            done = fs.materialize(
                list(views) or None, start=start, end=end, incremental=incremental, progress=advance
            )
    else:
        done = fs.materialize(list(views) or None, start=start, end=end, incremental=incremental)
    fs.close()
    if as_json:
        emit_json({"materializations": [
            {"view": m.view, "view_version": m.view_version, "mode": m.mode, "rows": m.num_rows,
             "start_time": m.start_time, "end_time": m.end_time, "online_store": m.online_store}
            for m in done
        ]})  # fmt: skip
        return
    for m in done:
        note(f"{m.view}: {m.num_rows} entity row(s) written to {m.online_store} ({m.mode}).")


@features.command("schedule")
@click.argument("name")
@click.option("--every", "every_s", type=FiniteRange(min=0), default=None, metavar="SECONDS",
              help="Run every SECONDS seconds.")  # fmt: skip
@click.option("--cron", default=None, metavar="EXPR", help="Run on a cron schedule ('0 * * * *').")
@click.option("--view", "views", multiple=True, metavar="VIEW",
              help="Only this view (repeatable) [default: every online view].")  # fmt: skip
@json_option
@pass_state
def schedule(
    state: CliState,
    name: str,
    every_s: float | None,
    cron: str | None,
    views: tuple[str, ...],
    as_json: bool,
) -> None:
    """Schedule incremental materialization as pipeline schedule NAME (the scheduler of
    `shipyard server` or `shipyard scheduler` fires it)."""
    from shipyard.features.schedule import schedule_materialization

    s = schedule_materialization(state.workspace, name, every_s=every_s, cron=cron, views=views)
    if as_json:
        emit_json({"schedule": s.name, "reference": s.reference, "kind": s.kind, "spec": s.spec})
        return
    note(f"Schedule {s.name!r} materializes incrementally ({s.kind} {s.spec}).")
