"""Regressions found in a security review: demoting the Production version, hostile user names
in failed logins, user names with a trailing newline, and backup secrets."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.requests import HTTPConnection

from shipyard.config import Settings
from shipyard.errors import InvalidInput, PermissionDenied
from shipyard.security.backup import backup
from shipyard.server.app import create_app
from shipyard.server.auth import Principal, authorize_stage_change
from shipyard.workspace import Workspace
from tests.security.conftest import ADMIN_PASSWORD, ClientTransport, SecureServer


@pytest.fixture
def production_model(secure: SecureServer, model: str) -> str:
    """``churn`` version 1, in the ``Production`` stage."""
    secure.ws.registry.transition_model_version_stage(model, 1, "Production")
    return model


@pytest.mark.parametrize("stage", ["Archived", "None", "Staging"])
def test_moving_the_production_version_out_needs_deploy(
    secure: SecureServer, production_model: str, stage: str
) -> None:
    """An editor must not archive or demote what production serves (only ``deploy`` may)."""
    secure.user("ed", ("editor", f"model:{production_model}"))
    secure.user("dep", ("deployer", f"model:{production_model}"))

    def allowed(user: str, version: object) -> bool:
        principal = Principal(user, True, method="token")
        conn = HTTPConnection(
            {"type": "http", "app": secure.app, "state": {"principal": principal}}
        )
        try:
            anyio.run(
                lambda: authorize_stage_change(conn, production_model, stage, version=version)
            )
        except PermissionDenied:
            return False
        return True

    assert not allowed("ed", 1)
    assert not allowed("ed", "1")
    assert allowed("dep", 1)
    # Versions outside Production, and unknown or malformed ones, stay the editor's business.
    secure.ws.registry.transition_model_version_stage(production_model, 1, "Staging")
    assert allowed("ed", 1)
    assert allowed("ed", 99)
    assert allowed("ed", "x")


def test_an_editor_cannot_archive_the_production_version_over_either_api(
    secure: SecureServer, production_model: str
) -> None:
    editor = secure.client(token=secure.user("ed", ("editor", f"model:{production_model}")))
    resp = editor.put(
        f"/api/v1/registered-models/{production_model}/versions/1/stage", json={"stage": "Archived"}
    )
    assert (resp.status_code, resp.json()["error_code"]) == (403, "PERMISSION_DENIED"), resp.text
    resp = editor.post(
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": production_model, "version": "1", "stage": "Archived"},
    )
    assert (resp.status_code, resp.json()["error_code"]) == (403, "PERMISSION_DENIED"), resp.text
    version = secure.ws.registry.get_model_version(production_model, 1)
    assert version.current_stage == "Production"
    deployer = secure.client(token=secure.user("dep", ("deployer", f"model:{production_model}")))
    resp = deployer.post(
        "/api/2.0/mlflow/model-versions/transition-stage",
        json={"name": production_model, "version": "1", "stage": "Archived"},
    )
    assert resp.status_code == 200, resp.text


def test_trailing_newline_user_names_are_refused(secure: SecureServer) -> None:
    with pytest.raises(InvalidInput):
        secure.security.create_user("bob\n", "bob-password-0", actor="test")


def test_a_nul_user_name_is_a_401_and_audited_on_postgres(
    tmp_path: Path, postgres_uri: str
) -> None:
    settings = Settings.from_env(
        {"SHIPYARD_AUTH": "on"}, home=tmp_path / "h", tracking_uri=postgres_uri
    )
    with Workspace.open(settings) as ws:
        app = create_app(ws)
        with httpx.Client(transport=ClientTransport(app), base_url="http://testserver") as client:
            raw = base64.b64encode(b"ad\x00min:some-password").decode()
            resp = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Basic {raw}"})
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"].startswith("Basic")
        events = app.state.authorizer.security.list_audit(action="login.failed")
        assert [e.subject for e in events] == [ascii("ad\x00min")]


def test_backups_are_private_to_their_owner(workspace: Workspace, tmp_path: Path) -> None:
    dest = tmp_path / "backup"
    backup(workspace.settings, dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700


def test_the_database_password_stays_off_the_command_line() -> None:
    from shipyard.security.backup import _libpq_target

    url, env = _libpq_target("postgresql+psycopg://shipyard:s3cret@db.internal:5432/meta")
    assert url == "postgresql://shipyard@db.internal:5432/meta"
    assert env["PGPASSWORD"] == "s3cret"
    url, env = _libpq_target("postgresql://shipyard@db.internal/meta?sslmode=require")
    assert url == "postgresql://shipyard@db.internal/meta?sslmode=require"


def test_api_writes_from_another_site_are_refused(secure: SecureServer) -> None:
    """A page elsewhere must not drive the API with the credentials a browser saved from the
    UI's Basic prompt (a JSON body posted as text/plain needs no CORS preflight)."""
    browser = secure.client(basic=("admin", ADMIN_PASSWORD))
    body = b'{"name": "pwned"}'
    plain = {"content-type": "text/plain"}
    for path in ("/api/2.0/mlflow/experiments/create", "/ajax-api/2.0/mlflow/experiments/create"):
        for origin in ("http://evil.example", "null", "http://testserver.evil", "http://["):
            resp = browser.post(path, content=body, headers={**plain, "origin": origin})
            assert resp.status_code == 403, (path, origin, resp.text)
            assert resp.json()["error_code"] == "PERMISSION_DENIED"
    resp = browser.post(
        "/api/v1/experiments",
        content=body,
        headers={**plain, "referer": "https://evil.example/page"},
    )
    assert resp.status_code == 403
    assert secure.ws.store.get_experiment_by_name("pwned") is None
    # Reads, this server's own pages, bearer tokens and clients without Origin all pass.
    assert browser.get("/api/v1/experiments", headers={"origin": "http://evil.example"}).is_success
    same = browser.post(
        "/api/v1/experiments", json={"name": "a"}, headers={"origin": "https://testserver"}
    )
    assert same.status_code == 201
    token = secure.client(token=secure.security.create_token("admin", "t", actor="test").secret)
    resp = token.post("/api/v1/experiments", json={"name": "b"}, headers={"origin": "http://x"})
    assert resp.status_code == 201
    assert browser.post("/api/v1/experiments", json={"name": "c"}).status_code == 201


