"""A logging process killed with SIGKILL loses nothing that flush() or a batch call confirmed,
leaves the store readable, and never exposes a partial artifact. Each test runs on SQLite and on
PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.workspace import Workspace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def metadata_uri(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The metadata store the killed processes write to: the workspace's own SQLite file
    (``None``), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("postgres_uri")


def _check_sqlite_integrity(home: Path, uri: str | None) -> None:
    """SQLite's own check of the file; on PostgreSQL, that no SQLite file was written instead."""
    if uri is None:
        with sqlite3.connect(home / "shipyard.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    else:
        assert not (home / "shipyard.db").exists()


CHILD = textwrap.dedent(
    """
    import io, os, sys, time
    from shipyard.tracking.client import Client

    client = Client(sys.argv[2] if len(sys.argv) > 2 else None, home=sys.argv[1])
    run_id = client.create_run("0").run_id
    print("run", run_id, flush=True)
    step = 0
    chunk = os.urandom(1 << 20)

    class Stalled(io.RawIOBase):
        # An upload that stalls after 20 MiB: the kill always lands mid-stream, however fast
        # the disk (a fixed sleep let a fast machine finish the whole file first).
        def __init__(self):
            self.sent = 0
        def readable(self):
            return True
        def readinto(self, b):
            if self.sent == 20:
                print("mid-upload", flush=True)
                time.sleep(3600)
            self.sent += 1
            n = min(len(b), len(chunk))
            b[:n] = chunk[:n]
            return n

    while True:
        for _ in range(500):
            client.log_metric(run_id, "loss", step * 0.5, step=step)
            step += 1
        client.flush()
        print("flushed", step, flush=True)
        if step == 5000:
            print("uploading", flush=True)
            client.workspace.artifacts.upload(run_id, "big.bin", io.BufferedReader(Stalled()))
    """
)


def test_sigkill_loses_no_flushed_metric_and_no_partial_artifact(
    tmp_path: Path, metadata_uri: str | None
) -> None:
    home = tmp_path / "ws"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), *([metadata_uri] if metadata_uri else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = ""
    confirmed = 0
    stalled = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            kind, _, value = line.strip().partition(" ")
            if kind == "run":
                run_id = value
            elif kind == "flushed":
                confirmed = int(value)
            elif kind == "mid-upload":
                stalled = True
                break  # 20 MiB of the file are on their way: pull the plug
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        errors = proc.stderr.read() if proc.stderr else ""
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert run_id, errors
    assert confirmed >= 5000, errors
    assert stalled, errors  # the kill landed mid-upload

    _check_sqlite_integrity(home, metadata_uri)
    with Workspace.open(Settings.from_env({}, home=home, tracking_uri=metadata_uri)) as ws:
        history = ws.store.get_metric_history(run_id, "loss", max_results=25000)
        steps = {m.step for m in history.items}
        assert set(range(confirmed)) <= steps
        # The interrupted upload is invisible, and every visible artifact is whole.
        for info in ws.artifacts.list(run_id):
            with ws.artifacts.open(run_id, info.path) as f:
                assert hashlib.sha256(f.read()).hexdigest() == info.digest
        assert "big.bin" not in {a.path for a in ws.artifacts.list(run_id)}
        # A new writer can use the workspace straight away.
        ws.store.log_batch(run_id, params={"after": "crash"})
        assert ws.store.get_run(run_id).data.params["after"] == "crash"
    print(
        f"\ncrash safety ({'postgresql' if metadata_uri else 'sqlite'}): 1 logging process killed "
        f"mid-upload, {confirmed} flushed metric points checked"
    )


# ------------------------------------------------------------------------------ the server killed

HTTP_WRITER = textwrap.dedent(
    """
    import sys, httpx
    url, name = sys.argv[1], sys.argv[2]
    with httpx.Client(base_url=url, timeout=10) as http:
        try:
            while True:
                run = http.post("/api/v1/runs", json={"experiment_id": "0", "run_name": name})
                run.raise_for_status()
                run_id = run.json()["run"]["info"]["run_id"]
                for batch in range(4):
                    body = {
                        "params": {f"b{batch}_p{k}": name for k in range(10)},
                        "metrics": [
                            {"key": f"b{batch}_m{k}", "value": k, "timestamp": 1, "step": batch}
                            for k in range(20)
                        ],
                    }
                    http.post(f"/api/v1/runs/{run_id}/batch", json=body).raise_for_status()
                    print("ack", run_id, batch, flush=True)
        except (httpx.HTTPError, OSError):
            pass  # the server went away
    """
)
WRITERS = 4


@pytest.mark.slow
def test_sigkill_of_the_server_and_of_http_writers_loses_no_acknowledged_write(
    tmp_path: Path, metadata_uri: str | None
) -> None:
    """Writers log batches over HTTP; one writer is killed mid-stream, then the server is
    killed under all of them. After a restart every acknowledged batch is there, whole, and
    no batch is visible in part."""
    import httpx

    from tests.server.conftest import start_server

    env = {"SHIPYARD_TRACKING_URI": metadata_uri} if metadata_uri else {}
    live = start_server(tmp_path, timeout=60, env_extra=env)
    server, url, home, log = live.process, live.url, live.home, live.log
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", HTTP_WRITER, url, f"w{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    acked: set[tuple[str, int]] = set()
    killed = 0
    try:
        # Let every writer get acknowledgements, kill writer 0 mid-stream, then the server.
        for i, proc in enumerate(writers):
            assert proc.stdout is not None
            for _ in range(12 if i else 6):
                line = proc.stdout.readline()
                assert line.startswith("ack"), proc.stderr.read() if proc.stderr else line
                _, run_id, raw_batch = line.split()
                acked.add((run_id, int(raw_batch)))
        os.kill(writers[0].pid, signal.SIGKILL)
        killed += 1
        time.sleep(0.2)
        os.kill(server.pid, signal.SIGKILL)
        killed += 1
        server.wait()
        for proc in writers[1:]:
            out, _ = proc.communicate(timeout=60)
            for line in out.splitlines():
                if line.startswith("ack"):
                    _, run_id, raw_batch = line.split()
                    acked.add((run_id, int(raw_batch)))
        writers[0].wait()
    finally:
        children: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = [server, *writers]
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for proc in writers:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    _check_sqlite_integrity(home, metadata_uri)
    live = start_server(tmp_path, timeout=60, env_extra=env)
    server, url = live.process, live.url
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            found = http.post(
                "/api/v1/runs/search", json={"experiment_ids": ["0"], "max_results": 1000}
            ).json()["runs"]
            runs = {r["info"]["run_id"]: r for r in found}
            checked = 0
            for run_id, batch in acked:
                params = {p: v for p, v in runs[run_id]["data"]["params"].items()}
                assert {f"b{batch}_p{k}" for k in range(10)} <= set(params)
                checked += 1
            for run in runs.values():
                params = run["data"]["params"]
                metrics = run["data"]["metrics"]
                for batch in range(4):
                    have_p = sum(f"b{batch}_p{k}" in params for k in range(10))
                    have_m = sum(f"b{batch}_m{k}" in metrics for k in range(20))
                    assert (have_p, have_m) in ((0, 0), (10, 20)), (run["info"]["run_id"], batch)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\ncrash safety ({'postgresql' if metadata_uri else 'sqlite'}): {killed} processes "
        "killed (1 HTTP writer, the server), "
        f"{checked} acknowledged batches checked ({checked * 30} writes) over {len(runs)} runs"
    )
    assert checked >= 40
    assert "Traceback" not in log.read_text(errors="replace")
