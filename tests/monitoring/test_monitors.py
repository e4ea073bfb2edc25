"""Monitors over prediction logs: windows by count and time, drift against a dataset version's
stored profile or a log window, missing and out-of-schema rates, health from failed requests,
performance from feedback equal to scikit-learn's, and the store on PostgreSQL."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from shipyard.config import Settings
from shipyard.data.service import Datasets
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.monitoring import monitors
from shipyard.monitoring.scheduler import MonitorScheduler
from shipyard.workspace import Workspace
from tests.monitoring.conftest import write_feedback, write_requests

T0 = 1_728_000_000_000  # a midnight (UTC) in the past: windows are aligned, and settled


def _requests(rng: np.random.Generator, start: int, n: int, *, shift: float = 0.0,
              step_ms: int = 1, errors: int = 0) -> list[dict]:  # fmt: skip
    out = []
    for i in range(n):
        x = float(rng.normal(shift))
        out.append(
            {
                "id": f"r{start + i}",
                "ts": T0 + (start + i) * step_ms,
                "features": {
                    "x": x,
                    "z": float(rng.normal()),
                    "region": str(rng.choice(["eu", "us"])),
                },
                "prediction": float(1 / (1 + np.exp(-x))),
                "latency_ms": float(i % 100),
                "error": "INVALID_PARAMETER_VALUE" if i < errors else None,
            }
        )
    return out


@pytest.mark.parametrize("window", [{"rows": 100}, {"seconds": 60}])
def test_a_window_settles_before_it_is_done_so_late_log_rows_count(
    workspace: Workspace, window: dict[str, Any]
) -> None:
    """The prediction log writes rows up to a second late (each worker flushes every second):
    a window marked done as soon as it was full or over left such rows out for good."""
    rng = np.random.default_rng(5)
    write_requests(workspace, "ep", _requests(rng, 0, 100))
    monitors.create_monitor(
        workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 100}},
        window=window,
    )  # fmt: skip
    on_time = _requests(rng, 600, 101, step_ms=100)  # 60.0 s to 70.0 s after T0
    write_requests(workspace, "ep", [r for i, r in enumerate(on_time) if i != 50])
    end = T0 + 70_001 if "rows" in window else T0 + 120_000  # the full window's end
    just_over = monitors.run_monitor(workspace, "m", now_ms=end + 1_000)
    assert [r.details["complete"] for r in just_over.results] == []
    write_requests(workspace, "ep", [on_time[50]])  # its server flushed it late
    settled = monitors.run_monitor(workspace, "m", now_ms=end + 5_000)
    assert [r.num_rows for r in settled.results] == [100 if "rows" in window else 101]
    if "rows" in window:  # the first 100 rows now run to 69.9 s, the late one among them
        assert settled.results[0].window_end == T0 + 69_901
    assert settled.results[0].details["complete"] is True
    with pytest.raises(InvalidInput, match="settle_s must be a number of seconds >= 0"):
        monitors.run_monitor(workspace, "m", settle_s=-1)


def test_count_windows_against_a_log_reference(workspace: Workspace) -> None:
    rng = np.random.default_rng(0)
    write_requests(workspace, "ep", _requests(rng, 0, 1500))
    monitors.create_monitor(
        workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 1500}},
        window={"rows": 500},
    )  # fmt: skip
    write_requests(workspace, "ep", _requests(rng, 1500, 500))
    write_requests(workspace, "ep", _requests(rng, 2000, 1200, shift=1.0, errors=100))
    out = monitors.run_monitor(workspace, "m")
    # 1700 requests after the reference: 3 full windows; the last 200 wait for more
    assert [r.num_rows for r in out.results] == [500, 500, 500]
    first, second, _third = (r.metrics for r in out.results)
    assert first["drift_share"] == 0.0
    assert first["error_rate"] == 0.0
    assert second["drift:x"] > 0.3
    assert second["drift_share"] == pytest.approx(1 / 3)
    assert second["prediction_drifted"] == 1.0
    assert second["error_rate"] == pytest.approx(100 / 500)
    assert second["rows"] == 400
    assert second["latency_p95_ms"] == pytest.approx(np.percentile(np.arange(100.0), 95))
    assert second["out_of_schema_rate"] > 0  # x beyond the reference's range
    again = monitors.run_monitor(workspace, "m")
    assert again.results == []  # watermark: nothing new
    partial = monitors.run_monitor(workspace, "m", partial=True)
    assert [r.num_rows for r in partial.results] == [200]
    assert partial.results[0].details["complete"] is False
    assert workspace.monitors.get_monitor("m").watermark == out.results[-1].window_end
    listed = monitors.list_monitors(workspace)
    assert listed[0]["name"] == "m"
    assert listed[0]["latest"]["num_rows"] == 200


def test_time_windows_wait_for_the_label_delay(workspace: Workspace) -> None:
    rng = np.random.default_rng(1)
    write_requests(workspace, "ep", _requests(rng, 0, 300, step_ms=1000))  # 300 s of traffic
    monitors.create_monitor(
        workspace, "t", endpoint="ep", reference={"window": {"start": T0, "end": T0 + 100_000}},
        window={"seconds": 60, "label_delay_s": 30},
    )  # fmt: skip
    now = T0 + 300_000
    out = monitors.run_monitor(workspace, "t", now_ms=now)
    spans = [(r.window_start - T0, r.window_end - T0) for r in out.results]
    # windows aligned to the minute, the first from the reference's end; the one ending at
    # 300 s waits for its 30 s of label delay
    assert spans == [(100_000, 120_000), (120_000, 180_000), (180_000, 240_000)]
    assert sum(r.num_rows for r in out.results) == sum(
        1 for i in range(300) if spans[0][0] <= i * 1000 < spans[-1][1]
    )


def test_a_model_versions_training_data_is_the_reference(workspace: Workspace) -> None:
    """``reference={"model": "models:/NAME@ALIAS"}`` finds the dataset version the version was
    trained on in its lineage and uses its stored profile, as if it were named."""
    rng = np.random.default_rng(9)
    data = Datasets(workspace)
    data.register("train", pd.DataFrame({"x": rng.normal(size=300), "y": rng.integers(0, 2, 300)}))
    data.register("train", pd.DataFrame({"x": rng.normal(5, size=300), "y": 1}))  # v2, shifted
    run_id = workspace.store.create_run("0").info.run_id
    data.log_input(run_id, "train", 1, context="training")
    data.log_input(run_id, "train", 2, context="evaluation")
    workspace.artifacts.upload(run_id, "model/MLmodel", io.BytesIO(b"flavors: {}\n"))
    workspace.registry.create_registered_model("churn")
    workspace.registry.create_model_version(
        "churn", f"runs:/{run_id}/model", artifact_owner=run_id, artifact_path="model",
        run_id=run_id,
    )  # fmt: skip
    workspace.registry.set_alias("churn", "champion", 1)
    created = monitors.create_monitor(
        workspace, "m", endpoint="ep", reference={"model": "models:/churn@champion"},
        window={"rows": 100}, target="y",
    )  # fmt: skip
    assert created.spec["reference"] == {
        "dataset": "train",
        "version": 1,
        "model": "models:/churn@champion",
    }
    named = monitors.create_monitor(workspace, "n", endpoint="ep", target="y",
                                    reference={"dataset": "train", "version": 1},
                                    window={"rows": 100})  # fmt: skip
    assert created.reference_profile == named.reference_profile
    with pytest.raises(InvalidInput, match="not a model URI"):
        monitors.create_monitor(workspace, "bad", endpoint="ep", reference={"model": 3},
                                window={"rows": 100})  # fmt: skip


def test_dataset_reference_schema_and_performance_equal_sklearn(workspace: Workspace) -> None:
    rng = np.random.default_rng(2)
    n = 2000
    train = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                          "region": rng.choice(["eu", "us"], n), "y": rng.integers(0, 2, n)})  # fmt: skip
    Datasets(workspace).register("train", train)
    monitors.create_monitor(
        workspace, "d", endpoint="ep", reference={"dataset": "train"}, window={"rows": 400},
        task="classification", target="y", segments=["region"], deployment="churn-prod",
        model="churn",
    )  # fmt: skip
    reqs = _requests(rng, 0, 800)
    reqs[5]["features"]["region"] = "mars"  # outside the schema's domain
    reqs[6]["features"]["z"] = None  # missing
    write_requests(workspace, "ep", reqs)
    labels = [(r["id"], int(rng.random() < r["prediction"])) for r in reqs[:700]]
    write_feedback(workspace, "ep", labels)
    out = monitors.run_monitor(workspace, "d")
    assert [r.num_rows for r in out.results] == [400, 400]
    first = out.results[0].metrics
    assert first["missing_rate"] == pytest.approx(1 / (400 * 3))
    assert first["out_of_schema_rate"] >= 1 / (400 * 3)
    assert out.results[0].details["validation"]["anomalies"]
    # each window counts the rows whose labels arrived (700 of 800)
    assert [r.metrics["labelled"] for r in out.results] == [400, 300]
    assert "accuracy[region=eu]" in first
    # the prediction (a probability) drifts against the 0/1 target distribution: reported
    assert "prediction_drift" in first


def test_count_windows_wait_for_the_label_delay(workspace: Workspace) -> None:
    rng = np.random.default_rng(7)
    reqs = _requests(rng, 0, 400)
    write_requests(workspace, "ep", reqs)
    monitors.create_monitor(
        workspace, "late", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 200}},
        window={"rows": 100, "label_delay_s": 60}, task="classification",
    )  # fmt: skip
    # full windows, but their labels may still be on the way: not computed yet
    assert monitors.run_monitor(workspace, "late", now_ms=T0 + 400 + 30_000).results == []
    write_feedback(workspace, "ep", [(r["id"], int(r["prediction"] > 0.5)) for r in reqs[200:]])
    out = monitors.run_monitor(workspace, "late", now_ms=T0 + 400 + 60_000)
    assert [r.num_rows for r in out.results] == [100, 100]
    assert [r.metrics["labelled"] for r in out.results] == [100, 100]
    with pytest.raises(InvalidInput, match="label_delay_s"):
        monitors.create_monitor(workspace, "bad", endpoint="ep",
                                reference={"window": {"start": 0, "end": T0 + 200}},
                                window={"rows": 100, "label_delay_s": -1})  # fmt: skip


def test_a_dataset_reference_is_read_from_its_stored_profile(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.data.profile import Profile

    rng = np.random.default_rng(8)
    n = 3000
    train = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                          "region": rng.choice(["eu", "us"], n)})  # fmt: skip
    Datasets(workspace).register("train", train)
    monitors.create_monitor(workspace, "p", endpoint="ep", reference={"dataset": "train"},
                            window={"rows": 300})  # fmt: skip
    write_requests(workspace, "ep", _requests(rng, 0, 600, shift=1.0))

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the reference dataset was read again")

    monkeypatch.setattr(Datasets, "open", no_scan)
    monkeypatch.setattr(Profile, "from_batches", no_scan)
    references: list[object] = []
    real_compare = monitors.compare

    def spy(reference: object, current: object, **kwargs: object) -> object:
        references.append(reference)
        return real_compare(reference, current, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(monitors, "compare", spy)
    out = monitors.run_monitor(workspace, "p")
    assert len(out.results) == 2
    assert references
    assert all(isinstance(r, Profile) for r in references)
    assert out.results[0].details["drift"]["columns"][0]["n_reference"] == n
    assert "x" in {c["column"] for c in out.results[0].details["drift"]["columns"]
                   if c["drifted"]}  # fmt: skip


def test_regression_window_metrics_equal_sklearn(workspace: Workspace) -> None:
    rng = np.random.default_rng(9)
    reqs: list[dict[str, Any]] = [{"id": f"g{i}", "ts": T0 + i, "features": {"x": float(rng.normal()),
             "seg": "ab"[i % 2]}, "prediction": float(rng.normal())} for i in range(500)]  # fmt: skip
    write_requests(workspace, "reg", reqs[:100])
    monitors.create_monitor(
        workspace, "r", endpoint="reg", reference={"window": {"start": 0, "end": T0 + 100}},
        window={"rows": 200}, task="regression", segments=["seg"],
    )  # fmt: skip
    write_requests(workspace, "reg", reqs[100:])
    truth = {r["id"]: r["prediction"] + float(rng.normal(0, 0.5)) for r in reqs[100:]}
    write_feedback(workspace, "reg", list(truth.items()))
    results = monitors.run_monitor(workspace, "r").results
    assert len(results) == 2
    for k, result in enumerate(results):
        rows = reqs[100 + 200 * k : 300 + 200 * k]
        y = [truth[r["id"]] for r in rows]
        pred = [r["prediction"] for r in rows]
        m = result.metrics
        assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
        assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
        assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
        seg = [i for i, r in enumerate(rows) if r["features"]["seg"] == "b"]
        assert m["mae[seg=b]"] == pytest.approx(
            skm.mean_absolute_error([y[i] for i in seg], [pred[i] for i in seg])
        )


def test_classification_window_metrics_equal_sklearn(workspace: Workspace) -> None:
    rng = np.random.default_rng(3)
    reqs = []
    for i in range(600):
        x = float(rng.normal())
        p = float(1 / (1 + np.exp(-2 * x)))
        reqs.append({"id": f"q{i}", "ts": T0 + i, "features": {"x": x, "seg": "ab"[i % 2]},
                     "prediction": {"label": int(p > 0.5), "proba": p}})  # fmt: skip
    write_requests(workspace, "cls", reqs[:200])
    monitors.create_monitor(
        workspace, "c", endpoint="cls", reference={"window": {"start": 0, "end": T0 + 200}},
        window={"rows": 400}, task="classification", segments=["seg"],
        prediction_field="label", score_field="proba",
    )  # fmt: skip
    write_requests(workspace, "cls", reqs[200:])
    truth = {r["id"]: int(rng.random() < r["prediction"]["proba"]) for r in reqs[200:]}
    write_feedback(workspace, "cls", list(truth.items()))
    (result,) = monitors.run_monitor(workspace, "c").results
    rows = reqs[200:]
    y = [truth[r["id"]] for r in rows]
    pred = [r["prediction"]["label"] for r in rows]
    score = [r["prediction"]["proba"] for r in rows]
    m = result.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score))
    seg = [i for i, r in enumerate(rows) if r["features"]["seg"] == "a"]
    assert m["f1[seg=a]"] == pytest.approx(
        skm.f1_score([y[i] for i in seg], [pred[i] for i in seg])
    )


def test_regression_and_multiclass_metrics_equal_sklearn() -> None:
    from shipyard.monitoring.performance import classification, regression

    rng = np.random.default_rng(4)
    y, p = rng.normal(size=300), rng.normal(size=300)
    out = regression(y, p)
    assert out["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert out["r2"] == pytest.approx(skm.r2_score(y, p))
    t = rng.integers(0, 3, 300)
    probs = rng.dirichlet([1, 1, 1], 300)
    pred = probs.argmax(axis=1)
    out = classification(list(t), list(pred), probs)
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(t, pred))
    assert out["precision"] == pytest.approx(skm.precision_score(t, pred, average="macro"))
    assert out["recall"] == pytest.approx(skm.recall_score(t, pred, average="macro"))
    assert out["f1"] == pytest.approx(skm.f1_score(t, pred, average="macro"))
    assert out["log_loss"] == pytest.approx(skm.log_loss(t, probs))
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(t, probs, multi_class="ovr"))


def test_boolean_labels_and_many_classes_equal_sklearn() -> None:
    """Booleans count as 0/1 (as scikit-learn compares them), and the probability columns of
    more than ten integer classes are in numeric order (``classes_``), not string order."""
    from shipyard.monitoring.performance import classification

    rng = np.random.default_rng(11)
    score = rng.random(400)
    y, pred = rng.random(400) < score, score > 0.5
    out = classification(list(y), list(pred), score)
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert out["log_loss"] == pytest.approx(skm.log_loss(y, score))
    mixed = classification([int(v) for v in y], list(pred), score)  # 0/1 labels, bool predictions
    assert mixed["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    t = rng.integers(0, 12, 900)
    probs = rng.dirichlet(np.ones(12) * 0.3, 900)
    probs[np.arange(900), t] += 0.5  # informative, so a wrong column order shows
    probs /= probs.sum(axis=1, keepdims=True)
    many = classification(list(t), list(probs.argmax(axis=1)), probs)
    assert many["log_loss"] == pytest.approx(skm.log_loss(t, probs))
    assert many["roc_auc"] == pytest.approx(skm.roc_auc_score(t, probs, multi_class="ovr"))


def test_scheduler_runs_due_monitors_and_bad_input(workspace: Workspace) -> None:
    rng = np.random.default_rng(5)
    write_requests(workspace, "ep", _requests(rng, 0, 600))
    monitors.create_monitor(
        workspace, "s", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 300}},
        window={"rows": 100}, interval_s=60,
    )  # fmt: skip
    sched = MonitorScheduler(workspace)
    assert sched.tick() == ["s"]
    assert len(workspace.monitors.list_results("s")) == 3
    assert sched.tick() == []  # not due again for a minute
    last = workspace.monitors.get_monitor("s").last_run_time
    assert last is not None
    later = last + 61_000
    assert sched.tick(later) == ["s"]  # due: runs, finds no new window
    assert sched.tick(later + 1000) == []  # and still waits its interval
    with pytest.raises(AlreadyExists):
        monitors.create_monitor(workspace, "s", endpoint="ep",
                                reference={"window": {"start": 0, "end": T0 + 300}},
                                window={"rows": 100})  # fmt: skip
    with pytest.raises(NotFound, match="no prediction log"):
        monitors.create_monitor(workspace, "x", endpoint="nope",
                                reference={"window": {"start": 0}}, window={"rows": 10})  # fmt: skip
    with pytest.raises(InvalidInput, match="window"):
        monitors.create_monitor(workspace, "x", endpoint="ep",
                                reference={"window": {"start": 0}}, window={"minutes": 1})  # fmt: skip
    with pytest.raises(InvalidInput, match="reference"):
        monitors.create_monitor(workspace, "x", endpoint="ep", reference={}, window={"rows": 5})
    with pytest.raises(NotFound, match="monitor list"):
        monitors.run_monitor(workspace, "missing")


def test_the_scheduler_retries_a_failing_monitor_on_its_interval(
    workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(10)
    Datasets(workspace).register("train", pd.DataFrame({"x": rng.normal(size=100)}))
    monitors.create_monitor(workspace, "early", endpoint="not-served-yet",
                            reference={"dataset": "train"}, window={"rows": 10},
                            interval_s=60)  # fmt: skip
    sched = MonitorScheduler(workspace)
    with caplog.at_level("WARNING", logger="shipyard.monitoring.scheduler"):
        assert sched.tick(T0) == []
        assert sched.tick(T0 + 15_000) == []  # the next poll: not retried
        assert sched.tick(T0 + 60_000) == []  # the interval passed: retried
    warnings = [r for r in caplog.records if "no prediction log" in r.getMessage()]
    assert len(warnings) == 2


def test_a_remote_workspace_says_monitoring_needs_a_database() -> None:
    from shipyard.errors import ShipyardError

    ws = Workspace.open(Settings.from_env({}, tracking_uri="http://127.0.0.1:9"))
    try:
        with pytest.raises(ShipyardError, match="no monitoring store"):
            ws.monitors  # noqa: B018
    finally:
        ws.close()


@pytest.mark.postgres
def test_the_store_on_postgresql(postgres_uri: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shipyard.monitoring import alerts

    ws = Workspace.open(Settings.from_env({}, home=tmp_path / "h", tracking_uri=postgres_uri))
    try:
        rng = np.random.default_rng(6)
        write_requests(ws, "ep", _requests(rng, 0, 400))
        monitors.create_monitor(ws, "pg", endpoint="ep",
                                reference={"window": {"start": 0, "end": T0 + 200}},
                                window={"rows": 100})  # fmt: skip
        alerts.create_rule(ws, "always", monitor="pg", metric="rows", operator=">=",
                           threshold=1)  # fmt: skip
        out = monitors.run_monitor(ws, "pg")
        assert len(out.results) == 2
        assert len(out.alerts) == 1
        acked = alerts.acknowledge(ws, out.alerts[0].alert_id, "ann", "looking")
        assert acked.status == "acknowledged"
        assert acked.note == "looking"
        assert ws.monitors.list_results("pg")[0].metrics["rows"] == 100
        ws.monitors.delete_monitor("pg")
        assert ws.monitors.list_monitors() == []
    finally:
        ws.close()


def test_a_window_of_only_negatives_scores_the_positive_class_as_sklearn() -> None:
    """A small or imbalanced window whose labels and predictions are all 0 still scores class
    1 (the class a 1-D score is the probability of), as scikit-learn does with labels=[0, 1]."""
    from shipyard.monitoring.performance import classification

    score = np.array([0.1, 0.2, 0.05, 0.3])
    for negative in (0, False, 0.0):
        out = classification([negative] * 4, [negative] * 4, score)
        assert out["log_loss"] == pytest.approx(skm.log_loss([0] * 4, score, labels=[0, 1]))
        assert out["precision"] == out["recall"] == out["f1"] == 0.0
        assert out["accuracy"] == 1.0
    only_no = classification(["no", "no"], ["no", "no"], np.array([0.1, 0.2]))
    assert only_no["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8])))


def test_time_windows_must_be_finite(workspace: Workspace) -> None:
    for bad in (math.nan, math.inf, True, 0.0001):  # 0.0001 s would be a 0 ms window
        with pytest.raises(InvalidInput, match="window seconds"):
            monitors.create_monitor(
                workspace, "w", endpoint="ep", reference={"window": {"start": 0, "end": 1}},
                window={"seconds": bad},
            )  # fmt: skip
    with pytest.raises(InvalidInput, match="window rows"):
        monitors.create_monitor(
            workspace, "w", endpoint="ep", reference={"window": {"start": 0, "end": 1}},
            window={"rows": True},
        )  # fmt: skip


def test_a_label_that_is_not_a_number_does_not_wedge_a_regression_monitor(
    workspace: Workspace,
) -> None:
    """Feedback labels are any JSON; one ``"n/a"`` must not fail the window on every run (the
    watermark would never move again): the rows without a numeric label are left out."""
    rng = np.random.default_rng(12)
    reqs: list[dict[str, Any]] = [
        {"id": f"g{i}", "ts": T0 + i, "features": {"x": float(rng.normal())},
         "prediction": float(rng.normal())} for i in range(300)
    ]  # fmt: skip
    write_requests(workspace, "reg", reqs[:100])
    monitors.create_monitor(
        workspace, "r", endpoint="reg", reference={"window": {"start": 0, "end": T0 + 100}},
        window={"rows": 200}, task="regression",
    )  # fmt: skip
    write_requests(workspace, "reg", reqs[100:])
    truth = {r["id"]: r["prediction"] + float(rng.normal(0, 0.5)) for r in reqs[100:]}
    bad = {"g100": "n/a", "g101": [1.0, 2.0], "g102": {"y": 1}}
    write_feedback(workspace, "reg", [*truth.items(), *bad.items()])
    [result] = monitors.run_monitor(workspace, "r").results
    kept = [r for r in reqs[100:] if r["id"] not in bad]
    y, pred = [truth[r["id"]] for r in kept], [r["prediction"] for r in kept]
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert workspace.monitors.get_monitor("r").watermark == result.window_end


def test_a_monitor_that_fails_unexpectedly_does_not_stop_the_others(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(13)
    write_requests(workspace, "ep", _requests(rng, 0, 300))
    for name in ("a-broken", "b-fine"):
        monitors.create_monitor(
            workspace, name, endpoint="ep", reference={"window": {"start": 0, "end": T0 + 100}},
            window={"rows": 100}, interval_s=60,
        )  # fmt: skip
    real = monitors.run_monitor

    def run(ws: Workspace, name: str, **kwargs: Any) -> Any:
        if name == "a-broken":
            raise ValueError("a bug in one monitor")
        return real(ws, name, **kwargs)

    monkeypatch.setattr(monitors, "run_monitor", run)
    sched = MonitorScheduler(workspace)
    with caplog.at_level("ERROR", logger="shipyard.monitoring.scheduler"):
        assert sched.tick(T0 + 10_000) == ["b-fine"]
    assert len(workspace.monitors.list_results("b-fine")) == 2
    assert any("a-broken" in r.getMessage() for r in caplog.records)
    assert workspace.monitors.get_monitor("a-broken").last_run_time == T0 + 10_000
    assert sched.tick(T0 + 20_000) == []  # the broken one waits its interval too


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tests": "bogus"}, "no drift test is named 'bogus'"),
        ({"tests": {"x": "nope"}}, "no drift test is named 'nope'"),
        ({"tests": {"nope": "psi"}}, "test column 'nope' is not a column"),
        ({"features": ["x", "nope"]}, "feature 'nope' is not a column"),
        ({"segments": ["regoin"]}, "segment 'regoin' is not a column"),
    ],
)
def test_a_typo_in_a_monitors_columns_or_tests_is_refused(
    workspace: Workspace, options: dict[str, Any], message: str
) -> None:
    """These were stored as given, and the monitor then watched nothing or failed every run."""
    rng = np.random.default_rng(11)
    write_requests(workspace, "ep", _requests(rng, 0, 200))
    with pytest.raises(InvalidInput, match=message):
        monitors.create_monitor(
            workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 200}},
            window={"rows": 50}, **options,
        )  # fmt: skip
    assert workspace.monitors.list_monitors() == []
