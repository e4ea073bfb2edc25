"""MLflow 3 model logging against a real Shipyard server, with the unmodified ``mlflow`` client.

One sklearn model is logged once for the module, the way users write it::

    mlflow.sklearn.log_model(model, name="m", registered_model_name=..., input_example=X[:2])

and then registered again from ``runs:/``, loaded back through every kind of model URI (its
predictions must equal the original's on the breast-cancer dataset), found by search, and read
through Shipyard's own SDK from the same database. The logged-model API (create, params, tags,
finalize, search, delete) is driven through ``MlflowClient``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.errors import NotFound
from shipyard.registry import Registry
from shipyard.workspace import Workspace
from tests.server.mlflow.conftest import LiveServer

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

import numpy as np  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

pytestmark = pytest.mark.mlflow

API = "/api/2.0/mlflow"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Logged:
    """What the module's one ``log_model`` call produced."""

    run_id: str
    experiment_id: str
    model_id: str
    registered: str
    version: str
    X: Any
    expected: Any


@pytest.fixture(scope="module")
def logged(mlflow_server: LiveServer) -> Logged:
    """Train a pipeline on breast_cancer and log it with ``registered_model_name``, once, with
    MLflow's defaults (skops serialization in 3.18)."""
    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    registered = unique("cancer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(mlflow_server.url)
        try:
            mlflow.set_experiment(unique("logged-models"))
            with mlflow.start_run() as run:
                mlflow.log_param("max_iter", 1000)
                mlflow.log_metric("train_acc", float(model.score(X, y)))
                info = mlflow.sklearn.log_model(
                    model,
                    name="m",
                    registered_model_name=registered,
                    input_example=X[:2],
                )
        finally:
            mlflow.set_tracking_uri(None)
    return Logged(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        model_id=info.model_id,
        registered=registered,
        version=str(info.registered_model_version),
        X=X,
        expected=model.predict(X),
    )


@pytest.fixture
def client(mlflow_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        yield MlflowClient(tracking_uri=mlflow_server.url)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


@pytest.fixture
def server_workspace(mlflow_server: LiveServer) -> Iterator[Workspace]:
    """Shipyard's SDK on the server's own database and artifact store."""
    ws = Workspace.open(Settings.from_env({}, home=mlflow_server.home))
    try:
        yield ws
    finally:
        ws.close()


# ------------------------------------------------------------------------------ log_model


def test_log_model_creates_a_ready_logged_model_linked_to_its_run(
    logged: Logged, client: MlflowClient
) -> None:
    model = client.get_logged_model(logged.model_id)
    assert model.model_id.startswith("m-")
    assert model.name == "m"
    assert model.status == LoggedModelStatus.READY
    assert model.experiment_id == logged.experiment_id
    assert model.source_run_id == logged.run_id
    assert model.artifact_location == (
        f"mlflow-artifacts:/{logged.experiment_id}/models/{logged.model_id}/artifacts"
    )
    assert model.params == {"max_iter": "1000"}
    assert [m.key for m in model.metrics] == ["train_acc"]
    assert model.metrics[0].model_id == logged.model_id
    versions = json.loads(model.tags["mlflow.modelVersions"])
    assert {"name": logged.registered, "version": logged.version} in [
        {"name": v["name"], "version": str(v["version"])} for v in versions
    ]
    run = client.get_run(logged.run_id)
    assert [o.model_id for o in run.outputs.model_outputs] == [logged.model_id]
    files = {f.path for f in client.list_logged_model_artifacts(logged.model_id)}
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= files


def test_log_model_registered_version_1_from_the_logged_model(
    logged: Logged, client: MlflowClient, mlflow_server: LiveServer
) -> None:
    assert logged.version == "1"
    version = client.get_model_version(logged.registered, "1")
    assert version.source == f"models:/{logged.model_id}"
    assert version.run_id == logged.run_id
    assert version.status == "READY"
    assert version.current_stage == "None"
    # The 3.18 client does not read ModelVersion.model_id; the server sends it.
    raw = httpx.get(
        f"{mlflow_server.url}{API}/model-versions/get",
        params={"name": logged.registered, "version": "1"},
    ).json()["model_version"]
    assert raw["model_id"] == logged.model_id
    registrations = httpx.get(f"{mlflow_server.url}{API}/logged-models/{logged.model_id}").json()
    assert {"name": logged.registered, "version": "1"} in registrations["model"]["info"][
        "registrations"
    ]


@pytest.mark.parametrize(
    "uri", ["models:/{name}/1", "models:/{name}@best", "models:/{name}/latest", "runs:/{run}/m",
            "models:/{model_id}"],
)  # fmt: skip
def test_pyfunc_load_model_predicts_like_the_original(
    uri: str, logged: Logged, client: MlflowClient
) -> None:
    client.set_registered_model_alias(logged.registered, "best", "1")
    loaded = mlflow.pyfunc.load_model(
        uri.format(name=logged.registered, run=logged.run_id, model_id=logged.model_id)
    )
    np.testing.assert_array_equal(loaded.predict(logged.X), logged.expected)


def test_register_model_from_a_runs_uri(logged: Logged, client: MlflowClient) -> None:
    name = unique("from-run")
    version = mlflow.register_model(f"runs:/{logged.run_id}/m", name)
    assert version.version == "1"
    assert version.source == f"models:/{logged.model_id}"
    assert version.run_id == logged.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_array_equal(loaded.predict(logged.X), logged.expected)
    registrations = client.get_logged_model(logged.model_id).tags["mlflow.modelVersions"]
    assert name in registrations


def test_download_uri_serves_the_versions_own_copy(
    logged: Logged, client: MlflowClient, tmp_path: Path
) -> None:
    name = unique("copy")
    client.create_registered_model(name)
    version = client.create_model_version(
        name, f"models:/{logged.model_id}", run_id=logged.run_id, model_id=logged.model_id
    )
    uri = client.get_model_version_download_uri(name, version.version)
    assert uri.startswith("mlflow-artifacts:/model-versions/mv-")
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path)))
    assert (local / "MLmodel").is_file()
    mlmodel = (local / "MLmodel").read_text()
    assert logged.model_id in mlmodel


