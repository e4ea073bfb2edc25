"""MLflow's ``metrics/get-history`` on Shipyard's server: MLflow's message shape, page by page."""

from __future__ import annotations

import math

import httpx

from shipyard.entities import Metric
from shipyard.workspace import Workspace

API = "/api/2.0/mlflow"


def test_history_points_have_mlflow_shape_and_page_without_repeats(
    workspace: Workspace, api: httpx.Client
) -> None:
    run_id = workspace.store.create_run("0").info.run_id
    points = [Metric("loss", 1 / (i + 1), 1_000 + i, i) for i in range(7)]
    points.append(Metric("loss", math.nan, 2_000, 7))
    workspace.store.log_batch(run_id, metrics=points)

    seen, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": 3}
        if token:
            params["page_token"] = token
        r = api.get(f"{API}/metrics/get-history", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        seen.extend(body["metrics"])
        token = body.get("next_page_token")
        if not token:
            break

    # MLflow's Metric message for a history point: key, value, timestamp, step (no run_id: the
    # request names the run), NaN as the string "NaN".
    assert all(set(m) == {"key", "value", "timestamp", "step"} for m in seen)
    assert [m["step"] for m in seen] == list(range(8))
    assert [m["value"] for m in seen[:7]] == [1 / (i + 1) for i in range(7)]
    assert seen[7]["value"] == "NaN"


def test_history_of_a_key_never_logged_is_empty(workspace: Workspace, api: httpx.Client) -> None:
    run_id = workspace.store.create_run("0").info.run_id
    r = api.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "nope"})
    assert r.status_code == 200
    assert r.json() == {}


def test_batch_metric_links_survive_an_omitted_step(
    workspace: Workspace, api: httpx.Client
) -> None:
    # proto3 JSON leaves out step 0, so a linked metric can arrive with just four fields.
    run_id = workspace.store.create_run("0").info.run_id
    r = api.post(f"{API}/logged-models", json={"experiment_id": "0", "source_run_id": run_id})
    assert r.status_code == 200, r.text
    model_id = r.json()["model"]["info"]["model_id"]
    metric = {"key": "acc", "value": 0.5, "timestamp": 1, "model_id": model_id}
    r = api.post(f"{API}/runs/log-batch", json={"run_id": run_id, "metrics": [metric]})
    assert r.status_code == 200, r.text

    r = api.get(f"{API}/logged-models/{model_id}")
    assert r.status_code == 200, r.text
    linked = r.json()["model"]["data"]["metrics"]
    assert [(m["key"], m["value"], m["step"], m["model_id"]) for m in linked] == [
        ("acc", 0.5, 0, model_id)
    ]
