"""Fixtures for continuous deployment: registered versions with run metrics, prediction logs
written the way a model server writes them, and a deployment spec."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.deploy import (
    AbortConditions,
    DeploymentPolicy,
    Deployments,
    Environment,
    MetricGate,
    Rollout,
    Serving,
    Window,
)
from shipyard.workspace import Workspace

MODEL = "churn"


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    frame = d.data.iloc[:, :4].copy()
    frame.columns = ["radius", "texture", "perimeter", "area"]
    return frame, d.target.to_numpy()


def register(
    ws: Workspace,
    metrics: dict[str, float],
    *,
    name: str = MODEL,
    dataset: bool = False,
) -> int:
    """Train a small classifier, log ``metrics`` on its run, register it; the version."""
    from sklearn.linear_model import LogisticRegression

    from shipyard.models.sdk import log_model
    from shipyard.tracking.client import Client

    x, y = _data()
    client = Client(workspace=ws)
    run_id = client.create_run("0").info.run_id
    client.log_metrics(run_id, metrics)
    client.flush()
    if dataset:
        from shipyard.data import Datasets

        service = Datasets(ws)
        v, _ = service.register("customers", x.assign(label=y))
        service.log_input(run_id, "customers", v.version, context="training")
    model = LogisticRegression(max_iter=500).fit(x, y)
    info = log_model(
        model,
        "model",
        input_example=x.head(3),
        registered_model_name=name,
        run_id=run_id,
        client=client,
    )
    client.set_terminated(run_id)
    return int(info.registered_model_version.version)


def policy(**rollout: Any) -> DeploymentPolicy:
    """A deployment of ``churn``: production (alias champion) with a relative AUC gate, shadow
    then canary 20% -> 60%."""
    window = rollout.pop("window", Window(requests=20, min_labels=20))
    return DeploymentPolicy(
        name="churn-prod",
        model=MODEL,
        environments=(
            Environment(
                "production",
                "champion",
                (
                    MetricGate("auc", min=0.6),
                    MetricGate("auc", relative_to="champion", max_drop=0.02),
                ),
                Rollout(
                    shadow=rollout.pop("shadow", Window(requests=20)),
                    steps=rollout.pop("steps", (20.0, 60.0)),
                    window=window,
                    abort=rollout.pop(
                        "abort",
                        AbortConditions(error_rate=None, latency_p99_ms=100, min_agreement=0.5),
                    ),
                ),
            ),
        ),
        serving=Serving(endpoint="churn"),
    )


class FakeTraffic:
    """Writes prediction-log rows (and feedback) for a deployment's endpoint, as serving would:
    the stable version answers, shadows get a copy, canary arms a share."""

    def __init__(self, ws: Workspace, endpoint: str = "churn") -> None:
        from shipyard.serving.predlog import PredictionLog

        self.folder = ws.settings.home / "predictions" / endpoint
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = PredictionLog(self.folder)
        self.n = 0
        self.rng = np.random.default_rng(0)

    def send(
        self,
        traffic: dict[str, Any],
        count: int,
        *,
        quality: dict[str, float] | None = None,
        latency_ms: float = 5.0,
        labels: bool = True,
        shift: dict[str, float] | None = None,
        errors: dict[str, float] | None = None,
    ) -> None:
        """``count`` requests routed by ``traffic``; ``quality[arm]`` in [0, 1] is how well an
        arm's score separates the label (1: perfectly, 0.5: chance); ``shift[arm]`` is added to
        the arm's scores (clipped to [0, 1]); ``errors[arm]`` is the share of the requests the
        arm answers that fail (logged with an error, as serving logs them)."""
        quality = quality or {}
        shift = shift or {}
        errors = errors or {}
        arms = traffic["arms"]
        weights = np.array([a["weight"] for a in arms], dtype=float)
        rows, feedback = [], []
        for _ in range(count):
            self.n += 1
            rid = f"r{self.n}"
            y = int(self.rng.random() < 0.3)
            arm = arms[int(self.rng.choice(len(arms), p=weights / weights.sum()))]
            served = [(arm, False)] + [(s, True) for s in traffic.get("shadow", [])]
            for a, shadow in served:
                version = a["name"].split("-")[0]
                q = quality.get(version, 0.9)
                score = float(
                    np.clip(
                        (y if self.rng.random() < q else 1 - y) * 0.6
                        + self.rng.random() * 0.4
                        + shift.get(version, 0.0),
                        0,
                        1,
                    )
                )
                # no draw for arms that never fail: the other tests' random stream stays put
                failed = not shadow and version in errors and self.rng.random() < errors[version]
                rows.append(
                    {
                        "request_id": rid,
                        "timestamp_ms": int(time.time() * 1000),
                        "model_name": MODEL,
                        "model_version": a["model"].rsplit("/", 1)[-1],
                        "arm": a["name"],
                        "shadow": shadow,
                        "latency_ms": latency_ms,
                        "features": json.dumps({"columns": ["x"], "data": [[1.0]]}),
                        "predictions": None if failed else json.dumps([score]),
                        "error": "PREDICTION_FAILED" if failed else None,
                    }
                )
            feedback.append({"request_id": rid, "label": y})
        for r in rows:
            self.log.record(r)
        if labels:
            self.log.record_feedback(feedback)
        self.flush()

    def flush(self) -> None:
        self.log.flush()

    def close(self) -> None:
        self.log.close()


@pytest.fixture
def traffic(workspace: Workspace) -> Iterator[FakeTraffic]:
    t = FakeTraffic(workspace)
    yield t
    t.close()


@pytest.fixture
def deployments(workspace: Workspace) -> Deployments:
    return Deployments(workspace)


def home(ws: Workspace) -> Path:
    return ws.settings.home
