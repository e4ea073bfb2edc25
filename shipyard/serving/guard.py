"""Authentication and authorization for the model server, from the workspace's users and grants.

The same tokens, passwords and roles as the tracking server (:mod:`shipyard.security`), so one
``shipyard auth`` governs both. With auth on (``shipyard serve --auth on``, or ``auto`` on a
non-loopback address), per path:

=================================================  =============================================
path                                               who
=================================================  =============================================
``/ping``, ``/health``, ``/version``, ``/v2``,     everyone (load balancers probe them)
``/v2/health/*``
``/invocations``, ``/predict``, ``/v2/models/*``   everyone while ``SHIPYARD_AUTH_PUBLIC_PREDICTIONS``
                                                   is on (default); else ``read`` on each served
                                                   model
``/feedback``                                      ``write`` on each served model
``/metrics`` and anything else                     ``read`` on each served model
=================================================  =============================================

Refusals are ``401 UNAUTHENTICATED`` / ``403 PERMISSION_DENIED`` in the server's JSON error shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.errors import ShipyardError, Unauthenticated
from shipyard.security import Security
from shipyard.serving.traffic import DeploymentSpec, model_name

PUBLIC_PATHS = frozenset(
    {"/ping", "/health", "/version", "/v2", "/v2/health/live", "/v2/health/ready"}
)
PREDICTION_PREFIXES = ("/invocations", "/predict", "/v2/models/")


def served_models(spec: DeploymentSpec) -> list[str]:
    """The registered models a deployment's arms (and shadows) serve."""
    names: list[str] = []
    for arm in (*spec.arms, *spec.shadow):
        name = model_name(arm.model)
        if name and name not in names:
            names.append(name)
    return names


class ServingGuard:
    """Pure ASGI middleware guarding a model server app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        security: Security,
        models: Sequence[str],
        *,
        public_predictions: bool = True,
    ) -> None:
        self.app = app
        self.security = security
        self.resources = [f"model:{m}" for m in models] or ["model:*"]
        self.public_predictions = public_predictions

    def _action(self, path: str) -> str | None:
        if path in PUBLIC_PATHS:
            return None
        if path.startswith(PREDICTION_PREFIXES):
            return None if self.public_predictions else "read"
        return "write" if path == "/feedback" else "read"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        action = self._action(scope["path"])
        if action is not None:
            try:
                await asyncio.to_thread(self._check, scope, action)
            except ShipyardError as exc:
                await _refuse(scope, send, exc)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, action: str) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        user = self.security.authenticate(
            headers.get("authorization", ""), remote_addr=client[0] if client else None
        ).user
        for resource in self.resources:
            self.security.check(user.username, action, resource)


async def _refuse(scope: Scope, send: Send, exc: ShipyardError) -> None:
    headers = [(b"content-type", b"application/json")]
    if isinstance(exc, Unauthenticated):
        headers.append((b"www-authenticate", b'Basic realm="Shipyard", charset="UTF-8"'))
    body = exc.to_dict()
    if scope["path"].startswith("/v2"):
        body = {"error": exc.message}
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
