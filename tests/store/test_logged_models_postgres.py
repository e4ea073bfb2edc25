"""The logged-model store contract on PostgreSQL, in one database per test class emptied between
tests (as the tracking and registry contracts do)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_logged_models import SqlLoggedModelStore
from shipyard.store.sql_registry import SqlRegistryStore
from tests.store.logged_model_contract import LoggedModelStoreContract, Stores
from tests.store.test_registry_postgres import _empty_tables, registry_database  # noqa: F401

pytestmark = pytest.mark.postgres


class TestPostgresLoggedModelStore(LoggedModelStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, registry_database: str) -> Iterator[Stores]:  # noqa: F811
        _empty_tables(registry_database)
        tracking = SqlTrackingStore(registry_database, pool_size=4)
        models = SqlLoggedModelStore(tracking.database)
        try:
            yield tracking, SqlRegistryStore(tracking.database), models
        finally:
            models.close()
            tracking.close()
