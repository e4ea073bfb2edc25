"""Deployments on SQLite or PostgreSQL, in the same database as the tracking store.

Every public method is one transaction. State writes are compare-and-set on ``revision``
(see :class:`~shipyard.store.deployments.DeploymentStore`).
"""

from __future__ import annotations

import builtins
import json
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors
from shipyard.store._sql_common import now_ms
from shipyard.store.db import Database
from shipyard.store.deployments import DeploymentEvent, DeploymentRecord, DeploymentStore
from shipyard.store.schema import deployment_events, deployments

_d, _e = deployments.c, deployment_events.c
_JSON_FIELDS = ("policy", "context", "traffic")
_FIELDS = {f.name for f in fields(DeploymentRecord)}
_READ_ONLY = {"name", "revision", "traffic_revision", "creation_time", "last_update_time"}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _event_values(
    deployment: str,
    action: str,
    message: str,
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    version: int | None = None,
    evidence: dict[str, Any] | None = None,
    user_id: str = "",
) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "event_time": now_ms(),
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "version": version,
        "message": message,
        "evidence": _dumps(_finite(evidence or {})),
        "user_id": user_id,
    }


def _finite(value: Any) -> Any:
    """NaN and infinities (an AUC on one class, say) become ``null`` in the JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _record(row: Row[Any]) -> DeploymentRecord:
    values = dict(row._mapping)
    for key in _JSON_FIELDS:
        values[key] = json.loads(values[key]) if values[key] else {}
    return DeploymentRecord(**values)


def _event(row: Row[Any]) -> DeploymentEvent:
    values = dict(row._mapping)
    values["evidence"] = json.loads(values["evidence"]) if values["evidence"] else {}
    return DeploymentEvent(**values)


class SqlDeploymentStore(DeploymentStore):
    """Deployments and their decisions in SQL. ``database`` is the tracking store's, which owns
    it: :meth:`close` leaves it open."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def create(self, record: DeploymentRecord) -> DeploymentRecord:
        now = now_ms()
        values: dict[str, Any] = {f: getattr(record, f) for f in _FIELDS}
        values.update(revision=1, creation_time=now, last_update_time=now)
        for key in _JSON_FIELDS:
            values[key] = _dumps(_finite(values[key]))

        def write(conn: Connection) -> Row[Any]:
            if conn.execute(sa.select(_d.name).where(_d.name == record.name)).first():
                raise errors.AlreadyExists(
                    f"A deployment named {record.name!r} exists already; `shipyard deploy apply` "
                    "updates it, or pick another name."
                )
            conn.execute(deployments.insert().values(**values))
            return conn.execute(sa.select(deployments).where(_d.name == record.name)).one()

        return _record(self._db.write(write))

    def find(self, name: str) -> DeploymentRecord | None:
        row = self._db.read(
            lambda c: c.execute(sa.select(deployments).where(_d.name == name)).first()
        )
        return _record(row) if row is not None else None

    def get(self, name: str) -> DeploymentRecord:
        found = self.find(name)
        if found is None:
            names = [r.name for r in self.list()]
            known = f"the deployments are: {', '.join(names)}" if names else "there are none yet"
            raise errors.NotFound(
                f"No deployment is named {name!r} ({known}); create one with "
                "`shipyard deploy apply SPEC.yaml`.",
                details={"deployment": name},
            )
        return found

    def list(self) -> list[DeploymentRecord]:
        query = sa.select(deployments).order_by(_d.name)
        return [_record(r) for r in self._db.read(lambda c: c.execute(query).all())]

    def update(
        self,
        name: str,
        expected_revision: int,
        changes: dict[str, Any],
        *,
        event: dict[str, Any] | None = None,
    ) -> DeploymentRecord | None:
        unknown = set(changes) - (_FIELDS - _READ_ONLY)
        if unknown:
            raise errors.InvalidInput(f"deployment fields {sorted(unknown)} can't be changed.")
        values = dict(changes)
        for key in _JSON_FIELDS:
            if key in values:
                values[key] = _dumps(_finite(values[key]))

        def write(conn: Connection) -> Row[Any] | None:
            current = conn.execute(
                sa.select(_d.traffic, _d.traffic_revision).where(
                    _d.name == name, _d.revision == expected_revision
                )
            ).first()
            if current is None:
                return None
            extra: dict[str, Any] = {
                "revision": expected_revision + 1,
                "last_update_time": now_ms(),
            }
            if "traffic" in values and values["traffic"] != current.traffic:
                extra["traffic_revision"] = current.traffic_revision + 1
            moved = conn.execute(
                sa.update(deployments)
                .where(_d.name == name, _d.revision == expected_revision)
                .values(**values, **extra)
            ).rowcount
            if moved != 1:
                return None
            if event is not None:
                conn.execute(deployment_events.insert().values(**_event_values(name, **event)))
            return conn.execute(sa.select(deployments).where(_d.name == name)).one()

        row = self._db.write(write)
        return _record(row) if row is not None else None

    def delete(self, name: str) -> None:
        def write(conn: Connection) -> int:
            return int(conn.execute(sa.delete(deployments).where(_d.name == name)).rowcount)

        if self._db.write(write) != 1:
            self.get(name)  # raises NotFound with the list

    def record_event(
        self,
        deployment: str,
        action: str,
        message: str,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        version: int | None = None,
        evidence: dict[str, Any] | None = None,
        user_id: str = "",
    ) -> DeploymentEvent:
        values = _event_values(
            deployment,
            action,
            message,
            from_state=from_state,
            to_state=to_state,
            version=version,
            evidence=evidence,
            user_id=user_id,
        )

        def write(conn: Connection) -> Row[Any]:
            key = conn.execute(deployment_events.insert().values(**values)).inserted_primary_key
            assert key is not None
            return conn.execute(
                sa.select(deployment_events).where(_e.event_id == int(key[0]))
            ).one()

        return _event(self._db.write(write))

    def events(
        self, deployment: str, *, after: int | None = None, max_results: int = 1000
    ) -> builtins.list[DeploymentEvent]:
        query = (
            sa.select(deployment_events)
            .where(_e.deployment == deployment, _e.event_id > (after if after is not None else -1))
            .order_by(_e.event_id)
            .limit(max(1, max_results))
        )
        return [_event(r) for r in self._db.read(lambda c: c.execute(query).all())]
