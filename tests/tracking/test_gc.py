"""Garbage collection over the real index and a local byte store."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.artifacts.cas import ContentAddressedRepository, blob_key
from shipyard.artifacts.local import LocalByteStore
from shipyard.entities import ArtifactInfo
from shipyard.errors import NotFound
from shipyard.store.sql import SqlTrackingStore
from shipyard.tracking import gc
from shipyard.tracking.gc import (
    GcReport,
    collect_garbage,
    delete_experiment_permanently,
    delete_run_permanently,
)
from tests.artifacts.helpers import open_tracking_store

HOUR = 3600


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlTrackingStore]:
    s = open_tracking_store(tmp_path)
    yield s
    s.close()


@pytest.fixture
def repo(store: SqlTrackingStore, tmp_path: Path) -> ContentAddressedRepository:
    return ContentAddressedRepository(
        store, LocalByteStore(tmp_path / "artifacts"), tmp_path / "tmp"
    )


def new_run(store: SqlTrackingStore, experiment_id: str) -> str:
    return str(store.create_run(experiment_id).info.run_id)


def put(repo: ContentAddressedRepository, run_id: str, path: str, data: bytes) -> str:
    digest = repo.upload(run_id, path, io.BytesIO(data)).digest
    assert digest is not None
    return digest


def stored(repo: ContentAddressedRepository) -> set[str]:
    return {d for d, _ in repo.iter_blobs()}


def orphan(repo: ContentAddressedRepository, tmp_path: Path, data: bytes, age_s: float) -> str:
    """A blob no index entry references (as a crashed upload leaves), written ``age_s`` ago."""
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    src = tmp_path / "orphan-src"
    src.write_bytes(data)
    repo.blobs.put_file(blob_key(digest), src)
    path = repo.blobs.local_path(blob_key(digest))
    assert path is not None
    then = time.time() - age_s
    os.utime(path, (then, then))
    return digest


def now_ms() -> int:
    return int(time.time() * 1000)


def test_purges_deleted_runs_and_frees_their_own_bytes(
    store: SqlTrackingStore, repo: ContentAddressedRepository
) -> None:
    exp = store.create_experiment("gc")
    doomed, kept = new_run(store, exp), new_run(store, exp)
    own = put(repo, doomed, "model/own.bin", b"only the doomed run has this")
    shared = put(repo, doomed, "shared.bin", b"both runs have this")
    put(repo, kept, "copy.bin", b"both runs have this")
    store.delete_run(doomed)

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR)

    assert report == GcReport(runs_purged=1, blobs_deleted=1, bytes_freed=28)
    assert stored(repo) == {shared}
    assert own not in stored(repo)
    with pytest.raises(NotFound):
        store.get_run(doomed)
    assert repo.list(doomed) == []
    with repo.open(kept, "copy.bin") as f:
        assert f.read() == b"both runs have this"


def test_purges_deleted_experiments_with_their_runs(
    store: SqlTrackingStore, repo: ContentAddressedRepository
) -> None:
    doomed_exp, kept_exp = store.create_experiment("doomed"), store.create_experiment("kept")
    a, b = new_run(store, doomed_exp), new_run(store, doomed_exp)
    put(repo, a, "a", b"aa")
    put(repo, b, "b", b"bbb")
    survivor = put(repo, new_run(store, kept_exp), "c", b"c")
    store.delete_run(a)  # deleted on its own too: it goes with the experiment
    store.delete_experiment(doomed_exp)

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR)

    assert report == GcReport(experiments_purged=1, runs_purged=0, blobs_deleted=2, bytes_freed=5)
    assert stored(repo) == {survivor}
    assert store.deleted_experiment_ids() == []


def test_only_what_was_deleted_before_the_cutoff_is_purged(
    store: SqlTrackingStore, repo: ContentAddressedRepository
) -> None:
    exp = store.create_experiment("gc")
    run = new_run(store, exp)
    digest = put(repo, run, "f", b"data")
    cutoff = now_ms() - 1
    time.sleep(0.01)
    store.delete_run(run)

    report = collect_garbage(store, repo, older_than_ms=cutoff, grace_seconds=HOUR)
    assert report == GcReport()
    assert stored(repo) == {digest}

    report = collect_garbage(store, repo, older_than_ms=now_ms() + 1, grace_seconds=HOUR)
    assert report == GcReport(runs_purged=1, blobs_deleted=1, bytes_freed=4)
    assert stored(repo) == set()


def test_sweep_deletes_old_orphans_and_respects_the_grace_period(
    store: SqlTrackingStore, repo: ContentAddressedRepository, tmp_path: Path
) -> None:
    run = new_run(store, store.create_experiment("gc"))
    referenced = put(repo, run, "f", b"in use")
    old = orphan(repo, tmp_path, b"crashed upload, long ago", age_s=2 * HOUR)
    young = orphan(repo, tmp_path, b"upload in progress", age_s=60)

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR)

    assert report == GcReport(blobs_deleted=1, bytes_freed=24)
    assert stored(repo) == {referenced, young}
    assert old not in stored(repo)

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=0)
    assert report == GcReport(blobs_deleted=1, bytes_freed=18)
    assert stored(repo) == {referenced}


def test_an_upload_in_flight_keeps_its_blob(
    store: SqlTrackingStore, repo: ContentAddressedRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC runs after the upload stored its blob and before it wrote the index entry."""
    run = new_run(store, store.create_experiment("gc"))
    record = store.record_artifact
    reports: list[GcReport] = []

    def gc_then_record(owner: str, path: str, digest: str, size: int) -> ArtifactInfo:
        reports.append(collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR))
        return record(owner, path, digest, size)

    monkeypatch.setattr(store, "record_artifact", gc_then_record)
    put(repo, run, "f", b"in flight")

    assert reports == [GcReport()]
    with repo.open(run, "f") as f:
        assert f.read() == b"in flight"


