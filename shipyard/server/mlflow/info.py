"""The server-info probe and the MLflow endpoints Shipyard does not serve yet.

MLflow clients call ``GET /api/3.0/mlflow/server-info`` before moving artifacts; answering with
every transfer capability off keeps them on the plain streamed ``PUT``/``GET`` path of the artifact
service. Logged models (``/logged-models``, ``/runs/outputs``) answer a JSON 404
``ENDPOINT_NOT_FOUND`` that says so, rather than an HTML page or a crash -- except their search,
which truthfully finds nothing: the client's ``list_artifacts``/``download_artifacts`` of a run
sub-folder always asks whether a logged model of that name belongs to the run, and must hear "no".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard import validation
from shipyard.errors import EndpointNotFound
from shipyard.server.mlflow._wire import Args, Endpoint, json_response
from shipyard.workspace import Workspace

SERVER_INFO: dict[str, Any] = {
    "store_type": "SqlStore",
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "artifacts_presigned_only": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {},
}
"""What this server offers MLflow clients: no multipart, no presigned URLs, no workspaces."""

SERVER_INFO_PATHS = ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info")

NOT_SERVED_PATHS = (
    "/runs/outputs",
    "/logged-models",
    "/logged-models/{rest:path}",
)
"""Paths below the MLflow prefixes that belong to MLflow 3 logged models (not served yet)."""

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def server_info(request: Request) -> Response:
    """``GET /api/3.0/mlflow/server-info``: the capability probe."""
    return json_response(SERVER_INFO)


async def not_served(request: Request) -> Response:
    """A JSON 404 for MLflow endpoints this server does not implement yet."""
    raise EndpointNotFound(
        f"{request.method} {request.url.path} belongs to MLflow's logged-models API, which this "
        "Shipyard server does not serve yet. Save the model as run artifacts instead (for "
        "example mlflow.sklearn.save_model(model, 'model') then mlflow.log_artifacts('model', "
        "'model')), or register it with Shipyard's own registry."
    )


def search_logged_models(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST logged-models/search {experiment_ids[], filter, ...}`` -> ``{}``: this server stores
    no logged models, so every search is empty (the request is still checked for shape)."""
    for exp_id in args.strings("experiment_ids", allow_numbers=True):
        validation.experiment_id(exp_id)
    args.string("filter")
    args.string("page_token")
    args.integer("max_results")
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("/logged-models/search", ("POST",), search_logged_models, "read", "experiment:*"),
]
"""The one logged-models endpoint answered (with no models)."""


def info_routes(prefixes: tuple[str, ...]) -> list[BaseRoute]:
    """server-info, plus the not-served placeholders under each MLflow prefix."""
    out: list[BaseRoute] = [Route(p, server_info, methods=["GET"]) for p in SERVER_INFO_PATHS]
    for prefix in prefixes:
        out.extend(Route(prefix + p, not_served, methods=_ALL_METHODS) for p in NOT_SERVED_PATHS)
    return out
