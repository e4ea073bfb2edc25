"""The server's app factory: Shipyard's API, the MLflow-compatible API, health and OpenAPI.

:func:`create_app` builds a Starlette application around a :class:`~shipyard.workspace.Workspace`
(plain Starlette: routing and middleware cost microseconds per request). Uvicorn worker processes
use :func:`create_app_from_env`, which reads the server's settings once from the
:data:`SETTINGS_ENV_VAR` variable that :func:`shipyard.server.runner.serve` sets.

Request path, outermost first::

    SecurityHeaders nosniff everywhere; CSP and friends on HTML (shipyard.server.protection)
    ErrorBoundary   unexpected exceptions -> logged, JSON 500 INTERNAL_ERROR (no traceback)
    Limits          body size and request rate (Settings.max_request_bytes, rate_limit_per_minute)
    AuthMiddleware  request.state.principal; the UI gate (shipyard.server.auth)
    ExceptionMiddleware  ShipyardError / 404 / 405 -> JSON (shipyard.server.errors)
    Router          /health, /version, /api/openapi.json, /api/v1/..., MLflow's paths, the UI
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.server._http_util import JSONResponse
from shipyard.server.auth import (
    AllowAll,
    AnonymousAuthenticator,
    Authenticator,
    AuthMiddleware,
    Authorizer,
    auth_for_workspace,
)
from shipyard.server.errors import (
    error_response,
    handle_http_exception,
    handle_shipyard_error,
    internal_error_response,
)
from shipyard.server.protection import LimitsMiddleware, SecurityHeadersMiddleware
from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.server")

SETTINGS_ENV_VAR = "SHIPYARD_SERVER_SETTINGS"
"""Holds the server's :class:`Settings` as JSON for uvicorn worker processes."""
SCHEDULER_ENV_VAR = "SHIPYARD_SERVER_SCHEDULER"
"""``0`` when ``shipyard server --no-scheduler`` asked the workers not to run the scheduler."""


def create_app(
    workspace: Workspace,
    *,
    authenticator: Authenticator | None = None,
    authorizer: Authorizer | None = None,
    close_workspace: bool = False,
    scheduler: bool = False,
) -> Starlette:
    """The ASGI application serving ``workspace``.

    ``authenticator`` and ``authorizer`` default to anonymous access with every action allowed
    when ``workspace.settings.auth`` is not ``on``, and to the workspace's users, tokens and
    role grants when it is (:func:`shipyard.server.auth.auth_for_workspace`). With ``close_workspace`` the app closes the workspace when
    the server shuts down; otherwise the caller owns it. With ``scheduler`` the pipeline
    scheduler (:class:`shipyard.pipelines.scheduler.Scheduler`) polls in a background thread
    while the app runs.
    """
    from shipyard.server import api
    from shipyard.server.api import features as features_api
    from shipyard.server.mlflow import routes as mlflow_routes
    from shipyard.server.ui import routes as ui_routes

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
        # MLflow's surface first: one route that turns other paths away with a prefix test,
        # so the hot logging calls skip matching every Shipyard API route.
        *mlflow_routes(workspace),
        *api.routes(workspace),
        *features_api.routes(workspace),
        # The web UI last: its pages answer at /, /experiments, /runs/... (shipyard.server.ui).
        *ui_routes(workspace),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = None
        if scheduler and workspace.pipeline_store is not None:
            from shipyard.pipelines.scheduler import Scheduler

            background = Scheduler(workspace)
            background.start()
        monitor_background = None
        if scheduler and workspace.monitor_store is not None:
            from shipyard.monitoring.scheduler import MonitorScheduler

            monitor_background = MonitorScheduler(workspace)
            monitor_background.start()
        controller = None
        if scheduler and workspace.deployment_store is not None:
            from shipyard.deploy import Controller

            controller = Controller(workspace)
            controller.start()
        try:
            yield
        finally:
            if controller is not None:
                await run_in_threadpool(controller.stop)
            if monitor_background is not None:
                await run_in_threadpool(monitor_background.stop)
            if background is not None:
                await run_in_threadpool(background.stop)
            if close_workspace:
                await run_in_threadpool(workspace.close)

    settings = workspace.settings
    if authenticator is None and authorizer is None and settings.auth == "on":
        authenticator, authorizer = auth_for_workspace(workspace)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(ErrorBoundary),
            Middleware(
                LimitsMiddleware,
                max_request_bytes=settings.max_request_bytes,
                per_minute=settings.rate_limit_per_minute,
            ),
            Middleware(AuthMiddleware, authenticator=authenticator or AnonymousAuthenticator()),
        ],
        exception_handlers={
            ShipyardError: handle_shipyard_error,
            HTTPException: handle_http_exception,
        },
        lifespan=lifespan,
    )
    app.state.workspace = workspace
    app.state.authorizer = authorizer or AllowAll()
    app.state.protected_aliases = frozenset(
        a.strip().lower() for a in settings.protected_aliases.split(",") if a.strip()
    )
    return app


