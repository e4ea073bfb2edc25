"""Users, API tokens, role grants and the audit log over HTTP (``/api/v1/auth``).

Everyone signed in may read who they are and manage their own tokens (resource ``self:*``);
users, grants, other users' tokens and the audit log need ``admin`` on the workspace. The same
operations are ``shipyard auth ...`` on the server's host. Token secrets appear once, in the
answer that creates them.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard.errors import InvalidInput
from shipyard.security import Security
from shipyard.security.roles import ROLES, WORKSPACE_SCOPE
from shipyard.server._http_util import (
    json_response,
    optional_bool,
    optional_int,
    optional_str,
    query,
    read_json_object,
    require_str,
)
from shipyard.server.api.schemas import (
    BOOLEAN,
    EMPTY,
    INTEGER,
    NULLABLE_INTEGER,
    STRING,
    array,
    obj,
)
from shipyard.server.auth import authorize, principal_of
from shipyard.server.routing import ApiRouter, QueryParam

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="auth")

_ROLE = {"type": "string", "enum": list(ROLES)}
_USER = obj(
    {
        "username": STRING,
        "has_password": BOOLEAN,
        "disabled": BOOLEAN,
        "creation_time": INTEGER,
        "last_update_time": INTEGER,
    }
)
_TOKEN = obj(
    {
        "token_id": STRING,
        "username": STRING,
        "name": STRING,
        "creation_time": INTEGER,
        "expiry_time": NULLABLE_INTEGER,
        "revoked_time": NULLABLE_INTEGER,
        "last_used_time": NULLABLE_INTEGER,
    }
)
_GRANT = obj(
    {
        "username": STRING,
        "scope": STRING,
        "role": _ROLE,
        "granted_by": STRING,
        "creation_time": INTEGER,
    }
)
_EVENT = {"type": "object", "additionalProperties": True}
_SCOPE_DOC = "'*' (the workspace), 'experiment:<id>' or 'model:<name>'."


def routes(ws: Workspace) -> list[BaseRoute]:
    """The security endpoints bound to ``ws``."""
    return router.routes(ws)


def security_of(request: Request, ws: Workspace) -> Security:
    """The app's security service (the authorizer's when auth is on, so caches are shared)."""
    state = request.app.state
    found = getattr(getattr(state, "authorizer", None), "security", None)
    if isinstance(found, Security):
        return found
    cached = getattr(state, "security", None)
    if cached is None:
        cached = state.security = Security.for_workspace(ws)
    return cached


def _actor(request: Request) -> str:
    return principal_of(request).name


# ------------------------------------------------------------------------------ self


@router.get(
    "/api/v1/auth/whoami",
    action="read",
    resource="self",
    summary="Who the caller is, and its grants",
    response=obj(
        {"username": STRING, "authenticated": BOOLEAN, "method": STRING, "grants": array(_GRANT)}
    ),
)
async def whoami(request: Request, ws: Workspace) -> Response:
    """The caller's name, how it signed in and the roles it holds."""
    principal = principal_of(request)
    grants: list[Any] = []
    if principal.authenticated:
        grants = await run_in_threadpool(security_of(request, ws).list_grants, principal.name)
    return json_response(
        {
            "username": principal.name,
            "authenticated": principal.authenticated,
            "method": principal.method,
            "grants": [asdict(g) for g in grants],
        }
    )


async def _may_manage(request: Request, username: str) -> None:
    """Acting on another user's tokens needs ``admin``."""
    principal = principal_of(request)
    if not principal.authenticated or principal.name != username:
        await authorize(request, "admin", "server:*")


