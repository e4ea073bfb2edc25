from __future__ import annotations

import math
from pathlib import Path

import pytest

from shipyard.entities import Dataset, Metric, RunStatus
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, InvalidState, NotFound
from shipyard.tracking.client import Client


def test_experiment_lifecycle(client: Client) -> None:
    exp_id = client.create_experiment("churn", tags={"team": "risk"})
    exp = client.get_experiment(exp_id)
    assert exp.name == "churn"
    assert exp.tags == {"team": "risk"}
    assert client.get_experiment_by_name("churn") == exp
    with pytest.raises(AlreadyExists):
        client.create_experiment("churn")
    client.rename_experiment(exp_id, "churn-v2")
    assert client.get_experiment_by_name("churn") is None
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_permanent_delete_frees_the_name_and_the_bytes(client: Client, tmp_path: Path) -> None:
    exp_id = client.create_experiment("tmp")
    run = client.create_run(exp_id)
    f = tmp_path / "blob.bin"
    f.write_bytes(b"x" * 4096)
    client.log_artifact(run.run_id, f)
    blobs_before = list(client.workspace.settings.home.joinpath("artifacts").rglob("*"))
    assert any(p.is_file() for p in blobs_before)
    client.delete_experiment(exp_id, permanent=True)
    with pytest.raises(NotFound):
        client.get_run(run.run_id)
    assert not [
        p for p in client.workspace.settings.home.joinpath("artifacts").rglob("*") if p.is_file()
    ]
    assert client.create_experiment("tmp") != exp_id


def test_logging_and_reading_back(client: Client) -> None:
    run = client.create_run("0", run_name="baseline", tags={"stage": "dev"})
    rid = run.run_id
    assert run.info.status == RunStatus.RUNNING
    assert run.info.run_name == "baseline"
    client.log_param(rid, "lr", 0.1)
    client.log_params(rid, {"depth": 6, "model": "gbm"})
    client.log_param(rid, "lr", "0.1")  # same value again is fine
    with pytest.raises(Conflict, match="lr"):
        client.log_param(rid, "lr", 0.2)
    for step in range(10):
        client.log_metric(rid, "loss", 1.0 / (step + 1), step=step)
    client.log_metrics(rid, {"acc": 0.9, "nan": math.nan, "inf": math.inf}, step=3)
    client.set_tag(rid, "owner", "ana")
    got = client.get_run(rid)  # flushes buffered metrics first
    assert got.data.params == {"lr": "0.1", "depth": "6", "model": "gbm"}
    assert got.data.metrics["loss"].value == pytest.approx(0.1)
    assert got.data.metrics["loss"].step == 9
    assert math.isnan(got.data.metrics["nan"].value)
    assert got.data.metrics["inf"].value == math.inf
    assert got.data.tags["owner"] == "ana"
    assert got.data.tags["stage"] == "dev"
    history = client.get_metric_history(rid, "loss")
    assert [m.step for m in history] == list(range(10))
    client.delete_tag(rid, "owner")
    assert "owner" not in client.get_run(rid).data.tags
    info = client.set_terminated(rid)
    assert info.status == RunStatus.FINISHED
    assert info.end_time is not None


def test_log_batch_splits_over_the_limits(client: Client) -> None:
    rid = client.create_run("0").run_id
    metrics = [Metric(f"m{i}", float(i), 1, 0) for i in range(2500)]
    params = {f"p{i}": i for i in range(250)}
    client.log_batch(rid, metrics=metrics, params=params)
    data = client.get_run(rid).data
    assert len(data.metrics) == 2500
    assert len(data.params) == 250


def test_bad_input_is_rejected_before_buffering(client: Client) -> None:
    rid = client.create_run("0").run_id
    with pytest.raises(InvalidInput):
        client.log_metric(rid, "bad key!", 1.0)
    with pytest.raises(InvalidInput):
        client.log_metric(rid, "ok", "1.0")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        client.log_metric(rid, "ok", True)
    with pytest.raises(InvalidInput):
        client.set_terminated(rid, "DONE")


def test_metrics_for_a_deleted_run_are_reported(client: Client) -> None:
    rid = client.create_run("0").run_id
    client.delete_run(rid)
    client.log_metric(rid, "loss", 1.0)
    with pytest.raises(InvalidState):
        client.flush()


def test_artifacts_round_trip(client: Client, tmp_path: Path) -> None:
    rid = client.create_run("0").run_id
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    client.log_artifacts(rid, src, "data")
    client.log_artifact(rid, src / "a.txt")
    client.log_dict(rid, {"k": 1}, "report/metrics.json")
    client.log_text(rid, "hello", "notes.txt")
    top = {a.path: a for a in client.list_artifacts(rid)}
    assert set(top) == {"a.txt", "data", "notes.txt", "report"}
    assert top["data"].is_dir
    assert top["a.txt"].file_size == 5
    out = client.download_artifacts(rid, "data", tmp_path / "out")
    assert (out / "a.txt").read_text() == "alpha"
    assert (out / "sub" / "b.txt").read_text() == "beta"
    one = client.download_artifacts(rid, "report/metrics.json", tmp_path / "one")
    assert one.read_text().strip().startswith("{")
    with pytest.raises(InvalidInput):
        client.log_artifact(rid, tmp_path / "missing.txt")


def test_search_runs_and_dataframe(client: Client) -> None:
    exp = client.create_experiment("search")
    for i in range(12):
        rid = client.create_run(exp, run_name=f"r{i}").run_id
        client.log_params(rid, {"model": "gbm" if i % 2 else "lr"})
        client.log_metric(rid, "auc", i / 12)
    page = client.search_runs(
        experiment_names=["search"],
        filter_string="params.model = 'gbm' AND metrics.auc > 0.3",
        order_by=["metrics.auc DESC"],
        max_results=3,
    )
    aucs = [r.data.metrics["auc"].value for r in page]
    assert aucs == sorted(aucs, reverse=True)
    assert len(aucs) == 3
    assert page.next_page_token
    rest = client.search_runs(
        [exp],
        "params.model = 'gbm' AND metrics.auc > 0.3",
        order_by=["metrics.auc DESC"],
        page_token=page.next_page_token,
    )
    assert {r.run_id for r in rest}.isdisjoint({r.run_id for r in page})
    assert len(rest) == 1
    frame = client.search_runs([exp], output_format="pandas")
    assert len(frame) == 12
    assert "metrics.auc" in frame.columns
    assert "params.model" in frame.columns
    with pytest.raises(NotFound):
        client.search_runs(experiment_names=["nope"])


def test_log_input_from_pandas(client: Client) -> None:
    import pandas as pd

    rid = client.create_run("0").run_id
    df = pd.DataFrame({"x": [1, 2, 3], "y": [0.1, 0.2, 0.3]})
    ds = client.log_input(rid, df, context="training", name="toy")
    same = client.log_input(rid, df.copy(), context="training", name="toy")
    assert ds.digest == same.digest
    inputs = client.get_run(rid).inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "toy"
    assert inputs[0].tags["mlflow.data.context"] == "training"
    client.log_input(rid, Dataset("other", "abc123"))
    assert len(client.get_run(rid).inputs) == 2
