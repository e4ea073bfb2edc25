"""The dataset store contract on PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_datasets import SqlDatasetStore
from tests.store.dataset_contract import DatasetStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresDatasetStore(DatasetStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, postgres_uri: str) -> Iterator[tuple[SqlTrackingStore, SqlDatasetStore]]:
        tracking = SqlTrackingStore(postgres_uri, pool_size=2)
        try:
            yield tracking, SqlDatasetStore(tracking.database)
        finally:
            tracking.close()
