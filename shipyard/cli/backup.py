"""``shipyard backup`` / ``shipyard restore``: a workspace's metadata and artifacts, consistent
while a server writes to it (see :mod:`shipyard.security.backup`)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import click

from shipyard.cli._context import CliState, pass_state
from shipyard.cli._output import emit_json, human_duration, human_size, is_terminal, json_option


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal; nothing otherwise."""
    if not is_terminal(sys.stderr):
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@json_option
@pass_state
def backup(state: CliState, dest: Path, as_json: bool) -> None:
    """Back up the workspace (metadata + artifacts) into the new folder DEST.

    Safe while a server writes: SQLite is copied with its online backup API, PostgreSQL with
    pg_dump, then the artifact blobs. Restore with `shipyard restore DEST` into an empty home.
    """
    from shipyard.security.backup import backup as run_backup

    with _progress("Copying artifacts") as progress:
        report = run_backup(state.settings, dest, progress=progress)
    if as_json:
        emit_json({**asdict(report), "path": str(report.path)})
        return
    click.echo(
        f"Backed up {report.backend} metadata (revision {report.revision}) and {report.blobs} "
        f"blobs ({human_size(report.bytes)}) to {report.path} in "
        f"{human_duration(report.seconds)}"
    )


@click.command()
@click.argument("src", type=click.Path(file_okay=False, exists=True, path_type=Path))
@json_option
@pass_state
def restore(state: CliState, src: Path, as_json: bool) -> None:
    """Restore the backup in SRC into this (empty) workspace.

    Give a new --home (and, for PostgreSQL, an empty database with --tracking-uri). Then
    `shipyard db upgrade` if the backup comes from an older schema.
    """
    from shipyard.security.backup import restore as run_restore

    with _progress("Restoring artifacts") as progress:
        report = run_restore(state.settings, src, progress=progress)
    if as_json:
        emit_json({**asdict(report), "home": str(report.home)})
        return
    click.echo(
        f"Restored {report.backend} metadata (revision {report.revision}) and {report.blobs} "
        f"blobs ({human_size(report.bytes)}) into {report.home}"
    )
