"""``shipyard monitor``: drift between files, monitors, rules, alerts and reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.cli.conftest import Shipyard
from tests.monitoring.conftest import write_feedback, write_requests
from tests.monitoring.test_class_probabilities import IRIS, _proba_requests
from tests.monitoring.test_monitors import T0, _requests


def test_drift_between_two_files(shipyard: Shipyard, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(list("abc"), 2000)})
    cur = pd.DataFrame({"x": rng.normal(1.0, size=2000), "c": rng.choice(list("abc"), 2000)})
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    out = shipyard.json("monitor", "drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"),
                  "--html", str(tmp_path / "drift.html"))  # fmt: skip
    assert list(out) == ["dataset_drift", "share_drifted", "columns"]
    for c in out["columns"]:
        assert list(c) == ["column", "test", "statistic", "p_value", "threshold", "drifted"]
        assert isinstance(c["statistic"], float)
        assert c["p_value"] is None  # distances at this size
        assert c["threshold"] == 0.1
    assert [(c["column"], c["test"], c["drifted"]) for c in out["columns"]] == [
        ("x", "wasserstein", True), ("c", "jensenshannon", False)]  # fmt: skip
    assert out["share_drifted"] == 0.5
    assert out["dataset_drift"] is True
    small = shipyard.json("monitor", "drift", str(tmp_path / "ref.parquet"),
                          str(tmp_path / "cur.csv"), "--test", "numeric=ks")  # fmt: skip
    assert 0 <= small["columns"][0]["p_value"] < 0.05
    page = (tmp_path / "drift.html").read_text()
    assert "<svg" in page
    assert "wasserstein" in page
    assert "<script" not in page
    text = shipyard("monitor", "drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"),
                    "--test", "x=ks", "-c", "x")  # fmt: skip
    assert " ks " in text.stdout
    assert "1 of 1 columns drifted" in text.stderr
    wrong = shipyard.fails("monitor", "drift", str(tmp_path / "ref.parquet"),
                           str(tmp_path / "cur.csv"), "--test", "c=ks")  # fmt: skip
    assert "compares numeric columns; column 'c' is categorical" in wrong
    bad = shipyard.fails("monitor", "drift", "nope.parquet", str(tmp_path / "cur.csv"))
    assert bad.startswith("Error: nope.parquet does not exist")
    assert "no drift test is named 'nope'" in shipyard.fails(
        "monitor", "drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.csv"), "--test",
        "nope")  # fmt: skip


def test_drift_between_dataset_versions(shipyard: Shipyard, tmp_path: Path) -> None:
    from shipyard.data.service import Datasets

    rng = np.random.default_rng(2)
    ws = Workspace.open(Settings.from_env({}, home=shipyard.home))
    try:
        ds = Datasets(ws)
        for shift in (0.0, 0.0, 2.0):
            ds.register("t", pd.DataFrame({"x": rng.normal(shift, size=5000),
                                           "k": rng.integers(0, 2, 5000)}))  # fmt: skip
    finally:
        ws.close()
    same = shipyard.json("monitor", "drift", "datasets:/t/1", "datasets:/t/2")
    assert same["share_drifted"] == 0.0
    assert [c["column"] for c in same["columns"]] == ["x", "k"]
    latest = shipyard.json("monitor", "drift", "datasets:/t/1", "datasets:/t")  # version 3
    assert [c["column"] for c in latest["columns"] if c["drifted"]] == ["x"]
    pd.DataFrame({"x": rng.normal(2.0, size=5000)}).to_parquet(tmp_path / "x.parquet")
    mixed = shipyard.json("monitor", "drift", "datasets:/t/1", str(tmp_path / "x.parquet"))
    assert [(c["column"], c["drifted"]) for c in mixed["columns"]] == [("x", True)]
    assert "version must be a number" in shipyard.fails(
        "monitor", "drift", "datasets:/t/x", "datasets:/t/1"
    )
    assert "'nope'" in shipyard.fails("monitor", "drift", "datasets:/nope", "datasets:/t/1")


def test_monitor_lifecycle(shipyard: Shipyard, tmp_path: Path) -> None:
    ws = Workspace.open(Settings.from_env({}, home=shipyard.home))
    try:
        rng = np.random.default_rng(1)
        write_requests(ws, "ep", _requests(rng, 0, 400))
        write_requests(ws, "ep", _requests(rng, 400, 400, shift=2.0))
    finally:
        ws.close()
    created = shipyard.json("monitor", "create", "m", "--endpoint", "ep", "--reference-window",
                      f"0:{T0 + 400}", "--window-rows", "200", "--deployment", "prod")  # fmt: skip
    assert created["name"] == "m"
    assert created["window"] == {"rows": 200}
    delayed = shipyard.json("monitor", "create", "late", "--endpoint", "ep", "--reference-window",
                            f"0:{T0 + 400}", "--window-rows", "200", "--label-delay", "30")  # fmt: skip
    assert delayed["window"] == {"rows": 200, "label_delay_s": 30.0}
    shipyard("monitor", "delete", "late")
    shipyard("monitor", "rule-create", "hot", "--monitor", "m", "--metric", "drift_share", "--op",
       ">=", "--threshold", "0.3", "--event", "--action", "hold")  # fmt: skip
    (rule,) = shipyard.json("monitor", "rules")
    assert rule["sinks"] == [{"kind": "log"}, {"kind": "event"}]
    assert rule["action"] == "hold"
    (run,) = shipyard.json("monitor", "run", "m")
    assert len(run["windows"]) == 2
    assert len(run["alerts"]) == 1
    (alert,) = shipyard.json("monitor", "alerts", "--status", "open")
    assert alert["action"] == "hold"
    acked = shipyard.json(
        "monitor", "ack", str(alert["alert_id"]), "--note", "on it", "--user", "ann"
    )
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_by"] == "ann"
    results = shipyard.json("monitor", "results", "m")
    assert [r["num_rows"] for r in results] == [200, 200]
    (listed,) = shipyard.json("monitor", "list")
    assert listed["latest"]["metrics"]["drift_share"] >= 0.3
    report = shipyard.json("monitor", "report", "m")
    assert report["results"][-1]["details"]["drift"]["columns"]
    shipyard("monitor", "report", "m", "-o", str(tmp_path / "m.html"))
    page = (tmp_path / "m.html").read_text()
    assert "Monitor m" in page
    assert "<polyline" in page
    assert "hot" in page
    assert "No monitors" not in shipyard("monitor", "list").stdout
    assert "No monitor is named 'nope'" in shipyard.fails("monitor", "run", "nope")
    assert "--window-rows" in shipyard.fails("monitor", "create", "x", "--endpoint", "ep",
                                             "--reference-window", "0:1")  # fmt: skip
    shipyard("monitor", "rule-delete", "hot")
    shipyard("monitor", "delete", "m")
    assert shipyard.json("monitor", "list") == []
    assert len(shipyard.json("monitor", "alerts")) == 1  # history outlives the monitor


def test_monitor_classes_of_probability_predictions(shipyard: Shipyard, tmp_path: Path) -> None:
    """``--classes`` names the probability columns, so class-name feedback is scored; without
    it the run says why a window has no classification metrics."""
    rng = np.random.default_rng(3)
    reqs, truth = _proba_requests(rng, 300, 3)
    ws = Workspace.open(Settings.from_env({}, home=shipyard.home))
    try:
        write_requests(ws, "ep", reqs)
        write_feedback(ws, "ep", [(r["id"], IRIS[c]) for r, c in zip(reqs, truth, strict=True)])
    finally:
        ws.close()
    common = ["--endpoint", "ep", "--reference-window", f"0:{T0 + 100}", "--window-rows", "200",
              "--task", "classification"]  # fmt: skip
    created = shipyard.json("monitor", "create", "named", *common, "--classes",
                            "setosa, versicolor,virginica")  # fmt: skip
    assert created["classes"] == IRIS
    (run,) = shipyard.json("monitor", "run", "named")
    probs = np.array([r["prediction"] for r in reqs[100:]])
    expected = accuracy_score([IRIS[c] for c in truth[100:]], [IRIS[i] for i in probs.argmax(1)])
    assert run["windows"][0]["metrics"]["accuracy"] == pytest.approx(expected)
    numbers = shipyard.json("monitor", "create", "numbers", *common, "--classes", "3,1,2.5")
    assert numbers["classes"] == [3, 1, 2.5]
    bools = shipyard.json("monitor", "create", "bools", *common, "--classes", "false,True")
    assert bools["classes"] == [False, True]  # as feedback sends true/false
    listed = shipyard.json("monitor", "create", "listed", *common, "--classes", '["1", "a,b"]')
    assert listed["classes"] == ["1", "a,b"]
    assert "names one class twice ('a' and 'a'" in shipyard.fails(
        "monitor", "create", "bad", *common, "--classes", "a,b,a"
    )
    assert "has an empty label" in shipyard.fails(
        "monitor", "create", "bad", *common, "--classes", "a,,b"
    )
    shipyard("monitor", "create", "plain", *common)
    text = shipyard("monitor", "run", "plain")
    assert "Monitor plain: no classification metrics: predictions are class probabilities" in (
        text.stderr
    )
    assert "classes=[...]" in shipyard("monitor", "results", "plain").stderr
    shipyard("monitor", "report", "plain", "-o", str(tmp_path / "plain.html"))
    assert "no classification metrics" in (tmp_path / "plain.html").read_text()


def test_monitor_reference_from_a_models_lineage(shipyard: Shipyard) -> None:
    """``--reference-model`` takes the training data a version's run recorded; exactly one
    reference option is accepted."""
    import io

    from shipyard.data.service import Datasets

    ws = Workspace.open(Settings.from_env({}, home=shipyard.home))
    try:
        Datasets(ws).register("train", pd.DataFrame({"x": np.arange(50.0)}))
        run_id = ws.store.create_run("0").info.run_id
        Datasets(ws).log_input(run_id, "train", 1, context="training")
        ws.artifacts.upload(run_id, "model/MLmodel", io.BytesIO(b"flavors: {}\n"))
        ws.registry.create_registered_model("churn")
        ws.registry.create_model_version("churn", f"runs:/{run_id}/model", artifact_owner=run_id,
                                         artifact_path="model", run_id=run_id)  # fmt: skip
    finally:
        ws.close()
    created = shipyard.json("monitor", "create", "m", "--endpoint", "ep", "--window-rows", "10",
                            "--reference-model", "models:/churn/1")  # fmt: skip
    assert created["reference"] == {"dataset": "train", "version": 1, "model": "models:/churn/1"}
    both = shipyard.fails("monitor", "create", "n", "--endpoint", "ep", "--window-rows", "10",
                          "--reference-model", "models:/churn/1", "--reference-dataset", "train")  # fmt: skip
    assert "give one of --reference-model" in both
    unknown = shipyard.fails("monitor", "create", "n", "--endpoint", "ep", "--window-rows", "10",
                             "--reference-model", "models:/churn/7")  # fmt: skip
    assert "version 7" in unknown


def test_monitor_run_settle(shipyard: Shipyard) -> None:
    """Windows that ended a moment ago wait for late log rows; ``--settle 0`` (the servers have
    stopped) computes them at once."""
    import time

    now = int(time.time() * 1000)
    rng = np.random.default_rng(4)
    reqs = _requests(rng, 0, 300)
    for i, r in enumerate(reqs):
        r["ts"] = now - 500 + i  # the last ends 0.2 s ago
    ws = Workspace.open(Settings.from_env({}, home=shipyard.home))
    try:
        write_requests(ws, "ep", reqs)
    finally:
        ws.close()
    shipyard("monitor", "create", "m", "--endpoint", "ep", "--reference-window",
             f"0:{now - 500 + 100}", "--window-rows", "200")  # fmt: skip
    (waiting,) = shipyard.json("monitor", "run", "m")
    assert waiting["windows"] == []
    (settled,) = shipyard.json("monitor", "run", "m", "--settle", "0")
    assert [w["num_rows"] for w in settled["windows"]] == [200]
    assert "--settle" in shipyard("monitor", "run", "--help").stdout
