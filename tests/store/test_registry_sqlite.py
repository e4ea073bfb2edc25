"""The registry store contract on SQLite, sharing the tracking store's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_registry import SqlRegistryStore
from tests.store.registry_contract import RegistryStoreContract


class TestSqliteRegistryStore(RegistryStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, tmp_path: Path) -> Iterator[tuple[SqlTrackingStore, SqlRegistryStore]]:
        tracking = SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
        registry = SqlRegistryStore(tracking.database)
        try:
            yield tracking, registry
        finally:
            registry.close()
            tracking.close()


def test_closing_the_registry_leaves_the_shared_database_open(tmp_path: Path) -> None:
    with SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}") as tracking:
        registry = SqlRegistryStore(tracking.database)
        registry.create_registered_model("m")
        registry.close()
        assert tracking.get_experiment("0").name == "Default"
        assert registry.url == tracking.url
