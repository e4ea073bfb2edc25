"""The authentication and authorization seam: one layer, off by default.

Two small protocols decide who is calling and what they may do:

* an :class:`Authenticator` turns a request into a :class:`Principal` (or raises
  :class:`~shipyard.errors.Unauthenticated`). :class:`AuthMiddleware` runs it once per request
  and leaves the principal on ``request.state.principal``. The default,
  :class:`AnonymousAuthenticator`, answers :data:`ANONYMOUS` for everyone.
* an :class:`Authorizer` gets ``(principal, action, resource)`` and raises
  :class:`~shipyard.errors.PermissionDenied` to refuse. Every API route declares its ``action``
  (``"read"``, ``"write"`` or ``"admin"``) and the kind of resource it touches; the route wrapper
  in :mod:`shipyard.server.routing` calls :func:`authorize` before the handler runs, with
  ``resource`` spelled ``"<kind>:<id>"`` (``"run:8f2c..."``, ``"experiment:12"``) or
  ``"<kind>:*"`` when the route names no single resource (create, search). The default,
  :class:`AllowAll`, allows everything.

Adding real security later means writing one authenticator (tokens, OIDC, mTLS headers from a
proxy...) and one authorizer (roles, per-experiment grants), and passing them to
:func:`shipyard.server.app.create_app`; no route changes. Handlers whose resource is only known
from the body (creating a run in an experiment) call :func:`authorize` again with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import ShipyardError
from shipyard.server.errors import error_response

Action = Literal["read", "write", "admin"]

PUBLIC_PATHS = frozenset({"/health", "/version"})
"""Paths answered without authentication (load balancers and ``mlflow`` probe them)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user or a service account, with optional roles for the authorizer."""

    name: str
    authenticated: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)


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


def principal_of(request: HTTPConnection) -> Principal:
    """The principal :class:`AuthMiddleware` attached to the request (anonymous if none)."""
    state = request.scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else ANONYMOUS


async def authorize(request: Request, action: Action, resource: str) -> None:
    """Ask the app's authorizer whether the request's principal may do ``action`` on
    ``resource``; raises ``PermissionDenied`` if not."""
    authorizer = getattr(request.app.state, "authorizer", None)
    if authorizer is None or isinstance(authorizer, AllowAll):
        return
    await authorizer.authorize(principal_of(request), action, resource)


class AuthMiddleware:
    """ASGI middleware running the authenticator once per HTTP request (pure ASGI, so streamed
    request and response bodies pass through untouched)."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if isinstance(self.authenticator, AnonymousAuthenticator):
            principal = ANONYMOUS
        else:
            try:
                principal = await self.authenticator.authenticate(HTTPConnection(scope))
            except ShipyardError as exc:
                await error_response(scope["path"], exc)(scope, receive, send)
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
