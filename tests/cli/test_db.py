"""``shipyard db``."""

from __future__ import annotations

from pathlib import Path

from shipyard.store.schema import HEAD_REVISION
from tests.cli.conftest import Shipyard


def test_upgrade_an_empty_database_then_again(shipyard: Shipyard, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    before = shipyard.json("--tracking-uri", uri, "db", "current")
    assert before["revision"] is None
    assert before["up_to_date"] is False
    assert "no Shipyard tables yet" in shipyard("--tracking-uri", uri, "db", "current").stdout

    data = shipyard.json("--tracking-uri", uri, "db", "upgrade")
    assert data["from_revision"] is None
    assert data["to_revision"] == HEAD_REVISION
    assert data["upgraded"] is True

    out = shipyard("--tracking-uri", uri, "db", "upgrade").stdout
    assert f"already at revision {HEAD_REVISION}" in out
    out = shipyard("--tracking-uri", uri, "db", "current").stdout
    assert f"revision {HEAD_REVISION} (up to date)" in out


def test_upgrade_prints_from_and_to(shipyard: Shipyard, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    out = shipyard("--tracking-uri", uri, "db", "upgrade").stdout
    assert f"from (empty) to {HEAD_REVISION}" in out


def test_current_of_the_workspace(shipyard: Shipyard) -> None:
    shipyard("experiments", "list")  # creates the embedded database
    data = shipyard.json("db", "current")
    assert data["revision"] == HEAD_REVISION
    assert data["up_to_date"] is True
    assert data["database"].endswith("shipyard.db")


def test_server_uri_is_refused(shipyard: Shipyard) -> None:
    line = shipyard.fails("--tracking-uri", "http://127.0.0.1:9", "db", "upgrade")
    assert line.startswith("Error: The tracking URI http://127.0.0.1:9 is a Shipyard server")
