"""The unmodified ``mlflow`` client against a Shipyard server with auth on: it works with a token
(``MLFLOW_TRACKING_TOKEN``) or a user name and password (``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``), and is refused without them or with too weak a role."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import start_server, stop_server

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m shipyard.server.runner`` with SHIPYARD_AUTH=on and a bootstrapped admin."""
    live = start_server(
        tmp_path_factory.mktemp("secure-server"),
        timeout=60,
        env_extra={"SHIPYARD_AUTH": "on", "SHIPYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    try:
        yield live.url
    finally:
        stop_server(live.process)
    assert "Traceback" not in live.log_text()


def _token_for(url: str, username: str, role: str) -> str:
    admin = httpx.Client(base_url=url, auth=("admin", ADMIN_PASSWORD), timeout=30)
    with admin:
        resp = admin.post("/api/v1/auth/users", json={"username": username})
        assert resp.status_code == 201, resp.text
        resp = admin.put("/api/v1/auth/grants", json={"username": username, "role": role})
        assert resp.status_code == 200, resp.text
        resp = admin.post("/api/v1/auth/tokens", json={"username": username, "name": "mlflow"})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["secret"])


@pytest.fixture
def as_env(monkeypatch: pytest.MonkeyPatch, server: str) -> Iterator[pytest.MonkeyPatch]:
    import mlflow.tracking.fluent as fluent

    for name in list(os.environ):
        if name.startswith("MLFLOW_TRACKING_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(server)
    try:
        yield monkeypatch
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


def test_the_mlflow_client_is_refused_without_credentials(as_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(MlflowException) as caught:
        mlflow.set_experiment("no-credentials")
    assert "UNAUTHENTICATED" in str(caught.value) or "401" in str(caught.value)
    as_env.setenv("MLFLOW_TRACKING_TOKEN", "shp_" + "x" * 43)
    with pytest.raises(MlflowException, match=r"UNAUTHENTICATED|401"):
        MlflowClient().search_experiments()


def test_the_mlflow_client_works_with_a_token(
    as_env: pytest.MonkeyPatch, server: str, tmp_path: Path
) -> None:
    as_env.setenv("MLFLOW_TRACKING_TOKEN", _token_for(server, "ci-bot", "editor"))
    exp = mlflow.set_experiment("with-token")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", "0.1")
        mlflow.log_metric("loss", 0.25, step=3)
        mlflow.log_text("hello", "notes/readme.txt")
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    assert got.data.params == {"lr": "0.1"}
    assert got.data.metrics == {"loss": 0.25}
    assert got.info.user_id == "ci-bot"  # the principal, not what the client claims
    assert got.info.experiment_id == exp.experiment_id
    local = client.download_artifacts(run.info.run_id, "notes/readme.txt", str(tmp_path))
    assert Path(local).read_text() == "hello"
    client.create_registered_model("token-model")
    assert client.get_registered_model("token-model").name == "token-model"


def test_the_mlflow_client_works_with_user_and_password(
    as_env: pytest.MonkeyPatch, server: str
) -> None:
    as_env.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    as_env.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    exp_id = MlflowClient().create_experiment("with-password")
    assert MlflowClient().get_experiment(exp_id).name == "with-password"
    as_env.setenv("MLFLOW_TRACKING_PASSWORD", "not the password")
    with pytest.raises(MlflowException, match=r"UNAUTHENTICATED|401"):
        MlflowClient().get_experiment(exp_id)


def test_a_reader_token_reads_but_cannot_write(as_env: pytest.MonkeyPatch, server: str) -> None:
    as_env.setenv("MLFLOW_TRACKING_TOKEN", _token_for(server, "viewer", "reader"))
    client = MlflowClient()
    assert any(e.name == "Default" for e in client.search_experiments())
    with pytest.raises(MlflowException) as caught:
        client.create_experiment("viewer-made")
    assert caught.value.error_code == "PERMISSION_DENIED"
    assert "needs editor" in caught.value.message


def test_the_mlflow_client_logs_registers_and_loads_a_model_with_a_token(
    as_env: pytest.MonkeyPatch, server: str
) -> None:
    """The model's files go up and come back through the artifact proxy with the token; the
    same load without it is refused."""
    np = pytest.importorskip("numpy")
    linear_model = pytest.importorskip("sklearn.linear_model")
    import mlflow.pyfunc
    import mlflow.sklearn

    as_env.setenv("MLFLOW_TRACKING_TOKEN", _token_for(server, "trainer", "editor"))
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = linear_model.LinearRegression().fit(x, 2 * x[:, 0] + 1)
    mlflow.set_experiment("token-models")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="token-linear",
            pip_requirements=["scikit-learn"],  # no environment inference: the test is offline
        )
    version = info.registered_model_version
    assert MlflowClient().get_model_version("token-linear", str(version)).status == "READY"
    loaded = mlflow.pyfunc.load_model(f"models:/token-linear/{version}")
    assert loaded.predict(np.array([[4.0]])).tolist() == pytest.approx([9.0])

    as_env.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException, match=r"UNAUTHENTICATED|401"):
        mlflow.pyfunc.load_model(f"models:/token-linear/{version}")
