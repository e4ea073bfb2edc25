"""Authentication and authorization: one layer for every surface the server mounts.

Two small protocols decide who is calling and what they may do:

* an :class:`Authenticator` turns a request into a :class:`Principal` (or raises
  :class:`~shipyard.errors.Unauthenticated`, answered ``401`` with ``WWW-Authenticate: Basic``).
  :class:`AuthMiddleware` runs it once per request and leaves the principal on
  ``request.state.principal``.
* an :class:`Authorizer` gets ``(principal, action, resource)`` and raises
  :class:`~shipyard.errors.PermissionDenied` (``403 PERMISSION_DENIED``) to refuse.

The defaults, :class:`AnonymousAuthenticator` and :class:`AllowAll`, serve the embedded case and
a server on 127.0.0.1. With auth on (:func:`auth_for_workspace`, chosen by ``Settings.auth`` and
``shipyard server``'s listening address) the real pair is :class:`WorkspaceAuthenticator` (HTTP
Basic with a password or a token, ``Bearer`` tokens, and an OIDC proxy's trusted header) and
:class:`RoleAuthorizer` (roles granted per workspace, experiment or registered model; see
:mod:`shipyard.security.roles`).

How each surface is covered
---------------------------
* **Shipyard's API** (``/api/v1``): every route is declared through
  :class:`shipyard.server.routing.ApiRouter` with ``action=`` one of ``"read"``, ``"write"``,
  ``"deploy"`` or ``"admin"`` and the kind of resource it touches; the route wrapper calls
  :func:`authorize` with ``"<kind>:<id>"`` (``"run:8f2c..."``, ``"experiment:12"``,
  ``"model:churn"``) or ``"<kind>:*"`` when the route names no single resource (create, search).
  A route that promotes, rolls back, pauses a rollout or changes traffic declares
  ``action="deploy"`` (the deployer role); to let model-level grants apply, name the
  registered model as the resource (``resource="model", resource_param="name"``). A handler
  whose resource is only known from the body declares ``authorized_by_handler=True`` and calls
  :func:`authorize` itself.
* **The MLflow-compatible API** (``/api/2.0/mlflow...``): each endpoint spec carries its action
  and resource (:mod:`shipyard.server.mlflow._wire`); alias moves and stage transitions call
  :func:`authorize_alias_move` / :func:`authorize_stage_change`.
* **Everything else** (the web UI at ``/``, static files): :class:`AuthMiddleware` asks for
  ``read`` on ``"ui:*"`` for ``GET``/``HEAD`` and ``write`` for other methods, where the role
  on ``ui:*`` is the strongest held on any scope (any grant opens the pages; a form POST needs
  editor somewhere). Every UI route then asks for its own action and resource as the API
  routes do (:mod:`shipyard.server.ui._routing`: pages and chart data ``read``, the deployment
  buttons ``deploy`` on ``deployment:<name>``), so a deployer granted on one model can press
  its deployment's buttons and an editor cannot.
* ``/health`` and ``/version`` (:data:`PUBLIC_PATHS`) answer without credentials.
* **Cross-site requests**: a write (any method but ``GET``/``HEAD``/``OPTIONS``) to the APIs
  whose ``Origin`` (or ``Referer``) names another site is refused ``403`` before
  authentication, unless it carries a ``Bearer`` token (:func:`cross_site_refusal`): otherwise
  any page a signed-in user visits could post to the API with the browser's saved credentials.
  The UI's forms check the same (:func:`shipyard.server.ui._routing.same_origin`).

Moves of *protected* aliases (``Settings.protected_aliases``: ``production``, ``prod`` and
``champion`` by default) and stage transitions to or out of ``Production`` need ``deploy`` on the
model.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.entities import ModelStage
from shipyard.errors import PermissionDenied, ShipyardError, Unauthenticated
from shipyard.security.roles import Action
from shipyard.server.errors import error_response

if TYPE_CHECKING:
    from shipyard.security import Security
    from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.server.auth")

__all__ = [
    "ANONYMOUS",
    "PUBLIC_PATHS",
    "Action",
    "AllowAll",
    "AnonymousAuthenticator",
    "AuthMiddleware",
    "Authenticator",
    "Authorizer",
    "Principal",
    "RoleAuthorizer",
    "WorkspaceAuthenticator",
    "auth_for_workspace",
    "authorize",
    "authorize_alias_move",
    "authorize_stage_change",
    "cross_site_refusal",
    "principal_of",
]

PUBLIC_PATHS = frozenset({"/health", "/version"})
"""Paths answered without authentication (load balancers and ``mlflow`` probe them)."""

API_PREFIXES = ("/api/", "/ajax-api/")
"""Paths whose routes authorize themselves (declared actions); the rest is gated as UI."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing: never refused for coming from another site."""

