"""The one place where errors become HTTP responses.

Two surfaces, two shapes, one function (:func:`error_response`):

* Shipyard's own API (and everything else that is not MLflow's): the body is
  :meth:`ShipyardError.to_dict` -- ``{"error_code": exc.code, "message": ..., "details": {...}}``
  -- with status ``exc.http_status``. :func:`shipyard.errors.error_from_dict` rebuilds the same
  class on the client.
* The MLflow-compatible surface (:data:`MLFLOW_PREFIXES`): ``{"error_code": exc.mlflow_code,
  "message": ...}`` with the status MLflow's server uses for that code (:data:`MLFLOW_STATUS`),
  because the unmodified ``mlflow`` client branches on those strings and statuses (for example
  ``RESOURCE_ALREADY_EXISTS`` is 400 there, not 409).

Unexpected exceptions are logged here with their traceback and answered with a generic
``INTERNAL_ERROR`` message; the traceback never leaves the server.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from shipyard.errors import (
    EndpointNotFound,
    InvalidInput,
    MethodNotAllowed,
    PayloadTooLarge,
    ShipyardError,
)
from shipyard.server._http_util import JSONResponse

logger = logging.getLogger("shipyard.server")

MLFLOW_PREFIXES = (
    "/api/2.0/mlflow",
    "/api/2.0/mlflow-artifacts",
    "/api/3.0/mlflow",
    "/ajax-api/",
)
"""Paths answered in MLflow's error shape (``/api/2.0/mlflow`` also covers ``...-artifacts``)."""

MLFLOW_STATUS: dict[str, int] = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "INVALID_REQUEST": 400,
    "MALFORMED_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "CUSTOMER_UNAUTHORIZED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
"""HTTP status of each MLflow error code, as MLflow's own server answers it."""

_STATUS_KEPT_ON_MLFLOW_SURFACE = frozenset({405})
"""Statuses that stay as they are on the MLflow surface (HTTP semantics, not an error code)."""

GENERIC_INTERNAL_MESSAGE = (
    "The server hit an unexpected error and logged it. Retry the request; if it keeps failing, "
    "report it to the server's operator with the time of the request."
)


def is_mlflow_path(path: str) -> bool:
    """Whether ``path`` belongs to the MLflow-compatible surface."""
    return path.startswith(MLFLOW_PREFIXES)


def error_status_and_body(path: str, exc: ShipyardError) -> tuple[int, dict[str, object]]:
    """The HTTP status and JSON body answering ``exc`` on a request for ``path``."""
    if is_mlflow_path(path):
        body: dict[str, object] = {"error_code": exc.mlflow_code, "message": exc.message}
        if exc.http_status in _STATUS_KEPT_ON_MLFLOW_SURFACE:
            return exc.http_status, body
        return MLFLOW_STATUS.get(exc.mlflow_code, exc.http_status), body
    return exc.http_status, exc.to_dict()


def error_response(path: str, exc: ShipyardError) -> Response:
    """The response answering ``exc`` on a request for ``path``."""
    status, body = error_status_and_body(path, exc)
    headers = None
    allow = exc.details.get("allow") if isinstance(exc, MethodNotAllowed) else None
    if isinstance(allow, list):
        headers = {"Allow": ", ".join(str(m) for m in allow)}
    return JSONResponse(body, status_code=status, headers=headers)


def internal_error_response(path: str, exc: BaseException) -> Response:
    """Log an unexpected exception with its traceback; answer a generic ``INTERNAL_ERROR``."""
    logger.error("unexpected error answering %s", path, exc_info=exc)
    return error_response(path, ShipyardError(GENERIC_INTERNAL_MESSAGE))


def from_http_exception(request: Request, exc: HTTPException) -> ShipyardError:
    """Translate a routing-level :class:`HTTPException` (404, 405, 413...) into a Shipyard error."""
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return EndpointNotFound(
            f"No endpoint answers {method} {path}. Check the path and the API version; "
            "GET /api/openapi.json lists Shipyard's endpoints."
        )
    if exc.status_code == 405:
        allow = _allowed_methods(request, exc)
        return MethodNotAllowed(
            f"{path} does not answer {method}; use one of: {', '.join(allow) or 'none'}.",
            details={"allow": allow},
        )
    if exc.status_code == 413:
        return PayloadTooLarge(
            f"The body of {method} {path} is larger than this endpoint accepts; send less data "
            "per request."
        )
    if 400 <= exc.status_code < 500:
        return InvalidInput(f"{method} {path} was refused: {exc.detail}")
    return ShipyardError(GENERIC_INTERNAL_MESSAGE)


def _allowed_methods(request: Request, exc: HTTPException) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the methods
    of the first route whose path matched)."""
    allow = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
    router = getattr(request.app, "router", None)
    for route in getattr(router, "routes", ()):
        methods = getattr(route, "methods", None)
        if methods and route.matches(request.scope)[0] is not Match.NONE:
            allow.update(methods)
    return sorted(allow)


async def handle_shipyard_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`ShipyardError` raised inside routes."""
    assert isinstance(exc, ShipyardError)
    return error_response(request.url.path, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for routing errors (unknown path, wrong method...)."""
    assert isinstance(exc, HTTPException)
    return error_response(request.url.path, from_http_exception(request, exc))
