"""The proxied artifact service's streaming paths, in process: uploads larger than the prefetch
queue, a client that goes away mid-upload, and errors from the repository; and the MLflow
surface's single-route dispatch."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import anyio
import httpx
import pytest

from shipyard.errors import InvalidInput
from shipyard.server.app import create_app
from shipyard.server.mlflow import MlflowRoutes
from shipyard.server.mlflow.artifacts import PREFETCH_CHUNKS
from shipyard.workspace import Workspace

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _run(workspace: Workspace) -> tuple[str, str]:
    exp = workspace.store.create_experiment("artifacts")
    return exp, workspace.store.create_run(exp).info.run_id


def test_upload_larger_than_the_prefetch_queue_round_trips(
    api: httpx.Client, workspace: Workspace
) -> None:
    exp, rid = _run(workspace)
    data = os.urandom((PREFETCH_CHUNKS + 3) * 1024 * 1024 + 12345)

    def body() -> Any:
        for i in range(0, len(data), 100_000):  # many small pieces, as a socket delivers them
            yield data[i : i + 100_000]

    url = f"{ARTIFACTS}/{exp}/{rid}/artifacts/big.bin"
    resp = api.put(url, content=body())
    assert resp.status_code == 200, resp.text
    got = api.get(url)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    (info,) = workspace.artifacts.list(rid, "")
    assert info.file_size == len(data)


def test_a_client_that_goes_away_mid_upload_leaves_no_file(workspace: Workspace) -> None:
    exp, rid = _run(workspace)
    app = create_app(workspace)
    sent: list[dict[str, Any]] = []
    pieces = [b"x" * 300_000, b"y" * 300_000]

    async def receive() -> dict[str, Any]:
        if pieces:
            return {"type": "http.request", "body": pieces.pop(0), "more_body": True}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"{ARTIFACTS}/{exp}/{rid}/artifacts/cut.bin",
        "raw_path": f"{ARTIFACTS}/{exp}/{rid}/artifacts/cut.bin".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-length", b"10000000")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    assert not any(m.get("status") == 200 for m in sent)
    assert workspace.artifacts.list(rid, "") == []


def test_a_repository_error_during_upload_keeps_its_status(
    api: httpx.Client, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp, rid = _run(workspace)

    def refuse(owner: str, path: str, src: Any) -> Any:
        src.read(10)
        raise InvalidInput("refused for the test")

    monkeypatch.setattr(workspace.artifacts, "upload", refuse)
    resp = api.put(f"{ARTIFACTS}/{exp}/{rid}/artifacts/x.bin", content=b"z" * 3_000_000)
    assert resp.status_code == 400
    assert resp.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "refused for the test",
    }


def test_the_mlflow_surface_is_one_route_ahead_of_shipyards_api(workspace: Workspace) -> None:
    routes = create_app(workspace).routes
    mlflow = [r for r in routes if isinstance(r, MlflowRoutes)]
    assert len(mlflow) == 1
    api_index = next(
        i for i, r in enumerate(routes) if getattr(r, "path", "").startswith("/api/v1")
    )
    assert routes.index(mlflow[0]) < api_index


def test_dispatch_keeps_405_and_404(api: httpx.Client) -> None:
    wrong_method = api.get("/api/2.0/mlflow/runs/log-metric")
    assert wrong_method.status_code == 405
    unknown = api.post("/api/2.0/mlflow/runs/no-such-endpoint", json={})
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert api.get("/api/3.0/mlflow/server-info").status_code == 200
    assert api.get(f"{ARTIFACTS}?path=").status_code == 200
