"""The app factory: small routes, OpenAPI, unknown routes, unexpected errors, env-var settings,
import weight."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.server.app import (
    SETTINGS_ENV_VAR,
    create_app,
    create_app_from_env,
    settings_from_json,
    settings_to_json,
)
from shipyard.server.openapi import openapi_path
from shipyard.server.routing import ApiRoute
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport


def test_health_and_version(api: httpx.Client) -> None:
    health = api.get("/health")
    assert (health.status_code, health.text) == (200, "OK")
    assert health.headers["content-type"].startswith("text/plain")
    version = api.get("/version")
    assert (version.status_code, version.text) == (200, __version__)


def test_unknown_route_is_json_404(api: httpx.Client) -> None:
    resp = api.get("/api/v1/no-such-thing")
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "GET /api/v1/no-such-thing" in resp.json()["message"]
    assert api.get("/no-such-page").json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert api.get("/", follow_redirects=False).status_code == 307  # the web UI


def test_wrong_method_is_json_405_with_allow(api: httpx.Client) -> None:
    resp = api.post("/health")
    assert resp.status_code == 405
    assert resp.json()["error_code"] == "METHOD_NOT_ALLOWED"
    assert resp.headers["allow"] == "GET, HEAD"
    assert resp.json()["details"] == {"allow": ["GET", "HEAD"]}


def test_unexpected_error_is_generic_json_500_logged_server_side(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(workspace.store, "get_experiment", boom)
    client = httpx.Client(
        transport=ASGISyncTransport(create_app(workspace)), base_url="http://testserver"
    )
    with caplog.at_level(logging.ERROR, logger="shipyard.server"):
        resp = client.get("/api/v1/experiments/0")
    assert resp.status_code == 500
    body = resp.json()
    assert body["error_code"] == "INTERNAL_ERROR"
    assert "secret internals" not in resp.text
    assert "Traceback" not in resp.text
    assert any("secret internals" in str(r.exc_info) for r in caplog.records)
    client.close()


def test_openapi_lists_every_api_route(api: httpx.Client, workspace: Workspace) -> None:
    doc = api.get("/api/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == __version__
    app = create_app(workspace)
    api_routes = [r for r in app.routes if getattr(r, "path", "").startswith("/api/v1")]
    assert api_routes
    for route in api_routes:
        assert isinstance(route, ApiRoute), f"{route.path} is not declared with ApiRouter"
        ops = doc["paths"][openapi_path(route.path)]
        assert route.spec.method.lower() in ops, f"{route.spec.method} {route.path} undocumented"
    operation_ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_openapi_is_valid_openapi_31(api: httpx.Client) -> None:
    doc = api.get("/api/openapi.json").json()
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)
    for path, ops in doc["paths"].items():
        declared = {p.strip("{}") for p in path.split("/") if p.startswith("{")}
        for op in ops.values():
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == declared, path
            assert op["summary"]
            assert op["responses"]


def test_settings_travel_through_one_env_var(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "h").with_(db_pool_size=7)
    assert settings_from_json(settings_to_json(settings)) == settings


def test_create_app_from_env_reads_the_settings_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env({}, home=tmp_path / "from-env")
    monkeypatch.setenv(SETTINGS_ENV_VAR, settings_to_json(settings))
    app = create_app_from_env()
    assert app.state.workspace.settings == settings
    app.state.workspace.close()


def test_importing_the_app_loads_no_dataframe_libraries() -> None:
    code = (
        "import sys, shipyard.server.app; "
        "bad = [m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
