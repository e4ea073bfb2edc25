"""The logged-model store contract on PostgreSQL, in one database per test class emptied between
tests (as the tracking and registry contracts do)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_logged_models import SqlLoggedModelStore
from shipyard.store.sql_registry import SqlRegistryStore
from tests.conftest import empty_pg_tables
from tests.store.logged_model_contract import LoggedModelStoreContract, Stores

pytestmark = pytest.mark.postgres


class TestPostgresLoggedModelStore(LoggedModelStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, pg_class_database: str) -> Iterator[Stores]:
        empty_pg_tables(pg_class_database)
        tracking = SqlTrackingStore(pg_class_database, pool_size=4)
        models = SqlLoggedModelStore(tracking.database)
        try:
            yield tracking, SqlRegistryStore(tracking.database), models
        finally:
            models.close()
            tracking.close()