def test_renaming_a_model_needs_write_on_the_new_name_over_either_api(
    secure: SecureServer, model: str
) -> None:
    """An editor of one model must not take over a name granted to someone else."""
    editor = secure.client(token=secure.user("ed", ("editor", f"model:{model}")))
    resp = editor.post(
        "/api/2.0/mlflow/registered-models/rename", json={"name": model, "new_name": "theirs"}
    )
    assert (resp.status_code, resp.json()["error_code"]) == (403, "PERMISSION_DENIED"), resp.text
    resp = editor.post(f"/api/v1/registered-models/{model}/rename", json={"new_name": "theirs"})
    assert (resp.status_code, resp.json()["error_code"]) == (403, "PERMISSION_DENIED"), resp.text
    assert secure.ws.registry.get_registered_model(model).name == model
    both = secure.client(
        token=secure.user("ed2", ("editor", f"model:{model}"), ("editor", "model:mine"))
    )
    resp = both.post(
        "/api/2.0/mlflow/registered-models/rename", json={"name": model, "new_name": "mine"}
    )
    assert resp.status_code == 200, resp.text


def test_a_token_cannot_create_a_token_that_outlives_it(secure: SecureServer) -> None:
    """Else a stolen short-lived token could be turned into a lasting one."""
    secure.security.create_user("tia", "tia-password-0", actor="test")
    short = secure.security.create_token("tia", "ci", expires_in_days=1, actor="test").secret
    with_token = secure.client(token=short)
    for days in (None, 2):
        resp = with_token.post("/api/v1/auth/tokens", json={"expires_in_days": days})
        assert (resp.status_code, resp.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert "can't outlive it" in resp.json()["message"]
    assert with_token.post("/api/v1/auth/tokens", json={"expires_in_days": 0.5}).status_code == 201
    with_password = secure.client(basic=("tia", "tia-password-0"))
    assert with_password.post("/api/v1/auth/tokens", json={}).status_code == 201
    lasting = secure.security.create_token("tia", "laptop", actor="test").secret
    resp = secure.client(token=lasting).post("/api/v1/auth/tokens", json={})
    assert resp.status_code == 201, resp.text
