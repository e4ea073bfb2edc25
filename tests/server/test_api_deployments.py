"""``/api/v1/deployments``: the controller's state and timeline for reading, and the levers,
which declare the ``deploy`` action."""

from __future__ import annotations

import httpx

from shipyard.deploy import Deployments
from shipyard.server.api.deployments import router
from shipyard.workspace import Workspace
from tests.deploy.conftest import policy, register


def test_levers_need_the_deploy_action_and_reads_need_read() -> None:
    actions = {(s.method, s.path): s.action for s in router.specs}
    assert actions[("GET", "/api/v1/deployments")] == "read"
    assert actions[("GET", "/api/v1/deployments/{name}")] == "read"
    for lever in ("promote", "rollback", "pause", "resume"):
        assert actions[("POST", f"/api/v1/deployments/{{name}}/{lever}")] == "deploy"


def test_read_pause_resume_promote_over_http(workspace: Workspace, api: httpx.Client) -> None:
    register(workspace, {"auc": 0.8})
    service = Deployments(workspace)
    service.apply(policy())
    service.tick("churn-prod")
    listed = api.get("/api/v1/deployments").json()["deployments"]
    assert [(d["name"], d["state"], d["stable_version"]) for d in listed] == [
        ("churn-prod", "promoted", 1)
    ]
    status = api.get("/api/v1/deployments/churn-prod").json()
    assert [e["action"] for e in status["timeline"]] == [
        "applied",
        "gating",
        "gates_passed",
        "deployed",
    ]
    assert api.get("/api/v1/deployments/churn-prod/traffic").json()["revision"] == 1
    paused = api.post("/api/v1/deployments/churn-prod/pause", json={"reason": "audit"})
    assert paused.status_code == 200
    assert paused.json()["state"] == "paused"
    assert api.post("/api/v1/deployments/churn-prod/resume").json()["state"] == "promoted"
    register(workspace, {"auc": 0.4})
    refused = api.post("/api/v1/deployments/churn-prod/promote", json={"version": 2})
    assert refused.status_code == 409
    body = refused.json()
    assert body["error_code"] == "GATE_FAILED"
    assert "auc >= 0.6" in body["message"]
    missing = api.get("/api/v1/deployments/nope")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_served_version_cannot_be_deleted_over_either_api(
    workspace: Workspace, api: httpx.Client
) -> None:
    register(workspace, {"auc": 0.8})
    service = Deployments(workspace)
    service.apply(policy())
    service.tick("churn-prod")  # version 1 is now the deployment's stable version
    model = workspace.deployments.get("churn-prod").model
    resp = api.delete(f"/api/v1/registered-models/{model}/versions/1")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error_code"] == "INVALID_STATE"
    assert "deployment 'churn-prod'" in resp.json()["message"]
    resp = api.request(
        "DELETE", "/api/2.0/mlflow/model-versions/delete", json={"name": model, "version": "1"}
    )
    assert (resp.status_code, resp.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "deployment 'churn-prod'" in resp.json()["message"]
    assert workspace.registry.get_model_version(model, 1).version == 1


def test_a_model_with_a_served_version_cannot_be_deleted_over_either_api(
    workspace: Workspace, api: httpx.Client
) -> None:
    """The aliases gone, the deployment still holds version 1: deleting the whole model is
    refused as deleting the version is."""
    register(workspace, {"auc": 0.8})
    service = Deployments(workspace)
    service.apply(policy())
    service.tick("churn-prod")
    model = workspace.deployments.get("churn-prod").model
    for alias in workspace.registry.get_registered_model(model).aliases:
        workspace.registry.delete_alias(model, alias.alias, user_id="test")
    resp = api.delete(f"/api/v1/registered-models/{model}")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error_code"] == "INVALID_STATE"
    assert "deployment 'churn-prod'" in resp.json()["message"]
    resp = api.request("DELETE", "/api/2.0/mlflow/registered-models/delete", json={"name": model})
    assert (resp.status_code, resp.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "deployment 'churn-prod'" in resp.json()["message"]
    assert workspace.registry.get_model_version(model, 1).version == 1


def test_the_server_runs_the_controller_in_the_background(workspace: Workspace) -> None:
    """``shipyard server``'s app starts the controller with its lifespan (a real uvicorn)."""
    import time

    from shipyard.server.app import create_app
    from tests.server.conftest import serve_in_thread

    register(workspace, {"auc": 0.8})
    Deployments(workspace).apply(policy())
    with (
        serve_in_thread(create_app(workspace, scheduler=True)) as url,
        httpx.Client(base_url=url) as client,
    ):
        deadline = time.monotonic() + 60
        state = client.get("/api/v1/deployments/churn-prod").json()
        while state["state"] != "promoted" and time.monotonic() < deadline:
            time.sleep(0.2)
            state = client.get("/api/v1/deployments/churn-prod").json()
    assert (state["state"], state["stable_version"]) == ("promoted", 1), state
    deployed = state["timeline"][-1]
    assert (deployed["action"], deployed["user"]) == ("deployed", "shipyard-controller")
