"""Server fixtures: an in-process client (``api``), a real server process (``live_server``) and
a real uvicorn server per test over a fresh workspace (:func:`serve_in_thread`).

``api`` is an ``httpx.Client`` wired straight into :func:`shipyard.server.app.create_app` over a
fresh workspace: fast, no socket. ``live_server`` is a real ``python -m shipyard.server.runner``
process (uvicorn) on a free loopback port with its own ``SHIPYARD_HOME``, started once per test
session; use it where the test is about the server itself (streaming, memory, startup).
:func:`serve_in_thread` runs uvicorn in a thread of the test process on a loopback socket: real
HTTP in a few milliseconds, so a test that needs an empty server can have its own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.conftest import free_port
from tests.server.asgi import ASGISyncTransport

BASE_URL = "http://testserver"


@pytest.fixture
def api(workspace: Workspace) -> Iterator[httpx.Client]:
    """An HTTP client served in-process by the app over the test's fresh workspace."""
    transport = ASGISyncTransport(create_app(workspace))
    with httpx.Client(transport=transport, base_url=BASE_URL) as client:
        yield client


@dataclass(frozen=True)
class LiveServer:
    """A running server process: its base URL, process, workspace folder and log file."""

    url: str
    process: subprocess.Popen[bytes]
    home: Path
    log: Path
    startup_seconds: float
    """From starting the process to the first healthy answer."""

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    root: Path,
    *,
    workers: int = 1,
    timeout: float = 30.0,
    env_extra: dict[str, str] | None = None,
) -> LiveServer:
    """Start ``python -m shipyard.server.runner`` with a workspace under ``root``; wait for
    ``/health``. ``env_extra`` adds variables (``SHIPYARD_AUTH``...) to its environment."""
    home = root / "home"
    log = root / "server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env["SHIPYARD_HOME"] = str(home)
    env.update(env_extra or {})
    cmd = [
        sys.executable,
        "-m",
        "shipyard.server.runner",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with open(log, "ab") as log_file:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"the server did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.02)
    return LiveServer(url, proc, home, log, time.perf_counter() - started)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server process (SIGTERM, then SIGKILL after 10 s)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def live_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server process for the whole session (see :class:`LiveServer`)."""
    server = start_server(tmp_path_factory.mktemp("live-server"))
    try:
        yield server
    finally:
        stop_server(server.process)


@pytest.fixture(scope="session")
def live_server(live_server_process: LiveServer) -> str:
    """The base URL (``http://127.0.0.1:<port>``) of a real server shared by the session."""
    return live_server_process.url


@contextmanager
def serve_in_thread(app: ASGIApp, *, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback socket from a thread; yields the base URL.

    The socket is bound before uvicorn starts (no free-port race), signals stay with the main
    thread, and the server is shut down (connections closed) when the block ends.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", access_log=False, ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failure or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"the in-thread server did not start: {failure!r}")
        if time.monotonic() > deadline:  # pragma: no cover
            server.should_exit = True
            thread.join(timeout)
            sock.close()
            raise RuntimeError("the in-thread server did not start in time")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        if failure:
            raise failure[0]
