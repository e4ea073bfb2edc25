"""The deployment spec: YAML in, checked values, the same spec back out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shipyard.deploy import (
    AbortConditions,
    DeploymentPolicy,
    LoadCheckGate,
    MetricGate,
    SliceGapGate,
)
from shipyard.errors import InvalidInput

SPEC = """
name: flights
model: flights
environments:
  - name: staging
    alias: staging
    gates:
      - {type: metric, metric: auc, min: 0.6}
      - {type: data_validation}
      - {type: load_check, load_budget_s: 30, latency_budget_ms: 250, requests: 10}
  - name: production
    alias: champion
    gates:
      - {type: metric, metric: auc, relative_to: champion, max_drop: 0.005}
      - {type: metric, metric: log_loss, max: 0.6}
      - {type: metric, metric: auc, slice: "*", min: 0.55, online: false}
      - {type: slice_gap, metric: auc, max_gap: 0.2}
      - {type: approvals, count: 1}
    rollout:
      shadow: {requests: 200}
      canary:
        steps: [10, 50]
        window: {requests: 200, duration_s: 30, min_labels: 100}
      abort: {error_rate: 0.01, latency_p99_ms: 250, prediction_drift: 0.3, min_agreement: 0.8}
serving:
  endpoint: flights-ep
  metrics_urls: ["http://127.0.0.1:5001/metrics"]
triggers:
  new_version: true
  drift_alert: {pipeline: "pipelines/train.py:train", params: {months: 3}, filter: "flights-*"}
  schedule: {cron: "0 3 * * *", pipeline: "pipelines/train.py:train"}
"""


def _read(tmp_path: Path, text: str) -> DeploymentPolicy:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return DeploymentPolicy.from_file(path)


def test_a_full_spec_reads_into_typed_values(tmp_path: Path) -> None:
    p = _read(tmp_path, SPEC)
    assert [e.name for e in p.environments] == ["staging", "production"]
    assert p.served.name == "production"
    assert p.endpoint == "flights-ep"
    staging, prod = p.environments
    assert isinstance(staging.gates[2], LoadCheckGate)
    assert staging.gates[2].requests == 10
    rel = prod.gates[0]
    assert isinstance(rel, MetricGate)
    assert rel.relative_to == "champion"
    assert rel.better_high
    assert isinstance(prod.gates[1], MetricGate)
    assert not prod.gates[1].better_high
    assert isinstance(prod.gates[3], SliceGapGate)
    assert prod.rollout is not None
    assert prod.rollout.steps == (10.0, 50.0)
    assert prod.rollout.window.min_labels == 100
    assert prod.rollout.window.duration_s == 30
    assert prod.rollout.abort.min_agreement == 0.8
    assert p.triggers.drift_pipeline == "pipelines/train.py:train"
    assert p.triggers.drift_params == {"months": 3}
    assert p.triggers.schedule == "0 3 * * *"


def test_a_window_is_requests_or_a_duration(tmp_path: Path) -> None:
    from shipyard.deploy import Window

    def shadow(window: str) -> Window | None:
        spec = f"model: m\nenvironments: [{{name: p, rollout: {{shadow: {window}}}}}]\n"
        rollout = _read(tmp_path, spec).served.rollout
        assert rollout is not None
        return rollout.shadow

    assert shadow("{requests: 300}") == Window(requests=300, duration_s=0)
    assert shadow("{duration_s: 600}") == Window(requests=1, duration_s=600)
    assert shadow("{requests: 50, duration_s: 60}") == Window(requests=50, duration_s=60)


def test_the_python_api_builds_the_same_spec_as_the_yaml(tmp_path: Path) -> None:
    from shipyard.deploy import (
        AbortConditions,
        ApprovalGate,
        DataValidationGate,
        Environment,
        Rollout,
        Serving,
        Triggers,
        Window,
    )

    built = DeploymentPolicy(
        name="flights",
        model="flights",
        environments=(
            Environment(
                "staging",
                "staging",
                (
                    MetricGate("auc", min=0.6),
                    DataValidationGate(),
                    LoadCheckGate(load_budget_s=30, latency_budget_ms=250, requests=10),
                ),
            ),
            Environment(
                "production",
                "champion",
                (
                    MetricGate("auc", relative_to="champion", max_drop=0.005),
                    MetricGate("log_loss", max=0.6),
                    MetricGate("auc", slice="*", min=0.55, online=False),
                    SliceGapGate("auc", max_gap=0.2),
                    ApprovalGate(count=1),
                ),
                Rollout(
                    shadow=Window(requests=200),
                    steps=(10, 50),
                    window=Window(requests=200, duration_s=30, min_labels=100),
                    abort=AbortConditions(
                        error_rate=0.01,
                        latency_p99_ms=250,
                        prediction_drift=0.3,
                        min_agreement=0.8,
                    ),
                ),
            ),
        ),
        serving=Serving(endpoint="flights-ep", metrics_urls=("http://127.0.0.1:5001/metrics",)),
        triggers=Triggers(
            drift_pipeline="pipelines/train.py:train",
            drift_params={"months": 3},
            drift_filter="flights-*",
            schedule="0 3 * * *",
            schedule_pipeline="pipelines/train.py:train",
        ),
    )
    assert built == _read(tmp_path, SPEC)


def test_to_dict_reads_back_the_same_spec(tmp_path: Path) -> None:
    p = _read(tmp_path, SPEC)
    assert DeploymentPolicy.from_dict(p.to_dict()) == p


def test_an_abort_condition_turned_off_stays_off_when_stored() -> None:
    """``error_rate=None`` is off (its default is 0.01): the stored spec, read back, must not
    turn it on again."""
    from tests.deploy.conftest import policy

    p = policy(abort=AbortConditions(error_rate=None, latency_p99_ms=100))
    stored = DeploymentPolicy.from_dict(yaml.safe_load(yaml.safe_dump(p.to_dict())))
    assert stored.served.rollout is not None
    assert stored.served.rollout.abort.error_rate is None
    assert stored == p


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("environments: []", "environments"),
        ("environments: [{name: p, gates: [{type: vibes}]}]", "use one of metric"),
        ("environments: [{name: p, gates: [{type: metric, metric: auc}]}]", "sets no threshold"),
        (
            "environments: [{name: p, gates: [{type: metric, metric: auc, relative_to: champion}]}]",
            "max_drop",
        ),
        ("environments: [{name: p, gates: [{type: metric, metric: auc, min: high}]}]", "number"),
        ("environments: [{name: p, gates: [{type: slice_gap, metric: auc}]}]", "max_gap"),
        (
            "environments: [{name: p, rollout: {canary: {steps: [50, 10]}}}]",
            "must increase",
        ),
        ("environments: [{name: p, rollout: {canary: {steps: [100]}}}]", "0.01..99.99"),
        ("environments: [{name: p, colour: red}]", "unknown keys ['colour']"),
        (
            "environments: [{name: a, rollout: {}}, {name: b, rollout: {}}]",
            "one endpoint serves one environment",
        ),
    ],
)
def test_mistakes_name_the_key_and_the_fix(tmp_path: Path, change: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        _read(tmp_path, f"model: m\n{change}\n")
    assert message in err.value.message
    assert "spec.yaml" in err.value.message or "deployment" in err.value.message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Cannot read"):
        DeploymentPolicy.from_file(tmp_path / "missing.yaml")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        _read(tmp_path, "model: [unclosed\n")
