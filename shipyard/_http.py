"""The HTTP client the REST store and REST artifact repository share.

JSON calls (every store method) go over the standard library's ``http.client``, one keep-alive
connection per thread, when the server is a plain ``http://`` URL that no proxy setting applies
to: a call costs about a quarter of what :mod:`httpx` spends on it (~0.15 ms against ~0.5 ms of
client CPU here), and the SDK makes one call per logged batch or registry move. Streams
(uploads, downloads), ``https://`` servers and proxied servers go through one :class:`httpx.Client`
pool. Errors from the server are rebuilt as the same :mod:`shipyard.errors` class either way;
transport failures become ``StoreUnavailable`` with a message that says what to check.
"""

from __future__ import annotations

import http.client
import json as _json
import os
import select
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from shipyard._version import __version__
from shipyard.errors import ShipyardError, StoreUnavailable, error_from_dict

_T = TypeVar("_T")
_RETRY_STATUSES = {502, 503, 504}
_IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE"}
# What a path may hold unescaped (RFC 3986 pchar and "/"); "%" keeps the callers' escapes.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class HttpClient:
    """Shipyard's REST API over HTTP: JSON calls, streamed uploads and downloads."""

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
        self._client_args: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": headers,
            "timeout": timeout,
            "transport": transport,
        }
        self._pool: httpx.Client | None = httpx.Client(**self._client_args)
        self._fast = (
            _Connections(self.base_url, headers, timeout)
            if transport is None and _direct_http(self.base_url)
            else None
        )
        _FORKABLE.add(self)

    def _after_fork_in_child(self) -> None:
        # The parent's pooled connections stay the parent's: a forked child (a multiprocessing
        # worker) opens its own, so no socket carries two processes' requests and answers.
        # The inherited pool is dropped, not closed (closing could end a TLS session the parent
        # still uses); its sockets are this process's copies only. The new pool is built on
        # first use, not in the fork handler.
        self._pool = None
        if self._fast is not None:
            self._fast.after_fork_in_child()

    @property
    def _client(self) -> httpx.Client:
        """The httpx pool (streams, https, proxies)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = httpx.Client(**self._client_args)
        return pool

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
        if self._fast is None:
            resp = self.send(method, path, content=body, params=params, headers=headers)
            return resp.json() if resp.content else None
        fast, target = self._fast, self._fast.target(path, params)
        status, data = self._retrying(
            method,
            body is not None,
            lambda: fast.request(method, target, body, headers),
            status_of=lambda answer: answer[0],
            transport_errors=(OSError, http.client.HTTPException),
        )
        if status >= 400:
            _raise_error(status, data, f"{self.base_url}{target}")
        return _json.loads(data) if data else None

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
        resp = self._retrying(
            method,
            content is not None,
            lambda: self._client.request(
                method, path, content=content, params=params, headers=headers
            ),
            status_of=lambda r: r.status_code,
            transport_errors=(httpx.TransportError,),
        )
        raise_for_error(resp)
        return resp

    def _retrying(
        self,
        method: str,
        has_body: bool,
        attempt: Callable[[], _T],
        *,
        status_of: Callable[[_T], int],
        transport_errors: tuple[type[Exception], ...],
    ) -> _T:
        """``attempt()`` with the client's retry policy, the same for both transports: a
        transport error or a 502/503/504 is retried, with backoff, up to :attr:`retries` times
        for idempotent methods and bodiless requests (a POST with a body runs at most once)."""
        attempts = self.retries + 1 if method in _IDEMPOTENT or not has_body else 1
        for n in range(attempts):
            try:
                answer = attempt()
            except transport_errors as exc:
                if n + 1 < attempts:
                    time.sleep(0.2 * 2**n)
                    continue
                raise self._unreachable(exc) from exc
            if status_of(answer) in _RETRY_STATUSES and n + 1 < attempts:
                time.sleep(0.2 * 2**n)
                continue
            return answer
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
        if self._pool is not None:
            self._pool.close()
        if self._fast is not None:
            self._fast.close()

    def _unreachable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"Cannot reach the Shipyard server at {self.base_url} ({exc}). Check that "
            "`shipyard server` is running there, or fix SHIPYARD_TRACKING_URI."
        )


def _direct_http(base_url: str) -> bool:
    """Whether ``base_url`` is plain HTTP reached without a proxy (as httpx would decide from
    the environment: ``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY``)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname or parts.username or parts.password:
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get("http") or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname))


class _Connection(http.client.HTTPConnection):
    """A connection that closes its socket when dropped: when the thread that owned it ends
    (its thread-local slot goes), or in a forked child (which must not use it)."""

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class _Connections:
    """One keep-alive ``http.client`` connection per thread to one ``http://`` server."""

    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._host = parts.hostname or ""
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every thread's connection, for close(); weak, so an ended thread's goes with it.
        self._all: weakref.WeakSet[_Connection] = weakref.WeakSet()

    def target(self, path: str, params: Mapping[str, Any] | None) -> str:
        """The request target: the base URL's path, ``path`` (escaped where it must be) and the
        query, with values rendered as httpx renders them (``true``/``false``, lists repeated)."""
        target = self._prefix + urllib.parse.quote(path, safe=_PATH_SAFE)
        if params:
            pairs = [
                (k, _query_value(v))
                for k, value in params.items()
                for v in (value if isinstance(value, list | tuple) else (value,))
            ]
            target += "?" + urllib.parse.urlencode(pairs)
        return target

    def request(
        self, method: str, target: str, body: bytes | None, headers: Mapping[str, str] | None
    ) -> tuple[int, bytes]:
        """Send one request on this thread's connection; the status and the whole body."""
        conn = self._connection()
        all_headers = {**self._headers, **headers} if headers else self._headers
        try:
            conn.request(method, target, body=body, headers=all_headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except BaseException:
            conn.close()  # the next call starts on a fresh connection
            raise

    def close(self) -> None:
        """Close every thread's connection. They stay known: a later call reopens its thread's
        connection (as ``http.client`` does) and a later close() closes it again."""
        with self._lock:
            conns = list(self._all)
        for conn in conns:
            conn.close()

    def after_fork_in_child(self) -> None:
        # Only the forking thread runs in the child; the lock may have been held by another.
        self._lock = threading.Lock()
        self._local = threading.local()
        self._all = weakref.WeakSet()

    def _connection(self) -> http.client.HTTPConnection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _Connection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.add(conn)
        elif conn.sock is not None and _readable(conn.sock):
            # An idle keep-alive connection that is readable was closed by the server (its
            # keep-alive timeout): reconnect before sending, so no request is ever lost to it.
            conn.close()
        return conn


def _readable(sock: Any) -> bool:
    """Whether ``sock`` has something to read (on an idle connection: the server closed it).
    poll() where there is one: select() refuses descriptors past FD_SETSIZE (1024)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])  # pragma: no cover - Windows


# Every client, so a forked child replaces the connections it inherited (see HttpClient).
_FORKABLE: weakref.WeakSet[HttpClient] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_FORKABLE):
        client._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _query_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


def raise_for_error(resp: httpx.Response) -> None:
    """Raise the Shipyard error a response carries, if it is not a success."""
    if resp.status_code >= 400:
        _raise_error(resp.status_code, resp.content, str(resp.request.url))


def _raise_error(status: int, content: bytes, url: str) -> None:
    try:
        body = _json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_code" in body:
        raise error_from_dict(body, status=status)
    text = content.decode("utf-8", "replace")
    raise ShipyardError(f"The server at {url} answered HTTP {status}: {text[:200]!r}")
