"""The model registry service: registering run outputs as versions, aliases with approvals, the
audit trail, deletion that frees bytes, and resolving ``models:/`` URIs.

:class:`Registry` works on a :class:`~shipyard.workspace.Workspace`: metadata through
``workspace.registry`` (a :class:`~shipyard.store.registry.RegistryStore`), bytes through
``workspace.artifacts``. The store enforces the invariants (approvals before an alias moves, no
deleting a version an alias points at); this layer parses URIs, frees the bytes that deletions
release, and asks the *reference checks* before deleting: callables that say what else (a
deployment, for instance) still uses a version::

    registry = Registry(ws, reference_checks=[my_check])
    registry.delete_version("churn", 3)   # InvalidState if my_check names a user of version 3

The deployments of the workspace (:func:`deployment_references`) are always asked.

A package folder on disk (written by :func:`shipyard.save_model`, or converted from MLflow by
:mod:`shipyard.models.mlflow_import`) is registered by logging it to a run first
(:meth:`Registry.register_package`), so every version has a run and a ``runs:/`` source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard import validation
from shipyard.entities import (
    Approval,
    ModelVersion,
    Page,
    RegisteredModel,
    RegistryEvent,
    RunStatus,
)
from shipyard.errors import AlreadyExists, InvalidInput, InvalidState, NotFound
from shipyard.registry.uris import ModelUri, parse_model_uri, parse_runs_uri
from shipyard.store import filters
from shipyard.store.base import DEFAULT_EXPERIMENT_ID
from shipyard.store.registry import ALL_ALIASES, RegistryStore
from shipyard.tracking.context import current_user

if TYPE_CHECKING:  # pragma: no cover
    from shipyard.store.deployments import DeploymentRecord
    from shipyard.workspace import Workspace

ReferenceCheck = Callable[[ModelVersion], Iterable[str]]
"""Says, in words, what refers to a version (``"deployment 'prod'"``); nothing when unused."""


def deployment_references(workspace: Workspace, version: ModelVersion) -> list[str]:
    """The workspace's deployments that serve ``version`` (stable, or the candidate of a rollout
    under way), in words; none for a workspace without a deployment store (a server URI: the
    server asks its own)."""
    return _held_by(_deployments_of(workspace, version.name), version.version)


def _deployments_of(workspace: Workspace, model: str) -> list[DeploymentRecord]:
    store = workspace.deployment_store
    return [] if store is None else [rec for rec in store.list() if rec.model == model]


def _held_by(deployments: Iterable[DeploymentRecord], version: int) -> list[str]:
    return [f"deployment {rec.name!r}" for rec in deployments if rec.holds(version)]


class Registry:
    """Registered models and their versions in one workspace.

    ``user`` arguments default to the operating-system user of this process.
    """

    def __init__(
        self, workspace: Workspace, *, reference_checks: Sequence[ReferenceCheck] = ()
    ) -> None:
        self.workspace = workspace
        self._checks: list[ReferenceCheck] = list(reference_checks)
        """Asked after the workspace's deployments (:func:`deployment_references`)."""

    @property
    def store(self) -> RegistryStore:
        return self.workspace.registry

    def add_reference_check(self, check: ReferenceCheck) -> None:
        """Also ask ``check`` before deleting a version (see the module docstring)."""
        self._checks.append(check)

    # ---------------------------------------------------------------- models

    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user: str | None = None,
    ) -> RegisteredModel:
        """Create an empty registered model. ``AlreadyExists`` if the name is taken."""
        return self.store.create_registered_model(
            name, description=description, tags=tags, user_id=_user(user)
        )

    def get_model(self, name: str) -> RegisteredModel:
        return self.store.get_registered_model(name)

    def search_models(
        self,
        filter_string: str = "",
        *,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """Models matching an MLflow filter (``name LIKE 'churn%'``, ``tags.team = 'risk'``)."""
        return self.store.search_registered_models(filter_string, max_results, order_by, page_token)

    def rename_model(
        self, name: str, new_name: str, *, user: str | None = None, reason: str | None = None
    ) -> RegisteredModel:
        return self.store.rename_registered_model(
            name, new_name, user_id=_user(user), reason=reason
        )

    def delete_model(self, name: str, *, user: str | None = None, reason: str | None = None) -> int:
        """Delete a model with its versions, and free the bytes nothing else references.

        Refused (``InvalidState``) while an alias or a reference check holds one of its
        versions. Returns the number of bytes freed."""
        self.refuse_if_model_referenced(name)
        digests = self.store.delete_registered_model(name, user_id=_user(user), reason=reason)
        return self.workspace.artifacts.free(digests)

    # ---------------------------------------------------------------- versions

    def register_model_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user: str | None = None,
    ) -> ModelVersion:
        """Register the files at ``source`` (``runs:/<run_id>/<path>``) as the next version of
        ``name``, creating the model if needed.

        The version gets its own copy of the files' index entries (the bytes are shared by
        content), so it outlives the run. ``NotFound`` if the run has no files there."""
        source_run, path = parse_runs_uri(source)
        if run_id is not None and run_id != source_run:
            raise InvalidInput(
                f"run_id {run_id!r} does not match the run of source {source!r} ({source_run}); "
                "pass one of them, or make them agree."
            )
        return self.store.create_model_version(
            name,
            source,
            artifact_owner=source_run,
            artifact_path=path,
            run_id=source_run,
            description=description,
            tags=tags,
            user_id=_user(user),
        )

    def register_package(
        self,
        name: str,
        folder: str | os.PathLike[str],
        *,
        run_id: str | None = None,
        experiment_id: str | None = None,
        artifact_path: str = "model",
        description: str | None = None,
        tags: dict[str, str] | None = None,
        run_tags: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> ModelVersion:
        """Register the Shipyard model package in local ``folder`` as the next version of
        ``name``.

        The package is checked first (its manifest parses and every file matches the content
        hash), then logged as artifacts ``artifact_path`` of run ``run_id``, or of a new run in
        ``experiment_id`` (default: the Default experiment) that is finished once the files are
        stored, and registered from ``runs:/<run_id>/<artifact_path>``. ``AlreadyExists`` if the
        run already has files there. Nothing in the package is loaded or run."""
        from shipyard.models.manifest import Manifest, verify

        path = Path(folder)
        manifest = Manifest.read(path)  # NotFound / InvalidInput for what is not a package
        verify(path, manifest)
        artifact_path = validation.artifact_path(artifact_path)
        try:  # validate the name before anything is written
            self.store.get_registered_model(name)
        except NotFound:
            pass
        store, artifacts = self.workspace.store, self.workspace.artifacts
        created = run_id is None
        if run_id is None:
            run_id = store.create_run(
                experiment_id or DEFAULT_EXPERIMENT_ID,
                run_name=f"register-{name}"[:250],
                user_id=_user(user),
                tags={"shipyard.model.registered_from": str(path.absolute()), **(run_tags or {})},
            ).info.run_id
        else:
            run_id = store.get_run(run_id).info.run_id
            if artifacts.list(run_id, artifact_path):
                raise AlreadyExists(
                    f"Run {run_id} already has artifacts at {artifact_path!r}; register the "
                    "package under another artifact path, or into a new run (no run id)."
                )
            if run_tags:
                store.log_batch(run_id, tags=dict(run_tags))
        try:
            artifacts.upload_dir(run_id, artifact_path, path)
        except BaseException:
            if created:
                store.update_run(run_id, status=RunStatus.FAILED, end_time=_now_ms())
            raise
        if created:
            store.update_run(run_id, status=RunStatus.FINISHED, end_time=_now_ms())
        return self.register_model_version(
            name,
            f"runs:/{run_id}/{artifact_path}",
            run_id=run_id,
            description=description,
            tags=tags,
            user=user,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self.store.get_model_version(name, version)

    def list_versions(
        self,
        name: str,
        filter_string: str = "",
        *,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """The versions of model ``name`` (newest first by default), narrowed by an MLflow
        filter over versions (``version_number > 2 AND tags.k = 'v'``). ``NotFound`` for an
        unknown model, rather than an empty page."""
        self.store.get_registered_model(name)
        where = f"name = '{_quote(name)}'"
        if filter_string.strip():
            # Parsed alone first, so a mistake is reported in the text the caller wrote (its
            # positions), not in the name clause prefixed here.
            filters.parse_model_version_filter(filter_string)
            where = f"{where} AND {filter_string}"
        return self.store.search_model_versions(
            where, max_results, list(order_by) if order_by else ["version_number DESC"], page_token
        )

    def latest_version(self, name: str) -> ModelVersion:
        """The highest-numbered version of a model. ``NotFound`` if it has none."""
        page = self.store.search_model_versions(
            f"name = '{_quote(name)}'", max_results=1, order_by=["version_number DESC"]
        )
        if not page.items:
            self.store.get_registered_model(name)  # NotFound for an unknown model
            raise NotFound(
                f"Model {name!r} has no versions yet. Register one with "
                f"`shipyard models register runs:/<run_id>/<path> {name}`."
            )
        return page.items[0]

    def search_versions(
        self,
        filter_string: str = "",
        *,
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """Versions matching an MLflow filter (``name = 'churn' AND version_number > 2``)."""
        return self.store.search_model_versions(filter_string, max_results, order_by, page_token)

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        user: str | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to an MLflow stage (kept for compatibility; prefer aliases)."""
        return self.store.transition_model_version_stage(
            name,
            version,
            stage,
            archive_existing_versions=archive_existing_versions,
            user_id=_user(user),
            reason=reason,
        )

    def version_owning(self, storage_owner: str) -> ModelVersion | None:
        """The version whose files are kept under ``storage_owner`` (``mv-...``), or ``None``
        (deleted, or never one); what the file-serving routes authorize against."""
        found = self.store.search_model_versions(
            f"storage_owner = '{_quote(storage_owner)}'", max_results=1
        )
        return found.items[0] if found.items else None

    def references(self, name: str, version: int) -> list[str]:
        """Everything that refers to a version, in words; deleting it is refused unless empty."""
        found = list(self.store.version_references(name, version))
        mv = self.store.get_model_version(name, version)
        return found + self._references(mv, _deployments_of(self.workspace, name))

    def delete_version(
        self, name: str, version: int, *, user: str | None = None, reason: str | None = None
    ) -> int:
        """Delete a version and free the bytes no other version or run references.

        Refused (``InvalidState``) while an alias or a reference check holds it. Returns the
        number of bytes freed."""
        self.refuse_if_referenced(self.store.get_model_version(name, version))
        digests = self.store.delete_model_version(name, version, user_id=_user(user), reason=reason)
        return self.workspace.artifacts.free(digests)

    def refuse_if_model_referenced(self, name: str) -> None:
        """``InvalidState`` naming what still uses any version of model ``name`` (the
        deployments are read once, not once per version)."""
        deployments = _deployments_of(self.workspace, name)
        page_token = None
        while True:
            page = self.store.search_model_versions(
                f"name = '{_quote(name)}'", max_results=1000, page_token=page_token
            )
            for version in page:
                self._refuse(version, deployments)
            page_token = page.next_page_token
            if page_token is None:
                break

    def refuse_if_referenced(self, version: ModelVersion) -> None:
        """``InvalidState`` naming what still uses ``version`` (deployments, the reference checks);
        the store refuses aliased versions itself."""
        self._refuse(version, _deployments_of(self.workspace, version.name))

    def _references(
        self, version: ModelVersion, deployments: Iterable[DeploymentRecord]
    ) -> list[str]:
        found = _held_by(deployments, version.version)
        for check in self._checks:
            found.extend(check(version))
        return found

    def _refuse(self, version: ModelVersion, deployments: Iterable[DeploymentRecord]) -> None:
        found = self._references(version, deployments)
        if found:
            raise InvalidState(
                f"Model {version.name!r} version {version.version} can't be deleted: "
                f"{', '.join(found)} still refer(s) to it. Point them at another version first.",
                details={"references": found},
            )

    # ---------------------------------------------------------------- aliases and approvals

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Point ``alias`` at ``version``. ``ApprovalRequired`` if the model's policy asks for
        more approvals than the version has."""
        self.store.set_alias(name, alias, version, user_id=_user(user), reason=reason)

    def delete_alias(
        self, name: str, alias: str, *, user: str | None = None, reason: str | None = None
    ) -> None:
        self.store.delete_alias(name, alias, user_id=_user(user), reason=reason)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.store.get_model_version_by_alias(name, alias)

    def approve(
        self, name: str, version: int, approver: str | None = None, comment: str | None = None
    ) -> Approval:
        """Record ``approver``'s (default: this process's user) approval of a version."""
        return self.store.approve_model_version(name, version, _user(approver), comment=comment)

    def approvals(self, name: str, version: int) -> list[Approval]:
        return self.store.list_approvals(name, version)

    def require_approvals(
        self,
        name: str,
        count: int,
        *,
        alias: str = ALL_ALIASES,
        user: str | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        """Require ``count`` distinct approvals before ``alias`` (default: every alias) moves to
        a version; ``0`` lifts the requirement."""
        return self.store.set_approval_policy(
            name, count, alias=alias, user_id=_user(user), reason=reason
        )

    # ---------------------------------------------------------------- audit

    def history(self, name: str) -> list[RegistryEvent]:
        """Every audit event of a model, oldest first."""
        events: list[RegistryEvent] = []
        token = None
        while True:
            page = self.store.history(name, page_token=token)
            events.extend(page.items)
            token = page.next_page_token
            if token is None:
                return events

    def alias_at(self, name: str, alias: str, timestamp: int) -> int | None:
        """The version ``alias`` pointed at at ``timestamp`` (ms), or ``None``."""
        return self.store.alias_at(name, alias, timestamp)

    # ---------------------------------------------------------------- URIs

    def resolve(self, uri: str | ModelUri) -> ModelVersion:
        """The version a ``models:/`` URI names (``/3``, ``@alias``, ``/latest``, ``/Staging``)."""
        parsed = parse_model_uri(uri) if isinstance(uri, str) else uri
        if parsed.version is not None:
            return self.store.get_model_version(parsed.name, parsed.version)
        if parsed.alias is not None:
            return self.store.get_model_version_by_alias(parsed.name, parsed.alias)
        if parsed.stage is not None:
            found = self.store.get_latest_versions(parsed.name, [parsed.stage])
            if not found:
                raise NotFound(
                    f"Model {parsed.name!r} has no version in stage {parsed.stage!r}. Move one "
                    "there, or load it by alias (models:/name@alias) or number."
                )
            return found[0]
        return self.latest_version(parsed.name)


def resolve_model_uri(workspace: Workspace, uri: str) -> tuple[str, str]:
    """Where the package of the version a ``models:/`` URI names lives in
    ``workspace.artifacts``: ``(owner, path)``.

    >>> owner, path = resolve_model_uri(ws, "models:/churn@champion")  # doctest: +SKIP
    >>> ws.artifacts.list(owner, path)                                 # doctest: +SKIP
    """
    version = Registry(workspace).resolve(uri)
    return version.storage_owner, version.storage_path


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _user(user: str | None) -> str:
    return current_user() if user is None else user


def _quote(value: str) -> str:
    return value.replace("'", "''")
