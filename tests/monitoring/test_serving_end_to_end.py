"""A real model server on loopback: its prediction log (answered and failed requests) and the
labels posted to /feedback feed a monitor whose health and performance match what was sent."""

from __future__ import annotations

import json

import pytest
from sklearn import metrics as skm

from shipyard.monitoring import monitors, read_predictions
from shipyard.serving import DeploymentSpec
from shipyard.workspace import Workspace
from tests.serving.conftest import Data, add_models, cancer, serving

__all__ = ["cancer"]  # the session fixture, used here


@pytest.mark.slow
def test_served_requests_failures_and_feedback_make_a_window(
    workspace: Workspace, cancer: Data
) -> None:
    add_models(workspace, cancer)
    X, y = cancer.X, cancer.y
    spec = DeploymentSpec.single("models:/cancer@champion")
    sent: list[tuple[str, int]] = []
    with serving(workspace, spec) as s:
        for i in range(60):
            r = s.client.post(
                "/predict", json={"dataframe_records": X.iloc[[i]].to_dict("records")}
            )
            assert r.status_code == 200
            sent.append((r.json()["request_id"], int(y.iloc[i])))
        for i in range(60, 160):
            r = s.client.post(
                "/predict", json={"dataframe_records": X.iloc[[i]].to_dict("records")}
            )
            sent.append((r.json()["request_id"], int(y.iloc[i])))
        bad = X.iloc[[0]].to_dict("records")
        bad[0]["mean radius"] = "not a number"
        failed = s.client.post("/predict", json={"dataframe_records": bad})
        assert failed.status_code == 400
        s.client.post("/feedback", json={"feedback": [{"request_id": rid, "label": label}
                                                      for rid, label in sent[60:]]})  # fmt: skip
    log = read_predictions(s.log_dir, include_errors=True)
    assert len(log) == 161
    assert log["error"].notna().sum() == 1
    assert len(read_predictions(s.log_dir)) == 160  # answered requests only, by default
    ref_end = int(log.set_index("request_id").loc[sent[59][0], "timestamp_ms"]) + 1
    monitors.create_monitor(
        workspace, "cancer", endpoint=spec.name, reference={"window": {"start": 0, "end": ref_end}},
        window={"rows": 101}, task="classification",
    )  # fmt: skip
    # The log was read back whole above: nothing can land late, so no settling wait.
    (result,) = monitors.run_monitor(workspace, "cancer", settle_s=0).results
    m = result.metrics
    assert m["requests"] == 101
    assert m["error_rate"] == pytest.approx(1 / 101)
    assert m["labelled"] == 100
    answered = log[log["error"].isna()].set_index("request_id")
    pred = [int(json.loads(answered.loc[rid, "predictions"])[0]) for rid, _ in sent[60:]]
    truth = [label for _, label in sent[60:]]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(truth, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(truth, pred))
