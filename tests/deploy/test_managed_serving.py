"""A model server following a controller-managed deployment (``shipyard serve --deployment
NAME``) switches arms, weights and shadows when the controller's traffic moves: no restart, no
failed request."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from shipyard.deploy import Deployments, traffic_for
from shipyard.errors import InvalidState
from shipyard.monitoring import read_predictions
from shipyard.workspace import Workspace
from tests.conftest import free_port

from .conftest import policy, register


@pytest.mark.slow
def test_the_server_follows_the_persisted_traffic(
    workspace: Workspace, deployments: Deployments
) -> None:
    register(workspace, {"auc": 0.8})
    register(workspace, {"auc": 0.81})
    deployments.apply(policy())
    rec = deployments.tick("churn-prod")  # the newest version is the first one deployed
    assert rec.stable_version == 2
    port = free_port()
    env = {**os.environ, "SHIPYARD_ARTIFACT_URI": workspace.settings.artifact_uri}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "--home",
            str(workspace.settings.home),
            "serve",
            "--deployment",
            "churn-prod",
            "--port",
            str(port),
            "--poll-interval",
            "0.2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    body = {
        "dataframe_records": [{"radius": 14.0, "texture": 20.0, "perimeter": 90.0, "area": 600.0}]
    }
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("/predict", json=body).json()["arm"] == "v2"
            current = deployments.get("churn-prod")
            moved = deployments.store.update(
                "churn-prod",
                current.revision,
                {"traffic": traffic_for("churn", 2, 1, shadow=True)},
            )
            assert moved is not None
            arms, failed = set(), 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                r = http.post("/predict", json={**body, "request_id": f"q{time.monotonic_ns()}"})
                failed += r.status_code != 200
                arms.add(r.json().get("arm"))
                folder = workspace.settings.home / "predictions" / "churn"
                if folder.is_dir():
                    log = read_predictions(folder, include_shadow=True)
                    if (log["arm"] == "v1").any() and log["shadow"].any():
                        break
                time.sleep(0.2)
            else:
                raise AssertionError("the server never served the shadow arm v1")
            assert arms == {"v2"}  # the shadow answers no user
            assert failed == 0
            moved = deployments.store.update(
                "churn-prod", moved.revision, {"traffic": traffic_for("churn", 1)}
            )
            assert moved is not None
            deadline = time.monotonic() + 60
            while http.post("/predict", json=body).json()["arm"] != "v1":
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert proc.poll() is None  # the same process all along
    finally:
        proc.terminate()
        proc.wait(15)


def test_serving_a_deployment_with_nothing_deployed_says_so(
    workspace: Workspace, deployments: Deployments
) -> None:
    from shipyard.serving.managed import managed_spec

    register(workspace, {"auc": 0.8})
    deployments.apply(policy())
    with pytest.raises(InvalidState, match="no version deployed yet"):
        managed_spec(workspace, "churn-prod")
