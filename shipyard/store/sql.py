"""The metadata store on SQLite or PostgreSQL (SQLAlchemy Core over :mod:`shipyard.store.schema`).

Every public method is one transaction (:class:`~shipyard.store.db.Database`), validates its input
with :mod:`shipyard.validation` first, and follows MLflow's semantics so that the MLflow-compatible
server can expose it unchanged:

* experiment names are unique even against deleted experiments; the default experiment ``"0"``
  (``Default``) always exists and can't be deleted;
* params are write-once, tags are overwritten, metrics keep their whole history plus the latest
  point per key (highest step, then latest timestamp, then largest value; NaN loses ties);
* only active runs can be written to; deleting an experiment soft-deletes its active runs and
  restoring it brings those runs back;
* purging removes the rows for good and returns the artifact digests they referenced.

Artifact URIs: an experiment's artifact location is ``<root>/<experiment_id>`` unless given, and a
run's is ``<experiment location>/<run_id>/artifacts``; with the default root
``mlflow-artifacts:`` that is what MLflow clients expect from a server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Row

from shipyard import errors, validation
from shipyard.entities import (
    ArtifactInfo,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Page,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from shipyard.store import _names, _sql_artifacts, _sql_logging, _sql_search, filters
from shipyard.store._sql_common import (
    RUN_COLUMNS,
    decode_token,
    load_experiments,
    load_runs,
    now_ms,
    run_info,
    upsert,
)
from shipyard.store.base import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    HistoryRow,
    TrackingStore,
)
from shipyard.store.db import Database, ensure_schema
from shipyard.store.schema import (
    datasets,
    experiment_tags,
    experiments,
    latest_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    metrics,
    params,
    run_inputs,
    run_logged_models,
    runs,
    tags,
)

RUN_NAME_TAG = _sql_logging.RUN_NAME_TAG
PARENT_RUN_TAG = _sql_logging.PARENT_RUN_TAG
ACTIVE = LifecycleStage.ACTIVE.value
DELETED = LifecycleStage.DELETED.value

_e, _r = experiments.c, runs.c
# Names for the tables that some methods' parameters (``tags``...) shadow.
tags_table = tags
_OWNER_LENGTH = 64  # artifacts.owner_id


class SqlTrackingStore(TrackingStore):
    """Experiments, runs and the artifact index in a SQLite file or a PostgreSQL database.

    Opening creates the tables in an empty database and refuses (``MigrationRequired``) a
    database at another schema revision. Safe to share between threads; many processes may
    write the same database (SQLite serializes them on its write lock).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        default_artifact_root: str = "mlflow-artifacts:",
    ) -> None:
        self._root = default_artifact_root.rstrip("/")
        self._db = Database(url, pool_size=pool_size)
        self._dialect = self._db.dialect
        try:
            if not ensure_schema(self._db, self._insert_default_experiment):
                exists = self._db.read(
                    lambda c: c.scalar(sa.select(_e.experiment_id).where(_e.experiment_id == 0))
                )
                if exists is None:  # tables made by `shipyard db upgrade` on an empty database
                    self._db.write(self._insert_default_experiment)
        except BaseException:
            self._db.dispose()
            raise

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._db.url

    @property
    def database(self) -> Database:
        """The database this store owns; other SQL stores (the registry) share it."""
        return self._db

    def close(self) -> None:
        self._db.dispose()

    def _insert_default_experiment(self, conn: Connection) -> None:
        now = now_ms()
        stmt = upsert(self._dialect, experiments).values(
            experiment_id=int(DEFAULT_EXPERIMENT_ID),
            name=DEFAULT_EXPERIMENT_NAME,
            artifact_location=f"{self._root}/{DEFAULT_EXPERIMENT_ID}",
            lifecycle_stage=ACTIVE,
            creation_time=now,
            last_update_time=now,
        )
        conn.execute(stmt.on_conflict_do_nothing())

    # ------------------------------------------------------------------ lookups and messages

    def _experiment_row(self, conn: Connection, experiment_id: int) -> Row[Any]:
        row = conn.execute(sa.select(experiments).where(_e.experiment_id == experiment_id)).first()
        if row is None:
            raise errors.NotFound(
                f"Experiment {experiment_id} does not exist. Check the id, or list experiments "
                "with `shipyard experiments list`."
            )
        return row

    def _active_experiment_row(self, conn: Connection, experiment_id: int) -> Row[Any]:
        row = self._experiment_row(conn, experiment_id)
        if row.lifecycle_stage != ACTIVE:
            raise errors.InvalidState(
                f"Experiment {experiment_id} ({row.name!r}) is deleted, so it can't be changed. "
                f"Restore it with `shipyard experiments restore {experiment_id}` first."
            )
        return row

    def _run_row(self, conn: Connection, run_id: str) -> Row[Any]:
        row = conn.execute(sa.select(*RUN_COLUMNS).where(_r.run_id == run_id)).first()
        if row is None:
            raise self._run_missing(run_id)
        return row

    def _active_run_row(self, conn: Connection, run_id: str) -> Row[Any]:
        row = self._run_row(conn, run_id)
        if row.lifecycle_stage != ACTIVE:
            raise self._run_deleted(run_id)
        return row

    def _check_active_run(self, conn: Connection, run_id: str) -> None:
        """:meth:`_active_run_row` for the logging path: one lean read, no row returned."""
        stage = _sql_logging.run_stage(conn, self._dialect, run_id)
        if stage is None:
            raise self._run_missing(run_id)
        if stage != ACTIVE:
            raise self._run_deleted(run_id)

    @staticmethod
    def _run_missing(run_id: str) -> errors.NotFound:
        return errors.NotFound(
            f"Run {run_id} does not exist. Check the id, or find runs with `shipyard runs list`."
        )

    @staticmethod
    def _run_deleted(run_id: str) -> errors.InvalidState:
        return errors.InvalidState(
            f"Run {run_id} is deleted, so nothing can be logged to it. Restore it with "
            f"`shipyard runs restore {run_id}`, or log to another run."
        )

    @staticmethod
    def _name_taken(name: str, row: Row[Any, Any]) -> errors.AlreadyExists:
        if row.lifecycle_stage == DELETED:
            return errors.AlreadyExists(
                f"An experiment named {name!r} already exists (id {row.experiment_id}) and is "
                f"deleted. Restore it with `shipyard experiments restore {row.experiment_id}`, "
                "or delete it permanently to free the name."
            )
        return errors.AlreadyExists(
            f"An experiment named {name!r} already exists (id {row.experiment_id}). Use it, or "
            "choose another name."
        )

    # ------------------------------------------------------------------ experiments

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        name = validation.experiment_name(name)
        if artifact_location is not None:
            validation.text(artifact_location, "artifact location", 4096)
        tag_rows = [
            {"key": validation.key(k, "experiment tag key"),
             "value": validation.experiment_tag_value(v, k)}
            for k, v in (tags or {}).items()
        ]  # fmt: skip

        def tx(conn: Connection) -> str:
            taken = conn.execute(
                sa.select(_e.experiment_id, _e.lifecycle_stage).where(_e.name == name)
            ).first()
            if taken is not None:
                raise self._name_taken(name, taken)
            now = now_ms()
            try:
                result = conn.execute(
                    sa.insert(experiments).values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
            except sa_exc.IntegrityError:  # created concurrently by another writer
                raise errors.AlreadyExists(
                    f"An experiment named {name!r} already exists. Use it, or choose another name."
                ) from None
            experiment_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            if not artifact_location:
                conn.execute(
                    sa.update(experiments)
                    .where(_e.experiment_id == experiment_id)
                    .values(artifact_location=f"{self._root}/{experiment_id}")
                )
            if tag_rows:
                conn.execute(
                    sa.insert(experiment_tags),
                    [{"experiment_id": experiment_id, **t} for t in tag_rows],
                )
            return str(experiment_id)

        return self._db.write(tx)

    def get_experiment(self, experiment_id: str) -> Experiment:
        eid = int(validation.experiment_id(experiment_id))
        return self._db.read(lambda c: load_experiments(c, [self._experiment_row(c, eid)])[0])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if not isinstance(name, str):
            raise errors.InvalidInput(f"experiment name must be a string, got {name!r}.")

        def tx(conn: Connection) -> Experiment | None:
            row = conn.execute(sa.select(experiments).where(_e.name == name)).first()
            return load_experiments(conn, [row])[0] if row is not None else None

        return self._db.read(tx)

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        limit = validation.max_results(max_results, validation.MAX_SEARCH_RESULTS)
        comparisons = filters.parse_experiment_filter(filter_string)
        order = filters.parse_experiment_order_by(order_by)
        return self.search_experiments_parsed(view_type, limit, comparisons, order, page_token)

    def search_experiments_parsed(
        self,
        view_type: ViewType | str,
        max_results: int,
        comparisons: Sequence[filters.Comparison],
        order_by: Sequence[filters.OrderKey],
        page_token: str | None = None,
    ) -> Page[Experiment]:
        """:meth:`search_experiments` with the filter and order already parsed."""

        def tx(conn: Connection) -> Page[Experiment]:
            rows, token = _sql_search.search_experiments(
                conn, self._dialect, comparisons, order_by, view_type, max_results, page_token
            )
            return Page(load_experiments(conn, rows), token)

        return self._db.read(tx)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        eid = int(validation.experiment_id(experiment_id))
        name = validation.experiment_name(new_name)

        def tx(conn: Connection) -> None:
            row = self._active_experiment_row(conn, eid)
            if row.name == name:
                return
            taken = conn.execute(
                sa.select(_e.experiment_id, _e.lifecycle_stage).where(_e.name == name)
            ).first()
            if taken is not None:
                raise self._name_taken(name, taken)
            conn.execute(
                sa.update(experiments)
                .where(_e.experiment_id == eid)
                .values(name=name, last_update_time=now_ms())
            )

        self._db.write(tx)

    def delete_experiment(self, experiment_id: str) -> None:
        eid = int(validation.experiment_id(experiment_id))
        self._refuse_default(eid, "deleted")

        def tx(conn: Connection) -> None:
            row = self._experiment_row(conn, eid)
            if row.lifecycle_stage == DELETED:
                return
            # Restore brings back exactly the runs deleted with the experiment (deleted_time at or
            # after the experiment's), so the experiment's stamp must come strictly after every
            # run deleted earlier, even within the same millisecond.
            latest_run_delete = conn.scalar(
                sa.select(sa.func.max(_r.deleted_time)).where(
                    _r.experiment_id == eid, _r.lifecycle_stage == DELETED
                )
            )
            now = max(now_ms(), (latest_run_delete or 0) + 1)
            conn.execute(
                sa.update(experiments)
                .where(_e.experiment_id == eid)
                .values(lifecycle_stage=DELETED, deleted_time=now, last_update_time=now)
            )
            conn.execute(
                sa.update(runs)
                .where(_r.experiment_id == eid, _r.lifecycle_stage == ACTIVE)
                .values(lifecycle_stage=DELETED, deleted_time=now)
            )

        self._db.write(tx)

    def restore_experiment(self, experiment_id: str) -> None:
        eid = int(validation.experiment_id(experiment_id))

        def tx(conn: Connection) -> None:
            row = self._experiment_row(conn, eid)
            if row.lifecycle_stage == ACTIVE:
                return
            conn.execute(
                sa.update(experiments)
                .where(_e.experiment_id == eid)
                .values(lifecycle_stage=ACTIVE, deleted_time=None, last_update_time=now_ms())
            )
            # The runs the deletion took with it (runs deleted earlier stay deleted).
            conn.execute(
                sa.update(runs)
                .where(
                    _r.experiment_id == eid,
                    _r.lifecycle_stage == DELETED,
                    _r.deleted_time >= (row.deleted_time or 0),
                )
                .values(lifecycle_stage=ACTIVE, deleted_time=None)
            )

        self._db.write(tx)

    def purge_experiment(self, experiment_id: str) -> set[str]:
        eid = int(validation.experiment_id(experiment_id))
        self._refuse_default(eid, "deleted permanently")

        def tx(conn: Connection) -> set[str]:
            self._experiment_row(conn, eid)
            run_ids = sa.select(_r.run_id).where(_r.experiment_id == eid)
            digests = self._purge_runs(conn, run_ids)
            digests |= self._purge_logged_models(conn, eid)
            conn.execute(sa.delete(datasets).where(datasets.c.experiment_id == eid))
            conn.execute(sa.delete(experiment_tags).where(experiment_tags.c.experiment_id == eid))
            conn.execute(sa.delete(experiments).where(_e.experiment_id == eid))
            return digests

        return self._db.write(tx)

    @staticmethod
    def _refuse_default(experiment_id: int, what: str) -> None:
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise errors.InvalidInput(
                f"The default experiment {DEFAULT_EXPERIMENT_ID} ({DEFAULT_EXPERIMENT_NAME!r}) "
                f"can't be {what}. Delete its runs instead, or use another experiment."
            )

    @staticmethod
    def _purge_logged_models(conn: Connection, experiment_id: int) -> set[str]:
        """Delete an experiment's logged models, their rows and their files' index entries."""
        lm = logged_models.c
        model_ids = sa.select(lm.model_id).where(lm.experiment_id == experiment_id)
        digests = _sql_artifacts.delete_owners(conn, model_ids)
        for table in (run_logged_models, logged_model_tags, logged_model_params):
            conn.execute(sa.delete(table).where(table.c.model_id.in_(model_ids)))
        conn.execute(sa.delete(logged_models).where(lm.experiment_id == experiment_id))
        return digests

    @staticmethod
    def _purge_runs(conn: Connection, run_ids: sa.Select[Any]) -> set[str]:
        """Delete the runs selected by ``run_ids`` and every row that belongs to them."""
        digests = _sql_artifacts.delete_owners(conn, run_ids)
        for table in (params, tags, metrics, latest_metrics, run_inputs, run_logged_models):
            conn.execute(sa.delete(table).where(table.c.run_id.in_(run_ids)))
        conn.execute(sa.delete(runs).where(_r.run_id.in_(run_ids)))
        return digests

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        eid = int(validation.experiment_id(experiment_id))
        validation.key(key, "experiment tag key")
        validation.experiment_tag_value(value, key)

        def tx(conn: Connection) -> None:
            self._active_experiment_row(conn, eid)
            stmt = upsert(self._dialect, experiment_tags).values(
                experiment_id=eid, key=key, value=value
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["experiment_id", "key"], set_={"value": value}
                )
            )

        self._db.write(tx)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        eid = int(validation.experiment_id(experiment_id))
        validation.key(key, "experiment tag key")

        def tx(conn: Connection) -> None:
            self._active_experiment_row(conn, eid)
            et = experiment_tags.c
            result = conn.execute(
                sa.delete(experiment_tags).where(et.experiment_id == eid, et.key == key)
            )
            if result.rowcount == 0:
                raise errors.NotFound(f"Experiment {eid} has no tag {key!r}; nothing to delete.")

        self._db.write(tx)

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        user_id: str = "",
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        eid = int(validation.experiment_id(experiment_id))
        tag_values = self._checked_tags(tags or {})
        name = self._resolve(run_name, tag_values.get(RUN_NAME_TAG), "run_name", RUN_NAME_TAG)
        name = validation.run_name(name) if name else _names.run_name()
        parent = self._resolve(parent_run_id, tag_values.get(PARENT_RUN_TAG), "parent_run_id",
                               PARENT_RUN_TAG)  # fmt: skip
        if parent is not None:
            validation.run_id(parent)
        validation.text(user_id, "user id", validation.MAX_USER_ID_LENGTH)
        start = (
            now_ms()
            if start_time is None
            else validation.int64(start_time, "start_time", minimum=0)
        )
        tag_values[RUN_NAME_TAG] = name
        if parent is not None:
            tag_values[PARENT_RUN_TAG] = parent
        run_id = uuid.uuid4().hex

        def tx(conn: Connection) -> Run:
            exp = self._active_experiment_row(conn, eid)
            if (
                parent is not None
                and conn.scalar(sa.select(_r.run_id).where(_r.run_id == parent)) is None
            ):
                raise errors.NotFound(
                    f"Parent run {parent} does not exist; start the nested run under an "
                    "existing run."
                )
            conn.execute(
                sa.insert(runs).values(
                    run_id=run_id,
                    experiment_id=eid,
                    run_name=name,
                    user_id=user_id,
                    status=RunStatus.RUNNING.value,
                    start_time=start,
                    end_time=None,
                    lifecycle_stage=ACTIVE,
                    artifact_uri=f"{exp.artifact_location}/{run_id}/artifacts",
                    parent_run_id=parent,
                )
            )
            conn.execute(
                sa.insert(tags_table),
                [{"run_id": run_id, "key": k, "value": v} for k, v in tag_values.items()],
            )
            info = run_info(self._run_row(conn, run_id))
            return Run(info=info, data=RunData(tags=dict(sorted(tag_values.items()))))

        return self._db.write(tx)

    @staticmethod
    def _resolve(given: str | None, tagged: str | None, arg: str, tag: str) -> str | None:
        if given is not None and tagged is not None and given != tagged:
            raise errors.InvalidInput(
                f"{arg}={given!r} and the tag {tag}={tagged!r} disagree; pass only one of them."
            )
        return given if given is not None else tagged

    @staticmethod
    def _checked_tags(values: dict[str, str]) -> dict[str, str]:
        return {validation.key(k, "tag key"): validation.tag_value(v, k) for k, v in values.items()}

    def get_run(self, run_id: str) -> Run:
        validation.run_id(run_id)
        return self._db.read(lambda c: load_runs(c, [self._run_row(c, run_id)])[0])

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        validation.run_id(run_id)
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = validation.run_status(status)
        if end_time is not None:
            values["end_time"] = validation.int64(end_time, "end_time", minimum=0)
        if run_name is not None:
            values["run_name"] = validation.run_name(run_name)

        def tx(conn: Connection) -> RunInfo:
            self._active_run_row(conn, run_id)
            if values:
                conn.execute(sa.update(runs).where(_r.run_id == run_id).values(**values))
            if run_name is not None:
                _sql_logging.upsert_tags(conn, self._dialect, run_id, {RUN_NAME_TAG: run_name})
            return run_info(self._run_row(conn, run_id))

        return self._db.write(tx)

    def delete_run(self, run_id: str) -> None:
        validation.run_id(run_id)

        def tx(conn: Connection) -> None:
            if self._run_row(conn, run_id).lifecycle_stage == ACTIVE:
                conn.execute(
                    sa.update(runs)
                    .where(_r.run_id == run_id)
                    .values(lifecycle_stage=DELETED, deleted_time=now_ms())
                )

        self._db.write(tx)

    def restore_run(self, run_id: str) -> None:
        validation.run_id(run_id)

        def tx(conn: Connection) -> None:
            row = self._run_row(conn, run_id)
            if row.lifecycle_stage == ACTIVE:
                return
            exp = self._experiment_row(conn, row.experiment_id)
            if exp.lifecycle_stage != ACTIVE:
                raise errors.InvalidState(
                    f"Run {run_id} belongs to experiment {exp.experiment_id} ({exp.name!r}), "
                    f"which is deleted. Restore the experiment with "
                    f"`shipyard experiments restore {exp.experiment_id}` first."
                )
            conn.execute(
                sa.update(runs)
                .where(_r.run_id == run_id)
                .values(lifecycle_stage=ACTIVE, deleted_time=None)
            )

        self._db.write(tx)

    def purge_run(self, run_id: str) -> set[str]:
        validation.run_id(run_id)

        def tx(conn: Connection) -> set[str]:
            self._run_row(conn, run_id)
            return self._purge_runs(conn, sa.select(_r.run_id).where(_r.run_id == run_id))

        return self._db.write(tx)

    # ------------------------------------------------------------------ logging

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        validation.run_id(run_id)
        params, tags = params or {}, tags or {}
        validation.batch_sizes(len(metrics), len(params), len(tags))
        param_values = {
            validation.key(k, "param key"): validation.param_value(v, k) for k, v in params.items()
        }
        tag_values = self._checked_tags(tags)
        metric_rows = [_sql_logging.metric_row(run_id, m) for m in metrics]
        if not (param_values or tag_values or metric_rows):
            self._db.read(lambda c: self._check_active_run(c, run_id))
            return

        def tx(conn: Connection) -> None:
            self._check_active_run(conn, run_id)
            if param_values:
                _sql_logging.insert_params(conn, self._dialect, run_id, param_values)
            if tag_values:
                _sql_logging.upsert_tags(conn, self._dialect, run_id, tag_values)
            if metric_rows:
                _sql_logging.insert_metrics(conn, self._dialect, metric_rows)

        self._db.write(tx)

    def delete_tag(self, run_id: str, key: str) -> None:
        validation.run_id(run_id)
        validation.key(key, "tag key")

        def tx(conn: Connection) -> None:
            self._active_run_row(conn, run_id)
            t = tags_table.c
            result = conn.execute(sa.delete(tags_table).where(t.run_id == run_id, t.key == key))
            if result.rowcount == 0:
                raise errors.NotFound(f"Run {run_id} has no tag {key!r}; nothing to delete.")
            if key == PARENT_RUN_TAG:
                conn.execute(sa.update(runs).where(_r.run_id == run_id).values(parent_run_id=None))

        self._db.write(tx)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        validation.run_id(run_id)
        unique = validation.dataset_inputs(datasets)
        if not unique:
            return

        def tx(conn: Connection) -> None:
            eid = self._active_run_row(conn, run_id).experiment_id
            _sql_logging.insert_inputs(conn, self._dialect, run_id, eid, unique)

        self._db.write(tx)

    def get_metric_history(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[Metric]:
        page = self.get_metric_history_rows(run_id, key, max_results, page_token)
        return Page(_sql_logging.history_metrics(key, page.items), page.next_page_token)

    def get_metric_history_rows(
        self,
        run_id: str,
        key: str,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[HistoryRow]:
        validation.run_id(run_id)
        validation.key(key, "metric key")
        limit = (
            None
            if max_results is None
            else validation.max_results(max_results, validation.MAX_HISTORY_RESULTS)
        )
        after: tuple[int, int, int] | None = None
        if page_token:
            payload = decode_token(page_token, "metric history")
            try:
                after = (int(payload["step"]), int(payload["timestamp"]), int(payload["seen"]))
            except (KeyError, TypeError, ValueError):
                raise errors.InvalidInput(
                    "page_token is not a metric history token; leave it out to start over."
                ) from None

        def tx(conn: Connection) -> Page[HistoryRow]:
            if _sql_logging.run_stage(conn, self._dialect, run_id) is None:
                raise self._run_missing(run_id)
            return _sql_logging.history_page(conn, self._dialect, run_id, key, limit, after)

        return self._db.read(tx)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        limit = validation.max_results(max_results, validation.MAX_SEARCH_RESULTS)
        comparisons = filters.parse_run_filter(filter_string)
        order = filters.parse_run_order_by(order_by)
        return self.search_runs_parsed(
            experiment_ids, comparisons, order, view_type, limit, page_token
        )

    def search_runs_parsed(
        self,
        experiment_ids: Sequence[str],
        comparisons: Sequence[filters.Comparison],
        order_by: Sequence[filters.OrderKey],
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        """:meth:`search_runs` with the filter and order already parsed."""
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        ids = sorted({int(validation.experiment_id(e)) for e in experiment_ids})

        def tx(conn: Connection) -> Page[Run]:
            if not ids:
                return Page([], None)
            rows, token = _sql_search.search_runs(
                conn, self._dialect, ids, comparisons, order_by, view_type, max_results, page_token
            )
            return Page(load_runs(conn, rows), token)

        return self._db.read(tx)

    # ------------------------------------------------------------------ artifact index

    def record_artifact(self, owner: str, path: str, digest: str, size: int) -> ArtifactInfo:
        owner = _owner(owner)
        path = validation.artifact_path(path)
        validation.text(digest, "artifact digest", validation.MAX_DIGEST_LENGTH, allow_empty=False)
        validation.int64(size, "artifact size", minimum=0)
        return self._db.write(
            lambda c: _sql_artifacts.record(c, self._dialect, owner, path, digest, size)
        )

    def get_artifact(self, owner: str, path: str) -> ArtifactInfo:
        owner = _owner(owner)
        path = validation.artifact_path(path)
        info = self._db.read(lambda c: _sql_artifacts.get(c, owner, path))
        if info is None:
            raise errors.NotFound(
                f"No artifact {path!r} in {owner}. List the folder to see what is there."
            )
        return info

    def list_artifacts(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        owner = _owner(owner)
        folder = validation.artifact_path(path, allow_root=True)
        return self._db.read(lambda c: _sql_artifacts.children(c, self._dialect, owner, folder))

    def delete_artifacts(self, owner: str, path: str = "") -> set[str]:
        owner = _owner(owner)
        target = validation.artifact_path(path, allow_root=True)
        return self._db.write(lambda c: _sql_artifacts.delete(c, self._dialect, owner, target))

    def unreferenced_digests(self, digests: set[str]) -> set[str]:
        wanted = set(digests)
        if not wanted:
            return set()
        return wanted - self._db.read(lambda c: _sql_artifacts.referenced(c, wanted))

    def iter_referenced_digests(self) -> Iterator[str]:
        return _sql_artifacts.iter_all(self._db.read)

    def deleted_experiment_ids(self, older_than: int | None = None) -> list[str]:
        query = sa.select(_e.experiment_id).where(_e.lifecycle_stage == DELETED)
        if older_than is not None:
            query = query.where(sa.func.coalesce(_e.deleted_time, 0) < older_than)
        ids = self._db.read(lambda c: list(c.scalars(query.order_by(_e.experiment_id))))
        return [str(i) for i in ids]

    def deleted_run_ids(self, older_than: int | None = None) -> list[str]:
        query = (
            sa.select(_r.run_id)
            .join_from(runs, experiments, _e.experiment_id == _r.experiment_id)
            .where(_r.lifecycle_stage == DELETED, _e.lifecycle_stage == ACTIVE)
        )
        if older_than is not None:
            query = query.where(sa.func.coalesce(_r.deleted_time, 0) < older_than)
        return self._db.read(lambda c: list(c.scalars(query.order_by(_r.run_id))))


def _owner(value: object) -> str:
    return validation.text(value, "artifact owner", _OWNER_LENGTH, allow_empty=False)
