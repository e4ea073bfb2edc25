"""Fixtures shared by the whole suite: isolated settings, a fresh workspace, free ports, and a
throwaway PostgreSQL database on the server named by SHIPYARD_TEST_POSTGRES_URI."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import sqlalchemy as sa

from shipyard.config import Settings
from shipyard.workspace import Workspace

DEFAULT_PG_ADMIN_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's SHIPYARD_* variables; each runs in its own folder."""
    for name in list(os.environ):
        if name.startswith(("SHIPYARD_", "MLFLOW_")) and name != "SHIPYARD_TEST_POSTGRES_URI":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an embedded workspace in a temp folder."""
    return Settings.from_env({}, home=tmp_path / ".shipyard")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace.open(settings)
    try:
        yield ws
    finally:
        ws.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_admin_uri() -> str:
    return os.environ.get("SHIPYARD_TEST_POSTGRES_URI", DEFAULT_PG_ADMIN_URI)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URI of a reachable PostgreSQL (scripts/test guarantees one); skip if none."""
    import sqlalchemy as sa

    uri = _pg_admin_uri()
    try:
        engine = sa.create_engine(uri)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("SHIPYARD_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL at {uri}: {exc}")
    return uri


@pytest.fixture
def postgres_uri(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards."""
    import sqlalchemy as sa

    admin, name = _create_database(postgres_server)
    base = postgres_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _create_database(postgres_server: str) -> tuple[sa.Engine, str]:
    """A new, empty database on the server; returns the admin engine and its name."""
    import sqlalchemy as sa

    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return admin, name


@pytest.fixture(scope="class")
def pg_class_database(postgres_server: str) -> Iterator[str]:
    """A database shared by one test class (creating one costs a checkpoint, about a third of
    a second, per test otherwise); :func:`empty_pg_tables` resets it between tests. Commits skip
    the wait for the disk flush: durability is not what these tests are about."""
    import sqlalchemy as sa

    admin, name = _create_database(postgres_server)
    base = postgres_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}?options=-csynchronous_commit%3Doff"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_pg_tables(url: str) -> None:
    """Remove every row of Shipyard's tables in the database at ``url`` (if it has them)."""
    import sqlalchemy as sa

    from shipyard.store import schema

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("experiments"):
                names = ", ".join(t.name for t in schema.metadata.sorted_tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()
