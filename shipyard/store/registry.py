"""The metadata store interface for the model registry.

One abstract class, implemented by :class:`~shipyard.store.sql_registry.SqlRegistryStore`
(SQLite and PostgreSQL, in the tracking store's database). The contract test suite
(``tests/store/registry_contract.py``) runs against every implementation.

Conventions (beyond those of :mod:`shipyard.store.base`):

* Models are addressed by name, versions by ``(name, version)`` with ``version`` a positive
  integer, numbered from 1 per model and never reused after a delete.
* A version's files are its own entries in the artifact index (owner
  :attr:`~shipyard.entities.ModelVersion.storage_owner`), copied from the source's entries when the
  version is created; content addressing shares the bytes.
* Every change to aliases, stages, statuses, approvals, policies, and every creation, rename and
  deletion appends a :class:`~shipyard.entities.RegistryEvent` (who, when, why, from -> to). The
  trail is never edited and outlives the model.
* Invariants are enforced inside the store's transaction, so no caller can skip them: an alias
  moves only to a version with enough distinct approvals (``ApprovalRequired``), and a version an
  alias points at can't be deleted (``InvalidState``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from shipyard.entities import Approval, ModelVersion, Page, RegisteredModel, RegistryEvent

ALL_ALIASES = "*"
"""The approval-policy key that applies to every alias without a policy of its own."""

STORAGE_OWNER_PREFIX = "mv-"
"""Artifact-index owners of model versions are ``mv-`` followed by 32 hex digits (run ids never
start with it), so an owner says by itself whether it is a run or a registered version."""


class RegistryStore(ABC):
    """Registered models, their versions, tags, aliases, approvals and audit trail."""

    # ---------------------------------------------------------------- registered models

    @abstractmethod
    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user_id: str = "",
    ) -> RegisteredModel:
        """Create an empty model. ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases, newest version per stage and approval policy."""

    @abstractmethod
    def update_registered_model(self, name: str, *, description: str | None) -> RegisteredModel:
        """Replace a model's description."""

    @abstractmethod
    def rename_registered_model(
        self, name: str, new_name: str, *, user_id: str = "", reason: str | None = None
    ) -> RegisteredModel:
        """Give a model a new, unused name (its versions, aliases and history follow it)."""

    @abstractmethod
    def delete_registered_model(
        self, name: str, *, user_id: str = "", reason: str | None = None
    ) -> set[str]:
        """Delete a model with all its versions for good. Refused (``InvalidState``) while an
        alias points at one of its versions. Returns the content digests the versions' files
        referenced, so the caller can free the bytes nothing else references."""

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or overwrite) a tag on a model."""

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a model. ``NotFound`` if it has no such tag."""

    @abstractmethod
    def search_registered_models(
        self,
        filter_string: str = "",
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """Models matching an MLflow filter (``name LIKE 'churn%'``, ``tags.team = 'risk'``),
        by default by name. ``tags.k != 'v'`` also matches models without tag ``k``."""

    # ---------------------------------------------------------------- versions

    @abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        *,
        artifact_owner: str,
        artifact_path: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user_id: str = "",
    ) -> ModelVersion:
        """Register the files at ``artifact_path`` of ``artifact_owner`` (a run id) as the next
        version of ``name``, creating the model if it does not exist.

        ``source`` is recorded as given (``runs:/<run_id>/<path>``). The files' index entries are
        copied, paths unchanged, to a new owner for the version, in the same transaction.
        ``NotFound`` if there are no files there."""

    @abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version with its tags and aliases. ``NotFound`` if there is none."""

    @abstractmethod
    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (every stage when empty), by stage name."""

    @abstractmethod
    def update_model_version(
        self, name: str, version: int, *, description: str | None
    ) -> ModelVersion:
        """Replace a version's description."""

    @abstractmethod
    def set_model_version_status(
        self,
        name: str,
        version: int,
        status: str,
        *,
        status_message: str | None = None,
        user_id: str = "",
        reason: str | None = None,
    ) -> ModelVersion:
        """Change a version's status (``READY``, ``PENDING_REGISTRATION``,
        ``FAILED_REGISTRATION``)."""

    @abstractmethod
    def transition_model_version_stage(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        user_id: str = "",
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to an MLflow stage (``None``, ``Staging``, ``Production``,
        ``Archived``; any case). ``archive_existing_versions`` archives the other versions in
        that stage. Kept for MLflow compatibility: prefer aliases."""

    @abstractmethod
    def delete_model_version(
        self, name: str, version: int, *, user_id: str = "", reason: str | None = None
    ) -> set[str]:
        """Delete a version and its files' index entries. Refused (``InvalidState``) while an
        alias points at it. Returns the digests its files referenced."""

    @abstractmethod
    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set (or overwrite) a tag on a version."""

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a version. ``NotFound`` if it has no such tag."""

    @abstractmethod
    def search_model_versions(
        self,
        filter_string: str = "",
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching an MLflow filter (``name = 'churn'``, ``run_id = '...'``,
        ``version_number > 2``, ``tags.k = 'v'``, and Shipyard's ``storage_owner = 'mv-...'``),
        by default by name then newest first."""

    @abstractmethod
    def versions_trained_on(
        self, dataset_name: str, dataset_digest: str | None = None
    ) -> list[ModelVersion]:
        """Versions whose run recorded this dataset (any digest unless one is given) as an input,
        by name then version."""

    # ---------------------------------------------------------------- aliases

    @abstractmethod
    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user_id: str = "",
        reason: str | None = None,
    ) -> None:
        """Point ``alias`` at ``version`` (moving it if it points elsewhere).

        ``ApprovalRequired`` when the model's policy for this alias (or for every alias) asks
        for more distinct approvers than the version has."""

    @abstractmethod
    def delete_alias(
        self, name: str, alias: str, *, user_id: str = "", reason: str | None = None
    ) -> None:
        """Remove an alias. ``NotFound`` if the model has no such alias."""

    @abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at. ``NotFound`` if the alias is not set."""

    @abstractmethod
    def alias_at(self, name: str, alias: str, timestamp: int) -> int | None:
        """The version ``alias`` pointed at at ``timestamp`` (ms since the epoch), from the audit
        trail; ``None`` if it pointed nowhere then."""

    @abstractmethod
    def version_references(self, name: str, version: int) -> list[str]:
        """What refers to a version and so forbids deleting it, in words (``"alias
        'champion'"``); empty when it may be deleted."""

    # ---------------------------------------------------------------- approvals and audit

    @abstractmethod
    def approve_model_version(
        self, name: str, version: int, approver: str, *, comment: str | None = None
    ) -> Approval:
        """Record ``approver``'s approval of a version. Approving again keeps the first
        approval (and returns it)."""

    @abstractmethod
    def list_approvals(self, name: str, version: int) -> list[Approval]:
        """A version's approvals, oldest first."""

    @abstractmethod
    def set_approval_policy(
        self,
        name: str,
        required_approvals: int,
        *,
        alias: str = ALL_ALIASES,
        user_id: str = "",
        reason: str | None = None,
    ) -> RegisteredModel:
        """Require ``required_approvals`` distinct approvals before ``alias`` (by default every
        alias without a policy of its own) moves to a version; ``0`` removes the policy."""

    @abstractmethod
    def history(
        self,
        name: str,
        *,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegistryEvent]:
        """The audit trail of the model now called ``name`` (or, once it is deleted, of every
        model that had the name), oldest first."""

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The store must not be used afterwards."""