def test_a_version_outlives_its_logged_models_files(
    logged: Logged, client: MlflowClient, mlflow_server: LiveServer
) -> None:
    # A second logged model with the same files (content addressing shares the bytes).
    other = client.create_logged_model(logged.experiment_id, name="scratch")
    with httpx.Client(base_url=mlflow_server.url, timeout=30) as http:
        prefix = f"/api/2.0/mlflow-artifacts/artifacts/{logged.experiment_id}/models"
        for f in client.list_logged_model_artifacts(logged.model_id):
            if f.is_dir:
                continue
            data = http.get(f"{prefix}/{logged.model_id}/artifacts/{f.path}")
            assert data.status_code == 200
            assert http.put(f"{prefix}/{other.model_id}/artifacts/{f.path}",
                            content=data.content).status_code == 200  # fmt: skip
        client.finalize_logged_model(other.model_id, LoggedModelStatus.READY)
        name = unique("outlives")
        mlflow.register_model(f"models:/{other.model_id}", name)
        assert http.delete(f"{prefix}/{other.model_id}/artifacts").status_code == 200
    assert client.list_logged_model_artifacts(other.model_id) == []
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    np.testing.assert_array_equal(loaded.predict(logged.X), logged.expected)


def test_search_logged_models(logged: Logged, client: MlflowClient) -> None:
    exp = [logged.experiment_id]
    found = client.search_logged_models(exp, filter_string="name = 'm'")
    assert logged.model_id in [m.model_id for m in found]
    found = client.search_logged_models(exp, filter_string="metrics.train_acc > 0.9")
    assert [m.model_id for m in found] == [logged.model_id]
    assert client.search_logged_models(exp, filter_string="metrics.train_acc > 1.5") == []
    found = client.search_logged_models(exp, filter_string="params.max_iter = '1000'")
    assert [m.model_id for m in found] == [logged.model_id]
    found = mlflow.search_logged_models(
        experiment_ids=exp, filter_string=f"source_run_id = '{logged.run_id}'", output_format="list"
    )
    assert [m.model_id for m in found] == [logged.model_id]


