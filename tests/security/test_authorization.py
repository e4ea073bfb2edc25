"""Roles beyond the matrix: the deploy action (protected aliases, Production), the UI gate,
grants and revokes audited, and the answers of a refusal."""

from __future__ import annotations

import httpx
import pytest

from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from tests.security.conftest import SecureServer, deployment_of, monitor_with_alert


@pytest.mark.parametrize("surface", ["shipyard", "mlflow"])
def test_moving_a_protected_alias_needs_the_deployer_role(
    secure: SecureServer, model: str, surface: str
) -> None:
    editor = secure.client(token=secure.user("ed", ("editor", f"model:{model}")))
    deployer = secure.client(token=secure.user("dep", ("deployer", f"model:{model}")))

    def move(client: object, alias: str) -> int:
        if surface == "shipyard":
            resp = client.put(  # type: ignore[attr-defined]
                f"/api/v1/registered-models/{model}/aliases/{alias}", json={"version": 1}
            )
        else:
            resp = client.post(  # type: ignore[attr-defined]
                "/api/2.0/mlflow/registered-models/alias",
                json={"name": model, "alias": alias, "version": "1"},
            )
        return int(resp.status_code)

    assert move(editor, "staging") == 200
    assert move(editor, "production") == 403
    assert move(editor, "Champion") == 403
    assert move(deployer, "production") == 200
    # Deleting a protected alias changes production too.
    if surface == "shipyard":
        path = f"/api/v1/registered-models/{model}/aliases/production"
        assert editor.delete(path).status_code == 403
        assert deployer.delete(path).status_code == 200
    else:
        body = {"name": model, "alias": "production"}
        path = "/api/2.0/mlflow/registered-models/alias"
        assert editor.request("DELETE", path, json=body).status_code == 403
        assert deployer.request("DELETE", path, json=body).status_code == 200


def test_a_transition_to_production_needs_the_deployer_role(
    secure: SecureServer, model: str
) -> None:
    editor = secure.client(token=secure.user("ed", ("editor", "*")))
    path = f"/api/v1/registered-models/{model}/versions/1/stage"
    assert editor.put(path, json={"stage": "Staging"}).status_code == 200
    resp = editor.put(path, json={"stage": "production"})
    assert resp.status_code == 403
    assert resp.json()["details"] == {
        "action": "deploy",
        "resource": f"model:{model}",
        "required_role": "deployer",
    }
    resp = editor.post(
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": model, "version": "1", "stage": "Production"},
    )
    assert resp.status_code == 403
    assert resp.json()["error_code"] == "PERMISSION_DENIED"


def test_protected_aliases_are_configurable(tmp_path: object) -> None:
    from pathlib import Path

    from shipyard.server.app import create_app
    from shipyard.workspace import Workspace
    from tests.security.conftest import secure_settings

    settings = secure_settings(Path(str(tmp_path)) / "x", SHIPYARD_PROTECTED_ALIASES="live")
    with Workspace.open(settings) as ws:
        assert create_app(ws).state.protected_aliases == frozenset({"live"})


def test_the_ui_needs_some_grant_and_gets_security_headers(secure: SecureServer) -> None:
    nobody = secure.client(token=secure.user("nobody"))
    reader = secure.client(token=secure.user("viewer", ("reader", "experiment:0")))
    resp = nobody.get("/")
    assert resp.status_code == 403
    assert secure.client().get("/").status_code == 401
    resp = reader.get("/")
    assert resp.status_code < 400, resp.text
    if resp.headers.get("content-type", "").startswith("text/html"):
        csp = resp.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["x-frame-options"] == "DENY"
    # A POST outside the APIs needs write somewhere.
    assert reader.post("/anything", data={"a": "b"}).status_code == 403
    # Every answer, JSON included, says nosniff.
    assert reader.get("/api/v1/experiments/0").headers["x-content-type-options"] == "nosniff"


