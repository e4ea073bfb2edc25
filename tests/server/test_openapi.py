"""GET /api/openapi.json describes exactly what is served, in the shape OpenAPI 3.1 requires;
``/health`` and ``/version`` answer, also from a real server process."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from referencing.jsonschema import DRAFT202012 as DRAFT_2020_12

from shipyard._version import __version__
from shipyard.entities import Approval, ModelAlias, ModelVersion, RegisteredModel, RegistryEvent
from shipyard.server.api.schemas import COMPONENTS
from shipyard.server.app import create_app
from shipyard.server.errors import is_mlflow_path
from shipyard.server.openapi import openapi_path
from shipyard.server.routing import ApiRoute
from shipyard.server.ui import routes as ui_routes
from shipyard.workspace import Workspace
from tests.server.conftest import LiveServer

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNDOCUMENTED = {"/health", "/version", "/api/openapi.json"}
"""Plain-text and meta routes; everything else outside MLflow's surface is documented."""


def _served(workspace: Workspace) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every Shipyard API route the app serves (HEAD is implied);
    the web UI's pages are HTML for people, not API, and are left out."""
    ui = {getattr(route, "path", "") for route in ui_routes(workspace)}
    out = set()
    for route in create_app(workspace).routes:
        path = getattr(route, "path", "")
        if path in UNDOCUMENTED or path in ui or is_mlflow_path(path):
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


def _component_validator(doc: dict[str, Any], name: str) -> Any:
    """A JSON Schema validator of component ``name``, its ``$ref``s resolved in ``doc``."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resource = Resource.from_contents(doc, default_specification=DRAFT_2020_12)
    registry: Any = Registry().with_resource("urn:shipyard-openapi", resource)
    schema = {"$ref": f"urn:shipyard-openapi#/components/schemas/{name}"}
    return Draft202012Validator(schema, registry=registry)


def test_registry_routes_are_documented_with_their_permissions(api: httpx.Client) -> None:
    doc = api.get("/api/openapi.json").json()
    ops = {(m, path): op for path, items in doc["paths"].items() for m, op in items.items()}
    registry = {
        key: op
        for key, op in ops.items()
        if key[1].startswith(("/api/v1/registered-models", "/api/v1/model-versions"))
    }
    assert len(registry) >= 30
    for (method, path), op in registry.items():
        assert op["x-shipyard-permission"]["resource"] == "model", (method, path)
        assert op["tags"] in (["registered-models"], ["model-versions"]), (method, path)
        assert op["summary"], (method, path)
        assert op["description"], (method, path)
        expected = "read" if method == "get" or path.endswith("/search") else "write"
        if path.endswith("/approval-policy"):
            expected = "admin"
        assert op["x-shipyard-permission"]["action"] == expected, (method, path)
    get_version = ops[("get", "/api/v1/registered-models/{name}/versions/{version}")]
    schema = get_version["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["model_version"] == {"$ref": "#/components/schemas/ModelVersion"}
    download = ops[("get", "/api/v1/model-versions/{storage_owner}/artifacts/{path}")]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    assert not any(
        m in ("put", "delete") for m, p in ops if p.startswith("/api/v1/model-versions/{")
    )


@pytest.mark.parametrize(
    ("component", "entity"),
    [
        ("RegisteredModel", RegisteredModel),
        ("ModelVersion", ModelVersion),
        ("ModelAlias", ModelAlias),
        ("Approval", Approval),
        ("RegistryEvent", RegistryEvent),
    ],
)
def test_registry_schemas_name_every_field(component: str, entity: type) -> None:
    properties = set(COMPONENTS[component]["properties"])
    assert properties == {f.name for f in dataclasses.fields(entity)}


def test_registry_answers_match_their_schemas(api: httpx.Client) -> None:
    run_id = api.post("/api/v1/runs", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    upload = api.put(f"/api/v1/runs/{run_id}/artifacts/model/MLmodel", content=b"flavor: x")
    assert upload.status_code == 201, upload.text
    models = "/api/v1/registered-models"
    created = api.post(f"{models}/churn/versions", json={"source": f"runs:/{run_id}/model"})
    assert created.status_code == 201, created.text
    api.put(f"{models}/churn/tags/team", json={"value": "risk"})
    api.post(f"{models}/churn/versions/1/approvals", json={"approver": "ana", "comment": "ok"})
    api.put(f"{models}/churn/approval-policy", json={"required_approvals": 1})
    api.put(f"{models}/churn/aliases/champion", json={"version": 1, "reason": "first"})
    doc = api.get("/api/openapi.json").json()
    answers = {
        "RegisteredModel": api.get(f"{models}/churn").json()["registered_model"],
        "ModelVersion": api.get(f"{models}/churn/versions/1").json()["model_version"],
        "Approval": api.get(f"{models}/churn/versions/1/approvals").json()["approvals"][0],
        "RegistryEvent": api.get(f"{models}/churn/history").json()["events"][-1],
    }
    assert answers["RegisteredModel"]["aliases"] == [{"alias": "champion", "version": 1}]
    assert answers["RegistryEvent"]["action"] == "alias_set"
    for component, answer in answers.items():
        _component_validator(doc, component).validate(answer)
        assert set(answer) <= set(COMPONENTS[component]["properties"]), component
