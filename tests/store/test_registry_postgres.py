"""The registry store contract on PostgreSQL, in one database per test class emptied between
tests (as the tracking contract does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_registry import SqlRegistryStore
from tests.conftest import empty_pg_tables
from tests.store.registry_contract import RegistryStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresRegistryStore(RegistryStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, pg_class_database: str) -> Iterator[tuple[SqlTrackingStore, SqlRegistryStore]]:
        empty_pg_tables(pg_class_database)
        tracking = SqlTrackingStore(pg_class_database, pool_size=4)
        registry = SqlRegistryStore(tracking.database)
        try:
            yield tracking, registry
        finally:
            registry.close()
            tracking.close()