# ------------------------------------------------------------------------------ Shipyard's SDK


def test_shipyard_sdk_loads_the_versions_mlflow_folder_and_predicts_the_same(
    logged: Logged, server_workspace: Workspace
) -> None:
    import shipyard

    version = Registry(server_workspace).resolve(f"models:/{logged.registered}/1")
    assert version.source == f"models:/{logged.model_id}"
    assert version.storage_owner.startswith("mv-")
    names = {f.path for f in server_workspace.artifacts.list(version.storage_owner, "")}
    assert "MLmodel" in names
    # The version holds an MLflow model folder: Shipyard converts it once, into its cache.
    model = shipyard.load_model(f"models:/{logged.registered}/1", workspace=server_workspace)
    np.testing.assert_array_equal(np.asarray(model.predict(logged.X)), logged.expected)
    cached = list((server_workspace.settings.home / "cache" / "models").glob("mlflow-*"))
    assert len(cached) == 1
    again = shipyard.load_model(f"models:/{logged.registered}/1", workspace=server_workspace)
    np.testing.assert_array_equal(np.asarray(again.predict(logged.X[:5])), logged.expected[:5])


def test_shipyard_load_model_of_a_folder_with_neither_manifest_nor_mlmodel(
    logged: Logged, server_workspace: Workspace
) -> None:
    import shipyard

    with pytest.raises(NotFound, match="no Shipyard model package"):
        shipyard.load_model(f"runs:/{logged.run_id}/absent", workspace=server_workspace)


def test_shipyard_imports_the_versions_mlflow_folder_and_predicts_the_same(
    logged: Logged, server_workspace: Workspace, tmp_path: Path
) -> None:
    import shipyard
    from shipyard.models import mlflow_import

    version = Registry(server_workspace).resolve(f"models:/{logged.registered}/1")
    folder = server_workspace.artifacts.download(
        version.storage_owner, version.storage_path, tmp_path / "mlflow-model"
    )
    name = unique("imported")
    imported = mlflow_import.import_mlflow_model(folder, name, workspace=server_workspace)
    model = shipyard.load_model(f"models:/{name}/{imported.version}", workspace=server_workspace)
    np.testing.assert_array_equal(np.asarray(model.predict(logged.X)), logged.expected)


# ------------------------------------------------------------------------------ logged-model API