def test_grants_and_revokes_are_audited_and_checked(secure: SecureServer) -> None:
    security = secure.security
    secure.user("eve")
    security.grant("eve", "editor", "experiment:0", actor="admin")
    security.grant("eve", "reader", "experiment:0", actor="admin")  # replaces
    assert [(g.scope, g.role) for g in security.list_grants("eve")] == [("experiment:0", "reader")]
    security.revoke("eve", "experiment:0", actor="admin")
    with pytest.raises(NotFound, match="holds no role"):
        security.revoke("eve", "experiment:0", actor="admin")
    events = [(e.action, e.actor, e.subject, e.scope, e.role) for e in security.list_audit()]
    assert events[:3] == [
        ("grant.revoked", "admin", "eve", "experiment:0", "reader"),
        ("grant.set", "admin", "eve", "experiment:0", "reader"),
        ("grant.set", "admin", "eve", "experiment:0", "editor"),
    ]
    for role, scope in (("owner", "*"), ("reader", "run:1"), ("reader", "experiment:abc")):
        with pytest.raises(InvalidInput):
            security.grant("eve", role, scope, actor="admin")


def test_a_refusal_names_the_missing_role_and_the_fix(secure: SecureServer) -> None:
    secure.user("finn", ("reader", "experiment:0"))
    with pytest.raises(PermissionDenied) as caught:
        secure.security.check("finn", "write", "experiment:0")
    assert str(caught.value) == (
        "finn holds reader on experiment:0, and write on experiment:0 needs editor. An admin "
        "can grant it with `shipyard auth grants set finn editor --scope experiment:0`."
    )


def test_the_auth_api_manages_users_grants_and_own_tokens(
    secure: SecureServer, admin_token: str
) -> None:
    admin = secure.client(token=admin_token)
    assert (
        admin.post(
            "/api/v1/auth/users", json={"username": "gil", "password": "long-password"}
        ).status_code
        == 201
    )
    assert (
        admin.put("/api/v1/auth/grants", json={"username": "gil", "role": "reader"}).status_code
        == 200
    )
    gil = secure.client(basic=("gil", "long-password"))
    created = gil.post("/api/v1/auth/tokens", json={"name": "laptop", "expires_in_days": 30})
    assert created.status_code == 201, created.text
    token_id = created.json()["token"]["token_id"]
    assert [t["token_id"] for t in gil.get("/api/v1/auth/tokens").json()["tokens"]] == [token_id]
    # Users manage only their own tokens; the admin API is refused.
    assert gil.get("/api/v1/auth/tokens", params={"username": "admin"}).status_code == 403
    assert gil.get("/api/v1/auth/users").status_code == 403
    assert (
        gil.put("/api/v1/auth/grants", json={"username": "gil", "role": "admin"}).status_code == 403
    )
    admin_tokens = admin.get("/api/v1/auth/tokens", params={"username": "admin"}).json()["tokens"]
    assert gil.delete(f"/api/v1/auth/tokens/{admin_tokens[0]['token_id']}").status_code == 403
    assert gil.delete(f"/api/v1/auth/tokens/{token_id}").json()["token"]["revoked_time"]
    revoked = admin.request("DELETE", "/api/v1/auth/grants", params={"username": "gil"})
    assert revoked.json()["grant"]["role"] == "reader"
    assert gil.get("/api/v1/experiments").status_code == 403
    actions = [e["action"] for e in admin.get("/api/v1/auth/audit").json()["events"]]
    assert {"grant.set", "grant.revoked", "token.created", "token.revoked", "user.created"} <= set(
        actions
    )


