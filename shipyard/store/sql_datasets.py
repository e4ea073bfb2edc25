"""Registered datasets on SQLite or PostgreSQL, in the same database as the tracking store.

:class:`SqlDatasetStore` shares the tracking store's :class:`~shipyard.store.db.Database`, so a
version's row, its tags and its artifact index entries are written in one transaction, and
lineage links can point at runs. Version numbers are allocated under the dataset row's lock
(``next_version``); the unique index on ``(dataset_id, content_digest)`` makes "one version per
content" hold even when two processes register the same data at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors, validation
from shipyard.entities import DatasetVersion, RegisteredDataset
from shipyard.store import _sql_artifacts
from shipyard.store import _sql_registry_common as rules
from shipyard.store._sql_common import now_ms, upsert
from shipyard.store.datasets import STORAGE_OWNER_PREFIX, DatasetStore, NewVersion, VersionFile
from shipyard.store.db import Database
from shipyard.store.schema import (
    artifacts,
    dataset_version_tags,
    dataset_versions,
    registered_datasets,
    run_dataset_versions,
    runs,
)

MAX_NAME_LENGTH = 256
MAX_TEXT_LENGTH = 5000
MAX_SCHEMA_LENGTH = 1_000_000
MAX_PROFILE_LENGTH = 64_000_000

_d, _v, _t, _l = (
    registered_datasets.c,
    dataset_versions.c,
    dataset_version_tags.c,
    run_dataset_versions.c,
)


def dataset_name(value: object) -> str:
    """A dataset name: 1-256 characters, no ``/`` or ``@`` (they split ``datasets:/`` URIs)."""
    name = validation.text(value, "dataset name", MAX_NAME_LENGTH, allow_empty=False)
    if not name.strip() or name != name.strip() or "/" in name or "@" in name:
        raise errors.InvalidInput(
            f"dataset name {name!r} must not be blank, start or end with spaces, or contain '/' "
            "or '@' (they separate the parts of datasets:/NAME/VERSION); use a name such as "
            "'churn-training'."
        )
    return name


def _version_number(value: object) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= validation.INT64_MAX
    ):
        raise errors.InvalidInput(
            f"dataset version {value!r} is not a version number; versions are numbered 1, 2, "
            "... (at most 2**63 - 1)."
        )
    return value


class SqlDatasetStore(DatasetStore):
    """Datasets, versions, tags and lineage in SQL (``database`` is the tracking store's; it
    stays open when this store closes)."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect

    # ------------------------------------------------------------------ rows -> entities

    @staticmethod
    def _dataset_row(conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(sa.select(registered_datasets).where(_d.name == name)).first()
        if row is None:
            raise errors.NotFound(
                f"Dataset {name!r} does not exist. Check the name, list datasets with "
                "`shipyard data list`, or register it with `shipyard data add`."
            )
        return row

    @staticmethod
    def _versions(conn: Connection, name: str, rows: Sequence[Row[Any]]) -> list[DatasetVersion]:
        keys = [(r.dataset_id, r.version) for r in rows]
        tags: dict[tuple[int, int], dict[str, str]] = {k: {} for k in keys}
        if keys:
            query = sa.select(_t.dataset_id, _t.version, _t.key, _t.value).where(
                sa.tuple_(_t.dataset_id, _t.version).in_(keys)
            )
            for t in conn.execute(query):
                tags[(t.dataset_id, t.version)][t.key] = t.value
        return [
            DatasetVersion(
                name=name,
                version=r.version,
                content_digest=r.content_digest,
                format=r.format,
                num_rows=r.num_rows,
                num_columns=r.num_columns,
                num_bytes=r.num_bytes,
                source_uri=r.source_uri,
                run_id=r.run_id,
                description=r.description,
                user_id=r.user_id,
                creation_timestamp=r.creation_time,
                storage_owner=r.storage_owner,
                tags=tags[(r.dataset_id, r.version)],
                schema=r.schema,
                profile=r.profile,
            )
            for r in rows
        ]

    @staticmethod
    def _dataset(conn: Connection, row: Row[Any]) -> RegisteredDataset:
        latest = conn.scalar(
            sa.select(sa.func.max(_v.version)).where(_v.dataset_id == row.dataset_id)
        )
        return RegisteredDataset(
            name=row.name,
            description=row.description,
            user_id=row.user_id,
            creation_timestamp=row.creation_time,
            last_updated_timestamp=row.last_updated_time,
            latest_version=latest,
            has_user_schema=row.user_schema is not None,
        )

    # ------------------------------------------------------------------ versions

    def find_version(self, name: str, content_digest: str) -> DatasetVersion | None:
        name = dataset_name(name)

        def tx(conn: Connection) -> DatasetVersion | None:
            row = conn.execute(
                sa.select(dataset_versions)
                .join(registered_datasets, _d.dataset_id == _v.dataset_id)
                .where(_d.name == name, _v.content_digest == content_digest)
            ).first()
            return self._versions(conn, name, [row])[0] if row is not None else None

        return self._db.read(tx)

    def create_version(
        self, name: str, new: NewVersion, files: Sequence[VersionFile], *, user_id: str = ""
    ) -> tuple[DatasetVersion, bool]:
        name = dataset_name(name)
        if new.run_id is not None:
            validation.run_id(new.run_id)
        description = rules.optional_text(new.description, "description", MAX_TEXT_LENGTH)
        source_uri = rules.optional_text(new.source_uri, "source URI", MAX_TEXT_LENGTH)
        tag_values = rules.tags(new.tags, "dataset version tag")
        user_id = rules.user(user_id)
        for path in (f.path for f in files):
            validation.artifact_path(path)
        storage_owner = STORAGE_OWNER_PREFIX + uuid.uuid4().hex

        def tx(conn: Connection) -> tuple[DatasetVersion, bool]:
            now = now_ms()
            conn.execute(
                upsert(self._dialect, registered_datasets)
                .values(
                    name=name,
                    user_id=user_id,
                    creation_time=now,
                    last_updated_time=now,
                    next_version=1,
                )
                .on_conflict_do_nothing()
            )
            dataset = self._dataset_row(conn, name)
            # The row lock taken by this UPDATE serializes concurrent registrations (PostgreSQL);
            # SQLite's write transactions are serialized already.
            conn.execute(
                sa.update(registered_datasets)
                .where(_d.dataset_id == dataset.dataset_id)
                .values(next_version=_d.next_version + 1, last_updated_time=now)
            )
            existing = conn.execute(
                sa.select(dataset_versions).where(
                    _v.dataset_id == dataset.dataset_id, _v.content_digest == new.content_digest
                )
            ).first()
            if existing is not None:
                # Give the number back: nothing was registered.
                conn.execute(
                    sa.update(registered_datasets)
                    .where(_d.dataset_id == dataset.dataset_id)
                    .values(next_version=_d.next_version - 1)
                )
                return self._versions(conn, name, [existing])[0], False
            version = int(conn.scalar(
                sa.select(_d.next_version).where(_d.dataset_id == dataset.dataset_id)
            ) or 2) - 1  # fmt: skip
            if files:
                conn.execute(
                    sa.insert(artifacts),
                    [{"owner_id": storage_owner, "path": f.path, "digest": f.digest,
                      "size": f.size, "created_time": now} for f in files],
                )  # fmt: skip
            conn.execute(
                sa.insert(dataset_versions).values(
                    dataset_id=dataset.dataset_id,
                    version=version,
                    content_digest=new.content_digest,
                    format=new.format,
                    num_rows=new.num_rows,
                    num_columns=new.num_columns,
                    num_bytes=new.num_bytes,
                    source_uri=source_uri,
                    run_id=new.run_id,
                    description=description,
                    user_id=user_id,
                    creation_time=now,
                    storage_owner=storage_owner,
                    schema=new.schema,
                    profile=new.profile,
                )
            )
            if tag_values:
                conn.execute(
                    sa.insert(dataset_version_tags),
                    [{"dataset_id": dataset.dataset_id, "version": version, "key": k,
                      "value": v} for k, v in tag_values.items()],
                )  # fmt: skip
            row = conn.execute(
                sa.select(dataset_versions).where(
                    _v.dataset_id == dataset.dataset_id, _v.version == version
                )
            ).one()
            return self._versions(conn, name, [row])[0], True

        return self._db.write(tx)

    def get_dataset(self, name: str) -> RegisteredDataset:
        name = dataset_name(name)
        return self._db.read(lambda conn: self._dataset(conn, self._dataset_row(conn, name)))

    def list_datasets(self) -> list[RegisteredDataset]:
        def tx(conn: Connection) -> list[RegisteredDataset]:
            rows = conn.execute(sa.select(registered_datasets).order_by(_d.name))
            return [self._dataset(conn, row) for row in rows]

        return self._db.read(tx)

    def _version_row(self, conn: Connection, name: str, version: int | None) -> Row[Any]:
        dataset = self._dataset_row(conn, name)
        query = sa.select(dataset_versions).where(_v.dataset_id == dataset.dataset_id)
        if version is None:
            row = conn.execute(query.order_by(_v.version.desc()).limit(1)).first()
        else:
            row = conn.execute(query.where(_v.version == version)).first()
        if row is None:
            which = "no versions" if version is None else f"no version {version}"
            raise errors.NotFound(
                f"Dataset {name!r} has {which}. List its versions with "
                f"`shipyard data versions {name}`."
            )
        return row

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        name = dataset_name(name)
        if version is not None:
            version = _version_number(version)

        def tx(conn: Connection) -> DatasetVersion:
            return self._versions(conn, name, [self._version_row(conn, name, version)])[0]

        return self._db.read(tx)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        name = dataset_name(name)

        def tx(conn: Connection) -> list[DatasetVersion]:
            dataset = self._dataset_row(conn, name)
            rows = list(
                conn.execute(
                    sa.select(dataset_versions)
                    .where(_v.dataset_id == dataset.dataset_id)
                    .order_by(_v.version.desc())
                )
            )
            return self._versions(conn, name, rows)

        return self._db.read(tx)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        name = dataset_name(name)
        version = _version_number(version)
        key = validation.key(key, "dataset version tag key")
        value = validation.tag_value(value, key)

        def tx(conn: Connection) -> None:
            row = self._version_row(conn, name, version)
            conn.execute(
                upsert(self._dialect, dataset_version_tags)
                .values(dataset_id=row.dataset_id, version=version, key=key, value=value)
                .on_conflict_do_update(
                    index_elements=[_t.dataset_id, _t.version, _t.key], set_={"value": value}
                )
            )

        self._db.write(tx)

    def set_user_schema(self, name: str, schema_yaml: str | None) -> None:
        name = dataset_name(name)
        if schema_yaml is not None:
            schema_yaml = validation.text(schema_yaml, "schema", MAX_SCHEMA_LENGTH)

        def tx(conn: Connection) -> None:
            dataset = self._dataset_row(conn, name)
            conn.execute(
                sa.update(registered_datasets)
                .where(_d.dataset_id == dataset.dataset_id)
                .values(user_schema=schema_yaml, last_updated_time=now_ms())
            )

        self._db.write(tx)

    def get_user_schema(self, name: str) -> str | None:
        name = dataset_name(name)
        return self._db.read(lambda conn: self._dataset_row(conn, name).user_schema)

    def delete_version(self, name: str, version: int) -> set[str]:
        name = dataset_name(name)
        version = _version_number(version)

        def tx(conn: Connection) -> set[str]:
            row = self._version_row(conn, name, version)
            digests = _sql_artifacts.delete_owners(conn, [row.storage_owner])
            conn.execute(
                sa.delete(dataset_versions).where(
                    _v.dataset_id == row.dataset_id, _v.version == version
                )
            )
            return digests

        return self._db.write(tx)

    # ------------------------------------------------------------------ lineage

    def link_run(self, run_id: str, name: str, version: int, context: str | None) -> None:
        run_id = validation.run_id(run_id)
        name = dataset_name(name)
        version = _version_number(version)
        context = rules.optional_text(context, "input context", 250)

        def tx(conn: Connection) -> None:
            if conn.scalar(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)) is None:
                raise errors.NotFound(
                    f"Run {run_id!r} does not exist, so it can't record an input. Check the id "
                    "with `shipyard runs list`."
                )
            row = self._version_row(conn, name, version)
            conn.execute(
                upsert(self._dialect, run_dataset_versions)
                .values(run_id=run_id, dataset_id=row.dataset_id, version=version, context=context)
                .on_conflict_do_update(
                    index_elements=[_l.run_id, _l.dataset_id, _l.version], set_={"context": context}
                )
            )

        self._db.write(tx)

    def runs_of(self, name: str, version: int) -> list[str]:
        name = dataset_name(name)
        version = _version_number(version)

        def tx(conn: Connection) -> list[str]:
            row = self._version_row(conn, name, version)
            return list(
                conn.scalars(
                    sa.select(_l.run_id)
                    .where(_l.dataset_id == row.dataset_id, _l.version == version)
                    .order_by(_l.run_id)
                )
            )

        return self._db.read(tx)

    def inputs_of(self, run_id: str) -> list[tuple[DatasetVersion, str | None]]:
        run_id = validation.run_id(run_id)

        def tx(conn: Connection) -> list[tuple[DatasetVersion, str | None]]:
            rows = conn.execute(
                sa.select(dataset_versions, _d.name, _l.context)
                .join(run_dataset_versions, sa.and_(
                    _l.dataset_id == _v.dataset_id, _l.version == _v.version))
                .join(registered_datasets, _d.dataset_id == _v.dataset_id)
                .where(_l.run_id == run_id)
                .order_by(_d.name, _v.version)
            ).all()  # fmt: skip
            return [(self._versions(conn, r.name, [r])[0], r.context) for r in rows]

        return self._db.read(tx)
