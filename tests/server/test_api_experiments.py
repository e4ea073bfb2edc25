"""/api/v1/experiments: create, get, by-name, search, rename, delete, restore, purge, tags."""

from __future__ import annotations

import hashlib

import httpx
import pytest


def _create(api: httpx.Client, name: str, **extra: object) -> str:
    resp = api.post("/api/v1/experiments", json={"name": name, **extra})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["experiment_id"])


def test_create_get_and_get_by_name(api: httpx.Client) -> None:
    exp_id = _create(api, "churn/v2 model", tags={"team": "ml"})
    got = api.get(f"/api/v1/experiments/{exp_id}").json()["experiment"]
    assert got["name"] == "churn/v2 model"
    assert got["tags"] == {"team": "ml"}
    assert got["lifecycle_stage"] == "active"
    by_name = api.get("/api/v1/experiments/by-name/churn%2Fv2%20model")
    assert by_name.json()["experiment"]["experiment_id"] == exp_id


def test_get_by_name_missing_is_404(api: httpx.Client) -> None:
    resp = api.get("/api/v1/experiments/by-name/nope")
    assert resp.status_code == 404
    assert resp.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "POST /api/v1/experiments" in resp.json()["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Missing value for required parameter 'name'"),
        ({"name": 5}, "Invalid value 5 for parameter 'name': expected a string"),
        ({"name": "x", "tags": {"a": 1}}, "parameter 'tags'"),
    ],
)
def test_create_refuses_bad_bodies(
    api: httpx.Client, body: dict[str, object], message: str
) -> None:
    resp = api.post("/api/v1/experiments", json=body)
    assert resp.status_code == 400
    assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in resp.json()["message"]


def test_create_refuses_malformed_json(api: httpx.Client) -> None:
    resp = api.post(
        "/api/v1/experiments", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("request body is not valid JSON")


def test_bad_and_missing_ids(api: httpx.Client) -> None:
    bad = api.get("/api/v1/experiments/abc")
    assert bad.status_code == 400
    assert "experiment id 'abc' is not valid" in bad.json()["message"]
    assert api.get("/api/v1/experiments/999").status_code == 404


def test_search_and_list_with_paging(api: httpx.Client) -> None:
    for i in range(5):
        _create(api, f"exp-{i}")
    first = api.post(
        "/api/v1/experiments/search",
        json={"filter": "name LIKE 'exp-%'", "max_results": 3, "order_by": ["name ASC"]},
    ).json()
    assert [e["name"] for e in first["experiments"]] == ["exp-0", "exp-1", "exp-2"]
    second = api.post(
        "/api/v1/experiments/search",
        json={
            "filter": "name LIKE 'exp-%'",
            "max_results": 3,
            "order_by": ["name ASC"],
            "page_token": first["next_page_token"],
        },
    ).json()
    assert [e["name"] for e in second["experiments"]] == ["exp-3", "exp-4"]
    assert second["next_page_token"] is None
    listed = api.get("/api/v1/experiments", params={"filter": "name = 'exp-4'"}).json()
    assert [e["name"] for e in listed["experiments"]] == ["exp-4"]


def test_search_refuses_bad_arguments(api: httpx.Client) -> None:
    resp = api.post("/api/v1/experiments/search", json={"view_type": "SOME"})
    assert resp.status_code == 400
    assert "ACTIVE_ONLY" in resp.json()["message"]
    too_many = api.post("/api/v1/experiments/search", json={"max_results": 10**9})
    assert too_many.status_code == 400
    bad_filter = api.post("/api/v1/experiments/search", json={"filter": "name ="})
    assert bad_filter.status_code == 400
    assert bad_filter.json()["error_code"] == "INVALID_FILTER"


def test_rename_delete_restore(api: httpx.Client) -> None:
    exp_id = _create(api, "old")
    assert api.patch(f"/api/v1/experiments/{exp_id}", json={"name": "new"}).json() == {}
    assert api.get(f"/api/v1/experiments/{exp_id}").json()["experiment"]["name"] == "new"
    assert api.delete(f"/api/v1/experiments/{exp_id}").status_code == 200
    assert api.get(f"/api/v1/experiments/{exp_id}").json()["experiment"]["lifecycle_stage"] == (
        "deleted"
    )
    active = api.post("/api/v1/experiments/search", json={}).json()["experiments"]
    assert exp_id not in [e["experiment_id"] for e in active]
    deleted = api.post("/api/v1/experiments/search", json={"view_type": "DELETED_ONLY"}).json()
    assert [e["experiment_id"] for e in deleted["experiments"]] == [exp_id]
    assert api.post(f"/api/v1/experiments/{exp_id}/restore").status_code == 200
    assert api.get(f"/api/v1/experiments/{exp_id}").json()["experiment"]["lifecycle_stage"] == (
        "active"
    )


def test_permanent_delete_frees_the_name_and_bytes(api: httpx.Client) -> None:
    exp_id = _create(api, "gone")
    run_id = api.post("/api/v1/runs", json={"experiment_id": exp_id}).json()["run"]["info"][
        "run_id"
    ]
    assert api.put(f"/api/v1/runs/{run_id}/artifacts/a.bin", content=b"x" * 1000).status_code == 201
    resp = api.delete(f"/api/v1/experiments/{exp_id}", params={"permanent": "true"})
    assert resp.status_code == 200
    assert resp.json() == {
        "bytes_freed": 1000,
        "digests": [hashlib.sha256(b"x" * 1000).hexdigest()],
    }
    assert api.get(f"/api/v1/experiments/{exp_id}").status_code == 404
    assert api.get(f"/api/v1/runs/{run_id}").status_code == 404
    _create(api, "gone")


def test_default_experiment_cannot_be_deleted(api: httpx.Client) -> None:
    resp = api.delete("/api/v1/experiments/0")
    assert resp.status_code in (400, 409)
    assert resp.json()["message"]


def test_experiment_tags(api: httpx.Client) -> None:
    exp_id = _create(api, "tagged")
    url = f"/api/v1/experiments/{exp_id}/tags/team%2Fowner"
    assert api.put(url, json={"value": "ml"}).status_code == 200
    assert api.get(f"/api/v1/experiments/{exp_id}").json()["experiment"]["tags"] == {
        "team/owner": "ml"
    }
    assert api.put(url, json={}).status_code == 400
    assert api.delete(url).status_code == 200
    assert api.delete(url).status_code == 404
    assert api.get(f"/api/v1/experiments/{exp_id}").json()["experiment"]["tags"] == {}
