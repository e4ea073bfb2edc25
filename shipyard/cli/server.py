"""``shipyard server``: serve the REST API, the MLflow-compatible API and the UI.

The only place where ``cli/`` reaches into ``server/``: the runner is imported inside the
command, so the rest of the CLI never loads the web stack.
"""

from __future__ import annotations

import click

from shipyard.cli._context import CliState, pass_state
from shipyard.errors import missing_extra
from shipyard.security.bootstrap import insecure_warning, is_loopback, resolve_auth

__all__ = ["is_loopback", "server"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. 0.0.0.0 listens on every interface (see the warning).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="TCP port to listen on.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes serving requests.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="How much the server logs.",
)
@click.option("--access-log", is_flag=True, help="Log one line per request.")
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Don't fire pipeline schedules and triggers here (run `shipyard scheduler` elsewhere).",
)
@click.option(
    "--auth",
    type=click.Choice(["auto", "on", "off"]),
    default=None,
    help="Require credentials: auto (default, SHIPYARD_AUTH) is off on 127.0.0.1 and on "
    "anywhere else; off on another address prints a warning.",
)
@pass_state
def server(
    state: CliState,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    access_log: bool,
    no_scheduler: bool,
    auth: str | None,
) -> None:
    """Serve this workspace over HTTP for a team to share.

    Point the SDK or the mlflow client at it with SHIPYARD_TRACKING_URI=http://HOST:PORT
    (with auth on, also SHIPYARD_HTTP_TOKEN / MLFLOW_TRACKING_TOKEN). The first start with auth
    on creates the admin user: its password comes from SHIPYARD_ADMIN_PASSWORD, or a one-time
    token is printed. Stop it with Ctrl-C.
    """
    settings = state.settings
    if auth is not None:
        settings = settings.with_(auth=auth)
    if settings.is_remote:
        raise click.UsageError(
            f"The tracking URI {settings.tracking_uri} is itself a server; a server needs a "
            "database. Use --home, or --tracking-uri sqlite:///... or postgresql://..."
        )
    settings = resolve_auth(settings, host)
    warning = insecure_warning(settings, host, port)
    if warning:
        click.secho(warning, err=True, fg="yellow")
    try:
        import shipyard.server.runner as runner
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "shipyard":
            raise missing_extra(missing, "server") from None
        raise
    runner.serve(
        settings,
        host,
        port,
        workers,
        log_level.lower(),
        access_log=access_log,
        scheduler=not no_scheduler,
        warn_insecure=False,
    )
