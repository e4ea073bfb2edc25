"""The unmodified ``mlflow`` client against a real Shipyard server.

Every test drives the public ``mlflow`` / ``MlflowClient`` API (no mocks) through HTTP to a
Shipyard server subprocess, and checks what comes back through the same client.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.mlflow.conftest import LiveServer

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag, ViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = pytest.mark.mlflow


@pytest.fixture
def tracking(mlflow_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the mlflow client at the server, with no active experiment or run."""
    import mlflow.tracking.fluent as fluent

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(mlflow_server.url)
    try:
        yield mlflow_server.url
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


@pytest.fixture
def client(tracking: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------ experiments


def test_set_experiment_creates_then_reuses(client: MlflowClient) -> None:
    name = unique("exp")
    created = mlflow.set_experiment(name)
    assert created.name == name
    assert created.experiment_id.isdigit()
    assert created.artifact_location == f"mlflow-artifacts:/{created.experiment_id}"
    assert created.lifecycle_stage == "active"
    again = mlflow.set_experiment(name)
    assert again.experiment_id == created.experiment_id
    assert client.get_experiment_by_name(name).experiment_id == created.experiment_id
    assert client.get_experiment_by_name(unique("missing")) is None


def test_start_run_without_experiment_uses_default(client: MlflowClient) -> None:
    with mlflow.start_run() as run:
        assert run.info.experiment_id == "0"
    assert client.get_experiment("0").name == "Default"


def test_experiment_rename_delete_restore_and_tags(client: MlflowClient) -> None:
    name = unique("rename-me")
    exp_id = client.create_experiment(name, tags={"team": "a"})
    assert client.get_experiment(exp_id).tags == {"team": "a"}
    client.set_experiment_tag(exp_id, "stage", "dev")
    client.delete_experiment_tag(exp_id, "team")
    assert client.get_experiment(exp_id).tags == {"stage": "dev"}

    new_name = unique("renamed")
    client.rename_experiment(exp_id, new_name)
    assert client.get_experiment(exp_id).name == new_name

    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert exp_id in {e.experiment_id for e in deleted}
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_search_experiments_filter_and_pages(client: MlflowClient) -> None:
    prefix = unique("search-exp")
    ids = [client.create_experiment(f"{prefix}-{i}") for i in range(5)]
    found = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert sorted(e.experiment_id for e in found) == sorted(ids)

    seen: list[str] = []
    token = None
    while True:
        page = client.search_experiments(
            filter_string=f"name LIKE '{prefix}%'", max_results=2, page_token=token
        )
        assert len(page) <= 2
        seen.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(set(seen))


# ------------------------------------------------------------------------------ runs


def test_run_logging_roundtrip(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("logging"))
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 5, "optimizer": "adam"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=3)
        mlflow.set_tag("owner", "me")
        mlflow.set_tags({"a": "1", "b": "2"})
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "first"
    assert got.info.status == "FINISHED"
    assert got.info.end_time is not None
    assert got.info.end_time >= got.info.start_time
    assert got.info.artifact_uri == (
        f"mlflow-artifacts:/{got.info.experiment_id}/{got.info.run_id}/artifacts"
    )
    assert got.data.params == {"lr": "0.01", "depth": "5", "optimizer": "adam"}
    assert got.data.metrics == {"loss": pytest.approx(0.2), "acc": 0.9, "f1": 0.8}
    tags = got.data.tags
    assert tags["owner"] == "me"
    assert tags["a"] == "1"
    assert tags["b"] == "2"
    assert tags["mlflow.runName"] == "first"
    assert "mlflow.user" in tags
    assert "mlflow.source.name" in tags


def test_end_run_with_failed_status_and_rename(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("status"))
    run = mlflow.start_run()
    mlflow.end_run(status="FAILED")
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    client.update_run(run.info.run_id, name="renamed-run")
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "renamed-run"
    assert got.data.tags["mlflow.runName"] == "renamed-run"


def test_nested_runs(client: MlflowClient) -> None:
    exp = mlflow.set_experiment(unique("nested"))
    with (
        mlflow.start_run(run_name="parent") as parent,
        mlflow.start_run(run_name="child", nested=True) as child,
    ):
        mlflow.log_metric("x", 1)
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    children = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert [r.info.run_id for r in children] == [child.info.run_id]


