"""The metadata database layer: WAL checkpoints off the request path on SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.store import db as db_module
from shipyard.store.db import Database


@pytest.fixture
def fast_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "CHECKPOINT_AFTER_S", 0.05)
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY_COMMITS", 4)


@pytest.fixture
def database(tmp_path: Path, fast_checkpoints: None) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (i INTEGER PRIMARY KEY, v TEXT)"))
    try:
        yield database
    finally:
        database.dispose()


def _insert(database: Database, i: int) -> None:
    database.write(lambda c: c.exec_driver_sql("INSERT INTO t VALUES (?, ?)", (i, "x" * 500)))


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "shipyard-sqlite-checkpoint"]


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _rows_in_main_file(path: Path, tmp_path: Path) -> int:
    """Rows of ``t`` in the database file alone, without its ``-wal`` log: what checkpoints
    have copied back."""
    alone = tmp_path / "alone.db"
    shutil.copyfile(path, alone)
    conn = sqlite3.connect(alone)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


def test_commits_are_checkpointed_in_the_background(database: Database, tmp_path: Path) -> None:
    checkpointer = database._checkpointer
    assert checkpointer is not None
    for i in range(12):
        _insert(database, i)
    _wait_for(lambda: checkpointer.checkpoints >= 1)
    # The wal_autocheckpoint backstop is raised, so the copies were the thread's, not inline.
    pragma = database.read(lambda c: c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())
    assert pragma == db_module.SQLITE_WAL_BACKSTOP_PAGES
    assert database.read(lambda c: c.exec_driver_sql("SELECT count(*) FROM t").scalar()) == 12


def test_the_thread_ends_when_idle_and_comes_back(database: Database) -> None:
    _insert(database, 1)
    assert _threads()
    _wait_for(lambda: not _threads())  # nothing pending after a quiet interval: gone
    checkpointer = database._checkpointer
    assert checkpointer is not None
    before = checkpointer.checkpoints
    assert before >= 1  # the one commit was checkpointed before the thread left
    _insert(database, 2)
    assert _threads()
    _wait_for(lambda: checkpointer.checkpoints > before)


def test_checkpoints_copy_the_commits_into_the_database_file(
    database: Database, tmp_path: Path
) -> None:
    for i in range(8):
        _insert(database, i)
    _wait_for(lambda: not _threads())
    assert _rows_in_main_file(tmp_path / "meta.db", tmp_path) == 8


def test_dispose_stops_the_thread(tmp_path: Path, fast_checkpoints: None) -> None:
    database = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (i INTEGER PRIMARY KEY, v TEXT)"))
    assert _threads()
    database.dispose()
    assert not _threads()
    # A commit after dispose works and starts checkpointing again.
    _insert(database, 1)
    assert _threads()
    database.dispose()
    assert not _threads()


def test_a_removed_database_is_not_recreated(tmp_path: Path, fast_checkpoints: None) -> None:
    path = tmp_path / "meta.db"
    database = Database(f"sqlite:///{path}")
    database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (i INTEGER PRIMARY KEY, v TEXT)"))
    database.engine.dispose()  # pooled connections closed; the thread may still be waiting
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    _wait_for(lambda: not _threads())
    assert not path.exists()
    database.dispose()


def test_a_path_with_uri_characters(tmp_path: Path, fast_checkpoints: None) -> None:
    folder = tmp_path / "a b é"
    folder.mkdir()
    database = Database(f"sqlite:///{folder / 'meta.db'}")
    try:
        database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (i INTEGER PRIMARY KEY)"))
        checkpointer = database._checkpointer
        assert checkpointer is not None
        _wait_for(lambda: checkpointer.checkpoints >= 1)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a b é"]
    finally:
        database.dispose()


def test_no_thread_for_memory_or_postgres_style_urls(fast_checkpoints: None) -> None:
    database = Database("sqlite://")
    try:
        assert database._checkpointer is None
        database.write(lambda c: c.execute(sa.text("CREATE TABLE t (i INTEGER)")))
        assert not _threads()
    finally:
        database.dispose()
