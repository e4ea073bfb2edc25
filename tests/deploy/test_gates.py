"""Gates measured offline: each result names the gate, the measured value and the threshold."""

from __future__ import annotations

import pytest

from shipyard.deploy import (
    ApprovalGate,
    DataValidationGate,
    Environment,
    LoadCheckGate,
    MetricGate,
    SliceGapGate,
    check_gates,
)
from shipyard.deploy.gates import compute_metric, online_metric_results, paired_margin
from shipyard.errors import InvalidState
from shipyard.registry import Registry
from shipyard.workspace import Workspace

from .conftest import MODEL, register


def _env(*gates: object) -> Environment:
    return Environment("production", "champion", tuple(gates))  # type: ignore[arg-type]


def test_absolute_metric_gate_pass_and_fail(workspace: Workspace) -> None:
    v = register(workspace, {"auc": 0.71, "log_loss": 0.5})
    report = check_gates(
        workspace, MODEL, v, _env(MetricGate("auc", min=0.7), MetricGate("log_loss", max=0.4))
    )
    assert not report.passed
    ok, bad = report.results
    assert ok.passed
    assert ok.value == 0.71
    assert ok.threshold == ">= 0.7"
    assert bad.passed is False
    assert bad.value == 0.5
    assert bad.threshold == "<= 0.4"
    message = report.message()
    assert "'log_loss <= 0.4'" in message
    assert "is 0.5" in message
    assert "needs <= 0.4" in message


def test_a_missing_metric_fails_and_lists_what_was_logged(workspace: Workspace) -> None:
    v = register(workspace, {"accuracy": 0.9})
    (r,) = check_gates(workspace, MODEL, v, _env(MetricGate("auc", min=0.5))).results
    assert r.passed is False
    assert "logged no metric 'auc'" in r.message
    assert "accuracy" in r.message


def test_relative_gate_against_the_champion(workspace: Workspace) -> None:
    v1 = register(workspace, {"auc": 0.80})
    gate = MetricGate("auc", relative_to="champion", max_drop=0.02)
    (first,) = check_gates(workspace, MODEL, v1, _env(gate)).results
    assert first.passed is None  # does not block
    assert "no champion" in first.message
    Registry(workspace).set_alias(MODEL, "champion", v1)
    v2 = register(workspace, {"auc": 0.75})
    (r,) = check_gates(workspace, MODEL, v2, _env(gate)).results
    assert r.passed is False
    assert r.value == 0.75
    assert r.details["reference"] == 0.8
    assert r.details["reference_version"] == v1
    assert "champion (version 1) has 0.8" in r.message
    assert "champion - 0.02 = 0.78" in r.threshold
    v3 = register(workspace, {"auc": 0.79})
    assert check_gates(workspace, MODEL, v3, _env(gate)).passed


def test_slice_gates_and_slice_gap(workspace: Workspace) -> None:
    v = register(workspace, {"auc": 0.8, "auc.north": 0.9, "auc.south": 0.62})
    report = check_gates(
        workspace,
        MODEL,
        v,
        _env(
            MetricGate("auc", slice="*", min=0.65),
            MetricGate("auc", slice="north", min=0.85),
            SliceGapGate("auc", max_gap=0.2),
        ),
    )
    every, north, gap = report.results
    assert every.passed is False
    assert "worst slice south" in every.message
    assert north.passed is True
    assert gap.passed is False
    assert gap.value == pytest.approx(0.28)
    assert "0.62 (south)" in gap.message
    assert "0.9 (north)" in gap.message


def test_slice_gates_against_the_champion_compare_slice_by_slice(workspace: Workspace) -> None:
    v1 = register(workspace, {"auc": 0.8, "auc.north": 0.9, "auc.south": 0.7})
    Registry(workspace).set_alias(MODEL, "champion", v1)
    every = MetricGate("auc", slice="*", relative_to="champion", max_drop=0.02)
    south = MetricGate("auc", slice="south", relative_to="champion", max_drop=0.02)
    # better overall and in the north, but the south slice drops 0.05 against the champion's
    v2 = register(workspace, {"auc": 0.82, "auc.north": 0.95, "auc.south": 0.65})
    r_every, r_south = check_gates(workspace, MODEL, v2, _env(every, south)).results
    for r in (r_every, r_south):
        assert r.passed is False
        assert r.value == 0.65
        assert r.details["slice"] == "south"
        assert r.details["reference"] == 0.7
        assert "on slice south is 0.65, champion (version 1) has 0.7" in r.message
        assert "champion - 0.02 = 0.68" in r.threshold
    v3 = register(workspace, {"auc": 0.79, "auc.north": 0.89, "auc.south": 0.69})
    assert check_gates(workspace, MODEL, v3, _env(every, south)).passed


