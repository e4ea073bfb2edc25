"""``shipyard deploy export``: KServe and Argo Rollouts manifests equivalent to the deployment,
validated against the published schemas vendored in ``schemas/`` (see its README)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shipyard.deploy import Deployments, State, Window
from shipyard.deploy.export import export, to_yaml
from shipyard.errors import InvalidInput
from shipyard.workspace import Workspace

from .conftest import FakeTraffic, policy, register

SCHEMAS = Path(__file__).parent / "schemas"


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def _kserve_crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((SCHEMAS / "kserve_inferenceservices_minimal_crd.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    return version["schema"]["openAPIV3Schema"]


@pytest.fixture
def in_canary(workspace: Workspace, deployments: Deployments, traffic: FakeTraffic) -> Deployments:
    register(workspace, {"auc": 0.8})
    deployments.apply(policy())
    deployments.tick("churn-prod")
    register(workspace, {"auc": 0.81})
    rec = deployments.tick("churn-prod")
    traffic.send(rec.traffic, 25)
    assert deployments.tick("churn-prod").state == State.CANARY
    return deployments


def test_kserve_inference_service_with_canary_traffic(in_canary: Deployments) -> None:
    rec = in_canary.get("churn-prod")
    (isvc,) = export(rec, in_canary.policy(rec), "kserve", namespace="ml")
    jsonschema.validate(isvc, _kserve_crd_schema())
    jsonschema.validate(isvc["spec"]["predictor"], _schema("kserve_predictor_excerpt.json"))
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20  # the first canary step's weight
    assert predictor["containers"][0]["args"][:2] == ["serve", "models:/churn/2"]
    assert isvc["metadata"]["annotations"]["shipyard.dev/stable-version"] == "1"
    # KServe splits canary traffic only in Serverless mode; RawDeployment would ignore the percent
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"


def test_a_deployment_without_a_rollout_exports_a_raw_deployment(
    workspace: Workspace, deployments: Deployments
) -> None:
    register(workspace, {"auc": 0.8})
    spec = policy()
    (env,) = spec.environments
    deployments.apply(
        dataclasses.replace(spec, environments=(dataclasses.replace(env, rollout=None),))
    )
    rec = deployments.tick("churn-prod")
    assert (rec.state, rec.stable_version) == (State.PROMOTED, 1)
    (isvc,) = export(rec, deployments.policy(rec), "kserve")
    jsonschema.validate(isvc, _kserve_crd_schema())
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


def test_a_misspelt_container_field_fails_the_kserve_predictor_schema(
    in_canary: Deployments,
) -> None:
    rec = in_canary.get("churn-prod")
    (isvc,) = export(rec, in_canary.policy(rec), "kserve")
    predictor = isvc["spec"]["predictor"]
    predictor["containers"][0]["readynessProbe"] = predictor["containers"][0].pop("readinessProbe")
    with pytest.raises(jsonschema.ValidationError, match="readynessProbe"):
        jsonschema.validate(predictor, _schema("kserve_predictor_excerpt.json"))
    predictor["containers"][0]["readinessProbe"] = predictor["containers"][0].pop("readynessProbe")
    predictor["canaryTrafficPercent"] = 120
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(predictor, _schema("kserve_predictor_excerpt.json"))


def test_argo_rollout_and_analysis_template(in_canary: Deployments) -> None:
    rec = in_canary.get("churn-prod")
    manifests = export(rec, in_canary.policy(rec), "argo", prometheus="http://prom:9090")
    kinds = [m["kind"] for m in manifests]
    assert kinds == ["Rollout", "AnalysisTemplate", "Service", "Service"]
    rollout, template = manifests[0], manifests[1]
    jsonschema.validate(rollout, _schema("argo_rollout_excerpt.json"))
    jsonschema.validate(template, _schema("argo_analysistemplate_excerpt.json"))
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert [s["setWeight"] for s in steps if "setWeight" in s] == [20, 60]
    assert all(
        s["analysis"]["templates"][0]["templateName"] == template["metadata"]["name"]
        for s in steps
        if "analysis" in s
    )
    metrics = {m["name"]: m for m in template["spec"]["metrics"]}
    assert metrics["latency-p99"]["successCondition"] == "result[0] <= 0.1"
    assert (
        "shipyard_serving_request_latency_seconds_bucket"
        in (metrics["latency-p99"]["provider"]["prometheus"]["query"])
    )
    assert metrics["latency-p99"]["provider"]["prometheus"]["address"] == "http://prom:9090"
    text = to_yaml(manifests)
    assert [d["kind"] for d in yaml.safe_load_all(text)] == kinds
    # an analysis step blocks the rollout until its run completes: every metric has a count
    # (a window of requests: five measurements a minute apart; one of 10 minutes: ten)
    assert [m["count"] for m in template["spec"]["metrics"]] == [5]
    spec = in_canary.policy(rec)
    (env,) = spec.environments
    assert env.rollout is not None
    timed = dataclasses.replace(
        env, rollout=dataclasses.replace(env.rollout, window=Window(requests=1, duration_s=600))
    )
    template = export(rec, dataclasses.replace(spec, environments=(timed,)), "argo")[1]
    jsonschema.validate(template, _schema("argo_analysistemplate_excerpt.json"))
    assert [m["count"] for m in template["spec"]["metrics"]] == [10]


def test_a_misspelt_field_fails_the_vendored_schema(in_canary: Deployments) -> None:
    rec = in_canary.get("churn-prod")
    rollout = export(rec, in_canary.policy(rec), "argo")[0]
    rollout["spec"]["strategy"]["canary"]["steps"][0]["setWieght"] = 5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rollout, _schema("argo_rollout_excerpt.json"))


def test_export_needs_a_deployed_version(workspace: Workspace, deployments: Deployments) -> None:
    register(workspace, {"auc": 0.8})
    rec = deployments.apply(policy())
    with pytest.raises(InvalidInput, match="no stable version yet"):
        export(rec, deployments.policy(rec), "kserve")
    with pytest.raises(InvalidInput, match="use one of kserve, argo"):
        export(rec, deployments.policy(rec), "helm")