UI_RESOURCE = "ui:*"
WWW_AUTHENTICATE = 'Basic realm="Shipyard", charset="UTF-8"'
DEFAULT_PROTECTED_ALIASES = frozenset({"production", "prod", "champion"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user or a service account, with optional roles for the authorizer."""

    name: str
    authenticated: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    method: str = "anonymous"
    """How it authenticated: ``anonymous``, ``password``, ``token`` or ``trusted_header``."""
    token_expiry: int | None = None
    """With ``method="token"``: when that token expires (epoch ms), if it does."""


ANONYMOUS = Principal("anonymous")
"""The principal of every request when no authenticator is configured."""


class Authenticator(Protocol):
    """Turns a request into a principal. Raise ``Unauthenticated`` for bad credentials."""

    async def authenticate(self, conn: HTTPConnection) -> Principal: ...


class Authorizer(Protocol):
    """Decides whether ``principal`` may perform ``action`` on ``resource``.

    Raise ``PermissionDenied`` (with a message that says which permission is missing and who
    grants it) to refuse; return to allow. Called on the event loop: do blocking lookups through
    :func:`starlette.concurrency.run_in_threadpool`, or cache them.
    """

    async def authorize(self, principal: Principal, action: Action, resource: str) -> None: ...


class AnonymousAuthenticator:
    """The default: every caller is :data:`ANONYMOUS`."""

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        return ANONYMOUS


class AllowAll:
    """The default authorizer: everything is allowed."""

    async def authorize(self, principal: Principal, action: Action, resource: str) -> None:
        return None


# ------------------------------------------------------------------------------ the real pair


def parse_networks(
    spec: str | Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"10.0.0.5, 10.1.0.0/16"`` -> networks; ``InvalidInput`` for a malformed entry."""
    from shipyard.errors import InvalidInput

    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidInput(
                f"Trusted proxy {item!r} is not an IP address or network (e.g. 10.0.0.5 or "
                "10.0.0.0/24); fix SHIPYARD_AUTH_TRUSTED_PROXIES."
            ) from None
    return tuple(out)


class WorkspaceAuthenticator:
    """Users and tokens of the workspace's security store.

    Accepted, in order:

    1. the ``trusted_header`` (e.g. ``X-Forwarded-User``) set by an OIDC reverse proxy, only on
       connections from ``trusted_proxies``; elsewhere the header is ignored;
    2. ``Authorization: Bearer <token>`` (``MLFLOW_TRACKING_TOKEN``);
    3. ``Authorization: Basic`` with a user name and either its password or one of its tokens
       (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``).
    """

    def __init__(
        self,
        security: Security,
        *,
        trusted_header: str | None = None,
        trusted_proxies: str | Iterable[str] = (),
    ) -> None:
        self.security = security
        self.trusted_header = trusted_header.lower() if trusted_header else None
        self.trusted_proxies = parse_networks(trusted_proxies)
        if self.trusted_header and not self.trusted_proxies:
            from shipyard.errors import InvalidInput

            raise InvalidInput(
                "A trusted header needs the proxies allowed to send it: set "
                "SHIPYARD_AUTH_TRUSTED_PROXIES to the proxy's address (e.g. 127.0.0.1)."
            )

    def _from_trusted_proxy(self, host: str | None) -> bool:
        if not host or not self.trusted_proxies:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted_proxies)

    async def authenticate(self, conn: HTTPConnection) -> Principal:
        host = conn.client.host if conn.client else None
        if self.trusted_header and self._from_trusted_proxy(host):
            name = conn.headers.get(self.trusted_header, "").strip()
            if name:
                user = await run_in_threadpool(self.security.trusted_user, name, remote_addr=host)
                return Principal(user.username, True, method="trusted_header")
        signed_in = await run_in_threadpool(
            self.security.authenticate,
            conn.headers.get("authorization", ""),
            remote_addr=host,
        )
        return Principal(
            signed_in.user.username,
            True,
            method=signed_in.method,
            token_expiry=signed_in.token_expiry,
        )


class RoleAuthorizer:
    """Roles granted per workspace, experiment or registered model (:class:`Security`)."""

    def __init__(self, security: Security) -> None:
        self.security = security

    async def authorize(self, principal: Principal, action: Action, resource: str) -> None:
        if not principal.authenticated:
            raise Unauthenticated(
                "This server requires credentials; send a token ('Authorization: Bearer ...')."
            )
        await run_in_threadpool(self.security.check, principal.name, action, resource)


def auth_for_workspace(ws: Workspace) -> tuple[Authenticator, Authorizer]:
    """The real authenticator and authorizer over ``ws``'s security store and settings."""
    from shipyard.security import Security

    security = Security.for_workspace(ws)
    authenticator = WorkspaceAuthenticator(
        security,
        trusted_header=ws.settings.auth_trusted_header,
        trusted_proxies=ws.settings.auth_trusted_proxies,
    )
    return authenticator, RoleAuthorizer(security)


# ------------------------------------------------------------------------------ helpers


def principal_of(request: HTTPConnection) -> Principal:
    """The principal :class:`AuthMiddleware` attached to the request (anonymous if none)."""
    state = request.scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else ANONYMOUS


async def authorize(request: HTTPConnection, action: Action, resource: str) -> None:
    """Ask the app's authorizer whether the request's principal may do ``action`` on
    ``resource``; raises ``PermissionDenied`` if not."""
    authorizer = getattr(request.app.state, "authorizer", None)
    if authorizer is None or isinstance(authorizer, AllowAll):
        return
    await authorizer.authorize(principal_of(request), action, resource)


def readable_ids(request: HTTPConnection, kind: str) -> set[str] | None:
    """What the request's principal may read of ``kind`` (``experiment`` or ``model``):
    ``None`` for everything (no authorizer, or a workspace grant), else the ids of the
    experiments or names of the models its grants name. Blocking: call from a worker thread.
    An authorizer that cannot enumerate grants answers ``None`` when it allows ``kind:*``;
    otherwise its refusal is raised."""
    authorizer = getattr(request.app.state, "authorizer", None)
    if authorizer is None or isinstance(authorizer, AllowAll):
        return None
    principal = principal_of(request)
    if isinstance(authorizer, RoleAuthorizer) and principal.authenticated:
        return authorizer.security.readable(principal.name, kind)
    anyio.from_thread.run(authorizer.authorize, principal, "read", f"{kind}:*")
    return None


def experiment_scopes(experiment_ids: Iterable[str]) -> list[str]:
    """The resources a search over ``experiment_ids`` reads: each listed experiment once, so a
    user granted on an experiment may search it; ``experiment:*`` (a workspace grant) when the
    search names none and so spans the workspace."""
    return [f"experiment:{e}" for e in dict.fromkeys(experiment_ids)] or ["experiment:*"]


def protected_aliases(request: HTTPConnection) -> frozenset[str]:
    """The aliases whose moves need ``deploy`` on this app (lower case)."""
    aliases = getattr(request.app.state, "protected_aliases", None)
    return aliases if isinstance(aliases, frozenset) else DEFAULT_PROTECTED_ALIASES


async def authorize_alias_move(request: HTTPConnection, model: str, alias: str) -> None:
    """Moving or deleting a protected alias changes production: it needs ``deploy``."""
    if alias.lower() in protected_aliases(request):
        await authorize(request, "deploy", f"model:{model}")


async def authorize_stage_change(
    request: HTTPConnection, model: str, stage: str, *, version: object = None
) -> None:
    """A transition to ``Production``, or of ``version`` out of it (archiving or demoting what
    production serves), needs ``deploy``. Callers pass the version being moved: without it only
    the target stage can be checked."""
    if stage.strip().lower() == "production" or (
        version is not None and await _in_production(request, model, version)
    ):
        await authorize(request, "deploy", f"model:{model}")


async def _in_production(request: HTTPConnection, model: str, version: object) -> bool:
    """Whether ``model``'s ``version`` is in the ``Production`` stage now (``False`` for an
    unknown or malformed one, which the handler answers, and without an authorizer)."""
    state = request.app.state
    authorizer = getattr(state, "authorizer", None)
    ws = getattr(state, "workspace", None)
    if ws is None or authorizer is None or isinstance(authorizer, AllowAll):
        return False
    try:
        number = int(str(version))
        found = await run_in_threadpool(ws.registry.get_model_version, model, number)
    except (ValueError, ShipyardError):
        return False
    return found.current_stage == ModelStage.PRODUCTION


# ------------------------------------------------------------------------------ the middleware


def cross_site_refusal(conn: HTTPConnection) -> PermissionDenied | None:
    """Why an API write sent by a browser from another site is refused (``None`` to let it in).

    A browser attaches saved credentials (HTTP Basic typed into the UI's prompt, an SSO
    proxy's cookie) to a form or ``fetch`` that any site can aim at the API, with a JSON body
    posted as ``text/plain``; such a request names its page in ``Origin`` (or ``Referer``). A
    ``Bearer`` token is never attached by the browser, and clients that are not browsers send
    neither header: both pass."""
    if conn.headers.get("authorization", "")[:7].lower() == "bearer ":
        return None
    origin = conn.headers.get("origin") or conn.headers.get("referer")
    if not origin:
        return None
    # Hosts, not schemes: behind a TLS-terminating proxy the page is https and the server http.
    hosts = {conn.headers.get("host"), conn.headers.get("x-forwarded-host")} - {None}
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # e.g. "http://[": not this server either
        netloc = ""
    if netloc and netloc in hosts:
        return None
    return PermissionDenied(
        f"This {conn.scope['method']} came from a page on {origin}, not from this server "
        f"({', '.join(sorted(h for h in hosts if h)) or 'no Host header'}): browsers' saved "
        "credentials are not accepted from other sites. Use the Shipyard UI itself, or call the "
        "API with a token ('Authorization: Bearer ...')."
    )


class AuthMiddleware:
    """ASGI middleware running the authenticator once per HTTP request (pure ASGI, so streamed
    request and response bodies pass through untouched), then gating the paths outside the
    APIs (the UI) on ``ui:*``."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and scope["path"].startswith(API_PREFIXES):
            refusal = cross_site_refusal(HTTPConnection(scope))
            if refusal is not None:
                await error_response(scope["path"], refusal)(scope, receive, send)
                return
        if isinstance(self.authenticator, AnonymousAuthenticator):
            scope.setdefault("state", {})["principal"] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            principal = await self.authenticator.authenticate(conn)
            scope.setdefault("state", {})["principal"] = principal
            if not scope["path"].startswith(API_PREFIXES):
                # The UI's gate (a role somewhere); each UI route then authorizes its own action.
                action: Action = "read" if scope["method"] in ("GET", "HEAD") else "write"
                await authorize(conn, action, UI_RESOURCE)
        except ShipyardError as exc:
            response = error_response(scope["path"], exc)
            if isinstance(exc, Unauthenticated):
                response.headers["WWW-Authenticate"] = WWW_AUTHENTICATE
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
