"""The HTTP client the REST store and REST artifact repository share.

One keep-alive connection pool per workspace; errors from the server are rebuilt as the same
:mod:`shipyard.errors` class; transport failures become ``StoreUnavailable`` with a message that
says what to check.
"""

from __future__ import annotations

import json as _json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from shipyard._version import __version__
from shipyard.errors import ShipyardError, StoreUnavailable, error_from_dict

_RETRY_STATUSES = {502, 503, 504}
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE"}


class HttpClient:
    """A thin wrapper over :class:`httpx.Client` speaking Shipyard's REST API."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"shipyard/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a JSON request and return the decoded JSON answer (errors raised as classes)."""
        body = None if json is None else _json.dumps(json, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"} if body is not None else None
        resp = self.send(method, path, content=body, params=params, headers=headers)
        if not resp.content:
            return None
        return resp.json()

    def send(
        self,
        method: str,
        path: str,
        *,
        content: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request with retries on transport errors (idempotent methods only)."""
        attempts = self.retries + 1 if method in _IDEMPOTENT or content is None else 1
        for attempt in range(attempts):
            try:
                resp = self._client.request(
                    method, path, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise StoreUnavailable(
                    f"Cannot reach the Shipyard server at {self.base_url} ({exc}). Check that "
                    "`shipyard server` is running there, or fix SHIPYARD_TRACKING_URI."
                ) from exc
            if resp.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                time.sleep(0.2 * 2**attempt)
                continue
            raise_for_error(resp)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def stream(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """Stream a response body (downloads in constant memory)."""
        try:
            with self._client.stream(method, path, params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise_for_error(resp)
                yield resp
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"Cannot reach the Shipyard server at {self.base_url} ({exc})."
            ) from exc

    def close(self) -> None:
        self._client.close()


def raise_for_error(resp: httpx.Response) -> None:
    """Raise the Shipyard error a response carries, if it is not a success."""
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_code" in body:
        raise error_from_dict(body, status=resp.status_code)
    raise ShipyardError(
        f"The server at {resp.request.url} answered HTTP {resp.status_code}: {resp.text[:200]!r}"
    )