@router.post(
    "/api/v1/auth/tokens",
    action="write",
    resource="self",
    summary="Create an API token",
    request=obj(
        {
            "name": STRING,
            "expires_in_days": {"type": ["number", "null"]},
            "username": {**STRING, "description": "Another user's (admin only)."},
        }
    ),
    response=obj({"token": _TOKEN, "secret": STRING}, ("token", "secret")),
    status=201,
)
async def create_token(request: Request, ws: Workspace) -> Response:
    """A new token for the caller (or, for an admin, another user). The ``secret`` is shown
    only in this answer; send it as ``Authorization: Bearer <secret>``."""
    body = await read_json_object(request)
    principal = principal_of(request)
    username = optional_str(body, "username") or principal.name
    await _may_manage(request, username)
    days = body.get("expires_in_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int | float)):
        raise InvalidInput("expires_in_days must be a number of days, or null.")
    new = await run_in_threadpool(
        lambda: security_of(request, ws).create_token(
            username,
            optional_str(body, "name") or "default",
            expires_in_days=None if days is None else float(days),
            actor=_actor(request),
            not_after=principal.token_expiry,  # a token can't mint one that outlives it
        )
    )
    return json_response({"token": asdict(new.token), "secret": new.secret}, 201)


@router.get(
    "/api/v1/auth/tokens",
    action="read",
    resource="self",
    summary="List API tokens",
    query=(QueryParam("username", STRING, "Another user's (admin only); 'all' for everyone's."),),
    response=obj({"tokens": array(_TOKEN)}, ("tokens",)),
)
async def list_tokens(request: Request, ws: Workspace) -> Response:
    """The caller's tokens (revoked and expired ones included), newest first."""
    username = optional_str(query(request), "username") or principal_of(request).name
    await _may_manage(request, username)
    who = None if username == "all" else username
    tokens = await run_in_threadpool(security_of(request, ws).list_tokens, who)
    return json_response({"tokens": [asdict(t) for t in tokens]})


@router.delete(
    "/api/v1/auth/tokens/{token_id}",
    action="write",
    resource="self",
    summary="Revoke an API token",
    response=obj({"token": _TOKEN}, ("token",)),
)
async def revoke_token(request: Request, ws: Workspace) -> Response:
    """Revoke a token (its next use is refused). Your own, or anyone's for an admin."""
    security = security_of(request, ws)
    token = await run_in_threadpool(security.get_token, request.path_params["token_id"])
    await _may_manage(request, token.username)
    revoked = await run_in_threadpool(
        lambda: security.revoke_token(token.token_id, actor=_actor(request))
    )
    return json_response({"token": asdict(revoked)})


# ------------------------------------------------------------------------------ users (admin)


@router.post(
    "/api/v1/auth/users",
    action="admin",
    resource="server",
    summary="Create a user",
    request=obj({"username": STRING, "password": STRING}, ("username",)),
    response=obj({"user": _USER}, ("user",)),
    status=201,
)
async def create_user(request: Request, ws: Workspace) -> Response:
    """A new user (no password: it signs in with tokens or through the trusted proxy). It holds
    no role until granted one."""
    body = await read_json_object(request)
    username, password = require_str(body, "username"), optional_str(body, "password")
    user = await run_in_threadpool(
        lambda: security_of(request, ws).create_user(username, password, actor=_actor(request))
    )
    return json_response({"user": asdict(user)}, 201)


@router.get(
    "/api/v1/auth/users",
    action="admin",
    resource="server",
    summary="List users",
    response=obj({"users": array(_USER)}, ("users",)),
)
async def list_users(request: Request, ws: Workspace) -> Response:
    """Every user, by name."""
    users = await run_in_threadpool(security_of(request, ws).list_users)
    return json_response({"users": [asdict(u) for u in users]})


@router.patch(
    "/api/v1/auth/users/{username}",
    action="admin",
    resource="server",
    summary="Change a user's password or disable it",
    request=obj({"password": STRING, "disabled": BOOLEAN}),
    response=obj({"user": _USER}, ("user",)),
)
async def update_user(request: Request, ws: Workspace) -> Response:
    """Set a new password and/or disable (enable) the user; a disabled user's credentials are
    refused."""
    body = await read_json_object(request)
    username, actor = request.path_params["username"], _actor(request)
    security = security_of(request, ws)
    password = optional_str(body, "password")
    user = await run_in_threadpool(security.get_user, username)
    if password is not None:
        user = await run_in_threadpool(
            lambda: security.set_password(username, password, actor=actor)
        )
    if "disabled" in body:
        disabled = optional_bool(body, "disabled")
        user = await run_in_threadpool(
            lambda: security.set_disabled(username, disabled, actor=actor)
        )
    return json_response({"user": asdict(user)})


@router.delete(
    "/api/v1/auth/users/{username}",
    action="admin",
    resource="server",
    summary="Delete a user",
    response=EMPTY,
)
async def delete_user(request: Request, ws: Workspace) -> Response:
    """Remove a user with its tokens and grants (the audit log keeps its events)."""
    username = request.path_params["username"]
    await run_in_threadpool(
        lambda: security_of(request, ws).delete_user(username, actor=_actor(request))
    )
    return json_response({})


# ------------------------------------------------------------------------------ grants (admin)


@router.get(
    "/api/v1/auth/grants",
    action="admin",
    resource="server",
    summary="List role grants",
    query=(
        QueryParam("username", STRING, "Only this user's."),
        QueryParam("scope", STRING, "Only on this scope: " + _SCOPE_DOC),
    ),
    response=obj({"grants": array(_GRANT)}, ("grants",)),
)
async def list_grants(request: Request, ws: Workspace) -> Response:
    """Grants, optionally of one user or on one scope."""
    q = query(request)
    grants = await run_in_threadpool(
        security_of(request, ws).list_grants, optional_str(q, "username"), optional_str(q, "scope")
    )
    return json_response({"grants": [asdict(g) for g in grants]})


@router.put(
    "/api/v1/auth/grants",
    action="admin",
    resource="server",
    summary="Grant a role",
    request=obj(
        {"username": STRING, "role": _ROLE, "scope": {**STRING, "description": _SCOPE_DOC}},
        ("username", "role"),
    ),
    response=obj({"grant": _GRANT}, ("grant",)),
)
async def set_grant(request: Request, ws: Workspace) -> Response:
    """Give a user a role on a scope (default: the whole workspace), replacing the role it
    held there. Audited."""
    body = await read_json_object(request)
    username, role = require_str(body, "username"), require_str(body, "role")
    scope = optional_str(body, "scope") or WORKSPACE_SCOPE
    grant = await run_in_threadpool(
        lambda: security_of(request, ws).grant(username, role, scope, actor=_actor(request))
    )
    return json_response({"grant": asdict(grant)})


@router.delete(
    "/api/v1/auth/grants",
    action="admin",
    resource="server",
    summary="Revoke a role",
    query=(
        QueryParam("username", STRING, "The user.", required=True),
        QueryParam("scope", STRING, "The scope (default '*'): " + _SCOPE_DOC),
    ),
    response=obj({"grant": _GRANT}, ("grant",)),
)
async def revoke_grant(request: Request, ws: Workspace) -> Response:
    """Remove a user's role on a scope. Audited."""
    q = query(request)
    username = require_str(q, "username")
    scope = optional_str(q, "scope") or WORKSPACE_SCOPE
    grant = await run_in_threadpool(
        lambda: security_of(request, ws).revoke(username, scope, actor=_actor(request))
    )
    return json_response({"grant": asdict(grant)})


@router.get(
    "/api/v1/auth/audit",
    action="admin",
    resource="server",
    summary="Read the security audit log",
    query=(
        QueryParam("limit", INTEGER, "How many events (1-10000, default 100)."),
        QueryParam("action", STRING, "Only this kind (grant.set, login.failed...)."),
        QueryParam("before_id", INTEGER, "Events older than this one (paging)."),
    ),
    response=obj({"events": array(_EVENT)}, ("events",)),
)
async def list_audit(request: Request, ws: Workspace) -> Response:
    """Security events, newest first: user and token changes, grants, revokes, failed logins."""
    q = query(request)
    events = await run_in_threadpool(
        lambda: security_of(request, ws).list_audit(
            limit=optional_int(q, "limit", 100) or 100,
            action=optional_str(q, "action"),
            before_id=optional_int(q, "before_id"),
        )
    )
    return json_response({"events": [asdict(e) for e in events]})
