"""The server-info probe: ``GET /api/3.0/mlflow/server-info``.

MLflow clients call it before moving artifacts; answering with every transfer capability off keeps
them on the plain streamed ``PUT``/``GET`` path of the artifact service.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard.server.mlflow._wire import json_response

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


async def server_info(request: Request) -> Response:
    """``GET /api/3.0/mlflow/server-info``: the capability probe."""
    return json_response(SERVER_INFO)


def info_routes() -> list[BaseRoute]:
    """The server-info routes."""
    return [Route(p, server_info, methods=["GET"]) for p in SERVER_INFO_PATHS]
