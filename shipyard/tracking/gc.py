"""Garbage collection: make soft deletes permanent and give back the bytes nothing uses.

Deleting an experiment, a run or an MLflow logged model only marks it deleted (it can be
restored). :func:`collect_garbage` purges what was marked, frees the artifact bytes nothing else
references (another run, a model version, a dataset version), then sweeps the byte
store for orphans: blobs that no index entry references, left by an interrupted upload or a failed
delete, and the spool files of uploads whose process was killed. Nothing younger than the grace
period is swept, so an upload in progress (its blob stored, its index entry not yet written)
keeps its bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shipyard.artifacts.cas import ContentAddressedRepository, Freed
from shipyard.store.base import TrackingStore
from shipyard.store.logged_models import LoggedModelStore

_SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class GcReport:
    """What a garbage collection removed (or, with ``dry_run``, would remove).

    ``runs_purged`` counts runs purged on their own; the runs of a purged experiment go with it.
    A dry run purges nothing, so ``blobs_deleted`` and ``bytes_freed`` then count only the orphans
    the sweep would delete, not the bytes that purging would free.
    """

    experiments_purged: int = 0
    runs_purged: int = 0
    logged_models_purged: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0
    stale_uploads_removed: int = 0
    """Spool files of uploads whose process died (counted as 0 in a dry run)."""
    dry_run: bool = False


def collect_garbage(
    store: TrackingStore,
    artifacts: ContentAddressedRepository,
    *,
    older_than_ms: int | None,
    grace_seconds: int,
    dry_run: bool = False,
    logged_models: LoggedModelStore | None = None,
) -> GcReport:
    """Purge soft-deleted experiments, runs and (given ``logged_models``) MLflow logged models,
    free their bytes, and sweep orphaned blobs.

    ``older_than_ms`` is a moment (milliseconds since the epoch): only what was deleted before it
    is purged; ``None`` purges everything deleted. ``grace_seconds`` protects blobs written that
    recently from the sweep. With ``dry_run`` nothing changes and the report says what would.
    """
    experiment_ids = store.deleted_experiment_ids(older_than_ms)
    freed = Freed()
    for experiment_id in experiment_ids:
        if not dry_run:
            freed += artifacts.release(store.purge_experiment(experiment_id))
    # Runs of deleted experiments are not listed here: they went with their experiment.
    run_ids = store.deleted_run_ids(older_than_ms)
    for run_id in run_ids:
        if not dry_run:
            freed += artifacts.release(store.purge_run(run_id))
    model_ids = logged_models.deleted_logged_model_ids(older_than_ms) if logged_models else []
    for model_id in model_ids:
        if not dry_run and logged_models is not None:
            freed += artifacts.release(logged_models.purge_logged_model(model_id))
    freed += sweep_orphans(store, artifacts, grace_seconds=grace_seconds, dry_run=dry_run)
    stale = 0 if dry_run else artifacts.remove_stale_uploads(grace_seconds)
    return GcReport(
        experiments_purged=len(experiment_ids),
        runs_purged=len(run_ids),
        logged_models_purged=len(model_ids),
        blobs_deleted=freed.blobs_deleted,
        bytes_freed=freed.bytes_freed,
        stale_uploads_removed=stale,
        dry_run=dry_run,
    )


def sweep_orphans(
    store: TrackingStore,
    artifacts: ContentAddressedRepository,
    *,
    grace_seconds: int,
    dry_run: bool = False,
) -> Freed:
    """Delete blobs that no index entry references and that are older than ``grace_seconds``.

    The referenced digests are read once into a set (about 100 bytes each); the byte store is
    then listed as a stream, and each batch of candidates is checked against the index again just
    before it is deleted, so content re-uploaded meanwhile is kept.
    """
    referenced = set(store.iter_referenced_digests())
    cutoff = time.time() - grace_seconds
    freed = Freed()
    batch: dict[str, int] = {}
    for digest, info in artifacts.iter_blobs():
        if digest in referenced or info.mtime >= cutoff:
            continue
        batch[digest] = info.size
        if len(batch) >= _SWEEP_BATCH:
            freed += artifacts.release(batch, sizes=batch, dry_run=dry_run)
            batch = {}
    if batch:
        freed += artifacts.release(batch, sizes=batch, dry_run=dry_run)
    return freed


def delete_experiment_permanently(
    store: TrackingStore, artifacts: ContentAddressedRepository, experiment_id: str
) -> GcReport:
    """Purge one experiment with its runs now, and free the bytes nothing else references."""
    freed = artifacts.release(store.purge_experiment(experiment_id))
    return GcReport(
        experiments_purged=1, blobs_deleted=freed.blobs_deleted, bytes_freed=freed.bytes_freed
    )


def delete_run_permanently(
    store: TrackingStore, artifacts: ContentAddressedRepository, run_id: str
) -> GcReport:
    """Purge one run now, and free the bytes nothing else references."""
    freed = artifacts.release(store.purge_run(run_id))
    return GcReport(runs_purged=1, blobs_deleted=freed.blobs_deleted, bytes_freed=freed.bytes_freed)