def test_sweep_keeps_content_referenced_after_it_started(
    store: SqlTrackingStore,
    repo: ContentAddressedRepository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The referenced set is a snapshot; each batch is checked against the index again."""
    run = new_run(store, store.create_experiment("gc"))
    digest = orphan(repo, tmp_path, b"re-uploaded meanwhile", age_s=2 * HOUR)
    put(repo, run, "f", b"re-uploaded meanwhile")  # deduplicated onto the old blob
    monkeypatch.setattr(store, "iter_referenced_digests", lambda: iter(()))  # a stale snapshot

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR)

    assert report == GcReport()
    assert stored(repo) == {digest}


def test_sweep_works_in_batches(
    store: SqlTrackingStore,
    repo: ContentAddressedRepository,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gc, "_SWEEP_BATCH", 3)
    run = new_run(store, store.create_experiment("gc"))
    keep = put(repo, run, "f", b"keep")
    for i in range(10):
        orphan(repo, tmp_path, f"orphan {i:02d}".encode(), age_s=2 * HOUR)

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR)

    assert report == GcReport(blobs_deleted=10, bytes_freed=90)
    assert stored(repo) == {keep}


def test_dry_run_changes_nothing(
    store: SqlTrackingStore, repo: ContentAddressedRepository, tmp_path: Path
) -> None:
    exp = store.create_experiment("gc")
    run = new_run(store, exp)
    put(repo, run, "f", b"data")
    store.delete_run(run)
    orphan(repo, tmp_path, b"orphan", age_s=2 * HOUR)
    before = stored(repo)

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR, dry_run=True)

    assert report == GcReport(runs_purged=1, blobs_deleted=1, bytes_freed=6, dry_run=True)
    assert stored(repo) == before
    assert store.deleted_run_ids() == [run]


def test_delete_run_permanently(store: SqlTrackingStore, repo: ContentAddressedRepository) -> None:
    exp = store.create_experiment("gc")
    run, other = new_run(store, exp), new_run(store, exp)
    put(repo, run, "a", b"mine")
    shared = put(repo, run, "b", b"ours")
    put(repo, other, "b", b"ours")

    report = delete_run_permanently(store, repo, run)

    assert report == GcReport(runs_purged=1, blobs_deleted=1, bytes_freed=4)
    assert stored(repo) == {shared}
    assert repo.list(run) == []


def test_delete_experiment_permanently(
    store: SqlTrackingStore, repo: ContentAddressedRepository
) -> None:
    exp = store.create_experiment("gc")
    put(repo, new_run(store, exp), "a", b"one")
    put(repo, new_run(store, exp), "a", b"one")
    put(repo, new_run(store, exp), "b", b"two!")
    store.delete_experiment(exp)

    report = delete_experiment_permanently(store, repo, exp)

    assert report == GcReport(experiments_purged=1, blobs_deleted=2, bytes_freed=7)
    assert stored(repo) == set()


def test_spool_files_of_killed_uploads_are_removed_after_the_grace_period(
    store: SqlTrackingStore, repo: ContentAddressedRepository, tmp_path: Path
) -> None:
    repo.tmp_dir.mkdir(parents=True, exist_ok=True)
    killed = repo.tmp_dir / "shipyard-upload-abc.part"
    in_progress = repo.tmp_dir / "shipyard-upload-def.part"
    someone_elses = repo.tmp_dir / "other-tool.tmp"
    for f in (killed, in_progress, someone_elses):
        f.write_bytes(b"partial")
    then = time.time() - 2 * HOUR
    os.utime(killed, (then, then))
    os.utime(someone_elses, (then, then))

    dry = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR, dry_run=True)
    assert dry.stale_uploads_removed == 0
    assert killed.exists()

    report = collect_garbage(store, repo, older_than_ms=None, grace_seconds=HOUR)
    assert report == GcReport(stale_uploads_removed=1)
    assert not killed.exists()
    assert in_progress.exists()
    assert someone_elses.exists()


def test_purges_deleted_logged_models_and_frees_their_own_bytes(
    store: SqlTrackingStore, repo: ContentAddressedRepository
) -> None:
    from shipyard.errors import InvalidState
    from shipyard.store.sql_logged_models import SqlLoggedModelStore

    models = SqlLoggedModelStore(store.database)
    exp = store.create_experiment("gc-models")
    run = new_run(store, exp)
    doomed = models.create_logged_model(exp, name="doomed", source_run_id=run)
    kept = models.create_logged_model(exp, name="kept")
    models.set_logged_model_tags(doomed.model_id, {"k": "v"})
    models.log_run_models(run, outputs=[(doomed.model_id, 0)])
    own = put(repo, doomed.model_id, "model.pkl", b"only the doomed model has this")
    shared = put(repo, kept.model_id, "model.pkl", b"both have this")
    put(repo, doomed.model_id, "copy.pkl", b"both have this")
    with pytest.raises(InvalidState, match="not deleted"):
        models.purge_logged_model(doomed.model_id)
    models.delete_logged_model(doomed.model_id)

    dry = collect_garbage(
        store, repo, older_than_ms=None, grace_seconds=HOUR, dry_run=True, logged_models=models
    )
    assert (dry.logged_models_purged, dry.bytes_freed) == (1, 0)
    assert own in stored(repo)

    report = collect_garbage(
        store, repo, older_than_ms=None, grace_seconds=HOUR, logged_models=models
    )

    assert report == GcReport(logged_models_purged=1, blobs_deleted=1, bytes_freed=30)
    assert stored(repo) == {shared}
    with pytest.raises(NotFound):
        models.get_logged_model(doomed.model_id, allow_deleted=True)
    assert models.run_models([run]) == {}
    assert models.get_logged_model(kept.model_id).name == "kept"
    assert models.deleted_logged_model_ids() == []
