"""Who may sign in, and how: HTTP Basic (password or token), Bearer tokens, the trusted header
of an OIDC proxy; expired, revoked and disabled credentials; every failure audited."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.security import Security
from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.security.conftest import ADMIN_PASSWORD, ClientTransport, SecureServer, secure_settings


def _failed_logins(security: Security) -> list[dict[str, object]]:
    return [e.detail for e in security.list_audit(action="login.failed")]


def test_no_credentials_is_401_with_a_basic_challenge(secure: SecureServer) -> None:
    resp = secure.client().get("/api/v1/experiments")
    assert resp.status_code == 401
    assert resp.json()["error_code"] == "UNAUTHENTICATED"
    assert resp.headers["www-authenticate"].startswith("Basic ")
    # The MLflow surface answers in MLflow's shape.
    resp = secure.client().get("/api/2.0/mlflow/experiments/search")
    assert resp.status_code == 401
    assert resp.json()["error_code"] == "UNAUTHENTICATED"


def test_health_and_version_stay_public(secure: SecureServer) -> None:
    assert secure.client().get("/health").status_code == 200
    assert secure.client().get("/version").status_code == 200


def test_basic_password_bearer_and_basic_token_all_sign_in(
    secure: SecureServer, admin_token: str
) -> None:
    for client in (
        secure.client(basic=("admin", ADMIN_PASSWORD)),
        secure.client(token=admin_token),
        secure.client(basic=("anything", admin_token)),
    ):
        resp = client.get("/api/v1/auth/whoami")
        assert resp.status_code == 200, resp.text
        assert resp.json()["username"] == "admin"
        assert client.get("/api/v1/experiments").status_code == 200


def test_a_password_shaped_like_a_token_is_still_a_password(secure: SecureServer) -> None:
    password = "shp_" + "p" * 30  # the shape of a token, but no token has this digest
    secure.security.create_user("tok-like", password, actor="test")
    resp = secure.client(basic=("tok-like", password)).get("/api/v1/auth/whoami")
    assert resp.status_code == 200, resp.text
    assert resp.json()["username"] == "tok-like"
    wrong = secure.client(basic=("tok-like", "shp_" + "q" * 30)).get("/api/v1/auth/whoami")
    assert wrong.status_code == 401
    assert _failed_logins(secure.security) == [{"method": "password", "reason": "bad_password"}]


@pytest.mark.parametrize(
    ("basic", "reason"),
    [
        (("admin", "wrong-password"), "bad_password"),
        (("nobody", "whatever-pass"), "no_user"),
    ],
)
def test_wrong_passwords_are_refused_and_audited(
    secure: SecureServer, basic: tuple[str, str], reason: str
) -> None:
    resp = secure.client(basic=basic).get("/api/v1/experiments")
    assert resp.status_code == 401
    assert "user name or password is wrong" in resp.json()["message"]
    assert _failed_logins(secure.security) == [{"method": "password", "reason": reason}]


def test_malformed_authorization_headers_are_401_not_500(secure: SecureServer) -> None:
    for value in ("Basic !!!notbase64", "Basic " + "YWRtaW4=", "Bearer ", "Digest abc", "x" * 5000):
        resp = secure.client(headers={"Authorization": value}).get("/api/v1/experiments")
        assert resp.status_code == 401, (value, resp.text)


def test_revoked_and_expired_tokens_are_refused(secure: SecureServer) -> None:
    security = secure.security
    security.create_user("ci", actor="test")
    security.grant("ci", "reader", actor="test")
    live = security.create_token("ci", "live", actor="test")
    client = secure.client(token=live.secret)
    assert client.get("/api/v1/experiments").status_code == 200
    security.revoke_token(live.token.token_id, actor="test")
    resp = client.get("/api/v1/experiments")
    assert resp.status_code == 401
    assert "revoked" in resp.json()["message"]

    short = security.create_token("ci", "short", expires_in_days=1 / 86_400_000, actor="test")
    time.sleep(0.01)
    resp = secure.client(token=short.secret).get("/api/v1/experiments")
    assert resp.status_code == 401
    assert "expired" in resp.json()["message"]
    reasons = [d["reason"] for d in _failed_logins(security)]
    assert reasons == ["expired", "revoked"]


def test_disabled_users_are_refused_at_once(secure: SecureServer) -> None:
    token = secure.user("bob", ("reader", "*"))
    client = secure.client(token=token)
    assert client.get("/api/v1/experiments").status_code == 200
    secure.security.set_disabled("bob", True, actor="test")
    assert client.get("/api/v1/experiments").status_code == 401


def test_tokens_are_stored_hashed(secure: SecureServer) -> None:
    new = secure.security.create_token("admin", "x", actor="test")
    import sqlalchemy as sa

    from shipyard.store.schema import auth_tokens, auth_users

    with secure.ws.store.database.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(sa.select(auth_tokens.c.secret_hash)).scalars().all()
        hashes = conn.execute(sa.select(auth_users.c.password_hash)).scalars().all()
    assert new.secret not in rows
    assert all(len(r) == 64 for r in rows)
    assert all(h.startswith("$argon2id$") for h in hashes if h)
    assert ADMIN_PASSWORD not in str(hashes)


def test_short_passwords_and_bad_names_are_refused(secure: SecureServer) -> None:
    with pytest.raises(InvalidInput, match="at least 8"):
        secure.security.create_user("carol", "short", actor="test")
    with pytest.raises(InvalidInput, match="not a valid user name"):
        secure.security.create_user("bad name\r\nX-Injected: 1", actor="test")


# ------------------------------------------------------------------------------ trusted header


@pytest.fixture
def proxied(tmp_path: object) -> Iterator[SecureServer]:
    from pathlib import Path

    home = Path(str(tmp_path)) / "proxied"
    ws = Workspace.open(
        secure_settings(
            home,
            SHIPYARD_AUTH_TRUSTED_HEADER="X-Forwarded-User",
            SHIPYARD_AUTH_TRUSTED_PROXIES="10.0.0.5,192.168.7.0/24",
        )
    )
    server = SecureServer(create_app(ws), ws, [])
    yield server
    for client in server._clients:
        client.close()
    ws.close()


def test_trusted_header_signs_in_only_from_a_trusted_proxy(proxied: SecureServer) -> None:
    header = {"X-Forwarded-User": "dana@example.com"}
    from_proxy = proxied.client(headers=header, address="10.0.0.5")
    resp = from_proxy.get("/api/v1/auth/whoami")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "username": "dana@example.com",
        "authenticated": True,
        "method": "trusted_header",
        "grants": [],
    }
    # Provisioned without a role: reading needs a grant.
    assert from_proxy.get("/api/v1/experiments").status_code == 403
    proxied.security.grant("dana@example.com", "reader", actor="test")
    assert from_proxy.get("/api/v1/experiments").status_code == 200
    assert (
        proxied.client(headers=header, address="192.168.7.20")
        .get("/api/v1/experiments")
        .status_code
        == 200
    )
    # The same header from anyone else is ignored: header injection gets nobody in.
    for address in ("10.0.0.6", "127.0.0.1", "192.168.8.1"):
        resp = proxied.client(headers=header, address=address).get("/api/v1/experiments")
        assert resp.status_code == 401, address
    events = [e.action for e in proxied.security.list_audit()]
    assert "user.provisioned" in events


def test_trusted_header_without_proxies_is_refused(tmp_path: object) -> None:
    from pathlib import Path

    settings = secure_settings(
        Path(str(tmp_path)) / "x", SHIPYARD_AUTH_TRUSTED_HEADER="X-Forwarded-User"
    )
    with Workspace.open(settings) as ws, pytest.raises(InvalidInput, match="TRUSTED_PROXIES"):
        create_app(ws)


def test_auth_off_by_default_for_the_embedded_app(workspace: Workspace) -> None:
    assert workspace.settings.auth == "auto"
    app = create_app(workspace)
    with httpx.Client(transport=ClientTransport(app), base_url="http://t") as client:
        assert client.get("/api/v1/experiments").status_code == 200
        assert client.get("/api/v1/auth/whoami").json()["username"] == "anonymous"


def test_settings_refuse_an_unknown_auth_mode() -> None:
    with pytest.raises(InvalidInput, match="SHIPYARD_AUTH"):
        Settings.from_env({"SHIPYARD_AUTH": "maybe"})
