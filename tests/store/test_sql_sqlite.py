"""The tracking store contract on SQLite, plus what is specific to the SQL store on a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.sql import SqlTrackingStore
from tests.store.contract import TrackingStoreContract


class TestSqliteTrackingStore(TrackingStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlTrackingStore]:
        store = SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
        try:
            yield store
        finally:
            store.close()
