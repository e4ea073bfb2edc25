"""The prediction log: exactly one row per answered request, none for refused ones, written in
atomic Parquet segments off the request path; feedback joined by request id."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.serving import DeploymentSpec, PredictionLog, read_predictions
from shipyard.workspace import Workspace
from tests.serving.conftest import Data, serving


def test_every_answered_request_has_one_row_and_feedback_joins(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    rows = cancer.X.iloc[:5]
    answered: list[str] = []
    with serving(workspace, DeploymentSpec.single("models:/cancer@champion")) as s:

        def send(n: int) -> None:
            with httpx.Client(base_url=s.url) as c:
                for i in range(n):
                    r = c.post(
                        "/predict",
                        json={"dataframe_records": rows.iloc[[i % 5]].to_dict("records")},
                    )
                    answered.append(r.json()["request_id"])

        threads = [threading.Thread(target=send, args=(50,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        r = s.client.post("/invocations", json={"dataframe_records": rows.to_dict("records")},
                          headers={"X-Request-Id": "inv-1"})  # fmt: skip
        answered.append("inv-1")
        assert r.status_code == 200
        assert r.headers["x-request-id"] == "inv-1"
        refused = s.client.post("/invocations", json={"dataframe_records": [{"x": 1}]})
        assert refused.status_code == 400
        fb = s.client.post(
            "/feedback",
            json={"feedback": [{"request_id": answered[0], "label": 1},
                               {"request_id": "inv-1", "label": [0, 1, 1, 0, 1]}]},
        )  # fmt: skip
        assert fb.json() == {"accepted": 2}
        s.client.post("/feedback", json={"request_id": answered[0], "label": 0})  # a correction
    # leaving the server flushed the log
    log = read_predictions(s.log_dir)
    assert sorted(log["request_id"]) == sorted(answered)  # exactly one row each, nothing else
    assert len(log) == 201
    first = log.set_index("request_id").loc[answered[0]]
    assert first["label"] == 0
    assert first["model_version"] == "1"
    assert first["arm"] == "main"
    assert first["latency_ms"] > 0
    features = json.loads(first["features"])
    assert features["columns"][0] == "mean radius"
    assert len(features["data"]) == 1
    inv = log.set_index("request_id").loc["inv-1"]
    assert inv["label"] == [0, 1, 1, 0, 1]
    assert len(json.loads(inv["predictions"])) == 5
    assert log["label"].isna().sum() == 199
    segments = list(s.log_dir.glob("*.parquet"))
    assert segments
    assert not list(s.log_dir.glob(".*.tmp"))


def test_segments_are_written_in_the_background(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path / "log", flush_interval_s=0.05)
    plog.start()
    row = {"request_id": "a", "timestamp_ms": 1, "model_name": "m", "model_version": "1",
           "arm": "main", "shadow": False, "latency_ms": 1.0, "features": "{}",
           "predictions": "[1]"}  # fmt: skip
    plog.record(row)
    for _ in range(100):
        if list((tmp_path / "log").glob("pred-*.parquet")):
            break
        threading.Event().wait(0.02)
    assert len(read_predictions(tmp_path / "log")) == 1  # written without flush() or close()
    plog.record({**row, "request_id": "b"})
    plog.close()
    assert list(read_predictions(tmp_path / "log")["request_id"]) == ["a", "b"]


def test_reading_a_missing_log_says_where_it_would_be(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="No prediction log"):
        read_predictions(tmp_path / "nothing")


def test_a_segment_that_cannot_be_written_is_counted_and_serving_goes_on(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    import shutil

    row = {"dataframe_records": cancer.X.iloc[[0]].to_dict("records")}
    with serving(workspace, DeploymentSpec.single("models:/cancer@champion")) as s:
        s.log.flush()
        shutil.rmtree(s.log_dir)
        s.log_dir.write_text("a file where the log's folder was")  # every write now fails
        assert s.client.post("/predict", json=row).status_code == 200
        s.log.flush()
        assert s.log.failures == 1
        metrics = s.client.get("/metrics").text
        assert "shipyard_serving_prediction_log_failures_total 1.0" in metrics
        assert s.client.post("/predict", json=row).status_code == 200
        s.log.flush()
        assert s.log.failures == 2
        s.log_dir.unlink()
        s.log_dir.mkdir()  # the folder is back: the next segment is written
        s.client.post("/predict", json={**row, "request_id": "after"})
        s.log.flush()
        assert list(read_predictions(s.log_dir)["request_id"]) == ["after"]
