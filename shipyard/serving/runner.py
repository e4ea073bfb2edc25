"""Run a model server under uvicorn: :func:`serve`.

Worker processes build their app with :func:`create_app_from_env`, reading the options this
process passes in :data:`OPTIONS_ENV_VAR`, so every worker serves the same deployment (each
loads its own copy of the models and writes its own prediction-log segments).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shipyard._listen import ensure_can_listen
from shipyard.config import Settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.security.bootstrap import resolve_auth
from shipyard.serving.endpoint import BatchingOptions, Endpoint
from shipyard.serving.predlog import PredictionLog, log_folder
from shipyard.serving.traffic import DeploymentSpec

OPTIONS_ENV_VAR = "SHIPYARD_SERVING_OPTIONS"
APP_FACTORY = "shipyard.serving.runner:create_app_from_env"


@dataclass(frozen=True)
class ServeOptions:
    """Everything a worker needs to build the same app."""

    spec: dict[str, Any]
    settings: str
    """JSON of the workspace's home, tracking URI and artifact URI."""
    batching: str = "auto"
    max_rows: int = 64
    max_wait_ms: float = 0.0
    max_body_bytes: int = 16 * 1024 * 1024
    log_predictions: bool = True
    log_flush_s: float = 1.0
    managed: str | None = None
    """A controller-managed deployment whose persisted traffic the endpoint follows."""
    auth: str = "off"
    """``on``: credentials and grants of the workspace guard the admin endpoints (guard.py)."""


def create_app_from_env() -> Any:
    """The app of a worker process (uvicorn's factory)."""
    raw = os.environ.get(OPTIONS_ENV_VAR)
    if not raw:
        raise InvalidInput(
            f"{OPTIONS_ENV_VAR} is not set; start the model server with `shipyard serve`."
        )
    return app_from_options(ServeOptions(**json.loads(raw)))


def app_from_options(options: ServeOptions) -> Any:
    from shipyard.serving.app import create_app
    from shipyard.workspace import Workspace

    where = json.loads(options.settings)
    settings = Settings.from_env(
        home=where["home"], tracking_uri=where["tracking_uri"], artifact_uri=where["artifact_uri"]
    )
    spec = DeploymentSpec.from_dict(options.spec)
    source = None
    if options.managed is not None:
        from shipyard.serving.managed import traffic_source

        source = traffic_source(options.managed, spec.name, spec.poll_interval_s)
    endpoint = Endpoint(
        lambda: Workspace.open(settings),
        spec,
        batching=BatchingOptions(
            mode=options.batching, max_rows=options.max_rows, max_wait_ms=options.max_wait_ms
        ),
        traffic_source=source,
    )
    plog = None
    if options.log_predictions:
        plog = PredictionLog(
            log_folder(settings.home, spec.name), flush_interval_s=options.log_flush_s
        )
    app = create_app(endpoint, plog, max_body_bytes=options.max_body_bytes)
    if options.auth == "on":
        from shipyard.security import Security
        from shipyard.serving.guard import ServingGuard, served_models

        guard_ws = Workspace.open(settings)
        app.add_middleware(
            ServingGuard,
            security=Security.for_workspace(guard_ws),
            models=served_models(spec),
            public_predictions=settings.auth_public_predictions,
        )
    return app


def _settings_env(settings: Settings) -> dict[str, str | None]:
    """Where the workspace is; the other settings come from the environment workers inherit."""
    return {
        "home": str(settings.home),
        "tracking_uri": settings.tracking_uri,
        "artifact_uri": settings.artifact_uri,
    }


def preflight(settings: Settings, spec: DeploymentSpec) -> None:
    """Check that every arm's model can be found before the server starts: an unknown model,
    version or alias, or a missing folder, is an error now rather than a server that answers
    503 for ever. (A managed deployment's versions come from its controller instead.)"""
    from shipyard.registry import Registry
    from shipyard.workspace import Workspace

    arms = [*spec.arms, *spec.shadow]
    with Workspace.open(settings) as ws:
        for arm in arms:
            if arm.model.startswith("models:/"):
                Registry(ws).resolve(arm.model)
            elif (
                "://" not in arm.model
                and not arm.model.startswith("runs:/")
                and not Path(arm.model).expanduser().exists()
            ):
                raise NotFound(
                    f"arm {arm.name!r} serves {arm.model!r}, which is neither a model URI "
                    "(models:/NAME/VERSION, runs:/RUN/PATH) nor an existing folder; check "
                    "the path or register the model first."
                )


def serve(
    settings: Settings,
    spec: DeploymentSpec | None,
    *,
    host: str = "127.0.0.1",
    port: int = 5001,
    workers: int = 1,
    log_level: str = "warning",
    batching: str = "auto",
    max_rows: int = 64,
    max_wait_ms: float = 0.0,
    max_body_bytes: int = 16 * 1024 * 1024,
    log_predictions: bool = True,
    managed: str | None = None,
    managed_poll_interval_s: float | None = None,
) -> None:
    """Serve ``spec`` until interrupted (blocks). With ``managed`` (and ``spec=None``), serve
    and follow the traffic the continuous-deployment controller persists for that deployment,
    re-read every ``managed_poll_interval_s`` (default: the deployment's)."""
    import uvicorn

    if spec is None:
        if managed is None:
            raise InvalidInput("serve a deployment spec, or name a managed deployment.")
        from shipyard.serving.managed import managed_spec
        from shipyard.workspace import Workspace

        with Workspace.open(settings) as ws:
            _, spec = managed_spec(ws, managed, poll_interval_s=managed_poll_interval_s)

    if workers < 1:
        raise InvalidInput(f"workers={workers}; run at least one worker process.")
    if managed is None:
        preflight(settings, spec)
    options = ServeOptions(
        spec=spec.to_dict(),
        settings=json.dumps(_settings_env(settings)),
        batching=batching,
        max_rows=max_rows,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
        log_predictions=log_predictions,
        managed=managed,
        auth=resolve_auth(settings, host).auth,
    )
    os.environ[OPTIONS_ENV_VAR] = json.dumps(asdict(options))
    ensure_can_listen(host, port)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=10,
    )
