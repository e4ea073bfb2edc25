"""The metadata store interface for the feature store: versioned definitions, materializations
and training-set lineage.

One abstract class, implemented by :class:`~shipyard.store.sql_features.SqlFeatureStore`
(SQLite and PostgreSQL, in the tracking store's database).

Conventions:

* A definition is addressed by ``(kind, name)``; kinds are ``entity``, ``feature_view``,
  ``on_demand_feature_view`` and ``feature_service``. Versions are numbered from 1 per kind and
  name; a version whose ``spec`` is None records that the definition was removed.
* :meth:`FeatureMetadataStore.apply` writes several versions in one transaction, each only if the
  definition's latest version is still the ``base_version`` the change was computed against
  (``Conflict`` otherwise, and nothing is written).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DefinitionRecord:
    """One stored version of a definition."""

    kind: str
    name: str
    version: int
    spec: dict[str, Any] | None
    digest: str
    user_id: str
    creation_time: int

    @property
    def removed(self) -> bool:
        return self.spec is None


@dataclass(frozen=True, slots=True)
class DefinitionChange:
    """A new version to write: ``spec`` None removes the definition. ``base_version`` is the
    latest version the change was computed against (0: the definition did not exist)."""

    kind: str
    name: str
    spec: dict[str, Any] | None
    digest: str
    base_version: int


@dataclass(frozen=True, slots=True)
class Materialization:
    """One materialization run of a feature view into an online store."""

    materialization_id: int
    view: str
    view_version: int
    online_store: str
    mode: str
    start_time: int | None
    end_time: int
    watermark: int
    num_rows: int
    creation_time: int


class FeatureMetadataStore(ABC):
    """Feature definitions, their versions, materializations and training-set lineage."""

    @abstractmethod
    def apply(
        self, changes: Sequence[DefinitionChange], *, user_id: str = ""
    ) -> list[DefinitionRecord]:
        """Write one new version per change, atomically; the records written."""

    @abstractmethod
    def current(self, kind: str | None = None) -> list[DefinitionRecord]:
        """The latest version of every definition not removed (of ``kind``, when given), by
        kind then name."""

    @abstractmethod
    def get(self, kind: str, name: str, version: int | None = None) -> DefinitionRecord:
        """A version (the latest when None); ``NotFound`` if absent or, for the latest,
        removed."""

    @abstractmethod
    def history(self, kind: str, name: str) -> list[DefinitionRecord]:
        """Every version of a definition, newest first (empty if it never existed)."""

    @abstractmethod
    def record_materialization(
        self,
        view: str,
        view_version: int,
        online_store: str,
        mode: str,
        start_time: int | None,
        end_time: int,
        watermark: int,
        num_rows: int,
    ) -> Materialization:
        """Append a materialization run."""

    @abstractmethod
    def materializations(self, view: str, online_store: str | None = None) -> list[Materialization]:
        """A view's materialization runs (into ``online_store``, when given), newest first."""

    @abstractmethod
    def link_training_set(
        self, dataset: str, dataset_version: int, views: Sequence[tuple[str, int]]
    ) -> None:
        """Record that a dataset version is a training set built from these view versions."""

    @abstractmethod
    def training_set_views(self, dataset: str, dataset_version: int) -> list[tuple[str, int]]:
        """The ``(view, version)`` pairs a training set was built from, by view name."""

    @abstractmethod
    def training_sets_of(self, view: str) -> list[tuple[str, int, int]]:
        """``(dataset, dataset_version, view_version)`` of the training sets built from a
        view, newest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (the SQL store shares the tracking store's database)."""
