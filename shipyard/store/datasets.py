"""The metadata store interface for registered datasets.

One abstract class, implemented by :class:`~shipyard.store.sql_datasets.SqlDatasetStore`
(SQLite and PostgreSQL, in the tracking store's database). The contract test suite
(``tests/store/dataset_contract.py``) runs against every implementation.

Conventions:

* Datasets are addressed by name, versions by ``(name, version)``, numbered from 1 per dataset
  and never reused after a delete.
* One version per content: creating a version whose ``content_digest`` the dataset already has
  returns that version (``created`` False) and records nothing new.
* A version's files are its own artifact index entries (owner ``storage_owner``), written in the
  same transaction as the version row; their bytes must already be in the byte store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.entities import DatasetVersion, RegisteredDataset

STORAGE_OWNER_PREFIX = "dv-"
"""Artifact-index owners of dataset versions are ``dv-`` followed by 32 hex digits."""


@dataclass(frozen=True, slots=True)
class VersionFile:
    """One file of a new version: its path inside the version, content digest and size."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What registering a version stores besides its files."""

    content_digest: str
    format: str
    num_bytes: int
    num_rows: int | None = None
    num_columns: int | None = None
    source_uri: str | None = None
    run_id: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    schema: str | None = None
    profile: str | None = None


class DatasetStore(ABC):
    """Registered datasets, their versions, tags, user schemas and run lineage."""

    @abstractmethod
    def find_version(self, name: str, content_digest: str) -> DatasetVersion | None:
        """The version of ``name`` holding exactly this content, if any (no error if the
        dataset does not exist)."""

    @abstractmethod
    def create_version(
        self, name: str, new: NewVersion, files: Sequence[VersionFile], *, user_id: str = ""
    ) -> tuple[DatasetVersion, bool]:
        """Store a version (creating the dataset on first use); ``(version, created)``. When the
        dataset already has this content, the existing version and ``False``."""

    @abstractmethod
    def get_dataset(self, name: str) -> RegisteredDataset:
        """The dataset; ``NotFound`` if there is none by that name."""

    @abstractmethod
    def list_datasets(self) -> list[RegisteredDataset]:
        """Every dataset, by name."""

    @abstractmethod
    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version, or the latest when ``version`` is None; ``NotFound`` if absent."""

    @abstractmethod
    def list_versions(self, name: str) -> list[DatasetVersion]:
        """The dataset's versions, newest first."""

    @abstractmethod
    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set (or overwrite) a tag on a version."""

    @abstractmethod
    def set_user_schema(self, name: str, schema_yaml: str | None) -> None:
        """Keep (or, with None, forget) the user-edited schema of a dataset."""

    @abstractmethod
    def get_user_schema(self, name: str) -> str | None:
        """The user-edited schema's YAML text, or None."""

    @abstractmethod
    def delete_version(self, name: str, version: int) -> set[str]:
        """Delete a version with its files' index entries; the digests they referenced."""

    @abstractmethod
    def link_run(self, run_id: str, name: str, version: int, context: str | None) -> None:
        """Record that a run read this version (idempotent)."""

    @abstractmethod
    def runs_of(self, name: str, version: int) -> list[str]:
        """Ids of the runs that read this version, sorted."""

    @abstractmethod
    def inputs_of(self, run_id: str) -> list[tuple[DatasetVersion, str | None]]:
        """The versions a run read, with the context each was read in."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (the SQL store shares the tracking store's database)."""
