"""The REST client: JSON calls over keep-alive connections, errors rebuilt, proxies respected."""

from __future__ import annotations

import gc
import json
import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shipyard._http import HttpClient
from shipyard.errors import NotFound, ShipyardError, StoreUnavailable


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.server.seen.append((self.command, self.path, body, dict(self.headers)))
        self.server.peers.append((parts.path, self.client_address[1]))
        answer: Any
        if parts.path.endswith("/missing"):
            status, answer = 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such"}
        elif parts.path.endswith("/flaky") and self.server.flaky > 0:
            self.server.flaky -= 1
            status, answer = 503, {"message": "busy"}
        elif parts.path.endswith("/plain-error"):
            status, answer = 500, None
        else:
            status = 200
            answer = {
                "method": self.command,
                "path": parts.path,
                "query": parse_qs(parts.query, keep_blank_values=True),
                "json": json.loads(body) if body else None,
            }
        data = b"boom" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.server.close_after_each:
            # What a server's keep-alive timeout does: close an idle connection, unannounced.
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.peers: list[tuple[str, int]] = []
        self.close_after_each = False
        self.flaky = 0


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _url(srv: _Server, prefix: str = "") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{prefix}"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_json_call_sends_body_query_and_headers(server: _Server) -> None:
    http = HttpClient(_url(server, "/base/"), token="tok")
    try:
        assert http._fast is not None  # plain http, no proxy: the direct connection
        answer = http.call(
            "POST",
            "/api/v1/runs/a b",
            json={"x": 1},
            params={"flag": True, "off": False, "many": ["1", "2"], "n": 3},
        )
    finally:
        http.close()
    assert answer["path"] == "/base/api/v1/runs/a%20b"
    assert answer["query"] == {"flag": ["true"], "off": ["false"], "many": ["1", "2"], "n": ["3"]}
    assert answer["json"] == {"x": 1}
    headers = server.seen[-1][3]
    assert headers["Authorization"] == "Bearer tok"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("shipyard/")


def test_query_values_render_as_httpx_renders_them(server: _Server) -> None:
    params = {"flag": True, "off": False, "empty": None, "many": ("a", "b"), "n": 7}
    direct = HttpClient(_url(server))
    via_httpx = HttpClient(_url(server))
    via_httpx._fast = None
    try:
        assert direct.call("GET", "/q", params=params) == via_httpx.call("GET", "/q", params=params)
    finally:
        direct.close()
        via_httpx.close()


def test_errors_come_back_as_their_class(server: _Server) -> None:
    http = HttpClient(_url(server), retries=0)
    try:
        with pytest.raises(NotFound, match="no such"):
            http.call("GET", "/missing")
        with pytest.raises(ShipyardError, match=r"HTTP 500.*boom"):
            http.call("GET", "/plain-error")
    finally:
        http.close()


def test_keep_alive_connection_is_reused(server: _Server) -> None:
    http = HttpClient(_url(server))
    try:
        for i in range(5):
            http.call("POST", "/log", json={"i": i})
        conn = http._fast._local.conn  # type: ignore[union-attr]
        assert conn.sock is not None
        assert len(http._fast._all) == 1  # type: ignore[union-attr]
    finally:
        http.close()


def test_a_connection_the_server_closed_is_replaced_before_a_post(server: _Server) -> None:
    server.close_after_each = True
    http = HttpClient(_url(server), retries=0)  # no retries: the POST must not be lost
    try:
        for i in range(3):
            http.call("POST", "/log", json={"i": i})
            time.sleep(0.05)  # the server's close reaches the client while it is idle
    finally:
        http.close()
    assert [json.loads(body)["i"] for _, _, body, _ in server.seen] == [0, 1, 2]


def test_each_thread_gets_its_own_connection(server: _Server) -> None:
    http = HttpClient(_url(server))
    results: list[Any] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                results.append(http.call("POST", "/log", json={"n": n, "i": i})["json"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    http.close()
    assert not errors
    assert sorted((r["n"], r["i"]) for r in results) == [
        (n, i) for n in range(4) for i in range(20)
    ]


def test_busy_server_is_retried_for_reads(server: _Server) -> None:
    server.flaky = 1
    http = HttpClient(_url(server), retries=1)
    try:
        assert http.call("GET", "/flaky")["method"] == "GET"
    finally:
        http.close()
    assert len(server.seen) == 2


def test_unreachable_server_is_store_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    http = HttpClient(f"http://127.0.0.1:{port}", retries=0)
    try:
        with pytest.raises(StoreUnavailable, match="Cannot reach the Shipyard server"):
            http.call("POST", "/log", json={})
    finally:
        http.close()


def test_a_proxy_setting_sends_calls_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert HttpClient("http://tracking.example:5000")._fast is None
    monkeypatch.setenv("NO_PROXY", "tracking.example")
    assert HttpClient("http://tracking.example:5000")._fast is not None
    assert HttpClient("https://tracking.example")._fast is None  # TLS stays with httpx


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_a_finished_threads_connection_is_closed(server: _Server) -> None:
    http = HttpClient(_url(server))
    try:
        http.call("GET", "/warm")
        before = _open_fds()
        for n in range(8):  # short-lived threads, as a pool created per task makes them
            thread = threading.Thread(target=http.call, args=("POST", "/log"), kwargs={"json": n})
            thread.start()
            thread.join()
        gc.collect()
        deadline = time.monotonic() + 5  # the server's side closes once it reads the EOF
        while _open_fds() > before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _open_fds() <= before  # each ended thread's socket went with it
    finally:
        http.close()


def test_a_call_after_close_reopens_and_a_later_close_closes_it(server: _Server) -> None:
    http = HttpClient(_url(server))
    http.call("GET", "/one")
    http.close()
    assert http.call("GET", "/two")["path"] == "/two"
    conn = http._fast._local.conn  # type: ignore[union-attr]
    assert conn.sock is not None
    http.close()
    assert conn.sock is None


def test_a_high_file_descriptor_is_checked_for_staleness(server: _Server) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("needs more than 1024 file descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held: list[int] = []
    try:
        while len(held) < 1100 and (not held or held[-1] < 1050):
            held.append(os.open(os.devnull, os.O_RDONLY))  # select() refuses fds >= 1024
        http = HttpClient(_url(server))
        try:
            http.call("GET", "/one")
            assert http._fast._local.conn.sock.fileno() >= 1024  # type: ignore[union-attr]
            assert http.call("GET", "/two")["path"] == "/two"  # the reuse check on that fd
        finally:
            http.close()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(server: _Server) -> None:
    http = HttpClient(_url(server))
    try:
        http.call("GET", "/parent")
        http.send("GET", "/parent-pool")  # the httpx pool (streams) keeps one too
        pid = os.fork()
        if pid == 0:  # the child, as a multiprocessing worker forked after the parent's calls
            try:
                http.call("GET", "/child")
                http.send("GET", "/child-pool")
                code = 0
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        http.call("GET", "/parent-again")
    finally:
        http.close()
    ports = {path: port for path, port in server.peers}
    assert ports["/child"] != ports["/parent"]  # never the parent's socket
    assert ports["/parent-again"] == ports["/parent"]  # the parent's kept working
    assert ports["/child-pool"] != ports["/parent-pool"]
