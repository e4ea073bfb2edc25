"""Kubernetes manifests equivalent to a deployment spec, for teams that run a cluster.

* ``kserve``: a KServe ``InferenceService`` (``serving.kserve.io/v1beta1``) serving the stable
  version, with the candidate in flight as the canary (``canaryTrafficPercent`` = the current
  canary step's weight), each predictor a Shipyard model server container
  (``shipyard serve models:/NAME/VERSION``) speaking the Open Inference Protocol. KServe splits
  canary traffic only in its Serverless (Knative) mode, so a deployment with a rollout is
  exported in that mode; one without a rollout in RawDeployment mode. The mode follows the spec,
  not the rollout's state, because KServe refuses to change an InferenceService's mode later;
* ``argo``: an Argo Rollouts ``Rollout`` (``argoproj.io/v1alpha1``) whose canary steps are the
  spec's (``setWeight`` + an analysis per step), an ``AnalysisTemplate`` whose Prometheus
  metrics are the abort conditions written as queries over the model server's own metrics
  (``shipyard_serving_*``), and the ``Service`` the rollout routes.

The manifests are plain dicts; :func:`to_yaml` writes them as one multi-document YAML.
"""

from __future__ import annotations

import math
from typing import Any

from shipyard.deploy.spec import DeploymentPolicy, Rollout
from shipyard.errors import InvalidInput
from shipyard.store.deployments import DeploymentRecord

FORMATS = ("kserve", "argo")
DEFAULT_IMAGE = "shipyard:latest"
PORT = 8080
MEASUREMENTS = 5
"""Measurements (one a minute) of an Argo analysis step whose window is a number of requests."""


def export(
    record: DeploymentRecord,
    policy: DeploymentPolicy,
    fmt: str,
    *,
    namespace: str = "default",
    image: str = DEFAULT_IMAGE,
    tracking_uri: str = "http://shipyard:5000",
    prometheus: str = "http://prometheus.monitoring:9090",
) -> list[dict[str, Any]]:
    """The manifests of ``fmt`` for one deployment (see the module docstring)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    stable = record.stable_version
    if stable is None:
        raise InvalidInput(
            f"deployment {record.name!r} has no stable version yet; export it once the "
            "controller deployed one (`shipyard deploy status`)."
        )
    if fmt == "kserve":
        return [_kserve(record, policy, namespace, image, tracking_uri)]
    return _argo(record, policy, namespace, image, tracking_uri, prometheus)


def _name(text: str) -> str:
    """A DNS-1123 label from ``text``."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return (out or "shipyard")[:63]


def _container(model_uri: str, image: str, tracking_uri: str) -> dict[str, Any]:
    return {
        "name": "kserve-container",
        "image": image,
        "args": ["serve", model_uri, "--host", "0.0.0.0", "--port", str(PORT)],
        "env": [{"name": "SHIPYARD_TRACKING_URI", "value": tracking_uri}],
        "ports": [{"containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": PORT}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}},
    }


def _labels(record: DeploymentRecord) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": _name(record.name),
        "app.kubernetes.io/managed-by": "shipyard",
    }


def _kserve(
    record: DeploymentRecord, policy: DeploymentPolicy, namespace: str, image: str, tracking: str
) -> dict[str, Any]:
    from shipyard.deploy.controller import State

    in_canary = record.state == State.CANARY and record.candidate_version is not None
    version = record.candidate_version if in_canary else record.stable_version
    predictor: dict[str, Any] = {
        "containers": [_container(f"models:/{record.model}/{version}", image, tracking)],
        "minReplicas": 1,
    }
    if in_canary:
        rollout = policy.served.rollout
        assert rollout is not None
        predictor["canaryTrafficPercent"] = round(rollout.steps[record.step])
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": _name(record.name),
            "namespace": namespace,
            "labels": _labels(record),
            "annotations": {
                "serving.kserve.io/deploymentMode": (
                    "Serverless" if policy.served.rollout is not None else "RawDeployment"
                ),
                "shipyard.dev/model": record.model,
                "shipyard.dev/stable-version": str(record.stable_version),
            },
        },
        "spec": {"predictor": predictor},
    }


