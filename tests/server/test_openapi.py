"""GET /api/openapi.json describes exactly what is served, in the shape OpenAPI 3.1 requires;
``/health`` and ``/version`` answer, also from a real server process."""

from __future__ import annotations

import re
from typing import Any

import httpx
from openapi_spec_validator import validate

from shipyard._version import __version__
from shipyard.server.app import create_app
from shipyard.server.errors import is_mlflow_path
from shipyard.server.openapi import openapi_path
from shipyard.server.routing import ApiRoute
from shipyard.workspace import Workspace
from tests.server.conftest import LiveServer

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNDOCUMENTED = {"/health", "/version", "/api/openapi.json"}
"""Plain-text and meta routes; everything else outside MLflow's surface is documented."""


def _served(workspace: Workspace) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every Shipyard API route the app serves (HEAD is implied)."""
    out = set()
    for route in create_app(workspace).routes:
        path = getattr(route, "path", "")
        if path in UNDOCUMENTED or is_mlflow_path(path):
            continue
        assert path.startswith("/api/v1/"), f"{path} is neither MLflow's nor under /api/v1"
        assert isinstance(route, ApiRoute), f"{path} is not declared with ApiRouter"
        methods = getattr(route, "methods", None) or set()
        out |= {(m.lower(), openapi_path(path)) for m in methods if m != "HEAD"}
    return out


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, ops in doc["paths"].items() for m in ops if m in HTTP_METHODS}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def test_document_and_served_routes_agree(api: httpx.Client, workspace: Workspace) -> None:
    doc = api.get("/api/openapi.json").json()
    served = _served(workspace)
    assert len(served) > 20
    assert _documented(doc) == served


def test_document_is_openapi_31_in_shape(api: httpx.Client) -> None:
    resp = api.get("/api/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    doc = resp.json()
    validate(doc)
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"]
    assert doc["info"]["version"] == __version__
    components = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs, "the document should share schemas through components"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in components, f"{ref} does not resolve"
    operation_ids = []
    for path, ops in doc["paths"].items():
        assert path.startswith("/api/v1/")
        template = set(re.findall(r"{([^}]+)}", path))
        for method, op in ops.items():
            assert method in HTTP_METHODS
            operation_ids.append(op["operationId"])
            params = op.get("parameters", [])
            assert {p["name"] for p in params if p["in"] == "path"} == template, path
            for p in params:
                assert p["in"] in {"path", "query", "header", "cookie"}
                assert "schema" in p
                assert p["in"] != "path" or p["required"] is True
            if "requestBody" in op:
                assert op["requestBody"]["content"], (method, path)
            codes = set(op["responses"])
            assert any(re.fullmatch(r"2\d\d", c) for c in codes), (method, path)
            error = op["responses"]["default"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}
    assert len(operation_ids) == len(set(operation_ids))


def test_error_schema_matches_what_the_server_sends(api: httpx.Client) -> None:
    schema = api.get("/api/openapi.json").json()["components"]["schemas"]["Error"]
    body = api.get("/api/v1/experiments/987654").json()
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])


def test_health_and_version_and_head(api: httpx.Client) -> None:
    assert (api.get("/health").status_code, api.get("/health").text) == (200, "OK")
    assert api.head("/health").status_code == 200
    assert api.get("/version").text == __version__


def test_a_real_server_process_answers_and_documents_itself(
    live_server_process: LiveServer, workspace: Workspace
) -> None:
    with httpx.Client(base_url=live_server_process.url, timeout=30) as http:
        health = http.get("/health")
        assert (health.status_code, health.text) == (200, "OK")
        version = http.get("/version")
        assert (version.status_code, version.text) == (200, __version__)
        doc = http.get("/api/openapi.json").json()
        assert _documented(doc) == _served(workspace)
        missing = http.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "Traceback" not in live_server_process.log_text()
