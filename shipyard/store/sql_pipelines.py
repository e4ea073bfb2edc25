"""Pipelines on SQLite or PostgreSQL, in the same database as the tracking store.

:class:`SqlPipelineStore` shares the tracking store's :class:`~shipyard.store.db.Database`, so
event schedules can read the registry's audit trail and the dataset versions from the same
database (that is what makes triggers durable and cross-process: a scheduler polls rows after a
persisted watermark instead of waiting for an in-process callback). Every public method is one
transaction.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors
from shipyard.entities import RegistryAction
from shipyard.store._sql_common import now_ms, upsert
from shipyard.store.db import Database
from shipyard.store.pipelines import (
    Firing,
    PipelineEvent,
    PipelineRun,
    PipelineStore,
    Schedule,
    StepRun,
    StepStatus,
    TriggerEvent,
)
from shipyard.store.schema import (
    dataset_versions,
    pipeline_events,
    pipeline_firings,
    pipeline_runs,
    pipeline_schedules,
    pipeline_step_links,
    pipeline_step_runs,
    registered_datasets,
    registry_events,
)

_r, _s, _l = pipeline_runs.c, pipeline_step_runs.c, pipeline_step_links.c
_sc, _f, _ev = pipeline_schedules.c, pipeline_firings.c, pipeline_events.c
_MIN_PREFIX = 6


def _inserted_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _run(row: Row[Any], steps: list[StepRun] | None = None) -> PipelineRun:
    return PipelineRun(
        run_id=row.run_id,
        pipeline=row.pipeline,
        reference=row.reference,
        params=_loads(row.params) or {},
        status=row.status,
        executor=row.executor,
        cache_enabled=bool(row.cache_enabled),
        start_time=row.start_time,
        end_time=row.end_time,
        resumed_from=row.resumed_from,
        trigger=_loads(row.trigger) or {},
        error=row.error,
        steps=steps or [],
    )


def _step(row: Row[Any], links: list[dict[str, str]] | None = None) -> StepRun:
    return StepRun(
        step_run_id=row.step_run_id,
        run_id=row.run_id,
        name=row.name,
        status=row.status,
        cached=bool(row.cached),
        cache_key=row.cache_key,
        cache_components=_loads(row.cache_components) or {},
        cache_source=row.cache_source,
        attempts=row.attempts,
        start_time=row.start_time,
        end_time=row.end_time,
        inputs=_loads(row.inputs) or {},
        output=_loads(row.output),
        error=row.error,
        traceback=row.traceback,
        logs=row.logs,
        executor=row.executor,
        tracking_run_id=row.tracking_run_id,
        links=links or [],
    )


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(
        schedule_id=row.schedule_id,
        name=row.name,
        reference=row.reference,
        kind=row.kind,
        spec=row.spec,
        params=_loads(row.params) or {},
        event_filter=row.event_filter,
        missed=row.missed,
        executor=row.executor,
        next_fire_time=row.next_fire_time,
        watermark=row.watermark,
        enabled=bool(row.enabled),
        creation_time=row.creation_time,
    )


def _firing(row: Row[Any]) -> Firing:
    return Firing(
        firing_id=row.firing_id,
        schedule_id=row.schedule_id,
        schedule_name=row.schedule_name,
        fire_time=row.fire_time,
        cause=_loads(row.cause) or {},
        status=row.status,
        run_id=row.run_id,
        error=row.error,
    )


class SqlPipelineStore(PipelineStore):
    """Pipeline runs, step runs, schedules, firings and events in SQL.

    ``database`` is the tracking store's, which owns it: :meth:`close` leaves it open.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect

    # ---------------------------------------------------------------- runs

    def create_run(self, run: PipelineRun) -> PipelineRun:
        def write(conn: Connection) -> None:
            if conn.scalar(sa.select(_r.run_id).where(_r.run_id == run.run_id)) is not None:
                raise errors.AlreadyExists(f"Pipeline run {run.run_id} already exists.")
            conn.execute(
                pipeline_runs.insert().values(
                    run_id=run.run_id,
                    pipeline=run.pipeline,
                    reference=run.reference,
                    params=_dumps(run.params),
                    status=run.status,
                    executor=run.executor,
                    cache_enabled=run.cache_enabled,
                    start_time=run.start_time,
                    end_time=run.end_time,
                    resumed_from=run.resumed_from,
                    trigger=_dumps(run.trigger),
                    error=run.error,
                )
            )

        self._db.write(write)
        return run

    def finish_run(self, run_id: str, status: str, *, error: str | None = None) -> PipelineRun:
        def write(conn: Connection) -> None:
            self._run_row(conn, run_id)
            conn.execute(
                sa.update(pipeline_runs)
                .where(_r.run_id == run_id)
                .values(status=status, end_time=now_ms(), error=error)
            )

        self._db.write(write)
        return self.get_run(run_id)

    @staticmethod
    def _run_row(conn: Connection, run_id: str) -> Row[Any]:
        ref = run_id.strip().lower()
        row = conn.execute(sa.select(pipeline_runs).where(_r.run_id == ref)).first()
        if row is None and len(ref) >= _MIN_PREFIX:
            rows = conn.execute(
                sa.select(pipeline_runs).where(_r.run_id.like(ref + "%")).limit(2)
            ).all()
            if len(rows) > 1:
                raise errors.InvalidInput(
                    f"{run_id!r} is the start of several pipeline run ids; give more digits."
                )
            row = rows[0] if rows else None
        if row is None:
            raise errors.NotFound(
                f"No pipeline run has the id {run_id!r}. List runs with `shipyard pipelines list`."
            )
        return row

    def get_run(self, run_id: str) -> PipelineRun:
        def read(conn: Connection) -> PipelineRun:
            row = self._run_row(conn, run_id)
            steps = conn.execute(
                sa.select(pipeline_step_runs)
                .where(_s.run_id == row.run_id)
                .order_by(_s.start_time.is_(None), _s.start_time, _s.name)
            ).all()
            links = self._links(conn, [s.step_run_id for s in steps])
            return _run(row, [_step(s, links.get(s.step_run_id)) for s in steps])

        return self._db.read(read)

    def list_runs(
        self, *, pipeline: str | None = None, max_results: int = 100
    ) -> list[PipelineRun]:
        query = sa.select(pipeline_runs).order_by(_r.start_time.desc(), _r.run_id.desc())
        if pipeline is not None:
            query = query.where(_r.pipeline == pipeline)
        rows = self._db.read(lambda c: c.execute(query.limit(max(1, max_results))).all())
        return [_run(r) for r in rows]

    # ---------------------------------------------------------------- step runs

    def put_step_run(self, step: StepRun) -> StepRun:
        values = {
            "run_id": step.run_id,
            "name": step.name,
            "status": step.status,
            "cached": step.cached,
            "cache_key": step.cache_key,
            "cache_components": _dumps(step.cache_components),
            "cache_source": step.cache_source,
            "attempts": step.attempts,
            "start_time": step.start_time,
            "end_time": step.end_time,
            "inputs": _dumps(step.inputs),
            "output": _dumps(step.output) if step.output is not None else None,
            "error": step.error,
            "traceback": step.traceback,
            "logs": step.logs,
            "executor": step.executor,
            "tracking_run_id": step.tracking_run_id,
        }
        stmt = upsert(self._dialect, pipeline_step_runs).values(
            step_run_id=step.step_run_id, **values
        )
        stmt = stmt.on_conflict_do_update(index_elements=[_s.step_run_id], set_=values)
        self._db.write(lambda conn: conn.execute(stmt))
        return step

    @staticmethod
    def _links(conn: Connection, ids: list[str]) -> dict[str, list[dict[str, str]]]:
        found: dict[str, list[dict[str, str]]] = {}
        if not ids:
            return found
        rows = conn.execute(
            sa.select(pipeline_step_links)
            .where(_l.step_run_id.in_(ids))
            .order_by(_l.kind, _l.name, _l.version)
        )
        for row in rows:
            found.setdefault(row.step_run_id, []).append(
                {"kind": row.kind, "name": row.name, "version": row.version}
            )
        return found

    def get_step_run(self, step_run_id: str) -> StepRun:
        def read(conn: Connection) -> StepRun:
            row = conn.execute(
                sa.select(pipeline_step_runs).where(_s.step_run_id == step_run_id)
            ).first()
            if row is None:
                raise errors.NotFound(f"No step run has the id {step_run_id!r}.")
            return _step(row, self._links(conn, [step_run_id]).get(step_run_id))

        return self._db.read(read)

    def find_cached(self, cache_key: str) -> StepRun | None:
        query = (
            sa.select(pipeline_step_runs)
            .where(
                _s.cache_key == cache_key,
                _s.status == StepStatus.SUCCEEDED.value,
                _s.cached.is_(False),
                _s.output.is_not(None),
            )
            .order_by(_s.end_time.desc())
            .limit(1)
        )
        row = self._db.read(lambda c: c.execute(query).first())
        return _step(row) if row is not None else None

    def step_history(
        self, name: str, *, before: int | None = None, max_results: int = 50
    ) -> list[StepRun]:
        query = (
            sa.select(pipeline_step_runs)
            .where(_s.name == name, _s.cached.is_(False), _s.cache_key.is_not(None))
            .order_by(_s.start_time.desc())
            .limit(max(1, max_results))
        )
        if before is not None:
            query = query.where(_s.start_time < before)
        return [_step(r) for r in self._db.read(lambda c: c.execute(query).all())]

    def add_links(self, step_run_id: str, links: list[dict[str, str]]) -> None:
        if not links:
            return

        def write(conn: Connection) -> None:
            for link in links:
                stmt = upsert(self._dialect, pipeline_step_links).values(
                    step_run_id=step_run_id,
                    kind=str(link["kind"]),
                    name=str(link["name"]),
                    version=str(link["version"]),
                )
                conn.execute(stmt.on_conflict_do_nothing())

        self._db.write(write)

    # ---------------------------------------------------------------- schedules

    def create_schedule(self, schedule: Schedule) -> Schedule:
        def write(conn: Connection) -> int:
            if conn.scalar(sa.select(_sc.schedule_id).where(_sc.name == schedule.name)):
                raise errors.AlreadyExists(
                    f"A schedule named {schedule.name!r} already exists; delete it with "
                    f"`shipyard pipelines schedule delete {schedule.name}` or choose another name."
                )
            result = conn.execute(
                pipeline_schedules.insert().values(
                    name=schedule.name,
                    reference=schedule.reference,
                    kind=schedule.kind,
                    spec=schedule.spec,
                    params=_dumps(schedule.params),
                    event_filter=schedule.event_filter,
                    missed=schedule.missed,
                    executor=schedule.executor,
                    next_fire_time=schedule.next_fire_time,
                    watermark=schedule.watermark,
                    enabled=schedule.enabled,
                    creation_time=schedule.creation_time or now_ms(),
                )
            )
            return _inserted_id(result)

        self._db.write(write)
        return self.get_schedule(schedule.name)

    def get_schedule(self, name: str) -> Schedule:
        row = self._db.read(
            lambda c: c.execute(sa.select(pipeline_schedules).where(_sc.name == name)).first()
        )
        if row is None:
            raise errors.NotFound(
                f"No schedule is named {name!r}. List schedules with "
                "`shipyard pipelines schedule list`."
            )
        return _schedule(row)

    def list_schedules(self) -> list[Schedule]:
        rows = self._db.read(
            lambda c: c.execute(sa.select(pipeline_schedules).order_by(_sc.name)).all()
        )
        return [_schedule(r) for r in rows]

    def delete_schedule(self, name: str) -> None:
        def write(conn: Connection) -> None:
            result = conn.execute(sa.delete(pipeline_schedules).where(_sc.name == name))
            if result.rowcount == 0:
                raise errors.NotFound(
                    f"No schedule is named {name!r}. List schedules with "
                    "`shipyard pipelines schedule list`."
                )

        self._db.write(write)

    def claim_fire_time(self, schedule_id: int, expected: int | None, new: int | None) -> bool:
        current = (
            _sc.next_fire_time.is_(None) if expected is None else _sc.next_fire_time == expected
        )
        stmt = (
            sa.update(pipeline_schedules)
            .where(_sc.schedule_id == schedule_id, current)
            .values(next_fire_time=new)
        )
        return bool(self._db.write(lambda c: c.execute(stmt).rowcount) == 1)

    def claim_watermark(self, schedule_id: int, expected: int | None, new: int) -> bool:
        current = _sc.watermark.is_(None) if expected is None else _sc.watermark == expected
        stmt = (
            sa.update(pipeline_schedules)
            .where(_sc.schedule_id == schedule_id, current)
            .values(watermark=new)
        )
        return bool(self._db.write(lambda c: c.execute(stmt).rowcount) == 1)

    def record_firing(
        self,
        schedule: Schedule,
        cause: dict[str, Any],
        status: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
    ) -> Firing:
        def write(conn: Connection) -> Row[Any]:
            result = conn.execute(
                pipeline_firings.insert().values(
                    schedule_id=schedule.schedule_id,
                    schedule_name=schedule.name,
                    fire_time=now_ms(),
                    cause=_dumps(cause),
                    status=status,
                    run_id=run_id,
                    error=error,
                )
            )
            firing_id = _inserted_id(result)
            return conn.execute(sa.select(pipeline_firings).where(_f.firing_id == firing_id)).one()

        return _firing(self._db.write(write))

    def update_firing(
        self, firing_id: int, status: str, *, run_id: str | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "error": error}
        if run_id is not None:
            values["run_id"] = run_id
        stmt = sa.update(pipeline_firings).where(_f.firing_id == firing_id).values(**values)
        self._db.write(lambda c: c.execute(stmt))

    def list_firings(
        self, schedule_name: str | None = None, max_results: int = 100
    ) -> list[Firing]:
        query = sa.select(pipeline_firings).order_by(_f.firing_id.desc()).limit(max(1, max_results))
        if schedule_name is not None:
            query = query.where(_f.schedule_name == schedule_name)
        return [_firing(r) for r in self._db.read(lambda c: c.execute(query).all())]

    # ---------------------------------------------------------------- events

    def record_event(self, kind: str, name: str, payload: dict[str, Any]) -> PipelineEvent:
        now = now_ms()

        def write(conn: Connection) -> int:
            result = conn.execute(
                pipeline_events.insert().values(
                    kind=kind, name=name, payload=_dumps(payload), event_time=now
                )
            )
            return _inserted_id(result)

        event_id = self._db.write(write)
        return PipelineEvent(event_id, kind, name, dict(payload), now)

    def events_after(
        self, kind: str, after: int | None, max_results: int = 100
    ) -> list[PipelineEvent]:
        limit = max(1, max_results)
        start = after if after is not None else -1
        if kind == TriggerEvent.MODEL_VERSION:
            e = registry_events.c
            query = (
                sa.select(e.event_id, e.model_name, e.version, e.event_time, e.user_id)
                .where(e.action == RegistryAction.VERSION_CREATED.value, e.event_id > start)
                .order_by(e.event_id)
                .limit(limit)
            )
            rows = self._db.read(lambda c: c.execute(query).all())
            return [
                PipelineEvent(
                    r.event_id,
                    kind,
                    r.model_name,
                    {"name": r.model_name, "version": r.version, "user_id": r.user_id},
                    r.event_time,
                )
                for r in rows
            ]
        if kind == TriggerEvent.DATASET_VERSION:
            # Dataset versions have no event id of their own: their creation time (ms) orders
            # them. Versions of the last millisecond are left for the next poll, so one that
            # commits late within the same millisecond is not stepped over.
            v, d = dataset_versions.c, registered_datasets.c
            query = (
                sa.select(v.version, v.creation_time, v.content_digest, d.name)
                .join(registered_datasets, d.dataset_id == v.dataset_id)
                .where(v.creation_time > start, v.creation_time < now_ms())
                .order_by(v.creation_time, d.name, v.version)
                .limit(limit)
            )
            rows = self._db.read(lambda c: c.execute(query).all())
            return [
                PipelineEvent(
                    r.creation_time,
                    kind,
                    r.name,
                    {"name": r.name, "version": r.version, "digest": r.content_digest},
                    r.creation_time,
                )
                for r in rows
            ]
        query = (
            sa.select(pipeline_events)
            .where(_ev.kind == kind, _ev.event_id > start)
            .order_by(_ev.event_id)
            .limit(limit)
        )
        return [
            PipelineEvent(r.event_id, r.kind, r.name, _loads(r.payload) or {}, r.event_time)
            for r in self._db.read(lambda c: c.execute(query).all())
        ]

    def latest_event_id(self, kind: str) -> int | None:
        if kind == TriggerEvent.MODEL_VERSION:
            e = registry_events.c
            query: Any = sa.select(sa.func.max(e.event_id)).where(
                e.action == RegistryAction.VERSION_CREATED.value
            )
        elif kind == TriggerEvent.DATASET_VERSION:
            query = sa.select(sa.func.max(dataset_versions.c.creation_time))
        else:
            query = sa.select(sa.func.max(_ev.event_id)).where(_ev.kind == kind)
        value = self._db.read(lambda c: c.scalar(query))
        return int(value) if value is not None else None

    def close(self) -> None:
        """Nothing to release: the tracking store owns the database."""