def test_logged_model_lifecycle_through_the_client(
    logged: Logged, client: MlflowClient, mlflow_server: LiveServer
) -> None:
    exp = logged.experiment_id
    params = {f"p{i}": str(i) for i in range(150)}  # the client sends 100, then the rest
    model = client.create_logged_model(
        exp, name="lifecycle", model_type="classifier", params=params, tags={"team": "risk"}
    )
    assert model.status == LoggedModelStatus.PENDING
    assert model.model_type == "classifier"
    assert model.params == params
    client.log_model_params(model.model_id, {"extra": "1"})
    client.set_logged_model_tags(model.model_id, {"team": "fraud", "stage": "dev"})
    client.delete_logged_model_tag(model.model_id, "stage")
    done = client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
    assert done.status == LoggedModelStatus.FAILED
    got = client.get_logged_model(model.model_id)
    assert got.tags["team"] == "fraud"
    assert "stage" not in got.tags
    assert got.params["extra"] == "1"
    failed = client.search_logged_models(
        [exp], filter_string="status = 'LOGGED_MODEL_UPLOAD_FAILED' AND name = 'lifecycle'"
    )
    assert [m.model_id for m in failed] == [model.model_id]
    with pytest.raises(MlflowException) as refused:
        client.create_model_version(unique("failed"), f"models:/{model.model_id}")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "LOGGED_MODEL_READY" in refused.value.message

    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException) as gone:
        client.get_logged_model(model.model_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    deleted = httpx.get(
        f"{mlflow_server.url}{API}/logged-models/{model.model_id}", params={"allow_deleted": "true"}
    )
    assert deleted.status_code == 200
    assert deleted.json()["model"]["info"]["model_id"] == model.model_id
    assert model.model_id not in [m.model_id for m in client.search_logged_models([exp])]


def test_search_logged_models_orders_and_pages(client: MlflowClient) -> None:
    exp = client.create_experiment(unique("lm-pages"))
    run = client.create_run(exp)
    ids = []
    for i, acc in enumerate([0.7, 0.9, 0.8, 0.6, None]):
        m = client.create_logged_model(exp, name=f"cand-{i}", source_run_id=run.info.run_id)
        if acc is not None:
            client.log_metric(run.info.run_id, "acc", acc, model_id=m.model_id)
        ids.append(m.model_id)
    by_acc = client.search_logged_models([exp], order_by=[{"field_name": "metrics.acc",
                                                           "ascending": False}])  # fmt: skip
    assert [m.name for m in by_acc] == ["cand-1", "cand-2", "cand-0", "cand-3", "cand-4"]
    newest_first = [m.model_id for m in client.search_logged_models([exp])]
    assert newest_first == ids[::-1]
    seen: list[str] = []
    token = None
    while True:
        page = client.search_logged_models(
            [exp], max_results=2, page_token=token, order_by=[{"field_name": "name"}]
        )
        assert len(page) <= 2
        seen.extend(m.name for m in page)
        token = page.token
        if not token:
            break
    assert seen == [f"cand-{i}" for i in range(5)]
    outputs = client.get_run(run.info.run_id).outputs
    assert outputs is None or outputs.model_outputs == []


def test_log_inputs_records_logged_models(client: MlflowClient) -> None:
    from mlflow.entities import LoggedModelInput

    exp = client.create_experiment(unique("lm-inputs"))
    model = client.create_logged_model(exp, name="evaluated")
    run = client.create_run(exp)
    client.log_inputs(run.info.run_id, models=[LoggedModelInput(model.model_id)])
    inputs = client.get_run(run.info.run_id).inputs
    assert [m.model_id for m in inputs.model_inputs] == [model.model_id]


def test_log_inputs_refused_records_nothing(client: MlflowClient) -> None:
    """A log-inputs call refused for one bad part (an unknown model, a bad dataset) leaves
    neither its datasets nor its model links behind."""
    from mlflow.entities import Dataset, DatasetInput, LoggedModelInput

    exp = client.create_experiment(unique("lm-inputs-atomic"))
    model = client.create_logged_model(exp, name="evaluated")
    run = client.create_run(exp).info.run_id
    good = DatasetInput(Dataset(name="train", digest="abc123", source_type="local", source="x"))
    with pytest.raises(MlflowException) as unknown:
        client.log_inputs(run, datasets=[good], models=[LoggedModelInput("m-" + "0" * 32)])
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    bad = DatasetInput(Dataset(name="train", digest="d" * 40, source_type="local", source="x"))
    with pytest.raises(MlflowException) as too_long:
        client.log_inputs(run, datasets=[bad], models=[LoggedModelInput(model.model_id)])
    assert too_long.value.error_code == "INVALID_PARAMETER_VALUE"
    inputs = client.get_run(run).inputs
    assert inputs.dataset_inputs == []
    assert inputs.model_inputs in (None, [])


def test_server_logged_no_unexpected_errors(mlflow_server: LiveServer) -> None:
    """Runs last in this module: nothing above made the server hit an unexpected error."""
    log = mlflow_server.log_text()
    assert "unexpected error" not in log
    assert "Traceback" not in log