def _argo(
    record: DeploymentRecord,
    policy: DeploymentPolicy,
    namespace: str,
    image: str,
    tracking: str,
    prometheus: str,
) -> list[dict[str, Any]]:
    name = _name(record.name)
    rollout = policy.served.rollout or Rollout()
    template = f"{name}-analysis"
    steps: list[dict[str, Any]] = []
    for weight in rollout.steps:
        steps.append({"setWeight": round(weight)})
        steps.append(
            {
                "analysis": {
                    "templates": [{"templateName": template}],
                    "args": [
                        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
                    ],
                }
            }
        )
    labels = {**_labels(record)}
    version = record.candidate_version or record.stable_version
    manifest_rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            **_container(f"models:/{record.model}/{version}", image, tracking),
                            "name": "model-server",
                        }
                    ]
                },
            },
            "strategy": {
                "canary": {
                    "steps": steps,
                    "stableService": f"{name}-stable",
                    "canaryService": f"{name}-canary",
                }
            },
        },
    }
    return [
        manifest_rollout,
        _analysis_template(template, namespace, labels, rollout, prometheus),
        _service(f"{name}-stable", namespace, name),
        _service(f"{name}-canary", namespace, name),
    ]


def _service(name: str, namespace: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"app.kubernetes.io/name": app},
            "ports": [{"port": 80, "targetPort": PORT, "protocol": "TCP"}],
        },
    }


def _analysis_template(
    name: str, namespace: str, labels: dict[str, str], rollout: Rollout, prometheus: str
) -> dict[str, Any]:
    window = "5m"
    sel = '{pod_template_hash="{{args.canary-hash}}"}'
    metrics: list[dict[str, Any]] = []
    abort = rollout.abort
    # An analysis step blocks the rollout until its run completes, and a metric with an interval
    # but no count never completes: measure once a minute for the spec's window (its duration,
    # or MEASUREMENTS minutes for a window of requests, which Prometheus can't count per step).
    duration = rollout.window.duration_s
    count = max(1, math.ceil(duration / 60)) if duration > 0 else MEASUREMENTS

    def prom(query: str) -> dict[str, Any]:
        return {"prometheus": {"address": prometheus, "query": query}}

    if abort.error_rate is not None:
        metrics.append(
            {
                "name": "error-rate",
                "interval": "1m",
                "count": count,
                "failureLimit": 0,
                "successCondition": f"result[0] <= {abort.error_rate}",
                "provider": prom(
                    f"sum(rate(shipyard_serving_errors_total{sel}[{window}])) / "
                    f"(sum(rate(shipyard_serving_requests_total{sel}[{window}])) + "
                    f"sum(rate(shipyard_serving_errors_total{sel}[{window}])))"
                ),
            }
        )
    if abort.latency_p99_ms is not None:
        metrics.append(
            {
                "name": "latency-p99",
                "interval": "1m",
                "count": count,
                "failureLimit": 0,
                "successCondition": f"result[0] <= {abort.latency_p99_ms / 1000}",
                "provider": prom(
                    "histogram_quantile(0.99, sum by (le) (rate("
                    f"shipyard_serving_request_latency_seconds_bucket{sel}[{window}])))"
                ),
            }
        )
    if not metrics:  # Argo needs one metric: availability
        metrics.append(
            {
                "name": "requests-answered",
                "interval": "1m",
                "count": count,
                "successCondition": "result[0] > 0",
                "provider": prom(f"sum(rate(shipyard_serving_requests_total{sel}[{window}]))"),
            }
        )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"args": [{"name": "canary-hash"}], "metrics": metrics},
    }


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    import yaml

    return yaml.safe_dump_all(manifests, sort_keys=False)
