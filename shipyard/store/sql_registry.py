"""The model registry on SQLite or PostgreSQL, in the same database as the tracking store.

:class:`SqlRegistryStore` shares the tracking store's :class:`~shipyard.store.db.Database` (one
engine, one connection pool, one schema revision), so registering a version can copy the source
run's artifact index entries and lineage queries can join runs and dataset inputs, each in one
transaction. Every public method is one transaction and validates its input first.

What it guarantees (the interface, :class:`~shipyard.store.registry.RegistryStore`, lists them):
version numbers are allocated under the model row's lock (``next_version``), never reused; an
alias moves only with enough approvals; a version an alias points at is never deleted; and every
change appends an audit event in the same transaction as the change.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors, validation
from shipyard.entities import (
    Approval,
    ModelStage,
    ModelVersion,
    ModelVersionStatus,
    Page,
    RegisteredModel,
    RegistryAction,
    RegistryEvent,
)
from shipyard.store import _sql_artifacts, filters
from shipyard.store import _sql_registry_common as rules
from shipyard.store._sql_common import (
    decode_token,
    driver_execute,
    driver_sql,
    encode_token,
    now_ms,
    upsert,
)
from shipyard.store._sql_registry_common import (
    load_models,
    load_versions,
    record_event,
    versions_query,
)
from shipyard.store._sql_registry_search import search_model_versions, search_registered_models
from shipyard.store.db import Database
from shipyard.store.deployments import ROLLOUT_STATES
from shipyard.store.registry import ALL_ALIASES, STORAGE_OWNER_PREFIX, RegistryStore
from shipyard.store.schema import (
    approval_policies,
    artifacts,
    datasets,
    deployments,
    model_aliases,
    model_version_approvals,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
    registry_events,
    run_inputs,
)

MAX_REQUIRED_APPROVALS = 100

_m, _v, _a = registered_models.c, model_versions.c, model_aliases.c
_t, _ap, _p, _e = (
    model_version_tags.c,
    model_version_approvals.c,
    approval_policies.c,
    registry_events.c,
)
_ARCHIVING_STAGES = (ModelStage.STAGING.value, ModelStage.PRODUCTION.value)


class SqlRegistryStore(RegistryStore):
    """Registered models, versions, aliases, approvals and the audit trail in SQL.

    ``database`` is the tracking store's (:attr:`SqlTrackingStore.database
    <shipyard.store.sql.SqlTrackingStore.database>`), which owns it: :meth:`close` leaves it
    open, and the tracking store's ``close`` disposes of it.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._db.url

    # ------------------------------------------------------------------ lookups and messages

    @staticmethod
    def _model_row(conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(sa.select(registered_models).where(_m.name == name)).first()
        if row is None:
            raise errors.NotFound(
                f"Registered model {name!r} does not exist. Check the name, or list models with "
                "`shipyard models list`."
            )
        return row

    @staticmethod
    def _version_row(conn: Connection, model: Row[Any], version: int) -> Row[Any]:
        row = conn.execute(
            versions_query().where(_v.model_id == model.model_id, _v.version == version)
        ).first()
        if row is None:
            raise errors.NotFound(
                f"Model {model.name!r} has no version {version}. List its versions with "
                f"`shipyard models versions {model.name}`."
            )
        return row

    def _version(self, conn: Connection, name: str, version: int) -> tuple[Row[Any], Row[Any]]:
        model = self._model_row(conn, name)
        return model, self._version_row(conn, model, version)

    @staticmethod
    def _touch(conn: Connection, model_id: int, when: int | None = None) -> None:
        conn.execute(
            sa.update(registered_models)
            .where(_m.model_id == model_id)
            .values(last_updated_time=when or now_ms())
        )

    @staticmethod
    def _touch_version(conn: Connection, model_id: int, version: int, **values: Any) -> None:
        conn.execute(
            sa.update(model_versions)
            .where(_v.model_id == model_id, _v.version == version)
            .values(last_updated_time=now_ms(), **values)
        )

    def _load_version(self, conn: Connection, model_id: int, version: int) -> ModelVersion:
        row = conn.execute(
            versions_query().where(_v.model_id == model_id, _v.version == version)
        ).one()
        return load_versions(conn, [row])[0]

    def _load_model(self, conn: Connection, model_id: int) -> RegisteredModel:
        row = conn.execute(sa.select(registered_models).where(_m.model_id == model_id)).one()
        return load_models(conn, [row])[0]

    @staticmethod
    def _aliases_of(conn: Connection, model_id: int, version: int | None = None) -> list[Row[Any]]:
        query = sa.select(_a.alias, _a.version).where(_a.model_id == model_id)
        if version is not None:
            query = query.where(_a.version == version)
        return list(conn.execute(query.order_by(_a.alias)))

    # ------------------------------------------------------------------ registered models

    def _insert_model(
        self,
        conn: Connection,
        name: str,
        description: str | None,
        tag_values: dict[str, str],
        user_id: str,
        *,
        if_missing: bool,
    ) -> Row[Any]:
        now = now_ms()
        stmt = upsert(self._dialect, registered_models).values(
            name=name,
            description=description,
            user_id=user_id,
            creation_time=now,
            last_updated_time=now,
            next_version=1,
        )
        # RETURNING says whether a row went in (rowcount is -1 with RETURNING on psycopg).
        inserted = conn.execute(stmt.on_conflict_do_nothing().returning(_m.model_id)).first()
        if inserted is None and not if_missing:
            raise errors.AlreadyExists(
                f"A registered model named {name!r} already exists. Register a new version of "
                "it, or choose another name."
            )
        model = self._model_row(conn, name)
        if inserted:
            if tag_values:
                conn.execute(
                    sa.insert(registered_model_tags),
                    [{"model_id": model.model_id, "key": k, "value": v}
                     for k, v in tag_values.items()],
                )  # fmt: skip
            record_event(
                conn, model.model_id, name, RegistryAction.MODEL_CREATED,
                user_id=user_id, reason=None,
            )  # fmt: skip
        return model

    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        user_id: str = "",
    ) -> RegisteredModel:
        name = rules.model_name(name)
        description = rules.optional_text(description, "description", rules.MAX_DESCRIPTION_LENGTH)
        tag_values = rules.tags(tags, "model tag")
        user_id = rules.user(user_id)

        def tx(conn: Connection) -> RegisteredModel:
            model = self._insert_model(
                conn, name, description, tag_values, user_id, if_missing=False
            )
            return self._load_model(conn, model.model_id)

        return self._db.write(tx)

    def get_registered_model(self, name: str) -> RegisteredModel:
        name = rules.model_name(name)
        return self._db.read(lambda c: load_models(c, [self._model_row(c, name)])[0])

    def update_registered_model(self, name: str, *, description: str | None) -> RegisteredModel:
        name = rules.model_name(name)
        description = rules.optional_text(description, "description", rules.MAX_DESCRIPTION_LENGTH)

        def tx(conn: Connection) -> RegisteredModel:
            model = self._model_row(conn, name)
            conn.execute(
                sa.update(registered_models)
                .where(_m.model_id == model.model_id)
                .values(description=description, last_updated_time=now_ms())
            )
            return self._load_model(conn, model.model_id)

        return self._db.write(tx)

    def rename_registered_model(
        self, name: str, new_name: str, *, user_id: str = "", reason: str | None = None
    ) -> RegisteredModel:
        name, new_name = rules.model_name(name), rules.model_name(new_name)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> RegisteredModel:
            model = self._model_row(conn, name)
            if new_name == name:
                return self._load_model(conn, model.model_id)
            if conn.scalar(sa.select(_m.model_id).where(_m.name == new_name)) is not None:
                raise errors.AlreadyExists(
                    f"Can't rename model {name!r} to {new_name!r}: a model with that name "
                    "already exists. Choose another name."
                )
            when = record_event(
                conn, model.model_id, new_name, RegistryAction.MODEL_RENAMED,
                user_id=user_id, reason=reason, from_value=name, to_value=new_name,
            )  # fmt: skip
            conn.execute(
                sa.update(registered_models)
                .where(_m.model_id == model.model_id)
                .values(name=new_name, last_updated_time=when)
            )
            return self._load_model(conn, model.model_id)

        return self._db.write(tx)

    def delete_registered_model(
        self, name: str, *, user_id: str = "", reason: str | None = None
    ) -> set[str]:
        name = rules.model_name(name)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> set[str]:
            model = self._model_row(conn, name)
            aliases = self._aliases_of(conn, model.model_id)
            if aliases:
                held = ", ".join(f"{r.alias!r} -> version {r.version}" for r in aliases)
                raise errors.InvalidState(
                    f"Model {name!r} can't be deleted: its aliases still point at versions "
                    f"({held}). Delete them first (`shipyard models alias delete {name} "
                    "ALIAS`), then delete the model.",
                    details={"aliases": {r.alias: r.version for r in aliases}},
                )
            _refuse_if_deployed(conn, name, None)
            mid = model.model_id
            owners = sa.select(_v.storage_owner).where(_v.model_id == mid)
            digests = _sql_artifacts.delete_owners(conn, owners)
            for table in (model_version_approvals, model_version_tags, model_versions,
                          approval_policies, registered_model_tags):  # fmt: skip
                conn.execute(sa.delete(table).where(table.c.model_id == mid))
            conn.execute(sa.delete(registered_models).where(_m.model_id == mid))
            record_event(
                conn, mid, name, RegistryAction.MODEL_DELETED, user_id=user_id, reason=reason
            )
            return digests

        return self._db.write(tx)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        name = rules.model_name(name)
        key = validation.key(key, "model tag key")
        value = rules.tag_value(value, key)

        def tx(conn: Connection) -> None:
            model = self._model_row(conn, name)
            stmt = upsert(self._dialect, registered_model_tags).values(
                model_id=model.model_id, key=key, value=value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id", "key"], set_={"value": value}
                )
            )
            self._touch(conn, model.model_id)

        self._db.write(tx)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        name = rules.model_name(name)
        key = validation.key(key, "model tag key")

        def tx(conn: Connection) -> None:
            model = self._model_row(conn, name)
            t = registered_model_tags.c
            result = conn.execute(
                sa.delete(registered_model_tags).where(t.model_id == model.model_id, t.key == key)
            )
            if result.rowcount == 0:
                raise errors.NotFound(f"Model {name!r} has no tag {key!r}; nothing to delete.")
            self._touch(conn, model.model_id)

        self._db.write(tx)

    def search_registered_models(
        self,
        filter_string: str = "",
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        limit = validation.max_results(max_results, rules.MAX_REGISTERED_MODEL_RESULTS)
        comparisons = filters.parse_registered_model_filter(filter_string)
        order = filters.parse_registered_model_order_by(order_by)

        def tx(conn: Connection) -> Page[RegisteredModel]:
            rows, token = search_registered_models(
                conn, self._dialect, comparisons, order, limit, page_token
            )
            return Page(load_models(conn, rows), token)

        return self._db.read(tx)

    # ------------------------------------------------------------------ versions

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
        name = rules.model_name(name)
        source = validation.text(source, "model source", rules.MAX_SOURCE_LENGTH, allow_empty=False)
        owner = validation.text(artifact_owner, "artifact owner", 64, allow_empty=False)
        path = validation.artifact_path(artifact_path, allow_root=True)
        if run_id is not None:
            validation.run_id(run_id)
        description = rules.optional_text(description, "description", rules.MAX_DESCRIPTION_LENGTH)
        tag_values = rules.tags(tags, "model version tag")
        user_id = rules.user(user_id)
        storage_owner = STORAGE_OWNER_PREFIX + uuid.uuid4().hex

        def tx(conn: Connection) -> ModelVersion:
            files = rules.package_files(conn, self._dialect, owner, path)
            if not files:
                where = f"at {path!r}" if path else "at all"
                raise errors.NotFound(
                    f"{owner} has no artifact files {where}, so there is nothing to register as "
                    f"a version of {name!r}. Log the model first (shipyard.log_model), or check "
                    "the path in the source URI."
                )
            # The statements of this hot path run through the driver (see _registration_sql).
            sql = _registration_sql(self._dialect)
            found = driver_execute(conn, sql.model_id, (name,)).fetchone()
            model_id = (
                found[0]
                if found is not None
                else self._insert_model(conn, name, None, {}, user_id, if_missing=True).model_id
            )
            now = now_ms()
            # The row lock taken by this UPDATE serializes concurrent registrations (PostgreSQL);
            # SQLite's write transactions are serialized already.
            (next_version,) = driver_execute(conn, sql.next_version, (now, model_id)).fetchone()
            version = int(next_version) - 1
            digest = rules.tree_digest(files, path)
            driver_execute(
                conn,
                sql.copy_files,
                [(storage_owner, f.path, f.digest, f.size, now) for f in files],
                many=True,
            )
            driver_execute(
                conn,
                sql.version,
                (
                    model_id,
                    version,
                    source,
                    run_id,
                    ModelVersionStatus.READY.value,
                    None,
                    description,
                    user_id,
                    now,
                    now,
                    ModelStage.NONE.value,
                    storage_owner,
                    path,
                    digest,
                ),
            )
            if tag_values:
                conn.execute(
                    sa.insert(model_version_tags),
                    [{"model_id": model_id, "version": version, "key": k, "value": v}
                     for k, v in tag_values.items()],
                )  # fmt: skip
            record_event(
                conn, model_id, name, RegistryAction.VERSION_CREATED, version=version,
                user_id=user_id, reason=None, to_value=source,
            )  # fmt: skip
            # What was just written, without reading it back: a new number has no aliases yet.
            return ModelVersion(
                name=name,
                version=version,
                source=source,
                run_id=run_id,
                status=ModelVersionStatus.READY.value,
                description=description,
                user_id=user_id,
                creation_timestamp=now,
                last_updated_timestamp=now,
                current_stage=ModelStage.NONE.value,
                storage_owner=storage_owner,
                storage_path=path,
                content_digest=digest,
                tags=dict(sorted(tag_values.items())),
            )

        return self._db.write(tx)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        name, number = rules.model_name(name), rules.version_number(version)
        return self._db.read(lambda c: load_versions(c, [self._version(c, name, number)[1]])[0])

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        name = rules.model_name(name)
        wanted = [rules.stage(s) for s in ([stages] if isinstance(stages, str) else stages or [])]

        def tx(conn: Connection) -> list[ModelVersion]:
            model = self._model_row(conn, name)
            return rules.latest_per_stage(conn, [model.model_id], wanted)[model.model_id]

        return self._db.read(tx)

    def update_model_version(
        self, name: str, version: int, *, description: str | None
    ) -> ModelVersion:
        name, number = rules.model_name(name), rules.version_number(version)
        description = rules.optional_text(description, "description", rules.MAX_DESCRIPTION_LENGTH)

        def tx(conn: Connection) -> ModelVersion:
            model, _ = self._version(conn, name, number)
            self._touch_version(conn, model.model_id, number, description=description)
            return self._load_version(conn, model.model_id, number)

        return self._db.write(tx)

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
        name, number = rules.model_name(name), rules.version_number(version)
        status = rules.status(status)
        message = rules.optional_text(status_message, "status message", rules.MAX_REASON_LENGTH)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> ModelVersion:
            model, row = self._version(conn, name, number)
            self._touch_version(conn, model.model_id, number, status=status, status_message=message)
            if row.status != status:
                record_event(
                    conn, model.model_id, name, RegistryAction.STATUS_CHANGED, version=number,
                    user_id=user_id, reason=reason, from_value=row.status, to_value=status,
                )  # fmt: skip
            return self._load_version(conn, model.model_id, number)

        return self._db.write(tx)

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
        name, number = rules.model_name(name), rules.version_number(version)
        target = rules.stage(stage)
        if archive_existing_versions and target not in _ARCHIVING_STAGES:
            raise errors.InvalidInput(
                f"archive_existing_versions works only with the stages "
                f"{' and '.join(_ARCHIVING_STAGES)}, not {target!r}."
            )
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> ModelVersion:
            model, row = self._version(conn, name, number)
            moves = [(number, row.current_stage, target)]
            if archive_existing_versions:
                others = conn.execute(
                    sa.select(_v.version)
                    .where(
                        _v.model_id == model.model_id,
                        _v.current_stage == target,
                        _v.version != number,
                    )
                    .order_by(_v.version)
                )
                moves += [(v, target, ModelStage.ARCHIVED.value) for (v,) in others]
            for moved, before, after in moves:
                if before == after:
                    continue
                self._touch_version(conn, model.model_id, moved, current_stage=after)
                record_event(
                    conn, model.model_id, name, RegistryAction.STAGE_CHANGED, version=moved,
                    user_id=user_id, reason=reason, from_value=before, to_value=after,
                )  # fmt: skip
            return self._load_version(conn, model.model_id, number)

        return self._db.write(tx)

    def delete_model_version(
        self, name: str, version: int, *, user_id: str = "", reason: str | None = None
    ) -> set[str]:
        name, number = rules.model_name(name), rules.version_number(version)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> set[str]:
            model, row = self._version(conn, name, number)
            rules.refuse_if_aliased(name, number, self._aliases_of(conn, model.model_id, number))
            # Asked again in this transaction: a controller that adopted the version since the
            # caller's check (a new rollout's candidate) wins, and nothing is deleted.
            _refuse_if_deployed(conn, name, number)
            digests = _sql_artifacts.delete_owners(conn, [row.storage_owner])
            where = (model_version_approvals.c.model_id == model.model_id,
                     model_version_approvals.c.version == number)  # fmt: skip
            conn.execute(sa.delete(model_version_approvals).where(*where))
            conn.execute(
                sa.delete(model_version_tags).where(
                    _t.model_id == model.model_id, _t.version == number
                )
            )
            conn.execute(
                sa.delete(model_versions).where(_v.model_id == model.model_id, _v.version == number)
            )
            when = record_event(
                conn, model.model_id, name, RegistryAction.VERSION_DELETED, version=number,
                user_id=user_id, reason=reason, from_value=row.source,
            )  # fmt: skip
            self._touch(conn, model.model_id, when)
            return digests

        return self._db.write(tx)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        name, number = rules.model_name(name), rules.version_number(version)
        key = validation.key(key, "model version tag key")
        value = rules.tag_value(value, key)

        def tx(conn: Connection) -> None:
            model, _ = self._version(conn, name, number)
            stmt = upsert(self._dialect, model_version_tags).values(
                model_id=model.model_id, version=number, key=key, value=value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id", "version", "key"], set_={"value": value}
                )
            )
            self._touch_version(conn, model.model_id, number)

        self._db.write(tx)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        name, number = rules.model_name(name), rules.version_number(version)
        key = validation.key(key, "model version tag key")

        def tx(conn: Connection) -> None:
            model, _ = self._version(conn, name, number)
            result = conn.execute(
                sa.delete(model_version_tags).where(
                    _t.model_id == model.model_id, _t.version == number, _t.key == key
                )
            )
            if result.rowcount == 0:
                raise errors.NotFound(
                    f"Model {name!r} version {number} has no tag {key!r}; nothing to delete."
                )
            self._touch_version(conn, model.model_id, number)

        self._db.write(tx)

    def search_model_versions(
        self,
        filter_string: str = "",
        max_results: int = 10000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        limit = validation.max_results(max_results, rules.MAX_MODEL_VERSION_RESULTS)
        comparisons = filters.parse_model_version_filter(filter_string)
        order = filters.parse_model_version_order_by(order_by)

        def tx(conn: Connection) -> Page[ModelVersion]:
            rows, token = search_model_versions(
                conn, self._dialect, comparisons, order, limit, page_token
            )
            return Page(load_versions(conn, rows), token)

        return self._db.read(tx)

    def versions_trained_on(
        self, dataset_name: str, dataset_digest: str | None = None
    ) -> list[ModelVersion]:
        validation.text(dataset_name, "dataset name", validation.MAX_DATASET_NAME_LENGTH,
                        allow_empty=False)  # fmt: skip
        if dataset_digest is not None:
            validation.text(dataset_digest, "dataset digest", validation.MAX_DATASET_DIGEST_LENGTH)
        d, ri = datasets.c, run_inputs.c
        runs_with_dataset = (
            sa.select(ri.run_id)
            .join_from(run_inputs, datasets, d.dataset_id == ri.dataset_id)
            .where(d.name == dataset_name)
        )
        if dataset_digest is not None:
            runs_with_dataset = runs_with_dataset.where(d.digest == dataset_digest)
        query = (
            versions_query().where(_v.run_id.in_(runs_with_dataset)).order_by(_m.name, _v.version)
        )
        return self._db.read(lambda c: load_versions(c, list(c.execute(query))))

    # ------------------------------------------------------------------ aliases

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user_id: str = "",
        reason: str | None = None,
    ) -> None:
        name, number = rules.model_name(name), rules.version_number(version)
        alias = rules.alias_name(alias)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> None:
            model, _ = self._version(conn, name, number)
            mid = model.model_id
            current = conn.scalar(
                sa.select(_a.version).where(_a.model_id == mid, _a.alias == alias)
            )
            if current == number:
                return
            rules.check_approvals(conn, model, alias, number)
            stmt = upsert(self._dialect, model_aliases).values(
                model_id=mid, alias=alias, version=number
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id", "alias"], set_={"version": number}
                )
            )
            when = record_event(
                conn, mid, name, RegistryAction.ALIAS_SET, version=number, alias=alias,
                user_id=user_id, reason=reason, from_value=current, to_value=number,
            )  # fmt: skip
            self._touch(conn, mid, when)

        self._db.write(tx)

    def delete_alias(
        self, name: str, alias: str, *, user_id: str = "", reason: str | None = None
    ) -> None:
        name = rules.model_name(name)
        alias = validation.text(alias, "alias", rules.MAX_ALIAS_LENGTH, allow_empty=False)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> None:
            model = self._model_row(conn, name)
            current = self._alias_version(conn, model, alias)
            conn.execute(
                sa.delete(model_aliases).where(_a.model_id == model.model_id, _a.alias == alias)
            )
            when = record_event(
                conn, model.model_id, name, RegistryAction.ALIAS_DELETED, version=current,
                alias=alias, user_id=user_id, reason=reason, from_value=current,
            )  # fmt: skip
            self._touch(conn, model.model_id, when)

        self._db.write(tx)

    def _alias_version(self, conn: Connection, model: Row[Any], alias: str) -> int:
        current = conn.scalar(
            sa.select(_a.version).where(_a.model_id == model.model_id, _a.alias == alias)
        )
        if current is None:
            held = [r.alias for r in self._aliases_of(conn, model.model_id)]
            listed = f"its aliases are {', '.join(held)}" if held else "it has no aliases"
            raise errors.NotFound(
                f"Model {model.name!r} has no alias {alias!r} ({listed}). Set it with "
                f"`shipyard models alias set {model.name} {alias} VERSION`."
            )
        return int(current)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        name = rules.model_name(name)
        alias = validation.text(alias, "alias", rules.MAX_ALIAS_LENGTH, allow_empty=False)

        def tx(conn: Connection) -> ModelVersion:
            row = conn.execute(
                versions_query()
                .join(model_aliases, sa.and_(_a.model_id == _v.model_id, _a.version == _v.version))
                .where(_m.name == name, _a.alias == alias)
            ).first()
            if row is None:
                self._alias_version(conn, self._model_row(conn, name), alias)  # raises NotFound
            return load_versions(conn, [row])[0]  # type: ignore[list-item]

        return self._db.read(tx)

    def alias_at(self, name: str, alias: str, timestamp: int) -> int | None:
        name = rules.model_name(name)
        alias = validation.text(alias, "alias", rules.MAX_ALIAS_LENGTH, allow_empty=False)
        when = validation.int64(timestamp, "timestamp")

        def tx(conn: Connection) -> int | None:
            query = (
                sa.select(_e.action, _e.to_value)
                .where(
                    rules.model_events(conn, name),
                    _e.alias == alias,
                    _e.action.in_([RegistryAction.ALIAS_SET.value,
                                   RegistryAction.ALIAS_DELETED.value]),
                    _e.event_time <= when,
                )
                .order_by(_e.event_time.desc(), _e.event_id.desc())
                .limit(1)
            )  # fmt: skip
            row = conn.execute(query).first()
            if row is None and not conn.scalar(sa.select(_e.event_id).where(
                rules.model_events(conn, name)).limit(1)):  # fmt: skip
                self._model_row(conn, name)  # raises NotFound: no such model, ever
            if row is None or row.action != RegistryAction.ALIAS_SET.value:
                return None
            return int(row.to_value)

        return self._db.read(tx)

    def version_references(self, name: str, version: int) -> list[str]:
        name, number = rules.model_name(name), rules.version_number(version)

        def tx(conn: Connection) -> list[str]:
            model, _ = self._version(conn, name, number)
            return [f"alias {r.alias!r}" for r in self._aliases_of(conn, model.model_id, number)]

        return self._db.read(tx)

    # ------------------------------------------------------------------ approvals and audit

    def approve_model_version(
        self, name: str, version: int, approver: str, *, comment: str | None = None
    ) -> Approval:
        name, number = rules.model_name(name), rules.version_number(version)
        approver = validation.text(approver, "approver", validation.MAX_USER_ID_LENGTH,
                                   allow_empty=False)  # fmt: skip
        if not approver.strip():
            raise errors.InvalidInput("approver must name a person or service, not be blank.")
        comment = rules.reason(comment)

        def tx(conn: Connection) -> Approval:
            model, _ = self._version(conn, name, number)
            now = now_ms()
            stmt = upsert(self._dialect, model_version_approvals).values(
                model_id=model.model_id, version=number, approver=approver, comment=comment,
                approval_time=now,
            )  # fmt: skip
            if conn.execute(stmt.on_conflict_do_nothing().returning(_ap.approver)).first():
                record_event(
                    conn, model.model_id, name, RegistryAction.APPROVED, version=number,
                    user_id=approver, reason=comment,
                )  # fmt: skip
            row = conn.execute(
                sa.select(model_version_approvals).where(
                    _ap.model_id == model.model_id, _ap.version == number, _ap.approver == approver
                )
            ).one()
            return rules.approval_entity(name, row)

        return self._db.write(tx)

    def list_approvals(self, name: str, version: int) -> list[Approval]:
        name, number = rules.model_name(name), rules.version_number(version)

        def tx(conn: Connection) -> list[Approval]:
            model, _ = self._version(conn, name, number)
            rows = conn.execute(
                sa.select(model_version_approvals)
                .where(_ap.model_id == model.model_id, _ap.version == number)
                .order_by(_ap.approval_time, _ap.approver)
            )
            return [rules.approval_entity(name, r) for r in rows]

        return self._db.read(tx)

    def set_approval_policy(
        self,
        name: str,
        required_approvals: int,
        *,
        alias: str = ALL_ALIASES,
        user_id: str = "",
        reason: str | None = None,
    ) -> RegisteredModel:
        name = rules.model_name(name)
        required = validation.int64(required_approvals, "required_approvals", minimum=0)
        if required > MAX_REQUIRED_APPROVALS:
            raise errors.InvalidInput(
                f"required_approvals={required} is too many; use 0 to {MAX_REQUIRED_APPROVALS}."
            )
        if alias != ALL_ALIASES:
            alias = rules.alias_name(alias)
        user_id, reason = rules.user(user_id), rules.reason(reason)

        def tx(conn: Connection) -> RegisteredModel:
            model = self._model_row(conn, name)
            mid = model.model_id
            where = (_p.model_id == mid, _p.alias == alias)
            before = conn.scalar(sa.select(_p.required_approvals).where(*where)) or 0
            if before != required:
                conn.execute(sa.delete(approval_policies).where(*where))
                if required:
                    conn.execute(
                        sa.insert(approval_policies).values(
                            model_id=mid, alias=alias, required_approvals=required
                        )
                    )
                when = record_event(
                    conn, mid, name, RegistryAction.POLICY_CHANGED, alias=alias,
                    user_id=user_id, reason=reason, from_value=before, to_value=required,
                )  # fmt: skip
                self._touch(conn, mid, when)
            return self._load_model(conn, mid)

        return self._db.write(tx)

    def history(
        self,
        name: str,
        *,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegistryEvent]:
        name = rules.model_name(name)
        limit = validation.max_results(max_results, validation.MAX_SEARCH_RESULTS)
        after = 0
        if page_token:
            payload = decode_token(page_token, "history")
            if not isinstance(payload.get("event"), int):
                raise errors.InvalidInput(
                    "page_token is not a history token; leave it out to start over."
                )
            after = payload["event"]

        def tx(conn: Connection) -> Page[RegistryEvent]:
            rows = list(
                conn.execute(
                    sa.select(registry_events)
                    .where(rules.model_events(conn, name), _e.event_id > after)
                    .order_by(_e.event_id)
                    .limit(limit + 1)
                )
            )
            if not rows and not after:
                self._model_row(conn, name)  # raises NotFound: no such model, ever
            token = encode_token({"event": rows[limit - 1].event_id}) if len(rows) > limit else None
            return Page([rules.event_entity(r) for r in rows[:limit]], token)

        return self._db.read(tx)


