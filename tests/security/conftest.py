"""Fixtures for the security tests: a workspace with auth on, its app served in-process, the
app's own :class:`Security` service, and clients that sign in as someone."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from shipyard.config import Settings
from shipyard.security import Security
from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport

BASE_URL = "http://testserver"
ADMIN_PASSWORD = "admin-password-0"


class ClientTransport(ASGISyncTransport):
    """:class:`ASGISyncTransport` with a chosen client address (for trusted-proxy tests)."""

    def __init__(self, app: Starlette, client: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        super().__init__(app)
        self._inner = httpx.ASGITransport(app=app, client=client)


@dataclass
class SecureServer:
    """An app with auth on over a fresh workspace, and ways to call it as someone."""

    app: Starlette
    ws: Workspace
    _clients: list[httpx.Client]

    @property
    def security(self) -> Security:
        """The app's own service (so its caches see every change at once)."""
        security = self.app.state.authorizer.security
        assert isinstance(security, Security)
        return security

    def client(
        self,
        *,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        address: str = "127.0.0.1",
    ) -> httpx.Client:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if basic is not None:
            raw = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            all_headers["Authorization"] = f"Basic {raw}"
        client = httpx.Client(
            transport=ClientTransport(self.app, (address, 50000)),
            base_url=BASE_URL,
            headers=all_headers,
        )
        self._clients.append(client)
        return client

    def user(self, name: str, *grants: tuple[str, str]) -> str:
        """Create ``name`` with ``(role, scope)`` grants; its token."""
        self.security.create_user(name, actor="test")
        for role, scope in grants:
            self.security.grant(name, role, scope, actor="test")
        return self.security.create_token(name, "test", actor="test").secret


def secure_settings(home: Path, **env: str) -> Settings:
    return Settings.from_env({"SHIPYARD_AUTH": "on", **env}, home=home)


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureServer]:
    """A server app with auth on and an admin ``admin`` (password :data:`ADMIN_PASSWORD`)."""
    ws = Workspace.open(secure_settings(tmp_path / ".shipyard"))
    app = create_app(ws)
    server = SecureServer(app, ws, [])
    server.security.bootstrap_admin("admin", ADMIN_PASSWORD)
    try:
        yield server
    finally:
        for client in server._clients:
            client.close()
        ws.close()


@pytest.fixture
def admin_token(secure: SecureServer) -> str:
    return secure.security.create_token("admin", "admin", actor="test").secret


@pytest.fixture
def model(secure: SecureServer) -> str:
    """``churn`` version 1, registered from a run of the default experiment."""
    ws = secure.ws
    run = ws.store.create_run("0").info.run_id
    ws.artifacts.upload(run, "m/MLmodel", io.BytesIO(b"flavors: {}\n"))
    ws.registry.create_registered_model("churn")
    ws.registry.create_model_version(
        "churn", f"runs:/{run}/m", artifact_owner=run, artifact_path="m", run_id=run
    )
    return "churn"


def deployment_of(secure: SecureServer, model: str) -> None:
    """A deployment of ``model`` named like it (idle: nothing rolled out yet)."""
    from shipyard.deploy import Deployments
    from shipyard.deploy.spec import DeploymentPolicy, Environment

    Deployments(secure.ws).apply(
        DeploymentPolicy(model, model, (Environment("production", "champion"),)), user="test"
    )


def monitor_with_alert(secure: SecureServer, model: str) -> int:
    """A monitor of ``model`` named like it, with one fired alert; the alert's id."""
    from shipyard.store.monitoring import Alert, AlertRule, Monitor

    store = secure.ws.monitors
    store.create_monitor(Monitor(monitor_id=0, name=model, endpoint=model, model=model))
    rule = store.create_rule(
        AlertRule(
            rule_id=0,
            name=f"{model}-drift",
            monitor=model,
            metric="drift_share",
            operator=">",
            threshold=0.5,
        )
    )
    alert = store.add_alert(
        Alert(
            alert_id=0,
            rule_id=rule.rule_id,
            rule=rule.name,
            monitor=model,
            metric="drift_share",
            value=0.9,
            threshold=0.5,
            result_id=None,
            status="firing",
            fired_time=1,
        )
    )
    return alert.alert_id
