"""Hostile requests: path traversal on artifact and dataset paths, oversized bodies, request
floods, slow clients, malformed multipart and header injection. None may escape the workspace,
crash the server or reach a 500."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.security.conftest import SecureServer, secure_settings
from tests.server.conftest import serve_in_thread

TRAVERSALS = [
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/escape.txt",
    "a/../../escape.txt",
    "/etc/passwd",
    "..\\..\\escape.txt",
    "a/./b/../../../escape.txt",
    "nul\x00byte.txt",
    "C:/windows/escape.txt",
]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_artifact_path_traversal_is_refused_on_every_surface(
    secure: SecureServer, admin_token: str, tmp_path: Path
) -> None:
    ws = secure.ws
    run = ws.store.create_run("0").info.run_id
    ws.artifacts.upload(run, "ok.txt", io.BytesIO(b"fine"))
    client = secure.client(token=admin_token)
    before = _files_under(tmp_path)
    for bad in TRAVERSALS:
        quoted = bad.replace("\x00", "%00")
        for method, path in (
            ("PUT", f"/api/v1/runs/{run}/artifacts/{quoted}"),
            ("GET", f"/api/v1/runs/{run}/artifacts/{quoted}"),
            ("PUT", f"/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/{quoted}"),
            ("GET", f"/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/{quoted}"),
        ):
            resp = client.request(method, path, content=b"escaped!")
            assert resp.status_code in (400, 404), (method, path, resp.status_code, resp.text)
            assert "escaped!" not in resp.text
        resp = client.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run, "path": bad})
        assert resp.status_code in (200, 400, 404), resp.text
        assert "passwd" not in resp.text or resp.status_code != 200
    created = _files_under(tmp_path) - before
    # Nothing was written anywhere (uploads spool into the workspace's tmp folder, then go).
    assert {p for p in created if "escape" in p.name or p.read_bytes() == b"escaped!"} == set()
    assert not (tmp_path.parent / "escape.txt").exists()


def test_dataset_and_model_names_with_traversal_are_plain_misses(
    secure: SecureServer, admin_token: str
) -> None:
    client = secure.client(token=admin_token)
    for bad in TRAVERSALS:
        quoted = bad.replace("\x00", "%00")
        for path in (
            f"/datasets/{quoted}",
            f"/datasets/{quoted}/versions/1",
            f"/api/v1/registered-models/{quoted}",
            f"/api/v1/experiments/by-name/{quoted}",
        ):
            resp = client.get(path)
            assert resp.status_code in (400, 404), (path, resp.status_code, resp.text[:200])


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[SecureServer]:
    ws = Workspace.open(
        secure_settings(
            tmp_path / "limited", SHIPYARD_MAX_REQUEST_BYTES="2000", SHIPYARD_RATE_LIMIT="40"
        )
    )
    server = SecureServer(create_app(ws), ws, [])
    server.security.bootstrap_admin("admin", "admin-password-0")
    yield server
    for client in server._clients:
        client.close()
    ws.close()


def test_oversized_bodies_are_413_declared_or_streamed(limited: SecureServer) -> None:
    token = limited.security.create_token("admin", "t", actor="test").secret
    client = limited.client(token=token)
    big = b'{"name": "' + b"x" * 5000 + b'"}'
    resp = client.post("/api/v1/experiments", content=big)
    assert resp.status_code == 413
    assert resp.json()["error_code"] == "PAYLOAD_TOO_LARGE"

    def chunks():  # no Content-Length: counted as it streams
        for _ in range(10):
            yield b"x" * 500

    run = limited.ws.store.create_run("0").info.run_id
    resp = client.put(f"/api/v1/runs/{run}/artifacts/big.bin", content=chunks())
    assert resp.status_code == 413, resp.text
    assert limited.ws.artifacts.list(run) == []
    assert client.post("/api/v1/experiments", json={"name": "small"}).status_code == 201


def test_a_request_flood_is_429_with_retry_after(limited: SecureServer) -> None:
    client = limited.client()  # unauthenticated floods count too (password guessing)
    statuses = [client.get("/api/v1/experiments").status_code for _ in range(45)]
    assert statuses[:40] == [401] * 40
    assert set(statuses[40:]) == {429}
    resp = client.get("/api/v1/experiments")
    assert resp.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert client.get("/health").status_code == 200  # probes are never limited


def test_slow_clients_do_not_block_the_server(workspace: Workspace) -> None:
    with serve_in_thread(create_app(workspace)) as url:
        host, port = url.removeprefix("http://").split(":")
        stalled = []
        for i in range(20):
            s = socket.create_connection((host, int(port)))
            # Half a request line, half the headers, or a body that never comes.
            s.sendall(
                [
                    b"GET /api/v1/exper",
                    b"POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\nContent-Le",
                    b"POST /api/v1/experiments HTTP/1.1\r\nHost: x\r\n"
                    b'Content-Length: 100000\r\n\r\n{"na',
                ][i % 3]
            )
            stalled.append(s)
        try:
            # Each answer within the client's timeout, or the test fails (no timing asserted).
            with httpx.Client(base_url=url, timeout=10) as client:
                for _ in range(10):
                    assert client.get("/api/v1/experiments").status_code == 200
                assert client.post("/api/v1/experiments", json={"name": "alive"}).status_code == 201
        finally:
            for s in stalled:
                s.close()
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"garbage without boundaries"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n"),
        ("multipart/form-data; boundary=" + "b" * 200, b"--" + b"b" * 200 + b"\r\n\r\n"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a\r\n\r\nv\r\n--x--',
        ),
        ("application/x-www-form-urlencoded", b"%%%=%%%&a=\xff\xfe"),
    ],
)
def test_malformed_multipart_is_a_4xx(
    secure: SecureServer, admin_token: str, content_type: str, body: bytes
) -> None:
    client = secure.client(token=admin_token)
    run = secure.ws.store.create_run("0").info.run_id
    for method, path in (
        ("POST", "/api/v1/experiments"),
        ("PUT", f"/api/v1/runs/{run}/artifacts/upload.bin"),
        ("POST", "/api/2.0/mlflow/runs/log-batch"),
        ("POST", f"/runs/{run}/anything"),
        ("POST", "/api/v1/auth/tokens"),
    ):
        resp = client.request(method, path, content=body, headers={"Content-Type": content_type})
        assert resp.status_code < 500, (path, resp.text)


def test_header_injection_goes_nowhere(secure: SecureServer, admin_token: str) -> None:
    client = secure.client(token=admin_token)
    run = secure.ws.store.create_run("0").info.run_id
    name = "report%0D%0AX-Injected:%20yes%0D%0A%0D%0Abody.txt"
    up = client.put(f"/api/v1/runs/{run}/artifacts/{name}", content=b"data")
    assert up.status_code in (201, 200, 400), up.text
    if up.status_code != 400:
        down = client.get(f"/api/v1/runs/{run}/artifacts/{name}")
        assert "x-injected" not in down.headers
        assert all("\r" not in v and "\n" not in v for v in down.headers.values())
    # An experiment name with CRLF is data, never a header.
    resp = client.post("/api/v1/experiments", json={"name": "a\r\nX-Injected: yes"})
    assert "x-injected" not in resp.headers
    # Forged identity headers are ignored without a configured trusted proxy.
    forged = secure.client(headers={"X-Forwarded-User": "admin", "X-Remote-User": "admin"})
    assert forged.get("/api/v1/experiments").status_code == 401
