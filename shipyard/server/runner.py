"""Run the server under uvicorn: ``serve(settings, host, port, workers)``.

Uvicorn picks uvloop and httptools when they are installed (``uvicorn[standard]``). Worker
processes build their app with :func:`shipyard.server.app.create_app_from_env`, reading the
settings this process passes in :data:`~shipyard.server.app.SETTINGS_ENV_VAR`, so every worker
serves the same workspace.

``python -m shipyard.server.runner --port 5000`` starts a server from the ``SHIPYARD_*``
environment variables (what the test suite's ``live_server`` fixture does); ``shipyard server``
is the command users run.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any

from shipyard.config import Settings

APP_FACTORY = "shipyard.server.app:create_app_from_env"


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 5000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = False,
    scheduler: bool = True,
    warn_insecure: bool = True,
) -> None:
    """Serve the workspace ``settings`` names until interrupted (blocks).

    ``access_log`` logs one line per request (off by default: it costs more than routing).
    ``scheduler`` runs the pipeline scheduler in each worker (schedules fire once however many
    workers poll: each slot and event is claimed in the database first).

    With ``workers > 1`` uvicorn starts that many processes sharing the port. The workspace is
    opened once here first, so the database is created or checked before workers race for it.

    Authentication (``settings.auth``): ``auto`` is off on a loopback ``host`` and on anywhere
    else (:func:`shipyard.security.bootstrap.resolve_auth`); ``off`` on another address starts
    with a warning on stderr. With auth on, the first start creates an admin (from
    ``SHIPYARD_ADMIN_PASSWORD``, or with a one-time token printed on stderr).
    """
    import uvicorn

    from shipyard._listen import ensure_can_listen
    from shipyard.config import admin_bootstrap
    from shipyard.security.bootstrap import (
        bootstrap_admin,
        bootstrap_message,
        insecure_warning,
        resolve_auth,
    )
    from shipyard.server.app import SCHEDULER_ENV_VAR, SETTINGS_ENV_VAR, settings_to_json
    from shipyard.workspace import Workspace

    if settings.is_remote:
        from shipyard.errors import InvalidInput

        raise InvalidInput(
            f"The server cannot serve the remote tracking URI {settings.tracking_uri}; give it a "
            "database (sqlite:///path or postgresql://...) with --tracking-uri or "
            "SHIPYARD_TRACKING_URI."
        )
    ensure_can_listen(host, port)  # before anything is created or printed
    if workers < 1:
        from shipyard.errors import InvalidInput

        raise InvalidInput(f"workers={workers}; run at least one worker process.")
    settings = resolve_auth(settings, host)
    warning = insecure_warning(settings, host, port)
    if warning and warn_insecure:
        print(warning, file=sys.stderr, flush=True)
    with Workspace.open(settings) as ws:
        if settings.auth == "on":
            token = bootstrap_admin(ws)
            if token is not None:
                print(bootstrap_message(admin_bootstrap()[0], token), file=sys.stderr, flush=True)
    os.environ[SETTINGS_ENV_VAR] = settings_to_json(settings)
    os.environ[SCHEDULER_ENV_VAR] = "1" if scheduler else "0"
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config(log_level),
        access_log=access_log,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )


def log_config(log_level: str) -> dict[str, Any]:
    """Uvicorn's logging configuration, with Shipyard's ``shipyard.*`` loggers added to it."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["shipyard"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


def main(argv: list[str] | None = None) -> None:
    """``python -m shipyard.server.runner``: serve the workspace of the environment."""
    parser = argparse.ArgumentParser(prog="python -m shipyard.server.runner")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    serve(
        Settings.from_env(),
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
