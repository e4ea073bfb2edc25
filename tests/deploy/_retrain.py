"""A retraining pipeline the deployment tests schedule (importable by reference)."""

from __future__ import annotations

from shipyard.pipelines import current, pipeline, step


@step(cache=False)
def retrain_step(auc: float) -> int:
    """Register a new version of the tests' model with run metric ``auc``; its number."""
    from tests.deploy.conftest import register

    return register(current().client.workspace, {"auc": auc})


@pipeline
def retrain(auc: float = 0.81):
    retrain_step(auc)
