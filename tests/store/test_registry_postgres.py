"""The registry store contract on PostgreSQL, in one database per test class emptied between
tests (as the tracking contract does)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from shipyard.store import schema
from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_registry import SqlRegistryStore
from tests.store.registry_contract import RegistryStoreContract

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="class")
def registry_database(postgres_server: str) -> Iterator[str]:
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
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table("experiments"):
                names = ", ".join(t.name for t in schema.metadata.sorted_tables)
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


class TestPostgresRegistryStore(RegistryStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, registry_database: str) -> Iterator[tuple[SqlTrackingStore, SqlRegistryStore]]:
        _empty_tables(registry_database)
        tracking = SqlTrackingStore(registry_database, pool_size=4)
        registry = SqlRegistryStore(tracking.database)
        try:
            yield tracking, registry
        finally:
            registry.close()
            tracking.close()
