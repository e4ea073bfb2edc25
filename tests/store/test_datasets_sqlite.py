"""The dataset store contract on SQLite, sharing the tracking store's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_datasets import SqlDatasetStore
from tests.store.dataset_contract import DatasetStoreContract


class TestSqliteDatasetStore(DatasetStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, tmp_path: Path) -> Iterator[tuple[SqlTrackingStore, SqlDatasetStore]]:
        tracking = SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
        try:
            yield tracking, SqlDatasetStore(tracking.database)
        finally:
            tracking.close()
