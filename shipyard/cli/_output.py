"""How the ``shipyard`` command shows things: JSON for machines, rich tables for people.

Every command that shows something takes ``--json`` (:func:`json_option`); with it, stdout holds
exactly one JSON document (:func:`emit_json`) and everything else (warnings, progress) goes to
stderr. Without it, output is made of the small helpers here, so times, durations, sizes and
truncation look the same in every command.

``rich`` is imported inside the functions that draw, so ``shipyard --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shipyard.entities import to_json
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])

CELL_WIDTH = 48
"""Longest value shown in a table cell; longer ones are cut (``--json`` shows them whole)."""

_PIPE_WIDTH = 240
"""Width tables are laid out for when stdout is not a terminal (pipes, files, tests)."""


def json_option(f: F) -> F:
    """Add ``--json`` (parameter ``as_json``) to a command."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print machine-readable JSON on stdout (nothing else) instead of a table.",
    )(f)


def emit_json(value: Any) -> None:
    """Print ``value`` (entities allowed) as one strict JSON document on stdout."""
    click.echo(json.dumps(to_json(value), indent=2, allow_nan=False, ensure_ascii=False))


def write_file(path: str | os.PathLike[str], text: str, *, make_folder: bool = False) -> None:
    """Write ``text`` to a file the user named (``--output``, ``--html``) atomically (a
    temporary file renamed into place), creating its folder with ``make_folder``; a failure is
    one readable error rather than a traceback, and leaves no partial file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if make_folder:
            target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(
            f"can't write {os.fspath(path)}: {exc.strerror or exc}. Check that its folder exists "
            "and is writable, or choose another path."
        ) from None


def read_file(path: str | os.PathLike[str]) -> str:
    """The UTF-8 text of a file the user named; a failure is one readable error."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"can't read {os.fspath(path)}: {exc}.") from None


def is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an interactive terminal (progress bars and colour only there)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def console(*, stderr: bool = False) -> Console:
    """A rich console on stdout (or stderr); wide and colourless when not a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_tty = is_terminal(stream)
    width = None if is_tty or os.environ.get("COLUMNS") else _PIPE_WIDTH
    return Console(
        file=stream,
        width=width,
        no_color=not is_tty,
        highlight=False,
        soft_wrap=False,
        emoji=False,
    )


def table(*columns: str, title: str | None = None, no_wrap: Sequence[str] = ()) -> Table:
    """A plain table with the given column headers (``no_wrap`` columns are never folded)."""
    from rich import box
    from rich.table import Table

    t = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title_justify="left",
        title_style="bold",
        caption_justify="left",
    )
    for name in columns:
        t.add_column(name, no_wrap=name in no_wrap, overflow="fold")
    return t


def print_table(t: Table, *, empty: str) -> None:
    """Print a table, or the ``empty`` message when it has no rows.

    A titled table is a section of a longer report, so a blank line separates it from the
    previous one.
    """
    if t.title:
        click.echo()
    if t.row_count == 0:
        click.echo(empty)
        return
    console().print(t)


def print_fields(rows: Iterable[tuple[str, str]], *, title: str | None = None) -> None:
    """Print ``label  value`` lines (a two-column table without a header)."""
    from rich.table import Table

    t = Table(
        title=title,
        box=None,
        show_header=False,
        pad_edge=False,
        title_justify="left",
        title_style="bold",
    )
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    for label, value in rows:
        t.add_row(label, value)
    console().print(t)


def note(message: str) -> None:
    """A hint or notice for people, on stderr (never mixed into ``--json`` output)."""
    click.secho(message, err=True, fg="yellow")


def esc(value: object) -> str:
    """Escape rich markup in user text (names, tags) so ``[x]`` is shown literally."""
    from rich.markup import escape

    return escape(str(value))


# ---------------------------------------------------------------- formatting


def truncate(value: object, width: int = CELL_WIDTH) -> str:
    """``value`` as text, cut to ``width`` characters with a trailing ellipsis."""
    text = " ".join(str(value).split()) if "\n" in str(value) else str(value)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as a local ISO date and time (``2024-05-01 14:03:07``)."""
    if not ms:
        return "-"
    return (
        datetime.fromtimestamp(ms / 1000).astimezone().isoformat(sep=" ", timespec="seconds")[:19]
    )


def format_duration(start_ms: int | None, end_ms: int | None, *, running: bool = False) -> str:
    """The time between two epoch-ms instants (``1h 02m``, ``3.2s``); until now if running."""
    if not start_ms:
        return "-"
    if end_ms is None:
        if not running:
            return "-"
        end_ms = int(time.time() * 1000)
    return human_duration((end_ms - start_ms) / 1000)


def human_duration(seconds: float) -> str:
    """Seconds as a short human duration: ``450ms``, ``3.2s``, ``4m 05s``, ``2h 10m``, ``3d 4h``."""
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s" if s % 60 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m" if s % 3600 // 60 else f"{s // 3600}h"
    return f"{s // 86400}d {s % 86400 // 3600}h" if s % 86400 // 3600 else f"{s // 86400}d"


def human_size(size: int | None) -> str:
    """A byte count as ``512 B``, ``1.5 KiB``, ``3.0 MiB`` ...; ``-`` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_value(value: object) -> str:
    """A param or metric value for a table cell: floats compact, everything truncated."""
    if isinstance(value, float):
        return truncate(f"{value:.6g}")
    return truncate(value)


def summarize(mapping: Mapping[str, object], width: int = CELL_WIDTH) -> str:
    """``k=v, k=v`` sorted by key, cut to ``width`` characters (``-`` when empty)."""
    if not mapping:
        return "-"
    parts = []
    for k in sorted(mapping):
        v = mapping[k]
        parts.append(f"{k}={f'{v:.4g}' if isinstance(v, float) else v}")
    return truncate(", ".join(parts), width)
