"""A logging process killed with SIGKILL loses nothing that flush() or a batch call confirmed,
leaves the store readable, and never exposes a partial artifact."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.workspace import Workspace

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

CHILD = textwrap.dedent(
    """
    import io, os, sys
    from shipyard.tracking.client import Client

    client = Client(home=sys.argv[1])
    run_id = client.create_run("0").run_id
    print("run", run_id, flush=True)
    step = 0
    chunk = os.urandom(1 << 20)

    class Slow(io.RawIOBase):
        # An endless-looking upload: 1 MiB chunks, so the kill lands mid-stream.
        def __init__(self):
            self.left = 200
        def readable(self):
            return True
        def readinto(self, b):
            if self.left == 0:
                return 0
            self.left -= 1
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
            client.workspace.artifacts.upload(run_id, "big.bin", io.BufferedReader(Slow()))
    """
)


def test_sigkill_loses_no_flushed_metric_and_no_partial_artifact(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = ""
    confirmed = 0
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
            elif kind == "uploading":
                time.sleep(0.3)  # let the upload get going, then pull the plug
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        errors = proc.stderr.read() if proc.stderr else ""
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert run_id, errors
    assert confirmed >= 5000, errors

    db = home / "shipyard.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    with Workspace.open(Settings.from_env({}, home=home)) as ws:
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
