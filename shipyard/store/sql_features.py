"""The feature store's metadata on SQLite or PostgreSQL, in the tracking store's database.

Versions are allocated inside the writing transaction; the primary key ``(kind, name, version)``
makes two concurrent applies of the same definition collide instead of both succeeding, and the
loser gets ``Conflict`` (re-run ``shipyard features apply`` to see the new diff).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors
from shipyard.store._sql_common import now_ms
from shipyard.store.db import Database
from shipyard.store.features import (
    DefinitionChange,
    DefinitionRecord,
    FeatureMetadataStore,
    Materialization,
)
from shipyard.store.schema import (
    feature_definitions,
    feature_materializations,
    feature_training_sets,
)

_d, _m, _t = feature_definitions.c, feature_materializations.c, feature_training_sets.c
KINDS = ("entity", "feature_view", "on_demand_feature_view", "feature_service")


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise errors.InvalidInput(f"definition kind {kind!r}; use one of {', '.join(KINDS)}.")
    return kind


def _record(row: Row[Any]) -> DefinitionRecord:
    return DefinitionRecord(
        kind=row.kind,
        name=row.name,
        version=row.version,
        spec=json.loads(row.spec) if row.spec is not None else None,
        digest=row.digest,
        user_id=row.user_id,
        creation_time=row.creation_time,
    )


def _materialization(row: Row[Any]) -> Materialization:
    return Materialization(**{k: getattr(row, k) for k in Materialization.__dataclass_fields__})


class SqlFeatureStore(FeatureMetadataStore):
    """Feature definitions and their lineage in SQL (``database`` is the tracking store's)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @staticmethod
    def _latest(conn: Connection, kind: str, name: str) -> Row[Any] | None:
        return conn.execute(
            sa.select(feature_definitions)
            .where(_d.kind == kind, _d.name == name)
            .order_by(_d.version.desc())
            .limit(1)
        ).first()

    def apply(
        self, changes: Sequence[DefinitionChange], *, user_id: str = ""
    ) -> list[DefinitionRecord]:
        for c in changes:
            _kind(c.kind)

        def tx(conn: Connection) -> list[DefinitionRecord]:
            now = now_ms()
            out = []
            for c in changes:
                latest = self._latest(conn, c.kind, c.name)
                version = latest.version if latest is not None else 0
                if version != c.base_version:
                    raise errors.Conflict(
                        f"{c.kind.replace('_', ' ')} {c.name!r} changed while this apply was "
                        f"prepared (version {version}, expected {c.base_version}); nothing was "
                        "applied. Run `shipyard features apply` again to see the new diff."
                    )
                values = {
                    "kind": c.kind,
                    "name": c.name,
                    "version": version + 1,
                    "spec": json.dumps(c.spec, sort_keys=True) if c.spec is not None else None,
                    "digest": c.digest,
                    "user_id": user_id,
                    "creation_time": now,
                }
                try:
                    conn.execute(sa.insert(feature_definitions).values(**values))
                except sa.exc.IntegrityError:
                    raise errors.Conflict(
                        f"{c.kind.replace('_', ' ')} {c.name!r} was applied by someone else at "
                        "the same time; run `shipyard features apply` again."
                    ) from None
                out.append(
                    DefinitionRecord(**{**values, "spec": c.spec})  # type: ignore[arg-type]
                )
            return out

        return self._db.write(tx)

    def current(self, kind: str | None = None) -> list[DefinitionRecord]:
        latest = (
            sa.select(_d.kind, _d.name, sa.func.max(_d.version).label("version"))
            .group_by(_d.kind, _d.name)
            .subquery()
        )
        query = (
            sa.select(feature_definitions)
            .join(
                latest,
                sa.and_(
                    _d.kind == latest.c.kind,
                    _d.name == latest.c.name,
                    _d.version == latest.c.version,
                ),
            )
            .where(_d.spec.is_not(None))
            .order_by(_d.kind, _d.name)
        )
        if kind is not None:
            query = query.where(_d.kind == _kind(kind))
        return self._db.read(lambda conn: [_record(r) for r in conn.execute(query)])

    def get(self, kind: str, name: str, version: int | None = None) -> DefinitionRecord:
        _kind(kind)
        what = kind.replace("_", " ")

        def tx(conn: Connection) -> DefinitionRecord:
            if version is None:
                row = self._latest(conn, kind, name)
            else:
                row = conn.execute(
                    sa.select(feature_definitions).where(
                        _d.kind == kind, _d.name == name, _d.version == version
                    )
                ).first()
            if row is None or (version is None and row.spec is None):
                which = "" if version is None else f" version {version}"
                raise errors.NotFound(
                    f"No {what} {name!r}{which} is applied. List definitions with "
                    "`shipyard features list`, or apply them with `shipyard features apply FILE`."
                )
            return _record(row)

        return self._db.read(tx)

    def history(self, kind: str, name: str) -> list[DefinitionRecord]:
        _kind(kind)
        query = (
            sa.select(feature_definitions)
            .where(_d.kind == kind, _d.name == name)
            .order_by(_d.version.desc())
        )
        return self._db.read(lambda conn: [_record(r) for r in conn.execute(query)])

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
        def tx(conn: Connection) -> Materialization:
            result = conn.execute(
                sa.insert(feature_materializations)
                .values(
                    view=view,
                    view_version=view_version,
                    online_store=online_store,
                    mode=mode,
                    start_time=start_time,
                    end_time=end_time,
                    watermark=watermark,
                    num_rows=num_rows,
                    creation_time=now_ms(),
                )
                .returning(feature_materializations)
            )
            return _materialization(result.one())

        return self._db.write(tx)

    def materializations(self, view: str, online_store: str | None = None) -> list[Materialization]:
        query = sa.select(feature_materializations).where(_m.view == view)
        if online_store is not None:
            query = query.where(_m.online_store == online_store)
        query = query.order_by(_m.materialization_id.desc())
        return self._db.read(lambda conn: [_materialization(r) for r in conn.execute(query)])

    def link_training_set(
        self, dataset: str, dataset_version: int, views: Sequence[tuple[str, int]]
    ) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(
                sa.delete(feature_training_sets).where(
                    _t.dataset == dataset, _t.dataset_version == dataset_version
                )
            )
            if views:
                now = now_ms()
                conn.execute(
                    sa.insert(feature_training_sets),
                    [
                        {
                            "dataset": dataset,
                            "dataset_version": dataset_version,
                            "view": v,
                            "view_version": n,
                            "creation_time": now,
                        }
                        for v, n in sorted(dict(views).items())
                    ],
                )

        self._db.write(tx)

    def training_set_views(self, dataset: str, dataset_version: int) -> list[tuple[str, int]]:
        query = (
            sa.select(_t.view, _t.view_version)
            .where(_t.dataset == dataset, _t.dataset_version == dataset_version)
            .order_by(_t.view)
        )
        return self._db.read(lambda conn: [(r.view, r.view_version) for r in conn.execute(query)])

    def training_sets_of(self, view: str) -> list[tuple[str, int, int]]:
        query = (
            sa.select(_t.dataset, _t.dataset_version, _t.view_version)
            .where(_t.view == view)
            .order_by(_t.creation_time.desc(), _t.dataset, _t.dataset_version.desc())
        )
        return self._db.read(
            lambda conn: [
                (r.dataset, r.dataset_version, r.view_version) for r in conn.execute(query)
            ]
        )
