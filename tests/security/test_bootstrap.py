"""When the server requires credentials, and how the first admin comes to be."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.security import Security
from shipyard.security.bootstrap import (
    bootstrap_admin,
    bootstrap_message,
    insecure_warning,
    resolve_auth,
)
from shipyard.workspace import Workspace


@pytest.mark.parametrize(
    ("mode", "host", "resolved"),
    [
        ("auto", "127.0.0.1", "off"),
        ("auto", "::1", "off"),
        ("auto", "localhost", "off"),
        ("auto", "0.0.0.0", "on"),
        ("auto", "10.1.2.3", "on"),
        ("auto", "example.org", "on"),
        ("on", "127.0.0.1", "on"),
        ("off", "0.0.0.0", "off"),
    ],
)
def test_auth_is_resolved_from_the_listening_address(mode: str, host: str, resolved: str) -> None:
    settings = Settings.from_env({"SHIPYARD_AUTH": mode}, home="/tmp/x")
    assert resolve_auth(settings, host).auth == resolved


def test_only_an_exposed_server_without_auth_warns() -> None:
    off = Settings.from_env({"SHIPYARD_AUTH": "off"}, home="/tmp/x")
    assert insecure_warning(off, "127.0.0.1", 5000) is None
    assert "authentication was turned off" in (insecure_warning(off, "0.0.0.0", 5000) or "")
    on = off.with_(auth="on")
    assert insecure_warning(on, "0.0.0.0", 5000) is None


def test_the_first_admin_gets_a_one_time_token(workspace: Workspace) -> None:
    token = bootstrap_admin(workspace, {})
    assert token is not None
    assert token.startswith("shp_")
    security = Security.for_workspace(workspace)
    assert security.verify_token(token, remote_addr=None).username == "admin"
    assert security.is_admin("admin")
    assert token in bootstrap_message("admin", token)
    assert bootstrap_admin(workspace, {}) is None  # only once


def test_the_admin_password_comes_from_the_environment_and_recovers_access(
    tmp_path: Path,
) -> None:
    with Workspace.open(Settings.from_env({}, home=tmp_path / "h")) as ws:
        env = {"SHIPYARD_ADMIN_USERNAME": "root", "SHIPYARD_ADMIN_PASSWORD": "first-password"}
        assert bootstrap_admin(ws, env) is None
        security = Security.for_workspace(ws)
        assert security.verify_password("root", "first-password", remote_addr=None)
        bootstrap_admin(ws, {**env, "SHIPYARD_ADMIN_PASSWORD": "second-password"})
        assert security.verify_password("root", "second-password", remote_addr=None)
        assert [g.username for g in security.list_grants(scope="*")] == ["root"]
