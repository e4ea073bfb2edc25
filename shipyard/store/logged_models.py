"""The metadata store interface for logged models (MLflow 3's ``LoggedModel``).

One abstract class, implemented by
:class:`~shipyard.store.sql_logged_models.SqlLoggedModelStore` (SQLite and PostgreSQL, in the
tracking store's database). The contract tests (``tests/store/logged_model_contract.py``) run
against every implementation.

Conventions (beyond those of :mod:`shipyard.store.base`):

* A logged model belongs to one experiment and has an id of the form ``m-`` + 32 hex digits. Its
  files are its own entries in the artifact index, owner
  :attr:`~shipyard.entities.LoggedModel.storage_owner` (the model id), uploaded below its
  ``artifact_uri`` (``<experiment artifact location>/models/<model_id>/artifacts``).
* It is created ``LOGGED_MODEL_PENDING`` and finalized ``LOGGED_MODEL_READY`` (or
  ``LOGGED_MODEL_UPLOAD_FAILED``) once its files are uploaded.
* Params are write-once (the same value again is accepted; another value is a ``Conflict``);
  tags are overwritten.
* Deleting one only marks it deleted: reads then answer ``NotFound`` unless ``allow_deleted``, and
  writes are refused. Its files stay until its experiment is purged.
* Runs record the logged models they produced (outputs, at a step) and used (inputs).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shipyard.entities import LoggedModel, Page, RunModels
from shipyard.errors import InvalidInput

MODEL_ID_PREFIX = "m-"
"""Logged model ids (and so their artifact-index owners) are ``m-`` followed by 32 hex digits."""

DEFAULT_SEARCH_RESULTS = 100
MAX_SEARCH_RESULTS = 1000

_MODEL_ID_RE = re.compile(r"^m-[A-Za-z0-9][\w\-]{0,61}$")


def check_model_id(value: object) -> str:
    """A logged model id: ``m-`` followed by letters, digits, ``_`` or ``-`` (64 at most).
    ``InvalidInput`` otherwise."""
    if not isinstance(value, str) or not _MODEL_ID_RE.match(value):
        raise InvalidInput(
            f"logged model id {value!r} is not valid; logged model ids look like "
            "'m-0123456789abcdef0123456789abcdef' (as in models:/m-...)."
        )
    return value


@dataclass(frozen=True, slots=True)
class DatasetScope:
    """Restricts metric filters and metric ordering to the points logged on one dataset (of one
    digest, when given)."""

    name: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedModelOrder:
    """One order-by term of a logged-model search: ``field`` is an attribute (``name``,
    ``creation_timestamp``...) or ``metrics.<key>``, optionally scoped to a dataset (metrics
    only). Models lacking the value come last either way."""

    field: str
    ascending: bool = True
    dataset: DatasetScope | None = None


@dataclass(frozen=True, slots=True)
class LoggedModelFiles:
    """What registering a logged model needs: whose files, whether they are complete, and the
    run that produced them (one indexed row, none of the model's tags, params or metrics)."""

    model_id: str
    """Also the files' owner in the artifact index."""
    experiment_id: str
    status: str
    source_run_id: str | None


class LoggedModelStore(ABC):
    """Logged models: their lifecycle, tags and params, search, and the runs they link to."""

    @abstractmethod
    def create_logged_model(
        self,
        experiment_id: str,
        *,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        creator_id: str = "",
    ) -> LoggedModel:
        """Create a ``LOGGED_MODEL_PENDING`` model in an active experiment. Without ``name`` a
        random one is chosen. ``NotFound`` for an unknown experiment or source run."""

    @abstractmethod
    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        """The model with its tags, params, metrics and registrations. ``NotFound`` if there is
        none (or it was deleted, unless ``allow_deleted``)."""

    @abstractmethod
    def get_logged_model_files(self, model_id: str) -> LoggedModelFiles:
        """The model's status and source run, read cheaply. ``NotFound`` if there is none (or it
        was deleted)."""

    @abstractmethod
    def finalize_logged_model(
        self, model_id: str, status: str, *, status_message: str | None = None
    ) -> LoggedModel:
        """Set the model's status (``LOGGED_MODEL_READY`` once its files are uploaded, or
        ``LOGGED_MODEL_UPLOAD_FAILED``)."""

    @abstractmethod
    def delete_logged_model(self, model_id: str) -> None:
        """Mark the model deleted (see the module docstring)."""

    @abstractmethod
    def deleted_logged_model_ids(self, older_than: int | None = None) -> list[str]:
        """Ids of deleted models of active experiments (deleted before ``older_than``, epoch
        ms, when given), for garbage collection."""

    @abstractmethod
    def purge_logged_model(self, model_id: str) -> set[str]:
        """Remove a deleted model for good: its rows, run links and artifact index entries.
        Returns the content digests its files used (the caller releases the bytes nothing else
        references). ``InvalidState`` if the model is not deleted, ``NotFound`` if unknown."""

    @abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        """Set (or overwrite) tags, all in one transaction."""

    @abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Remove a tag. ``NotFound`` if the model has no such tag."""

    @abstractmethod
    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Record params (write-once, see the module docstring), all in one transaction."""

    @abstractmethod
    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        *,
        datasets: Sequence[DatasetScope] = (),
        max_results: int = DEFAULT_SEARCH_RESULTS,
        order_by: Sequence[LoggedModelOrder | str] | None = None,
        page_token: str | None = None,
    ) -> Page[LoggedModel]:
        """Active models of ``experiment_ids`` (none when it is empty) matching an MLflow filter
        (``name = 'model'``, ``metrics.acc > 0.9``, ``params.lr = '0.1'``, ``tags.k = 'v'``,
        ``status = 'LOGGED_MODEL_READY'``), newest first unless ``order_by`` says otherwise.

        A metric clause compares the model's latest point of that metric (highest step, then
        timestamp, then value), among the points on ``datasets`` when any are given. String
        ``order_by`` terms read ``"<field> [ASC|DESC]"``."""

    @abstractmethod
    def log_run_models(
        self,
        run_id: str,
        *,
        inputs: Sequence[str] = (),
        outputs: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Record that the active run ``run_id`` used the models ``inputs`` and produced
        ``outputs`` (``(model_id, step)``). Recording a link again keeps one (an output's step
        is updated). ``NotFound`` for an unknown run or model."""

    @abstractmethod
    def run_models(self, run_ids: Sequence[str]) -> dict[str, RunModels]:
        """The logged models each run used and produced (runs without any are left out)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store must not be used afterwards."""
