"""The model server's guard: health and (by default) predictions stay open; feedback, metrics
and everything else need credentials and a role on the served model."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shipyard.serving.guard import ServingGuard, served_models
from shipyard.serving.traffic import Arm, DeploymentSpec
from tests.security.conftest import SecureServer
from tests.server.asgi import ASGISyncTransport

PATHS = [
    "/ping",
    "/health",
    "/invocations",
    "/predict",
    "/feedback",
    "/metrics",
    "/v2/models/churn/infer",
]


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _client(secure: SecureServer, public: bool, token: str | None) -> httpx.Client:
    inner = Starlette(routes=[Route(p, ok, methods=["GET", "POST"]) for p in PATHS])
    app = ServingGuard(inner, secure.security, ["churn"], public_predictions=public)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=ASGISyncTransport(app), base_url="http://m", headers=headers)


def _statuses(client: httpx.Client) -> dict[str, int]:
    with client:
        return {p: client.post(p).status_code for p in PATHS}


def test_served_models_come_from_the_arms() -> None:
    spec = DeploymentSpec(
        "d", arms=(Arm("a", "models:/churn@champion"), Arm("b", "runs:/abc/model")), shadow=()
    )
    assert served_models(spec) == ["churn"]


@pytest.mark.parametrize("public", [True, False])
def test_who_reaches_what(secure: SecureServer, public: bool) -> None:
    reader = secure.user("r", ("reader", "model:churn"))
    editor = secure.user("e", ("editor", "model:churn"))
    other = secure.user("o", ("admin", "model:other"))
    predictions = {"/invocations", "/predict", "/v2/models/churn/infer"}
    anonymous = _statuses(_client(secure, public, None))
    assert anonymous["/ping"] == anonymous["/health"] == 200
    assert anonymous["/feedback"] == anonymous["/metrics"] == 401
    assert all(anonymous[p] == (200 if public else 401) for p in predictions)
    as_reader = _statuses(_client(secure, public, reader))
    assert as_reader["/metrics"] == 200
    assert as_reader["/feedback"] == 403
    assert all(as_reader[p] == 200 for p in predictions)
    assert _statuses(_client(secure, public, editor))["/feedback"] == 200
    as_other = _statuses(_client(secure, public, other))
    assert as_other["/feedback"] == as_other["/metrics"] == 403