def test_log_batch_over_1000_metrics_is_split_by_client(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("batch"))
    with mlflow.start_run() as run:
        mlflow.log_metrics({f"m{i}": float(i) for i in range(1500)}, step=1)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("series", float(s), 1000 + s, s) for s in range(1200)],
            params=[Param(f"p{i}", str(i)) for i in range(150)],
            tags=[RunTag(f"t{i}", str(i)) for i in range(150)],
        )
    got = client.get_run(run.info.run_id)
    assert len([k for k in got.data.metrics if k.startswith("m")]) == 1500
    assert got.data.metrics["m1499"] == 1499.0
    assert got.data.metrics["series"] == 1199.0
    assert len([k for k in got.data.params if k.startswith("p")]) == 150
    assert got.data.tags["t149"] == "149"
    history = client.get_metric_history(run.info.run_id, "series")
    assert [m.step for m in history] == list(range(1200))


def test_metric_history_keeps_order_and_non_finite_values(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("history"))
    values = [float(i) for i in range(100)]
    values[10], values[20], values[30] = math.nan, math.inf, -math.inf
    with mlflow.start_run() as run:
        for step, v in enumerate(values):
            mlflow.log_metric("v", v, step=step)
    history = client.get_metric_history(run.info.run_id, "v")
    assert [m.step for m in history] == list(range(100))
    assert math.isnan(history[10].value)
    assert history[20].value == math.inf
    assert history[30].value == -math.inf
    assert [m.value for m in history if m.step not in (10, 20, 30)] == [
        v for i, v in enumerate(values) if i not in (10, 20, 30)
    ]
    assert client.get_metric_history(run.info.run_id, "never-logged") == []


def test_log_input_dataset(client: MlflowClient) -> None:
    import pandas as pd

    mlflow.set_experiment(unique("inputs"))
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(
        df, source="https://example.com/data/train.csv", name="train", targets="y"
    )
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "train"
    assert inputs[0].dataset.digest == dataset.digest
    assert inputs[0].dataset.source_type == "http"
    assert "example.com/data/train.csv" in inputs[0].dataset.source
    assert json.loads(inputs[0].dataset.schema)
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_delete_and_restore_run(client: MlflowClient) -> None:
    exp = mlflow.set_experiment(unique("delete-run"))
    with mlflow.start_run() as keep, mlflow.start_run(nested=True) as drop:
        pass
    client.delete_run(drop.info.run_id)
    assert client.get_run(drop.info.run_id).info.lifecycle_stage == "deleted"
    active = {r.info.run_id for r in client.search_runs([exp.experiment_id])}
    assert active == {keep.info.run_id}
    deleted = client.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [drop.info.run_id]
    client.restore_run(drop.info.run_id)
    assert client.get_run(drop.info.run_id).info.lifecycle_stage == "active"


def test_delete_tag(client: MlflowClient) -> None:
    mlflow.set_experiment(unique("tags"))
    with mlflow.start_run() as run:
        mlflow.set_tag("gone", "soon")
        mlflow.delete_tag("gone")
    assert "gone" not in client.get_run(run.info.run_id).data.tags


# ------------------------------------------------------------------------------ search


def _seed_runs(n: int) -> tuple[str, list[str]]:
    exp = mlflow.set_experiment(unique("search"))
    ids = []
    for i in range(n):
        with mlflow.start_run(run_name=f"run-{i}") as run:
            mlflow.log_metric("acc", float(i))
            mlflow.log_param("parity", "even" if i % 2 == 0 else "odd")
        ids.append(run.info.run_id)
    return exp.experiment_id, ids


def test_search_runs_filter_order_and_page_tokens(client: MlflowClient) -> None:
    exp_id, ids = _seed_runs(7)
    seen = []
    token = None
    while True:
        page = client.search_runs(
            [exp_id],
            filter_string="metrics.acc > 1 AND params.parity = 'even'",
            order_by=["metrics.acc DESC"],
            max_results=1,
            page_token=token,
        )
        assert len(page) <= 1
        seen.extend(r.info.run_id for r in page)
        token = page.token
        if not token:
            break
    assert seen == [ids[6], ids[4], ids[2]]

    top = client.search_runs([exp_id], order_by=["metrics.acc ASC"], max_results=3)
    assert [r.data.metrics["acc"] for r in top] == [0.0, 1.0, 2.0]
    by_name = client.search_runs([exp_id], filter_string="attributes.run_name = 'run-3'")
    assert [r.info.run_id for r in by_name] == [ids[3]]


