"""Helpers shared by the artifact and garbage-collection tests."""

from __future__ import annotations

from pathlib import Path

from shipyard.store.sql import SqlTrackingStore


def open_tracking_store(tmp_path: Path) -> SqlTrackingStore:
    """The real metadata store on a fresh SQLite file in ``tmp_path``."""
    return SqlTrackingStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
