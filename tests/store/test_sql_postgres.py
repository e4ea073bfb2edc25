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

from shipyard.store import schema
from shipyard.store.db import current_revision
from shipyard.store.sql import SqlTrackingStore
from tests.conftest import empty_pg_tables
from tests.store.contract import TrackingStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresTrackingStore(TrackingStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, pg_class_database: str) -> Iterator[SqlTrackingStore]:
        empty_pg_tables(pg_class_database)
        store = SqlTrackingStore(pg_class_database, pool_size=2)
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
