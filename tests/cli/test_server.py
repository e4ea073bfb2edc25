"""``shipyard server``: a real server process answering /health, and the exposure warning."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from shipyard.cli.server import is_loopback
from tests.cli.conftest import Shipyard
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="needs the server extra (uvicorn)"
)
def test_server_answers_health(tmp_path: Path) -> None:
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "--home",
            str(tmp_path / "ws"),
            "server",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"server exited early:\n{proc.communicate()[1]}"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200
        # The CLI works against the server through the same commands.
        remote = ["--tracking-uri", f"http://127.0.0.1:{port}"]
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "shipyard",
                *remote,
                "experiments",
                "create",
                "remote",
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["name"] == "remote"
        listed = subprocess.run(
            [sys.executable, "-m", "shipyard", *remote, "runs", "list", "-e", "remote", "--json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {"runs": [], "next_page_token": None}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert "Traceback" not in stderr
    assert "Warning" not in stderr  # loopback: no exposure warning


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace the server runner with a recorder, so the command's own logic is tested alone."""
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("shipyard.server.runner")

    def serve(settings: Any, host: str, port: int, workers: int, log_level: str, **kw: Any) -> None:
        calls.append(
            {
                "settings": settings,
                "host": host,
                "port": port,
                "workers": workers,
                "log_level": log_level,
                **kw,
            }
        )

    module.serve = serve  # type: ignore[attr-defined]
    import shipyard.server

    monkeypatch.setitem(sys.modules, "shipyard.server.runner", module)
    monkeypatch.setattr(shipyard.server, "runner", module, raising=False)
    return calls


def test_options_reach_the_runner(shipyard: Shipyard, fake_runner: list[dict[str, Any]]) -> None:
    result = shipyard(
        "server", "--port", "5123", "--workers", "3", "--log-level", "DEBUG", "--access-log"
    )
    assert result.stderr == ""
    (call,) = fake_runner
    assert call["host"] == "127.0.0.1"
    assert (call["port"], call["workers"], call["log_level"]) == (5123, 3, "debug")
    assert call["access_log"] is True
    assert call["settings"].home == shipyard.home.absolute()


def test_all_interfaces_require_auth(shipyard: Shipyard, fake_runner: list[dict[str, Any]]) -> None:
    result = shipyard("server", "--host", "0.0.0.0")
    assert result.stderr == ""
    assert fake_runner[0]["host"] == "0.0.0.0"
    assert fake_runner[0]["settings"].auth == "on"


def test_loopback_keeps_auth_off_unless_asked(
    shipyard: Shipyard, fake_runner: list[dict[str, Any]]
) -> None:
    shipyard("server")
    shipyard("server", "--auth", "on")
    assert [c["settings"].auth for c in fake_runner] == ["off", "on"]


def test_all_interfaces_with_auth_off_warns(
    shipyard: Shipyard, fake_runner: list[dict[str, Any]]
) -> None:
    result = shipyard("server", "--host", "0.0.0.0", "--auth", "off")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Warning: listening on 0.0.0.0")
    assert "authentication was turned off" in lines[0]
    assert fake_runner[0]["settings"].auth == "off"


def test_remote_tracking_uri_is_refused(
    shipyard: Shipyard, fake_runner: list[dict[str, Any]]
) -> None:
    result = shipyard("--tracking-uri", "http://example.invalid", "server", expect=2)
    assert "is itself a server" in result.stderr
    assert fake_runner == []


def test_bad_port_is_a_usage_error(shipyard: Shipyard) -> None:
    shipyard("server", "--port", "70000", expect=2)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
