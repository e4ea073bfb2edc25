"""The tracking store contract on PostgreSQL, plus what is specific to a fresh server database.

The contract runs in one database per test class, emptied between tests (creating a database
costs a checkpoint, about a third of a second, on every test otherwise). Commits skip the wait
for the disk flush there; durability is not what these tests are about.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shipyard.store import schema
from shipyard.store.db import current_revision
from shipyard.store.sql import SqlTrackingStore
from tests.store.contract import TrackingStoreContract

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="class")
def shared_database(postgres_server: str) -> Iterator[str]:
    """A database for one test class, on the server the ``postgres_server`` fixture found."""
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = postgres_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}?options=-csynchronous_commit%3Doff"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_tables(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("experiments"):
                names = ", ".join(t.name for t in schema.metadata.sorted_tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


class TestPostgresTrackingStore(TrackingStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, shared_database: str) -> Iterator[SqlTrackingStore]:
        _empty_tables(shared_database)
        store = SqlTrackingStore(shared_database, pool_size=2)
        try:
            yield store
        finally:
            store.close()


def test_first_open_creates_the_schema(postgres_uri: str) -> None:
    assert current_revision(postgres_uri) is None
    with SqlTrackingStore(postgres_uri) as store:
        assert store.get_experiment("0").name == "Default"
        assert "password" not in store.url
    assert current_revision(postgres_uri) == schema.HEAD_REVISION


def test_concurrent_first_opens_create_the_schema_once(postgres_uri: str) -> None:
    failures: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_store() -> None:
        try:
            barrier.wait()
            with SqlTrackingStore(postgres_uri, pool_size=1) as store:
                store.create_experiment(f"exp-{uuid.uuid4().hex}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with SqlTrackingStore(postgres_uri) as store:
        assert len(store.search_experiments()) == 7
