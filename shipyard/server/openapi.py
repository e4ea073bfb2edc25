"""The OpenAPI 3.1 document, generated from the routes actually mounted.

Every :class:`~shipyard.server.routing.ApiRoute` carries its :class:`EndpointSpec`; this module
only walks them, so the document cannot drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute

from shipyard._version import __version__
from shipyard.server.api.schemas import COMPONENTS, ref
from shipyard.server.routing import ApiRoute, EndpointSpec

_PARAM_RE = re.compile(r"{([^}:]+)(?::[^}]+)?}")

_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No content"}


def openapi_path(path: str) -> str:
    """Starlette's ``/runs/{run_id}/artifacts/{path:path}`` as OpenAPI's ``.../{path}``."""
    return _PARAM_RE.sub(r"{\1}", path)


def _operation_id(spec: EndpointSpec) -> str:
    return spec.handler.__name__


def _operation(spec: EndpointSpec) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM_RE.findall(spec.path)
    ]
    params += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "schema": q.schema,
            **({"description": q.description} if q.description else {}),
        }
        for q in spec.query
    ]
    op: dict[str, Any] = {
        "operationId": _operation_id(spec),
        "summary": spec.summary,
        "tags": [spec.tag],
        "x-shipyard-permission": {"action": spec.action, "resource": spec.resource},
    }
    if spec.description:
        op["description"] = spec.description
    if params:
        op["parameters"] = params
    if spec.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {spec.request_media_type: {"schema": spec.request}},
        }
    ok: dict[str, Any] = {"description": _STATUS_TEXT.get(spec.status, "Success")}
    if spec.response is not None:
        ok["content"] = {spec.response_media_type: {"schema": spec.response}}
    op["responses"] = {
        str(spec.status): ok,
        "default": {
            "description": "An error, in Shipyard's error shape.",
            "content": {"application/json": {"schema": ref("Error")}},
        },
    }
    return op


def build_openapi(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every :class:`ApiRoute` in ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    for route in routes:
        if not isinstance(route, ApiRoute):
            continue
        spec = route.spec
        paths.setdefault(openapi_path(spec.path), {})[spec.method.lower()] = _operation(spec)
        tags[spec.tag] = None
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Shipyard",
            "version": __version__,
            "description": (
                "Shipyard's REST API. Errors share one shape: "
                '{"error_code": "...", "message": "...", "details": {...}}.'
            ),
        },
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {"schemas": COMPONENTS},
    }
