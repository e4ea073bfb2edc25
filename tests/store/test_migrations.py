"""The schema lifecycle: Alembic migrations produce exactly ``schema.py``, databases behind the
code are refused with a message that says how to migrate them, and upgrades are idempotent.

Every test runs on SQLite and on the PostgreSQL test server (``db_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from shipyard import errors
from shipyard.config import Settings
from shipyard.store import db, schema
from shipyard.store.sql import SqlTrackingStore
from shipyard.workspace import Workspace


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_uri")


def _diffs(url: str) -> list[Any]:
    """What ``schema.metadata`` has that the database lacks, or the other way round."""
    engine = db.create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, schema.metadata))
    finally:
        engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = db.create_engine(url, pool_size=1)
    try:
        with engine.execution_options(shipyard_write=True).begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _revision_chain() -> list[str]:
    """Every shipped revision, oldest first."""
    scripts = ScriptDirectory.from_config(db.alembic_config())
    return [r.revision for r in scripts.walk_revisions()][::-1]


# ---------------------------------------------------------------------------- the migrations


def test_migrations_have_one_head_and_it_is_the_code_revision() -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config())
    assert scripts.get_heads() == [schema.HEAD_REVISION]
    assert set(_revision_chain()) == db.known_revisions()


def test_upgrade_from_empty_produces_exactly_the_schema(db_url: str) -> None:
    db.upgrade(db_url)
    assert db.current_revision(db_url) == schema.HEAD_REVISION
    assert _diffs(db_url) == []


def test_the_comparison_notices_a_missing_index(db_url: str) -> None:
    db.upgrade(db_url)
    _execute(db_url, "DROP INDEX ix_latest_metrics_key_value")
    diffs = _diffs(db_url)
    assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_latest_metrics_key_value")]


def test_first_open_creates_the_same_schema_as_the_migrations(db_url: str) -> None:
    with SqlTrackingStore(db_url) as store:
        assert store.get_experiment("0").name == "Default"
    assert db.current_revision(db_url) == schema.HEAD_REVISION
    assert _diffs(db_url) == []


def test_upgrade_is_idempotent(db_url: str) -> None:
    db.upgrade(db_url)
    with SqlTrackingStore(db_url) as store:
        run_id = store.create_run("0", run_name="kept").info.run_id
        store.log_batch(run_id, params={"p": "1"})
    db.upgrade(db_url)
    db.upgrade(db_url)
    assert db.current_revision(db_url) == schema.HEAD_REVISION
    assert _diffs(db_url) == []
    with SqlTrackingStore(db_url) as store:
        run = store.get_run(run_id)
        assert (run.info.run_name, run.data.params) == ("kept", {"p": "1"})
        assert len(store.search_experiments()) == 1


def test_upgrade_from_every_shipped_revision_reaches_the_schema(db_url: str) -> None:
    for revision in _revision_chain():
        url = db_url
        if revision != _revision_chain()[0]:  # a fresh database per starting revision
            _drop_everything(url)
        db.upgrade(url, revision)
        assert db.current_revision(url) == revision
        if revision != schema.HEAD_REVISION:
            with pytest.raises(errors.MigrationRequired):
                SqlTrackingStore(url)
        db.upgrade(url)
        assert db.current_revision(url) == schema.HEAD_REVISION
        assert _diffs(url) == []


def _drop_everything(url: str) -> None:
    engine = db.create_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            schema.metadata.drop_all(conn)
            db.version_table.drop(conn, checkfirst=True)
    finally:
        engine.dispose()


def test_a_fresh_embedded_workspace_is_created_at_head(tmp_path: Path) -> None:
    settings = Settings.from_env({}, home=tmp_path / "home")
    with Workspace.open(settings) as ws:
        assert ws.store.get_experiment("0").name == "Default"
    url = settings.tracking_uri
    assert url.startswith("sqlite:///")
    assert (tmp_path / "home").is_dir()
    assert db.current_revision(url) == schema.HEAD_REVISION
    assert _diffs(url) == []


# ---------------------------------------------------------------------------- refusals


def _pretend_code_moved_on(monkeypatch: pytest.MonkeyPatch, head: str) -> None:
    """Make this process's code expect ``head``, a revision newer than what the files ship."""
    known = db.known_revisions() | {head}
    monkeypatch.setattr(schema, "HEAD_REVISION", head)
    monkeypatch.setattr(db, "known_revisions", lambda: known)


def test_a_database_at_an_older_revision_is_refused(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.upgrade(db_url)
    old = db.current_revision(db_url)
    assert old is not None
    _pretend_code_moved_on(monkeypatch, "9999_future")
    with pytest.raises(errors.MigrationRequired) as caught:
        SqlTrackingStore(db_url)
    message = str(caught.value)
    assert old in message
    assert "9999_future" in message
    assert "`shipyard db upgrade`" in message
    assert caught.value.details == {"database_revision": old, "code_revision": "9999_future"}
    assert "password" not in message


def test_a_database_at_an_unknown_revision_says_to_upgrade_shipyard(db_url: str) -> None:
    db.upgrade(db_url)
    _execute(db_url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(errors.MigrationRequired) as caught:
        SqlTrackingStore(db_url)
    message = str(caught.value)
    assert "9999_from_the_future" in message
    assert schema.HEAD_REVISION in message
    assert "pip install -U shipyard" in message
    with pytest.raises(errors.MigrationRequired, match="upgrade Shipyard instead"):
        db.upgrade(db_url)


def test_tables_without_a_revision_are_refused_then_upgrade_adopts_them(db_url: str) -> None:
    with SqlTrackingStore(db_url) as store:
        run_id = store.create_run("0").info.run_id
    _execute(db_url, "DROP TABLE alembic_version")
    assert db.current_revision(db_url) is None

    with pytest.raises(errors.MigrationRequired) as caught:
        SqlTrackingStore(db_url)
    message = str(caught.value)
    assert "no schema revision" in message
    assert "database revision: none" in message
    assert schema.HEAD_REVISION in message
    assert "`shipyard db upgrade`" in message

    db.upgrade(db_url)
    assert db.current_revision(db_url) == schema.HEAD_REVISION
    assert _diffs(db_url) == []
    with SqlTrackingStore(db_url) as store:
        assert store.get_run(run_id).info.run_id == run_id


def test_unrecognizable_tables_without_a_revision_are_left_alone(db_url: str) -> None:
    with SqlTrackingStore(db_url):
        pass
    _execute(db_url, "DROP TABLE alembic_version", "ALTER TABLE params ADD COLUMN extra TEXT")
    with pytest.raises(errors.MigrationRequired, match="match no revision") as caught:
        db.upgrade(db_url)
    assert "Restore it from a backup" in str(caught.value)
    assert db.current_revision(db_url) is None


def test_a_database_missing_its_tables_says_to_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    with SqlTrackingStore(url) as store:
        _execute(url, "DROP TABLE latest_metrics")
        with pytest.raises(errors.MigrationRequired, match="`shipyard db upgrade`"):
            store.search_runs(["0"], order_by=["metrics.m DESC"])
