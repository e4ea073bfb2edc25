"""The model server's guard: health and (by default) predictions stay open; feedback, metrics
and everything else need credentials and a role on the served model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from shipyard.serving.guard import ServingGuard, served_models
from shipyard.serving.traffic import Arm, DeploymentSpec
from tests.conftest import free_port
from tests.security.conftest import SecureServer
from tests.server.asgi import ASGISyncTransport

ROOT = Path(__file__).resolve().parents[2]

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


def test_a_real_model_server_with_auth_on_guards_its_admin_endpoints(tmp_path: Path) -> None:
    """``shipyard serve`` as a process, with SHIPYARD_AUTH=on: the runner puts the guard in
    front of the served model, with the workspace's users, tokens and grants."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    import shipyard
    from shipyard.config import Settings
    from shipyard.registry import Registry
    from shipyard.security import Security
    from shipyard.tracking.client import Client
    from shipyard.workspace import Workspace

    home = tmp_path / "home"
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with Workspace.open(Settings.from_env({}, home=home)) as ws:
        model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
        shipyard.log_model(model, "model", input_example=X[:2], registered_model_name="cancer",
                           client=Client(workspace=ws))  # fmt: skip
        Registry(ws).set_alias("cancer", "champion", 1)
        security = Security.for_workspace(ws)
        tokens = {}
        for name, grant in (("reader", "model:cancer"), ("stranger", "model:other")):
            security.create_user(name, actor="test")
            security.grant(name, "reader", grant, actor="test")
            tokens[name] = security.create_token(name, "test", actor="test").secret

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_AUTH="on", PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
               env.get("PYTHONPATH")])))  # fmt: skip
    command = [sys.executable, "-m", "shipyard", "--home", str(home), "serve",
               "models:/cancer@champion", "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the model server did not get ready"
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        rows = {"dataframe_records": X[:1].to_dict("records")}
        assert httpx.post(f"{url}/predict", json=rows).status_code == 200  # public by default
        anonymous = httpx.get(f"{url}/metrics")
        assert anonymous.status_code == 401
        assert anonymous.json()["error_code"] == "UNAUTHENTICATED"

        def metrics(who: str) -> httpx.Response:
            return httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {tokens[who]}"})

        assert metrics("reader").status_code == 200
        refused = metrics("stranger")
        assert refused.status_code == 403
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert "Traceback" not in out
