"""The metadata store interface for experiment tracking.

One abstract class, implemented by :class:`~shipyard.store.sql.SqlTrackingStore` (SQLite and
PostgreSQL) and :class:`~shipyard.store.rest.RestTrackingStore` (a Shipyard server). The same
contract test suite (``tests/store/contract.py``) runs against every implementation.

Conventions:

* Times are integer milliseconds since the Unix epoch.
* Experiment ids are decimal strings (``"0"`` is the default experiment, named ``Default``); run
  ids are 32-character lowercase hex strings.
* Listing methods return :class:`~shipyard.entities.Page`; pass its ``next_page_token`` back as
  ``page_token`` to get the next page. Tokens are opaque.
* Errors are :mod:`shipyard.errors` subclasses: ``NotFound`` for unknown ids, ``InvalidInput`` for
  malformed values, ``Conflict`` for contradicting writes (changing a param),
  ``InvalidState`` for writes to a deleted run.
* Artifact *bytes* are not stored here; only the index of which path of which owner (a run id)
  holds which content digest. See :mod:`shipyard.artifacts`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from shipyard.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Run,
    RunInfo,
    ViewType,
)

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

MetricLinks = tuple[str | None, str | None, str | None]
"""A point's ``(dataset_name, dataset_digest, model_id)``."""
HistoryRow = tuple[int, int, float | None, Any]
"""One point of a metric's history as a plain tuple: ``(step, timestamp, value, links)``.
``value`` is ``None`` where a NaN was logged. ``links`` is falsy (``None``, ``0`` or ``False``)
for a point logged without a dataset or model, which is nearly every point, and otherwise the
point's :data:`MetricLinks`. See :meth:`TrackingStore.get_metric_history_rows`."""


class TrackingStore(ABC):
    """Experiments, runs, params, metrics, tags, dataset inputs and the artifact index."""

    # ---------------------------------------------------------------- experiments

    @abstractmethod
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create an experiment and return its id. ``AlreadyExists`` if the name is taken
        (also by a deleted experiment: restore it, or delete it permanently to free the name)."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id, deleted or not. ``NotFound`` if there is none."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment with this exact name (deleted or not), or ``None``."""

    @abstractmethod
    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        """Experiments matching an MLflow-style filter (``name LIKE 'x%'``, ``tags.k = 'v'``),
        by default newest first."""

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new, unused name."""

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and its runs (restorable). The default one can't be deleted."""

    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None:
        """Undo :meth:`delete_experiment` for the experiment and the runs it deleted."""

    @abstractmethod
    def purge_experiment(self, experiment_id: str) -> set[str]:
        """Permanently delete an experiment, its runs and their artifact index entries.

        Frees the name. Returns the content digests that the removed artifacts referenced, so
        the caller can free the bytes no longer referenced by anything else."""

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag on an experiment."""

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment. ``NotFound`` if it has no such tag."""

    # ---------------------------------------------------------------- runs

    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a run (status RUNNING) in an active experiment. A missing ``run_name`` gets a
        generated, readable one. ``parent_run_id`` makes it a nested run."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run with its latest metrics, params, tags and dataset inputs."""

    @abstractmethod
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change a run's status, end time or name."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Soft-delete a run (restorable)."""

    @abstractmethod
    def restore_run(self, run_id: str) -> None:
        """Undo :meth:`delete_run`."""

    @abstractmethod
    def purge_run(self, run_id: str) -> set[str]:
        """Permanently delete a run and its children's rows; returns the digests its artifacts
        referenced (see :meth:`purge_experiment`)."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """Write metrics, params and tags in one atomic transaction.

        Params are write-once: the same value again is accepted, a different one is a
        ``Conflict``. Tags are overwritten. The run must be active (not deleted)."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run. ``NotFound`` if it has no such tag."""

    @abstractmethod
    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record the datasets a run used (deduplicated by experiment, name and digest)."""

    @abstractmethod
    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[Metric]:
        """Every logged value of one metric, ordered by step then timestamp."""

    def get_metric_history_rows(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryRow]:
        """:meth:`get_metric_history` as :data:`HistoryRow` tuples, for code that turns long
        histories into another form (the servers' JSON) and need not build an entity per point.

        The SQL store reads them straight from the driver; this default converts the entities.
        """
        page = self.get_metric_history(run_id, key, max_results, page_token)
        rows: list[HistoryRow] = []
        for m in page.items:
            links = (m.dataset_name, m.dataset_digest, m.model_id)
            value = None if math.isnan(m.value) else m.value
            rows.append((m.step, m.timestamp, value, links if any(links) else None))
        return Page(rows, page.next_page_token)

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        """Runs of the given experiments matching an MLflow filter, in the requested order.

        Ordering and filtering follow MLflow: see :mod:`shipyard.store.filters`. Pagination is
        keyset-based, so deep pages cost the same as the first."""

    # ---------------------------------------------------------------- artifact index

    @abstractmethod
    def record_artifact(self, owner: str, path: str, digest: str, size: int) -> ArtifactInfo:
        """Point ``path`` of an owner (a run id) at content ``digest`` (overwrites)."""

    @abstractmethod
    def get_artifact(self, owner: str, path: str) -> ArtifactInfo:
        """The index entry of one artifact file. ``NotFound`` if there is no such file."""

    @abstractmethod
    def list_artifacts(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        """The immediate children of folder ``path`` (files with size and digest, then folders).

        Paths in the result are relative to the owner's root. A missing folder or a file path
        gives an empty list."""

    @abstractmethod
    def delete_artifacts(self, owner: str, path: str = "") -> set[str]:
        """Remove a file, or a folder and everything below it, from the index; returns the
        digests it referenced."""

    @abstractmethod
    def unreferenced_digests(self, digests: set[str]) -> set[str]:
        """Those of ``digests`` that no artifact index entry points at any more."""

    @abstractmethod
    def iter_referenced_digests(self) -> Iterator[str]:
        """Every digest some artifact points at (for garbage collection)."""

    @abstractmethod
    def deleted_experiment_ids(self, older_than: int | None = None) -> list[str]:
        """Ids of soft-deleted experiments (deleted before ``older_than`` ms, if given)."""

    @abstractmethod
    def deleted_run_ids(self, older_than: int | None = None) -> list[str]:
        """Ids of soft-deleted runs whose experiment is active (deleted before ``older_than``)."""

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store must not be used afterwards."""

    def __enter__(self) -> TrackingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
