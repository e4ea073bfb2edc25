"""The authentication/authorization seam: one authenticator and one authorizer, installed at
app creation, govern every declared route."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.requests import HTTPConnection

from shipyard.errors import PermissionDenied, Unauthenticated
from shipyard.server.app import create_app
from shipyard.server.auth import Action, Principal
from shipyard.workspace import Workspace
from tests.server.asgi import ASGISyncTransport


class ReadOnly:
    """Allows reads; refuses everything else, recording what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Action, str]] = []

    async def authorize(self, principal: Principal, action: Action, resource: str) -> None:
        self.asked.append((principal.name, action, resource))
        if action != "read":
            raise PermissionDenied(
                f"{principal.name} may not {action} {resource}; ask an admin for write access."
            )


class TokenAuthenticator:
    """Bearer token ``alice-token`` is alice; anything else is refused."""

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        if conn.headers.get("authorization") == "Bearer alice-token":
            return Principal("alice", authenticated=True)
        raise Unauthenticated("send 'Authorization: Bearer <token>'; ask an admin for a token.")


def _client(app: object, **kw: object) -> httpx.Client:
    return httpx.Client(transport=ASGISyncTransport(app), base_url="http://testserver", **kw)  # type: ignore[arg-type]


@pytest.fixture
def read_only(workspace: Workspace) -> Iterator[tuple[httpx.Client, ReadOnly]]:
    authorizer = ReadOnly()
    with _client(create_app(workspace, authorizer=authorizer)) as client:
        yield client, authorizer


def test_denying_authorizer_answers_403_permission_denied(
    read_only: tuple[httpx.Client, ReadOnly],
) -> None:
    client, authorizer = read_only
    resp = client.post("/api/v1/experiments", json={"name": "x"})
    assert resp.status_code == 403
    assert resp.json() == {
        "error_code": "PERMISSION_DENIED",
        "message": "anonymous may not write experiment:*; ask an admin for write access.",
    }
    assert client.get("/api/v1/experiments/0").status_code == 200
    assert ("anonymous", "read", "experiment:0") in authorizer.asked


def test_denial_uses_mlflow_shape_on_mlflow_paths(workspace: Workspace) -> None:
    class DenyAll:
        async def authorize(self, principal: Principal, action: Action, resource: str) -> None:
            raise PermissionDenied("no")

    # The MLflow routes are not declared through ApiRouter; the error shape still follows the path.
    from shipyard.server.errors import error_status_and_body

    assert error_status_and_body("/api/2.0/mlflow/x", PermissionDenied("no")) == (
        403,
        {"error_code": "PERMISSION_DENIED", "message": "no"},
    )
    with _client(create_app(workspace, authorizer=DenyAll())) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/experiments/0").status_code == 403


def test_resource_from_body_is_checked_by_the_handler(
    read_only: tuple[httpx.Client, ReadOnly],
) -> None:
    client, authorizer = read_only
    resp = client.post("/api/v1/runs", json={"experiment_id": "0"})
    assert resp.status_code == 403
    assert authorizer.asked == [("anonymous", "write", "experiment:0")]


def test_authenticator_sets_the_principal_and_refuses_bad_credentials(
    workspace: Workspace,
) -> None:
    app = create_app(workspace, authenticator=TokenAuthenticator())
    with _client(app) as anonymous:
        resp = anonymous.get("/api/v1/experiments/0")
        assert resp.status_code == 401
        assert resp.json()["error_code"] == "UNAUTHENTICATED"
        assert anonymous.get("/health").text == "OK"
    with _client(app, headers={"Authorization": "Bearer alice-token"}) as alice:
        run = alice.post("/api/v1/runs", json={"experiment_id": "0", "user_id": "mallory"})
        assert run.status_code == 201
        assert run.json()["run"]["info"]["user_id"] == "alice"


def test_every_api_route_declares_a_permission(workspace: Workspace) -> None:
    from shipyard.server.routing import ApiRoute

    routes = [r for r in create_app(workspace).routes if isinstance(r, ApiRoute)]
    assert routes
    for route in routes:
        assert route.spec.action in ("read", "write", "deploy", "admin")
        assert route.spec.resource
        if route.spec.path.startswith("/api/v1/admin/"):
            assert route.spec.action == "admin", route.spec.path
