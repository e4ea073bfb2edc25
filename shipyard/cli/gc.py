"""``shipyard gc``: purge what was deleted and give back the artifact bytes nothing uses."""

from __future__ import annotations

import re
import sys
import time
from contextlib import nullcontext
from typing import Any

import click

from shipyard.cli._context import CliState, local_artifacts, pass_state
from shipyard.cli._output import emit_json, human_duration, human_size, is_terminal, json_option
from shipyard.entities import to_json

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


class DurationType(click.ParamType):
    """A duration such as ``30d``, ``12h``, ``45m``, ``90s``, ``2w`` or ``0``, in seconds."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = _DURATION.match(str(value))
        if not match:
            self.fail(
                f"{value!r} is not a duration; write a number with a unit: 30d, 12h, 45m, 90s, "
                "2w (or 0 for no age limit).",
                param,
                ctx,
            )
        number, unit = match.groups()
        return float(number) * _UNITS[(unit or "s").lower()]


@click.command()
@click.option(
    "--older-than",
    type=DurationType(),
    default="30d",
    show_default=True,
    metavar="AGE",
    help="Purge only what was deleted at least AGE ago (30d, 12h, 45m, 90s; 0 = everything "
    "deleted).",
)
@click.option(
    "--dry-run", is_flag=True, help="Report what would be purged and freed; change nothing."
)
@json_option
@pass_state
def gc(state: CliState, older_than: float, dry_run: bool, as_json: bool) -> None:
    """Purge deleted experiments, runs and logged models, free unused bytes.

    Experiments and runs deleted with `shipyard experiments delete` / `shipyard runs delete`
    (and MLflow logged models deleted through the MLflow API) are purged once they have been deleted for longer than --older-than; then artifact bytes
    that no run references any more are deleted. Bytes written in the last
    SHIPYARD_GC_GRACE_SECONDS (default one hour) are kept, so uploads in progress are safe.
    """
    from shipyard.tracking.gc import collect_garbage

    ws = state.workspace
    artifacts = local_artifacts(ws, "Garbage collection")
    older_than_ms = int((time.time() - older_than) * 1000) if older_than > 0 else None
    if is_terminal(sys.stderr) and not as_json:
        from shipyard.cli._output import console

        label = "Looking for garbage…" if dry_run else "Collecting garbage…"
        status: Any = console(stderr=True).status(label)
    else:
        status = nullcontext()
    with status:
        report = collect_garbage(
            ws.store,
            artifacts,
            older_than_ms=older_than_ms,
            grace_seconds=ws.settings.gc_grace_seconds,
            dry_run=dry_run,
            logged_models=ws.logged_model_store,
        )
    if as_json:
        emit_json(
            {
                **to_json(report),
                "older_than_seconds": older_than,
                "grace_seconds": ws.settings.gc_grace_seconds,
            }
        )
        return
    age = f"more than {human_duration(older_than)} ago" if older_than > 0 else "at any time"
    purged = (
        f"{_count(report.experiments_purged, 'experiment')}, "
        f"{_count(report.runs_purged, 'run')} and "
        f"{_count(report.logged_models_purged, 'logged model')} deleted {age}"
    )
    if dry_run:
        more = (
            ", plus the artifact bytes only they use"
            if report.experiments_purged or report.runs_purged or report.logged_models_purged
            else ""
        )
        click.echo(
            f"Dry run: would purge {purged}, and free {human_size(report.bytes_freed)} in "
            f"{_count(report.blobs_deleted, 'orphaned blob')}{more}. "
            "Run without --dry-run to do it."
        )
        return
    click.echo(
        f"Purged {purged}; deleted {_count(report.blobs_deleted, 'blob')} and freed "
        f"{human_size(report.bytes_freed)}."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
