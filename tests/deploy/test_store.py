"""The deployment store on SQLite and PostgreSQL: compare-and-set state, traffic revisions, and
decisions written with their state change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard import errors
from shipyard.config import Settings
from shipyard.store.deployments import DeploymentRecord, DeploymentStore
from shipyard.workspace import Workspace


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeploymentStore]:
    if request.param == "sqlite":
        settings = Settings.from_env({}, home=tmp_path / "h")
    else:
        uri = request.getfixturevalue("postgres_uri")
        settings = Settings.from_env({}, home=tmp_path / "h", tracking_uri=uri)
    ws = Workspace.open(settings)
    try:
        yield ws.deployments
    finally:
        ws.close()


def _new(store: DeploymentStore, name: str = "d") -> DeploymentRecord:
    return store.create(
        DeploymentRecord(name, "m", {"name": name}, "idle", traffic={"arms": [], "shadow": []})
    )


def test_create_get_list_delete(store: DeploymentStore) -> None:
    rec = _new(store)
    assert rec.revision == 1
    assert rec.traffic_revision == 0
    assert rec.creation_time > 0
    assert store.get("d") == rec
    assert [r.name for r in store.list()] == ["d"]
    with pytest.raises(errors.AlreadyExists, match="exists already"):
        _new(store)
    store.delete("d")
    with pytest.raises(errors.NotFound, match="there are none yet"):
        store.get("d")
    with pytest.raises(errors.NotFound):
        store.delete("d")


def test_update_is_compare_and_set(store: DeploymentStore) -> None:
    rec = _new(store)
    moved = store.update("d", rec.revision, {"state": "gating", "candidate_version": 2})
    assert moved is not None
    assert moved.revision == 2
    assert moved.state == "gating"
    assert store.update("d", rec.revision, {"state": "shadow"}) is None  # stale revision
    assert store.get("d").state == "gating"
    with pytest.raises(errors.InvalidInput, match="can't be changed"):
        store.update("d", 2, {"revision": 9})


def test_traffic_revision_moves_only_when_traffic_changes(store: DeploymentStore) -> None:
    rec = _new(store)
    arms = {"arms": [{"name": "v1", "model": "models:/m/1", "weight": 100.0}], "shadow": []}
    a = store.update("d", rec.revision, {"traffic": arms})
    assert a is not None
    assert a.traffic_revision == 1
    assert a.traffic == arms
    b = store.update("d", a.revision, {"traffic": arms, "step": 1})
    assert b is not None
    assert b.traffic_revision == 1
    assert b.step == 1


def test_an_event_lands_with_its_state_change(store: DeploymentStore) -> None:
    rec = _new(store)
    event = {"action": "promoted", "message": "m", "version": 2, "evidence": {"auc": float("nan")}}
    assert store.update("d", rec.revision, {"state": "promoted"}, event=event) is not None
    assert (
        store.update("d", rec.revision, {"state": "x"}, event={"action": "lost", "message": ""})
        is None
    )
    events = store.events("d")
    assert [e.action for e in events] == ["promoted"]
    assert events[0].evidence == {"auc": None}
    assert events[0].version == 2
    later = store.record_event("d", "alert", "drift", evidence={"value": 0.7}, user_id="mon")
    assert [e.event_id for e in store.events("d", after=events[0].event_id)] == [later.event_id]