def test_a_project_reader_searches_the_runs_of_its_experiments_and_no_others(
    secure: SecureServer,
) -> None:
    ws = secure.ws
    mine, theirs = ws.store.create_experiment("mine"), ws.store.create_experiment("theirs")
    my_run = ws.store.create_run(mine).info.run_id
    ws.store.create_run(theirs)
    token = secure.user("pia", ("reader", f"experiment:{mine}"))
    pia = secure.client(token=token)

    def mlflow_search(ids: list[str]) -> httpx.Response:
        return pia.post("/api/2.0/mlflow/runs/search", json={"experiment_ids": ids})

    def api_search(ids: list[str]) -> httpx.Response:
        return pia.post("/api/v1/runs/search", json={"experiment_ids": ids})

    r = mlflow_search([mine])
    assert r.status_code == 200, r.text
    assert [run["info"]["run_id"] for run in r.json()["runs"]] == [my_run]
    r = pia.get("/api/2.0/mlflow/runs/search", params={"experiment_ids": [mine]})
    assert r.status_code == 200, r.text
    r = api_search([mine])
    assert r.status_code == 200, r.text
    assert [run["info"]["run_id"] for run in r.json()["runs"]] == [my_run]
    for search in (mlflow_search, api_search):
        # one experiment it holds nothing on refuses the whole search, naming that one
        denied = search([mine, theirs])
        assert denied.status_code == 403
        assert denied.json()["error_code"] == "PERMISSION_DENIED"
        assert f"experiment:{theirs}" in denied.json()["message"]
        # a search naming no experiment spans the workspace: that needs a workspace grant
        assert search([]).status_code == 403


def test_ui_lists_show_a_project_scoped_user_their_own(secure: SecureServer) -> None:
    """The experiments and models pages used to refuse a user granted on one experiment and
    one model (they asked for ``kind:*``); they list what the user's grants name."""
    ws = secure.ws
    ids = {name: ws.store.create_experiment(name) for name in ("alpha-exp", "beta-exp", "gone")}
    for name in ("alpha-model", "beta-model"):
        ws.registry.create_registered_model(name)
        deployment_of(secure, name)  # a deployment, a monitor and an alert, named like the model
        monitor_with_alert(secure, name)
    scoped = secure.client(token=secure.user(
        "ana", ("reader", f"experiment:{ids['alpha-exp']}"), ("editor", "model:alpha-model"),
        ("reader", f"experiment:{ids['gone']}"), ("reader", "model:never-made"),
        # grants the stores cannot read, or name in another spelling, show nothing
        ("reader", "model:churn@champion"), ("reader", f"experiment:0{ids['beta-exp']}"),
    ))  # fmt: skip
    ws.store.delete_experiment(ids["gone"])
    everyone = secure.client(token=secure.user("bo", ("reader", "*")))

    page = scoped.get("/experiments")
    assert page.status_code == 200
    assert "alpha-exp" in page.text
    assert "beta-exp" not in page.text
    assert "gone" not in page.text
    filtered = scoped.get("/experiments", params={"filter": "name LIKE '%exp'"})
    assert "alpha-exp" in filtered.text
    assert "beta-exp" not in filtered.text
    assert "alpha-exp" not in scoped.get("/experiments", params={"filter": "name = 'x'"}).text
    bad = scoped.get("/experiments", params={"filter": "name ~ 1"})
    assert bad.status_code == 200
    assert "alpha-exp" not in bad.text

    models = scoped.get("/models")
    assert models.status_code == 200
    assert "alpha-model" in models.text
    assert "beta-model" not in models.text
    assert "never-made" not in models.text
    assert scoped.get(f"/experiments/{ids['beta-exp']}").status_code == 403

    listed = everyone.get("/experiments").text  # a workspace reader: every experiment
    assert "alpha-exp" in listed
    assert "beta-exp" in listed
    assert "beta-model" in everyone.get("/models").text
    for page in ("/deployments", "/monitoring"):
        shown = scoped.get(page)
        assert shown.status_code == 200
        assert "alpha-model" in shown.text
        assert "beta-model" not in shown.text
        assert "beta-model" in everyone.get(page).text
    nobody = secure.client(token=secure.user("cy"))
    assert nobody.get("/experiments").status_code == 403
