"""Serving fixtures: real models on sklearn's breast-cancer data, registered in a fresh
workspace, and a real model server on a loopback port (uvicorn in a thread of the test)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

import shipyard
from shipyard.registry import Registry
from shipyard.serving import DeploymentSpec, PredictionLog, log_folder
from shipyard.serving.app import create_app
from shipyard.serving.endpoint import BatchingOptions, Endpoint
from shipyard.tracking.client import Client
from shipyard.workspace import Workspace
from tests.server.conftest import serve_in_thread


@dataclass(frozen=True)
class Data:
    X: pd.DataFrame
    y: pd.Series


@pytest.fixture(scope="session")
def cancer() -> Data:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return Data(X, y)


def register(ws: Workspace, model: object, X: pd.DataFrame, name: str = "cancer") -> int:
    """Log ``model`` and register it as a new version of ``name``; returns the version."""
    info = shipyard.log_model(
        model, "model", input_example=X[:3], registered_model_name=name, client=Client(workspace=ws)
    )
    return int(info.registered_model_version.version)


def add_models(workspace: Workspace, cancer: Data) -> Registry:
    """Version 1: logistic regression (alias champion); version 2: a constant model that always
    answers 1 (alias challenger), so a prediction shows which arm answered."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(cancer.X, cancer.y)
    const = DummyClassifier(strategy="constant", constant=1).fit(cancer.X, cancer.y)
    registry = Registry(workspace)
    register(workspace, lr, cancer.X)
    register(workspace, const, cancer.X)
    registry.set_alias("cancer", "champion", 1)
    registry.set_alias("cancer", "challenger", 2)
    return registry


@pytest.fixture
def models(workspace: Workspace, cancer: Data) -> Registry:
    return add_models(workspace, cancer)


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    from shipyard.config import Settings

    ws = Workspace.open(Settings.from_env({}, home=tmp_path_factory.mktemp("serving") / "home"))
    try:
        yield ws
    finally:
        ws.close()


@dataclass
class Served:
    url: str
    client: httpx.Client
    endpoint: Endpoint
    log: PredictionLog
    log_dir: Path


@contextmanager
def serving(
    ws: Workspace,
    spec: DeploymentSpec,
    *,
    batching: BatchingOptions | None = None,
    max_body_bytes: int = 1024 * 1024,
) -> Iterator[Served]:
    """A model server for ``spec`` over ``ws`` on a loopback port, loaded and ready."""
    endpoint = Endpoint(ws, spec, batching=batching)
    endpoint.start(background=False)  # loads, then polls the registry every poll_interval_s
    folder = log_folder(ws.settings.home, spec.name)
    plog = PredictionLog(folder, flush_interval_s=0.2)
    app = create_app(endpoint, plog, max_body_bytes=max_body_bytes, load_on_startup=False)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        try:
            yield Served(url, client, endpoint, plog, folder)
        finally:
            endpoint.close()


@pytest.fixture(scope="module")
def served(module_workspace: Workspace, cancer: Data) -> Iterator[Served]:
    """One server per test module over the logistic regression (read-only tests share it)."""
    add_models(module_workspace, cancer)
    with serving(module_workspace, DeploymentSpec.single("models:/cancer@champion")) as s:
        yield s
