"""The logged-model store contract on SQLite, sharing the tracking store's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.sql import SqlTrackingStore
from shipyard.store.sql_logged_models import SqlLoggedModelStore
from shipyard.store.sql_registry import SqlRegistryStore
from tests.store.logged_model_contract import LoggedModelStoreContract, Stores


class TestSqliteLoggedModelStore(LoggedModelStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(self, tmp_path: Path) -> Iterator[Stores]:
        tracking = SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
        models = SqlLoggedModelStore(tracking.database)
        try:
            yield tracking, SqlRegistryStore(tracking.database), models
        finally:
            models.close()
            tracking.close()


def test_closing_the_store_leaves_the_shared_database_open(tmp_path: Path) -> None:
    with SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}") as tracking:
        models = SqlLoggedModelStore(tracking.database)
        models.create_logged_model("0", name="m")
        models.close()
        assert tracking.get_experiment("0").name == "Default"
        assert models.url == tracking.url
