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


# ---------------------------------------------------------------------------- upgrades keep data


def _rows_by_table(url: str, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables``, restricted to the columns the oldest revision had, sorted."""
    engine = db.create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            out = {}
            for name, columns in tables_at_oldest.items():
                if name not in tables:
                    continue
                cols = ", ".join(f'"{c}"' for c in columns)
                rows = conn.execute(sa.text(f'SELECT {cols} FROM "{name}"')).all()
                out[name] = sorted((tuple(r) for r in rows), key=repr)
            return out
    finally:
        engine.dispose()


tables_at_oldest: dict[str, list[str]] = {}


def _fill_oldest(url: str, runs: int = 40) -> None:
    """Rows in every table of revision 0001, written with SQL against that revision's schema."""
    engine = db.create_engine(url, pool_size=1)
    t0 = 1_700_000_000_000
    try:
        with engine.execution_options(shipyard_write=True).begin() as conn:
            inspector = sa.inspect(conn)
            for name in inspector.get_table_names():
                if name != "alembic_version":
                    tables_at_oldest[name] = [c["name"] for c in inspector.get_columns(name)]
            meta = sa.MetaData()
            meta.reflect(conn)
            t = meta.tables
            conn.execute(
                t["experiments"].insert(),
                [
                    {
                        "experiment_id": i,
                        "name": name,
                        "artifact_location": f"shipyard-artifacts:/{i}",
                        "lifecycle_stage": "active",
                        "creation_time": t0,
                        "last_update_time": t0,
                    }
                    for i, name in ((0, "Default"), (1, "old-exp"))
                ],
            )
            conn.execute(
                t["experiment_tags"].insert(),
                [{"experiment_id": 1, "key": "team", "value": "search"}],
            )
            conn.execute(
                t["datasets"].insert(),
                [
                    {
                        "dataset_id": 1,
                        "experiment_id": 1,
                        "name": "train",
                        "digest": "abc123",
                        "source_type": "local",
                        "source": "/data/train.csv",
                        "schema": "{}",
                        "profile": None,
                    }
                ],
            )
            run_rows, params, tags, metrics, latest, inputs, artifacts = [], [], [], [], [], [], []
            for r in range(runs):
                run_id = f"{r:032x}"
                run_rows.append(
                    {
                        "run_id": run_id,
                        "experiment_id": 1,
                        "run_name": f"run-{r}",
                        "user_id": "old-user",
                        "status": "FINISHED",
                        "start_time": t0 + r,
                        "end_time": t0 + r + 10,
                        "lifecycle_stage": "deleted" if r == 0 else "active",
                        "artifact_uri": f"shipyard-artifacts:/1/{run_id}",
                        "parent_run_id": None,
                        "deleted_time": t0 if r == 0 else None,
                    }
                )
                params += [
                    {"run_id": run_id, "key": f"p{k}", "value": f"{r}-{k}"} for k in range(3)
                ]
                tags.append({"run_id": run_id, "key": "mlflow.user", "value": "old-user"})
                for step in range(5):
                    nan = r == 1 and step == 4
                    metrics.append(
                        {
                            "run_id": run_id,
                            "key": "loss",
                            "step": step,
                            "timestamp": t0 + step,
                            "value": 0.0 if nan else 1.0 / (step + 1),
                            "is_nan": nan,
                            "dataset_name": "train" if step == 0 else None,
                            "dataset_digest": "abc123" if step == 0 else None,
                            "model_id": None,
                        }
                    )
                latest.append(
                    {
                        "run_id": run_id,
                        "key": "loss",
                        "step": 4,
                        "timestamp": t0 + 4,
                        "value": 0.0 if r == 1 else 0.2,
                        "is_nan": r == 1,
                    }
                )
                inputs.append({"run_id": run_id, "dataset_id": 1, "tags": "{}"})
                artifacts.append(
                    {
                        "owner_id": run_id,
                        "path": "model/MLmodel",
                        "digest": f"{r:064x}",
                        "size": 100 + r,
                        "created_time": t0,
                    }
                )
            conn.execute(t["runs"].insert(), run_rows)
            for table, rows in (
                ("params", params),
                ("tags", tags),
                ("metrics", metrics),
                ("latest_metrics", latest),
                ("run_inputs", inputs),
                ("artifacts", artifacts),
            ):
                conn.execute(t[table].insert(), rows)
    finally:
        engine.dispose()


def test_upgrading_from_the_oldest_revision_with_data_loses_nothing(db_url: str) -> None:
    oldest = _revision_chain()[0]
    assert oldest == "0001_initial"
    db.upgrade(db_url, oldest)
    _fill_oldest(db_url)
    before = _rows_by_table(db_url, list(tables_at_oldest))
    assert sum(len(rows) for rows in before.values()) > 500

    db.upgrade(db_url)
    assert db.current_revision(db_url) == schema.HEAD_REVISION
    assert _diffs(db_url) == []
    assert _rows_by_table(db_url, list(tables_at_oldest)) == before

    # And the code reads the old rows as it reads its own.
    with SqlTrackingStore(db_url) as store:
        found = store.search_runs(["1"], max_results=1000)
        assert len(found.items) == 39  # run 0 was deleted
        run = store.get_run(f"{5:032x}")
        assert run.data.params == {"p0": "5-0", "p1": "5-1", "p2": "5-2"}
        assert run.data.metrics["loss"].value == 0.2
        assert [m.step for m in store.get_metric_history(run.info.run_id, "loss").items] == [
            0,
            1,
            2,
            3,
            4,
        ]
        nan_run = store.get_run(f"{1:032x}")
        assert nan_run.data.metrics["loss"].value != nan_run.data.metrics["loss"].value  # NaN
        assert store.get_experiment("1").tags == {"team": "search"}
        new_run = store.create_run("1").info.run_id
        store.log_batch(new_run, params={"after": "upgrade"})
        assert store.get_run(new_run).data.params == {"after": "upgrade"}
