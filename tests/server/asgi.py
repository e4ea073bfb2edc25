"""An in-process transport for synchronous httpx clients: requests go straight into an ASGI app
running on an event loop in a helper thread, with no socket and no server process."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import anyio.from_thread
import httpx
from anyio.from_thread import BlockingPortal
from starlette.types import ASGIApp


class ASGISyncTransport(httpx.BaseTransport):
    """Serve a synchronous ``httpx.Client`` (or :class:`shipyard._http.HttpClient`) from ``app``.

    Request and response bodies are buffered (tests of streaming in constant memory use the
    ``live_server`` fixture). Exceptions that escape the app are raised in the test.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._portal_cm: AbstractContextManager[BlockingPortal] = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal = self._portal_cm.__enter__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        inner_request = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )

        async def send() -> tuple[int, Any, bytes]:
            response = await self._inner.handle_async_request(inner_request)
            content = await response.aread()
            return response.status_code, response.headers, content

        status, headers, content = self._portal.call(send)
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)
