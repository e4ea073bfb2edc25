"""The ``shipyard`` command: global options, the command groups, and the error boundary.

Each command group lives in its own module and calls one service per command. This module only
wires them together and turns whatever goes wrong into one readable line on stderr:

* a :class:`~shipyard.errors.ShipyardError` prints ``Error: <message>`` and exits with 1;
* a usage mistake (unknown option, bad value) is reported by click and exits with 2;
* Ctrl-C exits with 130;
* a path, file or number of the user's that the system refuses (a folder that is a file, a file
  that is not UTF-8, a number too large to store) prints ``Error: <what and where>``, exit 1;
* a closed pipe (``shipyard runs show RUN | head -1``) exits quietly (code 1, as click does);
* anything unexpected prints ``Internal error: <type>: <message>`` and exits with 1.

No traceback is shown unless ``SHIPYARD_DEBUG=1`` is set. Heavy modules (SQLAlchemy, the stores,
rich tables) are imported inside the commands that need them, so ``shipyard --help`` is fast.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from typing import IO, Any

import click

from shipyard._version import __version__
from shipyard.cli._context import CliState
from shipyard.cli.artifacts import artifacts
from shipyard.cli.auth import auth
from shipyard.cli.backup import backup, restore
from shipyard.cli.data import data
from shipyard.cli.db import db
from shipyard.cli.deploy import controller, deploy, gates
from shipyard.cli.experiments import experiments
from shipyard.cli.features import features
from shipyard.cli.gc import gc
from shipyard.cli.lineage import lineage
from shipyard.cli.models import models
from shipyard.cli.monitor import monitor
from shipyard.cli.pipelines import pipelines, scheduler
from shipyard.cli.quickstart import quickstart
from shipyard.cli.runs import runs
from shipyard.cli.serve import predict, serve
from shipyard.cli.server import server
from shipyard.errors import ShipyardError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def debug_enabled() -> bool:
    """Whether ``SHIPYARD_DEBUG`` asks for tracebacks (a CLI switch, not a setting)."""
    return os.environ.get("SHIPYARD_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def one_line(text: str) -> str:
    """Fold a message onto one line."""
    return re.sub(r"\s*\n\s*", " ", text).strip()


class ErrorLine(click.ClickException):
    """A failure shown as one line on stderr (red on a terminal); exit code 1."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        click.secho(self.message, file=file, err=file is None, fg="red")


class ShipyardGroup(click.Group):
    """A click group whose invocation is an error boundary (see the module docstring)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except ShipyardError as exc:
            if debug_enabled():
                traceback.print_exc()
            raise ErrorLine(f"Error: {one_line(exc.message or str(exc))}") from exc
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            raise  # the reader went away: click (or main()) exits quietly
        except Exception as exc:
            if debug_enabled():
                raise
            known = user_error(exc)
            if known is not None:
                raise ErrorLine(f"Error: {one_line(known)}") from exc
            raise ErrorLine(
                f"Internal error: {type(exc).__name__}: {one_line(str(exc))} "
                "(run with SHIPYARD_DEBUG=1 for the traceback)"
            ) from exc


def user_error(exc: Exception) -> str | None:
    """The message of an exception that comes from the user's own files, paths or numbers
    (a folder that is a file, a file that is not text, a number too large to store), where a
    command did not say it better itself; ``None`` for anything else."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        where = f"{exc.filename!s}" + (f" -> {exc.filename2!s}" if exc.filename2 else "")
        return (
            f"{where}: {exc.strerror}. Check the path (its folder must exist and be a folder) "
            "and the permissions."
        )
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"the input is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position "
            f"{exc.start}); give a text file (YAML, JSON, Python) where one is expected."
        )
    if isinstance(exc, OverflowError):
        return f"a number is too large ({exc}); give a smaller value."
    return None


@click.group(
    "shipyard",
    cls=ShipyardGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, dir_okay=True),
    envvar="SHIPYARD_HOME",
    show_envvar=True,
    help="Workspace folder holding the embedded database and artifacts [default: ./.shipyard].",
)
@click.option(
    "--tracking-uri",
    metavar="URI",
    envvar="SHIPYARD_TRACKING_URI",
    show_envvar=True,
    help="Where metadata lives: sqlite:///path, postgresql://... or http(s)://server "
    "[default: the database in the workspace folder].",
)
@click.version_option(__version__, "--version", "-V", prog_name="shipyard")
@click.pass_context
def cli(ctx: click.Context, home: str | None, tracking_uri: str | None) -> None:
    """Shipyard: track experiments, manage their runs, artifacts and registered models, and
    serve a team.

    Works on the embedded workspace in ./.shipyard unless --home or --tracking-uri point
    elsewhere. Every command that shows something accepts --json.
    """
    state = ctx.ensure_object(CliState)
    state.home = home
    state.tracking_uri = tracking_uri
    ctx.call_on_close(state.close)


cli.add_command(experiments)
cli.add_command(runs)
cli.add_command(artifacts)
cli.add_command(models)
cli.add_command(data)
cli.add_command(features)
cli.add_command(lineage)
cli.add_command(db)
cli.add_command(gc)
cli.add_command(server)
cli.add_command(auth)
cli.add_command(backup)
cli.add_command(restore)
cli.add_command(pipelines)
cli.add_command(monitor)
cli.add_command(scheduler)
cli.add_command(serve)
cli.add_command(predict)
cli.add_command(quickstart)
cli.add_command(deploy)
cli.add_command(gates)
cli.add_command(controller)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``shipyard`` console script (and ``python -m shipyard``)."""
    try:
        cli.main(args=argv, prog_name="shipyard")
    except BrokenPipeError:
        # The reader went away (``shipyard runs show RUN | head -1``): exit quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # raised outside a command, e.g. while parsing
        if debug_enabled():
            raise
        ErrorLine(
            f"Internal error: {type(exc).__name__}: {one_line(str(exc))} "
            "(run with SHIPYARD_DEBUG=1 for the traceback)"
        ).show()
        sys.exit(EXIT_ERROR)
