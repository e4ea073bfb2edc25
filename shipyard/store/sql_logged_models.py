"""Logged models on SQLite or PostgreSQL, in the same database as the tracking store.

:class:`SqlLoggedModelStore` shares the tracking store's :class:`~shipyard.store.db.Database` (one
engine, one schema revision): creating a model checks its experiment and source run, its metrics
are the metric points runs logged with its id, and its registrations are the registry versions
whose source is ``models:/<model_id>`` -- each read in the same transaction. Every public method
is one transaction and validates its input first. The interface,
:class:`~shipyard.store.logged_models.LoggedModelStore`, lists the guarantees.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from shipyard import errors, validation
from shipyard.entities import (
    LifecycleStage,
    LoggedModel,
    LoggedModelRegistration,
    LoggedModelStatus,
    Metric,
    Page,
    RunModels,
)
from shipyard.store import _names, _sql_artifacts, filters
from shipyard.store import _sql_logged_model_search as search_sql
from shipyard.store._sql_common import chunks, metric_value, now_ms, upsert
from shipyard.store.db import Database
from shipyard.store.logged_models import (
    DEFAULT_SEARCH_RESULTS,
    MAX_SEARCH_RESULTS,
    MODEL_ID_PREFIX,
    DatasetScope,
    LoggedModelFiles,
    LoggedModelOrder,
    LoggedModelStore,
    check_model_id,
)
from shipyard.store.schema import (
    experiments,
    logged_model_params,
    logged_model_tags,
    logged_models,
    metrics,
    model_versions,
    registered_models,
    run_logged_models,
    runs,
)

ACTIVE = LifecycleStage.ACTIVE.value
DELETED = LifecycleStage.DELETED.value
INPUT, OUTPUT = "input", "output"
MAX_NAME_LENGTH = 500
MAX_MODEL_TYPE_LENGTH = 500
MAX_STATUS_MESSAGE_LENGTH = 65535
MAX_TAG_VALUE_LENGTH = 100_000
"""Logged-model tags hold JSON lists such as ``mlflow.modelVersions``, so they get the registry's
limit rather than a run tag's."""
MAX_LINKS_PER_CALL = 1000

_l, _t, _p = logged_models.c, logged_model_tags.c, logged_model_params.c
_NAME_FORBIDDEN = ("/", ":", ".", "%", '"', "'")
_STATUSES = tuple(s.value for s in LoggedModelStatus)


# ---------------------------------------------------------------------------- input rules


def _name(value: object) -> str:
    name = validation.text(value, "logged model name", MAX_NAME_LENGTH, allow_empty=False)
    if any(c in name for c in _NAME_FORBIDDEN) or not name.strip():
        raise errors.InvalidInput(
            f"logged model name {name!r} is not valid: it must not be blank or contain any of "
            f"{' '.join(_NAME_FORBIDDEN)} (they would break runs:/<run_id>/<name> URIs); use a "
            "name such as 'model'."
        )
    return name


def _status(value: object) -> str:
    if value not in _STATUSES:
        raise errors.InvalidInput(
            f"logged model status {value!r} is not valid; use {', '.join(_STATUSES[1:])} to "
            "finalize a model."
        )
    return str(value)


def _pairs(values: Mapping[str, str] | None, what: str, limit: int) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise errors.InvalidInput(f"{what}s must be a mapping of keys to values, got {values!r}.")
    if len(values) > validation.MAX_PARAMS_PER_BATCH:
        raise errors.PayloadTooLarge(
            f"{len(values)} {what}s in one call; the limit is {validation.MAX_PARAMS_PER_BATCH}. "
            "Split them into several calls."
        )
    return {
        validation.key(k, f"{what} key"): validation.text(v, f"value of {what} {k!r}", limit)
        for k, v in values.items()
    }


# ---------------------------------------------------------------------------- the store


