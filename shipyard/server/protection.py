"""Request limits and security headers: two small pure-ASGI middlewares.

* :class:`LimitsMiddleware` refuses bodies larger than ``Settings.max_request_bytes`` (``413
  PAYLOAD_TOO_LARGE``, from ``Content-Length`` before anything is read, or as soon as a streamed
  body passes the limit) and more than ``Settings.rate_limit_per_minute`` requests per client
  address per minute (``429 REQUEST_LIMIT_EXCEEDED`` with ``Retry-After``). Both are off (0) by
  default. Limits are per worker process; put a shared limit in the reverse proxy.
* :class:`SecurityHeadersMiddleware` adds ``X-Content-Type-Options: nosniff`` to every response
  and, to HTML responses (the web UI), a strict Content-Security-Policy (the UI ships its
  scripts and styles from the package, so ``'self'`` is enough), ``X-Frame-Options: DENY``,
  ``Referrer-Policy`` and ``Cross-Origin-Opener-Policy``. Headers a route sets itself are kept.
"""

from __future__ import annotations

import math
import threading
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import PayloadTooLarge, RateLimited
from shipyard.server.auth import PUBLIC_PATHS
from shipyard.server.errors import error_response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HTML_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
"""Headers added to every ``text/html`` response."""


class SecurityHeadersMiddleware:
    """Adds :data:`HTML_HEADERS` to HTML responses and ``nosniff`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-content-type-options" not in headers:
                    headers["X-Content-Type-Options"] = "nosniff"
                if headers.get("content-type", "").startswith("text/html"):
                    for name, value in HTML_HEADERS.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LimitsMiddleware:
    """Body-size and request-rate limits (each off when 0)."""

    def __init__(self, app: ASGIApp, max_request_bytes: int = 0, per_minute: int = 0) -> None:
        self.app = app
        self.max_bytes = max_request_bytes
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if self.per_minute > 0:
            wait = self._count(scope)
            if wait is not None:
                exc = RateLimited(
                    f"More than {self.per_minute} requests in a minute came from this address; "
                    f"retry in {wait} s, or ask the operator to raise SHIPYARD_RATE_LIMIT."
                )
                response = error_response(scope["path"], exc)
                response.headers["Retry-After"] = str(wait)
                await response(scope, receive, send)
                return
        if self.max_bytes > 0:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_bytes:
                await error_response(scope["path"], self._too_large(scope))(scope, receive, send)
                return
            receive = self._counting(scope, receive)
        await self.app(scope, receive, send)

    def _too_large(self, scope: Scope) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The body of {scope['method']} {scope['path']} is larger than this server accepts "
            f"({self.max_bytes} bytes, SHIPYARD_MAX_REQUEST_BYTES); send less per request."
        )

    def _counting(self, scope: Scope, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._too_large(scope)
            return message

        return counted

    def _count(self, scope: Scope) -> int | None:
        """Count one request of the client; seconds to wait when over the limit, else None."""
        client = scope.get("client")
        key = client[0] if client else "?"
        now = time.monotonic()
        window = int(now // 60)
        with self._lock:
            start, count = self._windows.get(key, (window, 0))
            if start != window:
                start, count = window, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 100_000:  # forget old windows (a flood of addresses)
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        if count <= self.per_minute:
            return None
        return max(1, math.ceil((window + 1) * 60 - now))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