def test_fluent_search_runs_dataframe(tracking: str) -> None:
    exp_id, ids = _seed_runs(4)
    df = mlflow.search_runs(experiment_ids=[exp_id], order_by=["metrics.acc DESC"])
    assert list(df["run_id"]) == ids[::-1]
    assert list(df["metrics.acc"]) == [3.0, 2.0, 1.0, 0.0]
    assert set(df["params.parity"]) == {"even", "odd"}
    assert list(df["tags.mlflow.runName"]) == ["run-3", "run-2", "run-1", "run-0"]
    odd = mlflow.search_runs(experiment_ids=[exp_id], filter_string="params.parity = 'odd'")
    assert sorted(odd["run_id"]) == sorted([ids[1], ids[3]])


# ------------------------------------------------------------------------------ artifacts


def test_artifacts_upload_list_download(client: MlflowClient, tmp_path: Path) -> None:
    mlflow.set_experiment(unique("artifacts"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    single = tmp_path / "single.csv"
    single.write_text("x,y\n1,2\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="nested/deeper")
        mlflow.log_artifacts(str(src), artifact_path="data")
        mlflow.log_dict({"k": [1, 2]}, "cfg/d.json")
        mlflow.log_text("hello", "notes/hello.txt")
    rid = run.info.run_id

    root = {(f.path, f.is_dir) for f in client.list_artifacts(rid)}
    assert root == {
        ("single.csv", False),
        ("nested", True),
        ("data", True),
        ("cfg", True),
        ("notes", True),
    }
    data = client.list_artifacts(rid, "data")
    assert [(f.path, f.is_dir, f.file_size) for f in data] == [
        ("data/a.txt", False, 5),
        ("data/sub", True, None),
    ]
    assert [f.path for f in client.list_artifacts(rid, "data/sub")] == ["data/sub/b.bin"]
    assert client.list_artifacts(rid, "data/a.txt") == []
    assert client.list_artifacts(rid, "no/such/dir") == []

    out = tmp_path / "out"
    whole = Path(
        mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="data", dst_path=str(out))
    )
    assert (whole / "a.txt").read_text() == "alpha"
    assert (whole / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 100
    one = Path(client.download_artifacts(rid, "cfg/d.json", str(tmp_path / "one")))
    assert json.loads(one.read_text()) == {"k": [1, 2]}
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/cfg/d.json") == {"k": [1, 2]}


def test_missing_artifact_download_fails_cleanly(client: MlflowClient, tmp_path: Path) -> None:
    mlflow.set_experiment(unique("missing-artifact"))
    with mlflow.start_run() as run:
        mlflow.log_text("x", "present.txt")
    with pytest.raises(Exception) as info:
        client.download_artifacts(run.info.run_id, "absent.txt", str(tmp_path))
    assert "500" not in str(info.value)


# ------------------------------------------------------------------------------ errors


def test_errors_seen_through_the_client(client: MlflowClient) -> None:
    with pytest.raises(MlflowException) as unknown:
        client.get_run("0" * 32)
    assert unknown.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    exp = mlflow.set_experiment(unique("errors"))
    with mlflow.start_run() as run:
        mlflow.log_param("p", "1")
        mlflow.log_param("p", "1")  # the same value again is fine
        with pytest.raises(MlflowException) as changed:
            mlflow.log_param("p", "2")
        assert changed.value.error_code == "INVALID_PARAMETER_VALUE"

    with pytest.raises(MlflowException) as bad_filter:
        client.search_runs([exp.experiment_id], filter_string="metrics.acc >")
    assert bad_filter.value.error_code == "INVALID_PARAMETER_VALUE"

    with pytest.raises(MlflowException) as duplicate:
        client.create_experiment(exp.name)
    assert duplicate.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.delete_run(run.info.run_id)
    with pytest.raises(MlflowException) as deleted:
        client.log_metric(run.info.run_id, "m", 1.0)
    assert deleted.value.error_code == "INVALID_PARAMETER_VALUE"

    with pytest.raises(MlflowException) as no_exp:
        client.get_experiment("987654321")
    assert no_exp.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_server_logged_no_unexpected_errors(mlflow_server: LiveServer) -> None:
    """Runs last in this module: nothing above made the server hit an unexpected error."""
    log = mlflow_server.log_text()
    assert "unexpected error" not in log
    assert "Traceback" not in log