def create_app_from_env() -> Starlette:
    """The app for a uvicorn worker: settings from :data:`SETTINGS_ENV_VAR` (set by
    :func:`shipyard.server.runner.serve`), else from the ``SHIPYARD_*`` variables."""
    raw = os.environ.get(SETTINGS_ENV_VAR)
    settings = settings_from_json(raw) if raw else Settings.from_env()
    scheduler = os.environ.get(SCHEDULER_ENV_VAR, "1") != "0"
    return create_app(Workspace.open(settings), close_workspace=True, scheduler=scheduler)


def settings_to_json(settings: Settings) -> str:
    """Serialize settings for :data:`SETTINGS_ENV_VAR`."""
    data = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    data["home"] = str(settings.home)
    return json.dumps(data)


def settings_from_json(raw: str) -> Settings:
    """The inverse of :func:`settings_to_json` (unknown keys are ignored)."""
    try:
        data: dict[str, Any] = json.loads(raw)
    except ValueError as exc:
        raise ShipyardError(
            f"{SETTINGS_ENV_VAR} does not hold valid JSON ({exc}); start the server with "
            "`shipyard server` instead of setting it by hand."
        ) from None
    names = {f.name for f in dataclasses.fields(Settings)}
    kwargs = {k: v for k, v in data.items() if k in names}
    kwargs["home"] = Path(kwargs["home"])
    return Settings(**kwargs)


# ------------------------------------------------------------------------------ small routes


async def health(request: Request) -> Response:
    """Liveness: ``200 OK`` while the process serves requests."""
    return PlainTextResponse("OK")


async def version(request: Request) -> Response:
    """The server's version as plain text (what ``mlflow`` clients expect)."""
    return PlainTextResponse(__version__)


async def openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of every ``/api/v1`` endpoint (built once per process)."""
    state = request.app.state
    cached = getattr(state, "openapi", None)
    if cached is None:
        from shipyard.server.openapi import build_openapi

        cached = state.openapi = build_openapi(request.app.routes)
    return JSONResponse(cached)


# ------------------------------------------------------------------------------ error boundary


class ErrorBoundary:
    """Outermost middleware: nothing a client does yields a traceback or an HTML page.

    Shipyard errors raised outside routes (by middleware) get their JSON answer; any other
    exception is logged with its traceback and answered with a generic JSON 500. A client that
    disconnects mid-request is not an error. Once a response has started it can no longer be
    replaced, so the exception goes on to the server, which closes the connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except ClientDisconnect:
            logger.debug("client disconnected during %s %s", scope["method"], scope["path"])
        except ShipyardError as exc:
            if started:
                raise
            await error_response(scope["path"], exc)(scope, receive, send)
        except Exception as exc:
            if started:
                raise
            await internal_error_response(scope["path"], exc)(scope, receive, send)