def test_approvals_gate_counts_registry_approvals(workspace: Workspace) -> None:
    v = register(workspace, {"auc": 0.8})
    (r,) = check_gates(workspace, MODEL, v, _env(ApprovalGate(count=1))).results
    assert r.passed is False
    assert "shipyard models approve churn/1" in r.message
    Registry(workspace).approve(MODEL, v, "alice")
    (r,) = check_gates(workspace, MODEL, v, _env(ApprovalGate(count=1))).results
    assert r.passed
    assert r.details["approvers"] == ["alice"]


def test_data_validation_gate(workspace: Workspace) -> None:
    from shipyard.data import Datasets

    without = register(workspace, {"auc": 0.8})
    (r,) = check_gates(workspace, MODEL, without, _env(DataValidationGate())).results
    assert r.passed is False
    assert "recorded no dataset version" in r.message
    with_data = register(workspace, {"auc": 0.8}, dataset=True)
    (r,) = check_gates(workspace, MODEL, with_data, _env(DataValidationGate())).results
    assert r.passed is False  # a version always fits the schema inferred from itself
    assert "'customers' has no schema to validate against" in r.message
    assert "shipyard data schema customers --set" in r.message
    datasets = Datasets(workspace)
    datasets.set_schema(
        "customers",
        "columns:\n  radius: {type: float, nullable: false, min: 5, max: 30}\n"
        "  label: {type: integer, domain: [0, 1]}\n",
    )
    (r,) = check_gates(workspace, MODEL, with_data, _env(DataValidationGate())).results
    assert r.passed, r.message
    assert r.details["datasets"] == {
        "customers/1 (training)": {"ok": True, "errors": 0, "schema": "kept"}
    }
    datasets.set_schema(
        "customers", "columns:\n  radius: {type: float, nullable: false, min: 5, max: 20}\n"
    )  # the training data has radii up to 28.1
    (r,) = check_gates(workspace, MODEL, with_data, _env(DataValidationGate())).results
    assert r.passed is False
    assert r.value == "0/1 valid"
    assert r.message.startswith("validation failed for customers/1 (training): ")
    assert "radius" in r.message


@pytest.mark.slow
def test_load_check_serves_the_exact_package_in_a_real_server(workspace: Workspace) -> None:
    v = register(workspace, {"auc": 0.8})
    (r,) = check_gates(
        workspace,
        MODEL,
        v,
        _env(LoadCheckGate(load_budget_s=120, latency_budget_ms=5000, requests=5)),
    ).results
    assert r.passed, r.message
    assert r.value["errors"] == 0
    assert 0 < r.value["load_s"] <= 120
    (slow,) = check_gates(
        workspace, MODEL, v, _env(LoadCheckGate(load_budget_s=0.05, requests=1))
    ).results
    assert slow.passed is False
    assert "did not become ready within 0.05s" in slow.message
    report = check_gates(
        workspace, MODEL, v, _env(LoadCheckGate(load_budget_s=120, latency_budget_ms=0.001))
    )  # no HTTP round trip answers within a microsecond
    (laggard,) = report.results
    assert laggard.passed is False
    assert laggard.value["errors"] == 0
    assert laggard.value["p99_ms"] > 0.001
    assert laggard.threshold == "loads in <= 120s, p99 <= 0.001 ms, 0 errors"
    # the blocking message names the gate, the measured p99 and the budget it broke
    message = report.message()
    assert "'load-and-query check': " in message
    assert f"p99 {laggard.value['p99_ms']:.1f} ms (budget 0.001 ms)" in message


def test_online_metrics_compare_on_the_same_requests() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.3).astype(float)
    good = np.clip(y * 0.5 + rng.random(400) * 0.5, 0, 1)
    noise = rng.random(400)
    assert compute_metric("auc", y, good) > 0.9
    assert 0.4 < compute_metric("auc", y, noise) < 0.6
    gate = MetricGate("auc", relative_to="champion", max_drop=0.02)
    (bad,) = online_metric_results([gate], y, noise, good, reference_label="stable v1")
    assert bad.passed is False
    assert "stable v1" in bad.message
    (fine,) = online_metric_results([gate], y, good, good, reference_label="stable v1")
    assert fine.passed is True
    assert paired_margin("auc", y, good, good) == 0.0
    with pytest.raises(InvalidState, match="can't be computed on live traffic"):
        compute_metric("f1_macro", y, good)
