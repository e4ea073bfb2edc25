"""/api/v1/runs: lifecycle, search, batch logging, tags, inputs and metric history."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

MISSING_RUN = "0123456789abcdef0123456789abcdef"


def _run(api: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/runs", json={"experiment_id": "0", **body})
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["run"])


def test_create_get_update(api: httpx.Client) -> None:
    run = _run(api, run_name="gbm", tags={"k": "v"}, start_time=1000, user_id="u")
    info = run["info"]
    assert (info["run_name"], info["status"], info["start_time"], info["user_id"]) == (
        "gbm",
        "RUNNING",
        1000,
        "u",
    )
    run_id = info["run_id"]
    got = api.get(f"/api/v1/runs/{run_id}").json()["run"]
    assert got["data"]["tags"]["k"] == "v"
    updated = api.patch(f"/api/v1/runs/{run_id}", json={"status": "finished", "end_time": 2000})
    assert updated.json()["run_info"]["status"] == "FINISHED"
    assert updated.json()["run_info"]["end_time"] == 2000


def test_create_run_failures(api: httpx.Client) -> None:
    missing = api.post("/api/v1/runs", json={})
    assert missing.status_code == 400
    assert "'experiment_id'" in missing.json()["message"]
    assert api.post("/api/v1/runs", json={"experiment_id": "987"}).status_code == 404
    bad = api.patch(f"/api/v1/runs/{_run(api)['info']['run_id']}", json={"status": "DONE"})
    assert bad.status_code == 400
    assert "RUNNING" in bad.json()["message"]


def test_unknown_and_malformed_run_ids(api: httpx.Client) -> None:
    assert api.get(f"/api/v1/runs/{MISSING_RUN}").status_code == 404
    resp = api.get("/api/v1/runs/not%20an%20id")
    assert resp.status_code == 400
    assert "run id" in resp.json()["message"]


def test_batch_logging_and_latest_metrics(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    body = {
        "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 10, "step": 0},
            {"key": "loss", "value": "NaN", "timestamp": 11, "step": 1},
            {"key": "acc", "value": "Infinity", "timestamp": 12},
        ],
        "params": {"lr": "0.1"},
        "tags": {"stage": "dev"},
    }
    assert api.post(f"/api/v1/runs/{run_id}/batch", json=body).json() == {}
    data = api.get(f"/api/v1/runs/{run_id}").json()["run"]["data"]
    assert data["params"] == {"lr": "0.1"}
    assert data["tags"]["stage"] == "dev"
    assert data["metrics"]["loss"]["value"] == "NaN"
    assert data["metrics"]["acc"]["value"] == "Infinity"


def test_batch_failures(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    url = f"/api/v1/runs/{run_id}/batch"
    api.post(url, json={"params": {"lr": "0.1"}})
    changed = api.post(url, json={"params": {"lr": "0.2"}})
    assert changed.status_code == 409
    assert api.post(url, json={"params": {"lr": "0.1"}}).status_code == 200
    no_value = api.post(url, json={"metrics": [{"key": "m"}]})
    assert no_value.status_code == 400
    assert "'value'" in no_value.json()["message"]
    bad_value = api.post(url, json={"metrics": [{"key": "m", "value": "high"}]})
    assert "Invalid value 'high' for parameter 'value'" in bad_value.json()["message"]
    bare_nan = api.post(
        url, content=b'{"metrics": [{"key": "m", "value": NaN}]}', headers={"Content-Type": "x"}
    )
    assert bare_nan.status_code == 400
    assert '"NaN"' in bare_nan.json()["message"]
    too_many = api.post(url, json={"params": {f"p{i}": "v" for i in range(101)}})
    assert too_many.status_code == 413
    assert too_many.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert api.post(f"/api/v1/runs/{MISSING_RUN}/batch", json={}).status_code == 404


def test_logging_to_a_deleted_run_is_refused_and_restore_undoes(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    assert api.delete(f"/api/v1/runs/{run_id}").status_code == 200
    refused = api.post(f"/api/v1/runs/{run_id}/batch", json={"tags": {"a": "b"}})
    assert refused.status_code == 409
    assert refused.json()["error_code"] == "INVALID_STATE"
    assert api.post(f"/api/v1/runs/{run_id}/restore").status_code == 200
    assert api.post(f"/api/v1/runs/{run_id}/batch", json={"tags": {"a": "b"}}).status_code == 200


def test_permanent_run_delete(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    api.put(f"/api/v1/runs/{run_id}/artifacts/x.txt", content=b"hello")
    resp = api.delete(f"/api/v1/runs/{run_id}?permanent=true")
    assert resp.json() == {"bytes_freed": 5, "digests": [hashlib.sha256(b"hello").hexdigest()]}
    assert api.get(f"/api/v1/runs/{run_id}").status_code == 404


def test_run_tags(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    url = f"/api/v1/runs/{run_id}/tags/note%20a/b"
    assert api.put(url, json={"value": ""}).status_code == 200
    assert api.get(f"/api/v1/runs/{run_id}").json()["run"]["data"]["tags"]["note a/b"] == ""
    assert api.delete(url).status_code == 200
    assert api.delete(url).status_code == 404


def test_inputs(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    body = {
        "datasets": [
            {
                "dataset": {"name": "train", "digest": "abc123", "source_type": "local"},
                "tags": {"mlflow.data.context": "training"},
            }
        ]
    }
    assert api.post(f"/api/v1/runs/{run_id}/inputs", json=body).status_code == 200
    inputs = api.get(f"/api/v1/runs/{run_id}").json()["run"]["inputs"]
    assert inputs[0]["dataset"]["name"] == "train"
    assert inputs[0]["tags"] == {"mlflow.data.context": "training"}
    bad = api.post(f"/api/v1/runs/{run_id}/inputs", json={"datasets": [{"tags": {}}]})
    assert bad.status_code == 400
    assert "'dataset'" in bad.json()["message"]


def test_search_runs(api: httpx.Client) -> None:
    ids = []
    for i in range(4):
        run_id = _run(api, run_name=f"r{i}")["info"]["run_id"]
        api.post(
            f"/api/v1/runs/{run_id}/batch",
            json={"metrics": [{"key": "acc", "value": i / 10, "timestamp": 1}]},
        )
        ids.append(run_id)
    page = api.post(
        "/api/v1/runs/search",
        json={
            "experiment_ids": ["0"],
            "filter": "metrics.acc >= 0.1",
            "order_by": ["metrics.acc DESC"],
            "max_results": 2,
        },
    ).json()
    assert [r["info"]["run_id"] for r in page["runs"]] == [ids[3], ids[2]]
    rest = api.post(
        "/api/v1/runs/search",
        json={
            "experiment_ids": ["0"],
            "filter": "metrics.acc >= 0.1",
            "order_by": ["metrics.acc DESC"],
            "max_results": 2,
            "page_token": page["next_page_token"],
        },
    ).json()
    assert [r["info"]["run_id"] for r in rest["runs"]] == [ids[1]]
    bad = api.post("/api/v1/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.acc >"})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_FILTER"


def test_metric_history_is_columnar_and_paged(api: httpx.Client) -> None:
    run_id = _run(api)["info"]["run_id"]
    metrics = [
        {"key": "a/loss", "value": float(i), "timestamp": 100 + i, "step": i} for i in range(5)
    ]
    metrics[2]["value"] = "NaN"
    metrics[3]["dataset_name"] = "train"
    api.post(f"/api/v1/runs/{run_id}/batch", json={"metrics": metrics})
    url = f"/api/v1/runs/{run_id}/metrics/a/loss/history"
    first = api.get(url, params={"max_results": 3}).json()
    assert first["key"] == "a/loss"
    assert first["steps"] == [0, 1, 2]
    assert first["timestamps"] == [100, 101, 102]
    assert first["values"] == [0.0, 1.0, "NaN"]
    assert "dataset_names" not in first
    second = api.get(url, params={"max_results": 3, "page_token": first["next_page_token"]}).json()
    assert second["steps"] == [3, 4]
    assert second["dataset_names"] == ["train", None]
    assert second["next_page_token"] is None
    assert api.get(url, params={"max_results": 0}).status_code == 400
    empty = api.get(f"/api/v1/runs/{run_id}/metrics/none/history").json()
    assert empty["steps"] == []


def test_wrong_method_gets_a_json_405(api: httpx.Client) -> None:
    resp = api.put("/api/v1/runs/search")
    assert resp.status_code == 405
    assert "error_code" in resp.json()


def test_patch_on_a_reserved_word_is_an_unknown_run(api: httpx.Client) -> None:
    # PATCH /runs/{run_id} matches with run_id="search": the answer names the missing run.
    resp = api.patch("/api/v1/runs/search", json={"status": "FINISHED"})
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
