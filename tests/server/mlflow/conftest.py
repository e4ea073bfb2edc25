"""A real Shipyard server for the MLflow-compatibility tests, and the ``mlflow`` client aimed at
it.

The server runs in a subprocess (uvicorn serving :func:`shipyard.server.app.create_app_from_env`)
on a free loopback port with its own ``SHIPYARD_HOME``, once per test module. Its log is kept so
tests can check that no request hit an unexpected error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


@dataclass(frozen=True)
class LiveServer:
    url: str
    home: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A Shipyard server subprocess with an empty workspace, for one test module."""
    root = tmp_path_factory.mktemp("shipyard-server")
    home = root / "home"
    log = root / "server.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env["SHIPYARD_HOME"] = str(home)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "shipyard.server.app:create_app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield LiveServer(url, home, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def http(mlflow_server: LiveServer) -> Iterator[httpx.Client]:
    """A raw HTTP client for the server (one per module: building one costs ~0.1 s)."""
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as client:
        yield client
