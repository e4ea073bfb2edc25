"""The logging endpoints run on the event loop on a SQLite file, and never wait there for a lock.

While another connection holds SQLite's write lock, a logging call must neither fail nor stall
the server: it waits in a worker thread, other requests (here ``/health`` and a read) are
answered meanwhile, and the write lands once the lock is released.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import httpx
import pytest

from shipyard.server.app import create_app
from shipyard.store.db import Database, WouldBlock
from shipyard.store.sql import SqlTrackingStore
from shipyard.workspace import Workspace
from tests.server.conftest import serve_in_thread

API = "/api/2.0/mlflow"


def _db_file(ws: Workspace) -> str:
    store = ws.store
    assert isinstance(store, SqlTrackingStore)
    assert store.database.supports_no_wait
    return store.database.engine.url.database or ""


def test_no_wait_raises_would_block_before_writing(workspace: Workspace) -> None:
    store = workspace.store
    assert isinstance(store, SqlTrackingStore)
    run_id = store.create_run("0").info.run_id
    holder = sqlite3.connect(_db_file(workspace), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(WouldBlock), Database.no_wait():
            store.log_batch(run_id, params={"p": "1"})
        assert time.monotonic() - started < 5  # refused at once, not after the busy timeout
        holder.execute("ROLLBACK")
        # Outside no_wait the same connection waits again (and nothing was written before).
        assert store.get_run(run_id).data.params == {}
        store.log_batch(run_id, params={"p": "1"})
        assert store.get_run(run_id).data.params == {"p": "1"}
    finally:
        holder.close()


def test_no_wait_changes_nothing_without_a_lock(workspace: Workspace) -> None:
    store = workspace.store
    run_id = store.create_run("0").info.run_id
    with Database.no_wait():
        store.log_batch(run_id, tags={"t": "v"})
    assert store.get_run(run_id).data.tags["t"] == "v"


def test_a_locked_database_delays_a_logging_call_without_stalling_the_server(
    workspace: Workspace,
) -> None:
    with serve_in_thread(create_app(workspace)) as url, httpx.Client(base_url=url) as client:
        run_id = client.post(f"{API}/runs/create", json={"experiment_id": "0"}).json()["run"][
            "info"
        ]["run_id"]
        holder = sqlite3.connect(_db_file(workspace), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answer: list[httpx.Response] = []

        def log() -> None:
            with httpx.Client(base_url=url, timeout=60) as other:
                answer.append(
                    other.post(
                        f"{API}/runs/log-parameter",
                        json={"run_id": run_id, "key": "lr", "value": "0.1"},
                    )
                )

        writer = threading.Thread(target=log)
        writer.start()
        try:
            time.sleep(0.5)
            assert not answer  # still waiting for the lock...
            # ...in a worker thread: the event loop answers other requests meanwhile.
            assert client.get("/health", timeout=5).status_code == 200
            got = client.get(f"{API}/runs/get", params={"run_id": run_id}, timeout=5)
            assert got.status_code == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
            writer.join(timeout=60)
        assert len(answer) == 1
        assert answer[0].status_code == 200, answer[0].text
        assert workspace.store.get_run(run_id).data.params == {"lr": "0.1"}
        # With the lock free the next call runs inline, and still lands.
        ok = client.post(f"{API}/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"})
        assert ok.status_code == 200
        assert workspace.store.get_run(run_id).data.tags["k"] == "v"