class SqlLoggedModelStore(LoggedModelStore):
    """Logged models in SQL. ``database`` is the tracking store's, which owns it: :meth:`close`
    leaves it open."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._db.url

    # ------------------------------------------------------------------ lookups

    @staticmethod
    def _row(conn: Connection, mid: str, *, allow_deleted: bool = False) -> Row[Any]:
        row = conn.execute(sa.select(logged_models).where(_l.model_id == mid)).first()
        if row is None or (row.lifecycle_stage != ACTIVE and not allow_deleted):
            gone = "was deleted" if row is not None else "does not exist"
            raise errors.NotFound(
                f"Logged model {mid} {gone}. Check the id, or find the experiment's models with "
                "mlflow.search_logged_models(experiment_ids=[...])."
            )
        return row

    @staticmethod
    def _touch(conn: Connection, mid: str) -> None:
        conn.execute(
            sa.update(logged_models).where(_l.model_id == mid).values(last_updated_time=now_ms())
        )

    # ------------------------------------------------------------------ lifecycle

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
        eid = int(validation.experiment_id(experiment_id))
        name = _name(name) if name is not None else _names.run_name()
        if model_type is not None:
            validation.text(model_type, "model type", MAX_MODEL_TYPE_LENGTH)
        if source_run_id is not None:
            validation.run_id(source_run_id)
        param_values = _pairs(params, "logged model param", validation.MAX_PARAM_VALUE_LENGTH)
        tag_values = _pairs(tags, "logged model tag", MAX_TAG_VALUE_LENGTH)
        validation.text(creator_id, "creator id", validation.MAX_USER_ID_LENGTH)
        mid = MODEL_ID_PREFIX + uuid.uuid4().hex

        def tx(conn: Connection) -> LoggedModel:
            exp = conn.execute(
                sa.select(experiments.c.artifact_location, experiments.c.lifecycle_stage).where(
                    experiments.c.experiment_id == eid
                )
            ).first()
            if exp is None:
                raise errors.NotFound(
                    f"Experiment {eid} does not exist, so no model can be logged to it. Check the "
                    "id, or create it with mlflow.set_experiment()."
                )
            if exp.lifecycle_stage != ACTIVE:
                raise errors.InvalidState(
                    f"Experiment {eid} is deleted, so no model can be logged to it. Restore it "
                    f"with `shipyard experiments restore {eid}` first."
                )
            if (
                source_run_id is not None
                and conn.scalar(sa.select(runs.c.run_id).where(runs.c.run_id == source_run_id))
                is None
            ):
                raise errors.NotFound(
                    f"Run {source_run_id} does not exist, so it can't be the source of a logged "
                    "model. Check the run id, or leave source_run_id out."
                )
            now = now_ms()
            conn.execute(
                sa.insert(logged_models).values(
                    model_id=mid,
                    experiment_id=eid,
                    name=name,
                    artifact_uri=f"{exp.artifact_location.rstrip('/')}/models/{mid}/artifacts",
                    status=LoggedModelStatus.PENDING.value,
                    status_message=None,
                    creator_id=creator_id,
                    model_type=model_type,
                    source_run_id=source_run_id,
                    creation_time=now,
                    last_updated_time=now,
                    lifecycle_stage=ACTIVE,
                    deleted_time=None,
                )
            )
            if param_values:
                conn.execute(
                    sa.insert(logged_model_params),
                    [{"model_id": mid, "key": k, "value": v} for k, v in param_values.items()],
                )
            if tag_values:
                conn.execute(
                    sa.insert(logged_model_tags),
                    [{"model_id": mid, "key": k, "value": v} for k, v in tag_values.items()],
                )
            return self._load(conn, [self._row(conn, mid)])[0]

        return self._db.write(tx)

    def get_logged_model(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        mid = check_model_id(model_id)
        return self._db.read(
            lambda c: self._load(c, [self._row(c, mid, allow_deleted=allow_deleted)])[0]
        )

    def get_logged_model_files(self, model_id: str) -> LoggedModelFiles:
        mid = check_model_id(model_id)

        def tx(conn: Connection) -> LoggedModelFiles:
            row = self._row(conn, mid)
            return LoggedModelFiles(mid, str(row.experiment_id), row.status, row.source_run_id)

        return self._db.read(tx)

    def finalize_logged_model(
        self, model_id: str, status: str, *, status_message: str | None = None
    ) -> LoggedModel:
        mid = check_model_id(model_id)
        status = _status(status)
        if status_message is not None:
            validation.text(status_message, "status message", MAX_STATUS_MESSAGE_LENGTH)

        def tx(conn: Connection) -> LoggedModel:
            self._row(conn, mid)
            conn.execute(
                sa.update(logged_models)
                .where(_l.model_id == mid)
                .values(status=status, status_message=status_message, last_updated_time=now_ms())
            )
            return self._load(conn, [self._row(conn, mid)])[0]

        return self._db.write(tx)

    def delete_logged_model(self, model_id: str) -> None:
        mid = check_model_id(model_id)

        def tx(conn: Connection) -> None:
            self._row(conn, mid)
            now = now_ms()
            conn.execute(
                sa.update(logged_models)
                .where(_l.model_id == mid)
                .values(lifecycle_stage=DELETED, deleted_time=now, last_updated_time=now)
            )

        self._db.write(tx)

    def deleted_logged_model_ids(self, older_than: int | None = None) -> list[str]:
        query = (
            sa.select(_l.model_id)
            .join_from(logged_models, experiments, experiments.c.experiment_id == _l.experiment_id)
            .where(_l.lifecycle_stage == DELETED, experiments.c.lifecycle_stage == ACTIVE)
        )
        if older_than is not None:
            query = query.where(sa.func.coalesce(_l.deleted_time, 0) < older_than)
        return self._db.read(lambda c: list(c.scalars(query.order_by(_l.model_id))))

    def purge_logged_model(self, model_id: str) -> set[str]:
        mid = check_model_id(model_id)

        def tx(conn: Connection) -> set[str]:
            row = self._row(conn, mid, allow_deleted=True)
            if row.lifecycle_stage != DELETED:
                raise errors.InvalidState(
                    f"Logged model {mid} is not deleted, so it can't be purged. Delete it first."
                )
            digests = _sql_artifacts.delete_owners(conn, [mid])
            for table in (run_logged_models, logged_model_tags, logged_model_params):
                conn.execute(sa.delete(table).where(table.c.model_id == mid))
            conn.execute(sa.delete(logged_models).where(_l.model_id == mid))
            return digests

        return self._db.write(tx)

    # ------------------------------------------------------------------ tags and params

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        mid = check_model_id(model_id)
        values = _pairs(tags, "logged model tag", MAX_TAG_VALUE_LENGTH)

        def tx(conn: Connection) -> None:
            self._row(conn, mid)
            if not values:
                return
            stmt = upsert(self._dialect, logged_model_tags)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["model_id", "key"], set_={"value": stmt.excluded.value}
                ),
                [{"model_id": mid, "key": k, "value": v} for k, v in sorted(values.items())],
            )
            self._touch(conn, mid)

        self._db.write(tx)

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        mid = check_model_id(model_id)
        validation.key(key, "logged model tag key")

        def tx(conn: Connection) -> None:
            self._row(conn, mid)
            result = conn.execute(
                sa.delete(logged_model_tags).where(_t.model_id == mid, _t.key == key)
            )
            if result.rowcount == 0:
                raise errors.NotFound(f"Logged model {mid} has no tag {key!r}; nothing to delete.")
            self._touch(conn, mid)

        self._db.write(tx)

    def log_logged_model_params(self, model_id: str, params: Mapping[str, str]) -> None:
        mid = check_model_id(model_id)
        values = _pairs(params, "logged model param", validation.MAX_PARAM_VALUE_LENGTH)

        def tx(conn: Connection) -> None:
            self._row(conn, mid)
            if not values:
                return
            conn.execute(
                upsert(self._dialect, logged_model_params).on_conflict_do_nothing(),
                [{"model_id": mid, "key": k, "value": v} for k, v in sorted(values.items())],
            )
            stored = conn.execute(
                sa.select(_p.key, _p.value).where(_p.model_id == mid, _p.key.in_(list(values)))
            )
            for key, value in stored:
                if values[key] != value:
                    raise errors.Conflict(
                        f"param {key!r} of logged model {mid} is already {value!r}; params can't "
                        "change. Log a new key, or log a new model.",
                        details={"key": key, "stored": value, "sent": values[key]},
                    )
            self._touch(conn, mid)

        self._db.write(tx)

    # ------------------------------------------------------------------ search

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
        if isinstance(experiment_ids, str):
            raise errors.InvalidInput(
                f"experiment_ids must be a list of ids, not the string {experiment_ids!r}; "
                f"pass [{experiment_ids!r}]."
            )
        ids = [int(validation.experiment_id(e)) for e in experiment_ids]
        limit = validation.max_results(max_results, MAX_SEARCH_RESULTS)
        comparisons = filters.parse_logged_model_filter(filter_string)
        for d in datasets:
            validation.text(d.name, "dataset name", validation.MAX_DATASET_NAME_LENGTH,
                            allow_empty=False)  # fmt: skip
            if d.digest is not None:
                validation.text(d.digest, "dataset digest", validation.MAX_DATASET_DIGEST_LENGTH)
        order = search_sql.parse_order(order_by)
        if not ids:
            return Page([])

        def tx(conn: Connection) -> Page[LoggedModel]:
            rows, token = search_sql.search(
                conn, self._dialect, ids, comparisons, datasets, order, limit, page_token
            )
            return Page(self._load(conn, rows), token)

        return self._db.read(tx)

    # ------------------------------------------------------------------ runs

    def log_run_models(
        self,
        run_id: str,
        *,
        inputs: Sequence[str] = (),
        outputs: Sequence[tuple[str, int]] = (),
    ) -> None:
        validation.run_id(run_id)
        if len(inputs) + len(outputs) > MAX_LINKS_PER_CALL:
            raise errors.PayloadTooLarge(
                f"{len(inputs) + len(outputs)} model links in one call; the limit is "
                f"{MAX_LINKS_PER_CALL}. Split them into several calls."
            )
        links: dict[tuple[str, str], int] = {}
        for mid in inputs:
            links[(check_model_id(mid), INPUT)] = 0
        for mid, step in outputs:
            links[(check_model_id(mid), OUTPUT)] = validation.int64(step, "step")

        def tx(conn: Connection) -> None:
            self._active_run(conn, run_id)
            wanted = sorted({mid for mid, _ in links})
            found = set(
                conn.scalars(
                    sa.select(_l.model_id).where(
                        _l.model_id.in_(wanted), _l.lifecycle_stage == ACTIVE
                    )
                )
            )
            missing = [m for m in wanted if m not in found]
            if missing:
                raise errors.NotFound(
                    f"Logged model(s) {', '.join(missing)} do not exist (or were deleted), so "
                    f"run {run_id} can't be linked to them. Create the model first "
                    "(logged-models create), then log it as an input or output."
                )
            stmt = upsert(self._dialect, run_logged_models)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["run_id", "model_id", "direction"],
                    set_={"step": stmt.excluded.step},
                ),
                [
                    {"run_id": run_id, "model_id": mid, "direction": d, "step": step}
                    for (mid, d), step in sorted(links.items())
                ],
            )

        if links:
            self._db.write(tx)
        else:  # nothing to record, but an unknown or deleted run is still an error
            self._db.read(lambda c: self._active_run(c, run_id))

    @staticmethod
    def _active_run(conn: Connection, run_id: str) -> None:
        row = conn.execute(sa.select(runs.c.lifecycle_stage).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise errors.NotFound(
                f"Run {run_id} does not exist. Check the id, or find runs with `shipyard runs list`."
            )
        if row.lifecycle_stage != ACTIVE:
            raise errors.InvalidState(
                f"Run {run_id} is deleted, so nothing can be logged to it. Restore it with "
                f"`shipyard runs restore {run_id}`, or log to another run."
            )

    def run_models(self, run_ids: Sequence[str]) -> dict[str, RunModels]:
        ids = sorted({validation.run_id(r) for r in run_ids})
        if not ids:
            return {}
        rl = run_logged_models.c

        def tx(conn: Connection) -> dict[str, RunModels]:
            ins: dict[str, list[str]] = {}
            outs: dict[str, list[tuple[str, int]]] = {}
            for chunk in chunks(ids):
                query = (
                    sa.select(rl.run_id, rl.model_id, rl.direction, rl.step)
                    .where(rl.run_id.in_(chunk))
                    .order_by(rl.run_id, rl.direction, rl.model_id)
                )
                for row in conn.execute(query):
                    if row.direction == INPUT:
                        ins.setdefault(row.run_id, []).append(row.model_id)
                    else:
                        outs.setdefault(row.run_id, []).append((row.model_id, row.step))
            return {
                r: RunModels(tuple(ins.get(r, ())), tuple(outs.get(r, ())))
                for r in sorted(ins.keys() | outs.keys())
            }

        return self._db.read(tx)

    # ------------------------------------------------------------------ rows -> entities

    @staticmethod
    def _load(conn: Connection, rows: Sequence[Row[Any]]) -> list[LoggedModel]:
        """Whole models (tags, params, metrics, registrations) for ``logged_models`` rows."""
        ids = [r.model_id for r in rows]
        model_tags: dict[str, dict[str, str]] = {i: {} for i in ids}
        model_params: dict[str, dict[str, str]] = {i: {} for i in ids}
        model_metrics: dict[str, list[Metric]] = {i: [] for i in ids}
        registrations: dict[str, list[LoggedModelRegistration]] = {i: [] for i in ids}
        mt, mv, rm = metrics.c, model_versions.c, registered_models.c
        for chunk in chunks(ids):
            for table, target in ((logged_model_tags, model_tags),
                                  (logged_model_params, model_params)):  # fmt: skip
                c = table.c
                query = (
                    sa.select(c.model_id, c.key, c.value)
                    .where(c.model_id.in_(chunk))
                    .order_by(c.model_id, c.key)
                )
                for mid, key, value in conn.execute(query):
                    target[mid][key] = value
            query = (
                sa.select(mt.model_id, mt.key, mt.value, mt.is_nan, mt.timestamp, mt.step)
                .add_columns(mt.dataset_name, mt.dataset_digest, mt.run_id)
                .where(mt.model_id.in_(chunk))
                .order_by(mt.model_id, mt.key, mt.step, mt.timestamp)
            )
            for row in conn.execute(query):
                model_metrics[row.model_id].append(
                    Metric(
                        key=row.key,
                        value=metric_value(row.value, row.is_nan),
                        timestamp=row.timestamp,
                        step=row.step,
                        dataset_name=row.dataset_name,
                        dataset_digest=row.dataset_digest,
                        model_id=row.model_id,
                    )
                )
            sources = {f"models:/{i}": i for i in chunk}
            query = (
                sa.select(mv.source, rm.name, mv.version)
                .join_from(model_versions, registered_models, rm.model_id == mv.model_id)
                .where(mv.source.in_(list(sources)))
                .order_by(rm.name, mv.version)
            )
            for source, name, version in conn.execute(query):
                registrations[sources[source]].append(LoggedModelRegistration(name, version))
        return [
            LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_uri=r.artifact_uri,
                status=r.status,
                status_message=r.status_message,
                creator_id=r.creator_id,
                model_type=r.model_type,
                source_run_id=r.source_run_id,
                creation_timestamp=r.creation_time,
                last_updated_timestamp=r.last_updated_time,
                lifecycle_stage=r.lifecycle_stage,
                tags=model_tags[r.model_id],
                params=model_params[r.model_id],
                metrics=tuple(model_metrics[r.model_id]),
                registrations=tuple(registrations[r.model_id]),
            )
            for r in rows
        ]
