"""Continuous deployment: declarative deployment specs with gates, progressive rollout with
automatic rollback, and drift-triggered retraining.

* :mod:`.spec`: :class:`DeploymentPolicy` (environments, gates, rollout, abort conditions,
  triggers), read from YAML or built in Python;
* :mod:`.gates`: the gate engine, offline (:func:`check_gates`) and online;
* :mod:`.analysis`: live analysis windows from the prediction log and serving metrics;
* :mod:`.controller`: :class:`Deployments` (the persisted state machine) and :class:`Controller`;
* :mod:`.export`: KServe and Argo Rollouts manifests.

See ``docs/deploy.md``.
"""

from shipyard.deploy.controller import Controller, Deployments, State, traffic_for
from shipyard.deploy.gates import GateReport, GateResult, check_gates
from shipyard.deploy.spec import (
    AbortConditions,
    ApprovalGate,
    DataValidationGate,
    DeploymentPolicy,
    Environment,
    LoadCheckGate,
    MetricGate,
    Rollout,
    Serving,
    SliceGapGate,
    Triggers,
    Window,
)

__all__ = [
    "AbortConditions",
    "ApprovalGate",
    "Controller",
    "DataValidationGate",
    "DeploymentPolicy",
    "Deployments",
    "Environment",
    "GateReport",
    "GateResult",
    "LoadCheckGate",
    "MetricGate",
    "Rollout",
    "Serving",
    "SliceGapGate",
    "State",
    "Triggers",
    "Window",
    "check_gates",
    "traffic_for",
]
