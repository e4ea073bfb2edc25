"""Shipyard: get machine-learning models into production and keep them healthy there.

The public SDK. ``import shipyard`` is cheap: submodules load on first use of a name.

    import shipyard

    shipyard.set_experiment("churn")
    with shipyard.start_run(run_name="gbm") as run:
        shipyard.log_params({"lr": 0.1, "depth": 6})
        for step in range(100):
            shipyard.log_metric("loss", 1 / (step + 1), step=step)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shipyard._version import __version__

if TYPE_CHECKING:  # pragma: no cover - names for type checkers and IDEs
    from shipyard.config import Settings
    from shipyard.data import Datasets, datasets
    from shipyard.deploy import DeploymentPolicy, Deployments
    from shipyard.entities import (
        ArtifactInfo,
        Dataset,
        DatasetInput,
        Experiment,
        LifecycleStage,
        Metric,
        Page,
        Run,
        RunData,
        RunInfo,
        RunStatus,
        ViewType,
    )
    from shipyard.errors import (
        AlreadyExists,
        Conflict,
        GateFailed,
        InvalidArtifactPath,
        InvalidFilter,
        InvalidInput,
        InvalidState,
        MigrationRequired,
        MissingDependency,
        NotFound,
        ShipyardError,
        ShipyardWarning,
        StepFailed,
        StepTimeout,
        StoreUnavailable,
    )
    from shipyard.features import FeatureStore, get_online_features, get_training_set
    from shipyard.models import (
        ColSpec,
        Flavor,
        LoadedModel,
        ModelInfo,
        Schema,
        Signature,
        TensorSpec,
        import_mlflow_model,
        infer_signature,
        load_model,
        log_model,
        register_flavor,
        save_model,
    )
    from shipyard.monitoring import DriftReport, read_predictions, register_drift_test
    from shipyard.pipelines import pipeline, step
    from shipyard.registry import Registry
    from shipyard.registry.card import render_model_card
    from shipyard.serving import DeploymentSpec, batch_predict
    from shipyard.tracking.client import Client
    from shipyard.tracking.fluent import (
        ActiveRun,
        active_run,
        create_experiment,
        delete_experiment,
        delete_run,
        delete_tag,
        end_run,
        flush,
        get_client,
        get_experiment,
        get_experiment_by_name,
        get_run,
        get_tracking_uri,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_experiments,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from shipyard.workspace import Workspace

_EXPORTS: dict[str, str] = {
    # configuration and wiring
    "Settings": "shipyard.config",
    "Workspace": "shipyard.workspace",
    # entities
    "ArtifactInfo": "shipyard.entities",
    "Dataset": "shipyard.entities",
    "DatasetInput": "shipyard.entities",
    "Experiment": "shipyard.entities",
    "LifecycleStage": "shipyard.entities",
    "Metric": "shipyard.entities",
    "Page": "shipyard.entities",
    "Run": "shipyard.entities",
    "RunData": "shipyard.entities",
    "RunInfo": "shipyard.entities",
    "RunStatus": "shipyard.entities",
    "ViewType": "shipyard.entities",
    # errors
    "AlreadyExists": "shipyard.errors",
    "Conflict": "shipyard.errors",
    "GateFailed": "shipyard.errors",
    "InvalidArtifactPath": "shipyard.errors",
    "InvalidFilter": "shipyard.errors",
    "InvalidInput": "shipyard.errors",
    "InvalidState": "shipyard.errors",
    "MigrationRequired": "shipyard.errors",
    "MissingDependency": "shipyard.errors",
    "NotFound": "shipyard.errors",
    "ShipyardError": "shipyard.errors",
    "StoreUnavailable": "shipyard.errors",
    "StepFailed": "shipyard.errors",
    "StepTimeout": "shipyard.errors",
    "ShipyardWarning": "shipyard.errors",
    # models
    "ColSpec": "shipyard.models",
    "Flavor": "shipyard.models",
    "LoadedModel": "shipyard.models",
    "ModelInfo": "shipyard.models",
    "Schema": "shipyard.models",
    "Signature": "shipyard.models",
    "TensorSpec": "shipyard.models",
    "import_mlflow_model": "shipyard.models",
    "infer_signature": "shipyard.models",
    "load_model": "shipyard.models",
    "log_model": "shipyard.models",
    "register_flavor": "shipyard.models",
    "save_model": "shipyard.models",
    # datasets
    "Datasets": "shipyard.data",
    "datasets": "shipyard.data",
    # feature store
    "FeatureStore": "shipyard.features",
    "get_online_features": "shipyard.features",
    "get_training_set": "shipyard.features",
    # continuous deployment
    "DeploymentPolicy": "shipyard.deploy",
    "Deployments": "shipyard.deploy",
    # pipelines
    "pipeline": "shipyard.pipelines",
    "step": "shipyard.pipelines",
    # registry
    "Registry": "shipyard.registry",
    "render_model_card": "shipyard.registry.card",
    # serving
    "DeploymentSpec": "shipyard.serving",
    "batch_predict": "shipyard.serving",
    "read_predictions": "shipyard.monitoring",
    # monitoring
    "DriftReport": "shipyard.monitoring",
    "register_drift_test": "shipyard.monitoring",
    # tracking
    "Client": "shipyard.tracking.client",
    "ActiveRun": "shipyard.tracking.fluent",
    "active_run": "shipyard.tracking.fluent",
    "create_experiment": "shipyard.tracking.fluent",
    "delete_experiment": "shipyard.tracking.fluent",
    "delete_run": "shipyard.tracking.fluent",
    "delete_tag": "shipyard.tracking.fluent",
    "end_run": "shipyard.tracking.fluent",
    "flush": "shipyard.tracking.fluent",
    "get_client": "shipyard.tracking.fluent",
    "get_experiment": "shipyard.tracking.fluent",
    "get_experiment_by_name": "shipyard.tracking.fluent",
    "get_run": "shipyard.tracking.fluent",
    "get_tracking_uri": "shipyard.tracking.fluent",
    "last_active_run": "shipyard.tracking.fluent",
    "log_artifact": "shipyard.tracking.fluent",
    "log_artifacts": "shipyard.tracking.fluent",
    "log_dict": "shipyard.tracking.fluent",
    "log_input": "shipyard.tracking.fluent",
    "log_metric": "shipyard.tracking.fluent",
    "log_metrics": "shipyard.tracking.fluent",
    "log_param": "shipyard.tracking.fluent",
    "log_params": "shipyard.tracking.fluent",
    "log_text": "shipyard.tracking.fluent",
    "search_experiments": "shipyard.tracking.fluent",
    "search_runs": "shipyard.tracking.fluent",
    "set_experiment": "shipyard.tracking.fluent",
    "set_tag": "shipyard.tracking.fluent",
    "set_tags": "shipyard.tracking.fluent",
    "set_tracking_uri": "shipyard.tracking.fluent",
    "start_run": "shipyard.tracking.fluent",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