@dataclass(frozen=True, slots=True)
class _RegistrationSql:
    """The statements of :meth:`SqlRegistryStore.create_model_version`, compiled for the driver
    (:func:`~shipyard.store._sql_common.driver_sql`): registering is the registry's hot path."""

    model_id: str
    next_version: str
    copy_files: str
    version: str


@functools.cache
def _registration_sql(dialect: str) -> _RegistrationSql:
    bind = sa.bindparam
    bump = (
        sa.update(registered_models)
        .where(_m.model_id == bind("model_id"))
        .values(
            next_version=_m.next_version + sa.literal_column("1"), last_updated_time=bind("now")
        )
        .returning(_m.next_version)
    )
    file_columns = ("owner_id", "path", "digest", "size", "created_time")
    version_columns = tuple(c.name for c in model_versions.c)
    return _RegistrationSql(
        model_id=driver_sql(
            sa.select(_m.model_id).where(_m.name == bind("name")), dialect, ("name",)
        ),
        next_version=driver_sql(bump, dialect, ("now", "model_id")),
        copy_files=driver_sql(
            sa.insert(artifacts).values({c: bind(c) for c in file_columns}), dialect, file_columns
        ),
        version=driver_sql(
            sa.insert(model_versions).values({c: bind(c) for c in version_columns}),
            dialect,
            version_columns,
        ),
    )


def _refuse_if_deployed(conn: Connection, model: str, version: int | None) -> None:
    """``InvalidState`` if a deployment holds ``version`` of ``model`` (any version when
    ``None``): as its stable version, or as the candidate of a rollout under way (paused in one
    included), as :meth:`~shipyard.store.deployments.DeploymentRecord.holds` says."""
    d = deployments.c
    rollout = sa.or_(
        d.state.in_(ROLLOUT_STATES),
        sa.and_(d.state == "paused", d.paused_state.in_(ROLLOUT_STATES)),
    )
    if version is None:
        held = sa.or_(
            d.stable_version.is_not(None), sa.and_(d.candidate_version.is_not(None), rollout)
        )
    else:
        held = sa.or_(d.stable_version == version, sa.and_(d.candidate_version == version, rollout))
    names = list(conn.scalars(sa.select(d.name).where(d.model == model, held).order_by(d.name)))
    if not names:
        return
    found = [f"deployment {n!r}" for n in names]
    if version is None:
        message = (
            f"Model {model!r} can't be deleted: {', '.join(found)} still serve(s) its versions. "
            "Delete the deployment(s) or point them at another model first."
        )
    else:
        message = (
            f"Model {model!r} version {version} can't be deleted: {', '.join(found)} still "
            "refer(s) to it. Point them at another version first."
        )
    raise errors.InvalidState(message, details={"references": found})
