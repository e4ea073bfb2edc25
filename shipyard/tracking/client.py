"""The tracking client: the one object that does the SDK's work.

:class:`Client` talks to whatever the settings name (an embedded SQLite workspace, PostgreSQL, or
a Shipyard server) through the same :class:`~shipyard.workspace.Workspace`. The module-level
functions in :mod:`shipyard.tracking.fluent` are thin wrappers over a default ``Client``.

Metrics are buffered (see :mod:`shipyard.tracking.buffer`); every read flushes first, so a client
always reads its own writes.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from shipyard import validation
from shipyard.config import Settings
from shipyard.entities import (
    ArtifactInfo,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Run,
    RunInfo,
    RunStatus,
    ViewType,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking.buffer import MetricBuffer

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.registry import Registry
    from shipyard.workspace import Workspace

DATASET_CONTEXT_TAG = "mlflow.data.context"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Client:
    """Experiment tracking against an embedded workspace or a Shipyard server.

    >>> client = Client()                      # ./.shipyard, or SHIPYARD_TRACKING_URI
    >>> client = Client("http://127.0.0.1:5000")
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        home: str | Path | None = None,
        settings: Settings | None = None,
        workspace: Workspace | None = None,
    ) -> None:
        if workspace is not None:
            settings = workspace.settings
        elif settings is None:
            settings = Settings.from_env(home=home, tracking_uri=tracking_uri)
        self.settings = settings
        self._workspace = workspace
        self._buffer = MetricBuffer(
            self._write_metrics,
            flush_size=settings.metric_flush_size,
            flush_interval=settings.metric_flush_interval,
        )

    @property
    def workspace(self) -> Workspace:
        """The stores this client uses (opened on first use)."""
        if self._workspace is None:
            from shipyard.workspace import Workspace

            self._workspace = Workspace.open(self.settings)
        return self._workspace

    @property
    def tracking_uri(self) -> str:
        return self.settings.tracking_uri

    @property
    def registry(self) -> Registry:
        """The model registry of this client's workspace (models, versions, aliases, approvals,
        the audit trail); the same service embedded and against a server."""
        from shipyard.registry import Registry

        return Registry(self.workspace)

    # ------------------------------------------------------------------ experiments

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        """Create an experiment; returns its id."""
        return self.workspace.store.create_experiment(name, artifact_location, _str_map(tags))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.workspace.store.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.workspace.store.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        return self.workspace.store.search_experiments(
            ViewType(view_type), max_results, filter_string, order_by, page_token
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.workspace.store.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str, *, permanent: bool = False) -> None:
        """Delete an experiment and its runs. Soft by default (restorable); ``permanent=True``
        removes it for good, frees its name and the artifact bytes nothing else uses."""
        experiment_id = str(experiment_id)
        if permanent:
            ws = self.workspace
            ws.artifacts.free(ws.store.purge_experiment(experiment_id))
        else:
            self.workspace.store.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.workspace.store.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.workspace.store.set_experiment_tag(str(experiment_id), key, str(value))

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
        user_id: str | None = None,
    ) -> Run:
        """Start a run (status RUNNING). No system tags are added here; the module-level
        :func:`shipyard.start_run` records user, source, git and environment."""
        from shipyard.tracking.context import current_user

        return self.workspace.store.create_run(
            str(experiment_id),
            run_name=run_name,
            user_id=user_id if user_id is not None else current_user(),
            start_time=start_time,
            tags=_str_map(tags),
            parent_run_id=parent_run_id,
        )

    def get_run(self, run_id: str) -> Run:
        self._buffer.flush(run_id)
        return self.workspace.store.get_run(run_id)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED, end_time: int | None = None
    ) -> RunInfo:
        """End a run: flush its metrics, then record the final status and end time."""
        status = _run_status(status)
        self._buffer.flush(run_id)
        return self.workspace.store.update_run(
            run_id, status=status, end_time=end_time if end_time is not None else now_ms()
        )

    def update_run(
        self, run_id: str, *, status: RunStatus | str | None = None, run_name: str | None = None
    ) -> RunInfo:
        return self.workspace.store.update_run(
            run_id, status=None if status is None else _run_status(status), run_name=run_name
        )

    def delete_run(self, run_id: str, *, permanent: bool = False) -> None:
        """Delete a run. Soft by default; ``permanent=True`` also frees its artifacts."""
        self._buffer.flush(run_id)
        if permanent:
            ws = self.workspace
            ws.artifacts.free(ws.store.purge_run(run_id))
        else:
            self.workspace.store.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.workspace.store.restore_run(run_id)

    # ------------------------------------------------------------------ logging

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        """Record a hyperparameter (stringified, write-once). Returns ``value``."""
        self.workspace.store.log_batch(run_id, params={key: _stringify(value)})
        return value

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.workspace.store.log_batch(run_id, tags={key: _stringify(value)})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.workspace.store.delete_tag(run_id, key)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int = 0,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Record one metric point. Buffered: returns in microseconds; the point is written in
        the next batch (``synchronous=True`` writes it now)."""
        metric = Metric(
            validation.key(key, "metric key"),
            validation.metric_value(value, key),
            timestamp if timestamp is not None else now_ms(),
            validation.int64(step, f"step of metric {key!r}"),
        )
        if synchronous:
            self._buffer.flush(run_id)
            self.workspace.store.log_batch(run_id, metrics=[metric])
        else:
            self._buffer.log(run_id, metric)

    def log_metrics(
        self,
        run_id: str,
        metrics: Mapping[str, float],
        step: int = 0,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        ts = timestamp if timestamp is not None else now_ms()
        step = validation.int64(step, "step")
        points = [
            Metric(validation.key(k, "metric key"), validation.metric_value(v, k), ts, step)
            for k, v in metrics.items()
        ]
        if synchronous:
            self._buffer.flush(run_id)
            for i in range(0, len(points), validation.MAX_METRICS_PER_BATCH):
                self.workspace.store.log_batch(
                    run_id, metrics=points[i : i + validation.MAX_METRICS_PER_BATCH]
                )
        else:
            self._buffer.log_many(run_id, points)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metrics, params and tags now, split into as many store calls as the limits
        need (each call is atomic)."""
        p = {k: _stringify(v) for k, v in (params or {}).items()}
        t = {k: _stringify(v) for k, v in (tags or {}).items()}
        self._buffer.flush(run_id)
        store = self.workspace.store
        p_items, t_items, m_items = list(p.items()), list(t.items()), list(metrics)
        while True:
            p_chunk = dict(p_items[: validation.MAX_PARAMS_PER_BATCH])
            t_chunk = dict(t_items[: validation.MAX_TAGS_PER_BATCH])
            room = validation.MAX_ENTITIES_PER_BATCH - len(p_chunk) - len(t_chunk)
            m_chunk = m_items[: min(room, validation.MAX_METRICS_PER_BATCH)]
            store.log_batch(run_id, metrics=m_chunk, params=p_chunk, tags=t_chunk)
            p_items = p_items[len(p_chunk) :]
            t_items = t_items[len(t_chunk) :]
            m_items = m_items[len(m_chunk) :]
            if not (p_items or t_items or m_items):
                return

    def log_input(
        self,
        run_id: str,
        dataset: Dataset | pd.DataFrame,
        context: str | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        source: str = "",
    ) -> Dataset:
        """Record that a run used a dataset (a :class:`Dataset` or a pandas DataFrame, whose
        content digest and schema are computed)."""
        ds = dataset if isinstance(dataset, Dataset) else dataset_from_pandas(dataset, name, source)
        input_tags = dict(tags or {})
        if context:
            input_tags[DATASET_CONTEXT_TAG] = context
        self.workspace.store.log_inputs(run_id, [DatasetInput(ds, input_tags)])
        return ds

    def flush(self) -> None:
        """Write every buffered metric point and wait until they are committed."""
        self._buffer.flush()

    def _write_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        self.workspace.store.log_batch(run_id, metrics=metrics)

    # ------------------------------------------------------------------ reading

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, in step order (all pages)."""
        self._buffer.flush(run_id)
        out: list[Metric] = []
        token: str | None = None
        while True:
            page = self.workspace.store.get_metric_history(
                run_id, key, max_results=validation.MAX_HISTORY_RESULTS, page_token=token
            )
            out.extend(page.items)
            token = page.next_page_token
            if not token:
                return out

    @overload
    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = ...,
        filter_string: str = ...,
        view_type: ViewType | str = ...,
        max_results: int = ...,
        order_by: Sequence[str] | None = ...,
        page_token: str | None = ...,
        *,
        experiment_names: Sequence[str] | None = ...,
        output_format: Literal["list"] = ...,
    ) -> Page[Run]: ...

    @overload
    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = ...,
        filter_string: str = ...,
        view_type: ViewType | str = ...,
        max_results: int = ...,
        order_by: Sequence[str] | None = ...,
        page_token: str | None = ...,
        *,
        experiment_names: Sequence[str] | None = ...,
        output_format: Literal["pandas"],
    ) -> pd.DataFrame: ...

    @overload
    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = ...,
        filter_string: str = ...,
        view_type: ViewType | str = ...,
        max_results: int = ...,
        order_by: Sequence[str] | None = ...,
        page_token: str | None = ...,
        *,
        experiment_names: Sequence[str] | None = ...,
        output_format: Literal["list", "pandas"] = ...,
    ) -> Page[Run] | pd.DataFrame: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str | None = None,
        filter_string: str = "",
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
        *,
        experiment_names: Sequence[str] | None = None,
        output_format: Literal["list", "pandas"] = "list",
    ) -> Page[Run] | pd.DataFrame:
        """Runs matching an MLflow-style filter, e.g.
        ``search_runs(experiment_names=["churn"], filter_string="metrics.auc > 0.9 AND
        params.model = 'gbm'", order_by=["metrics.auc DESC"])``.

        Returns a :class:`Page` of runs (``.next_page_token`` for more), or a pandas DataFrame
        with ``output_format="pandas"``. No experiment given means the default experiment.
        """
        self._buffer.flush()
        ids = self._experiment_ids(experiment_ids, experiment_names)
        page = self.workspace.store.search_runs(
            ids, filter_string, ViewType(view_type), max_results, order_by, page_token
        )
        if output_format == "pandas":
            return runs_to_dataframe(page.items)
        if output_format != "list":
            raise InvalidInput(f"output_format={output_format!r}; use 'list' or 'pandas'.")
        return page

    def _experiment_ids(
        self, ids: Sequence[str] | str | None, names: Sequence[str] | None
    ) -> list[str]:
        out = [ids] if isinstance(ids, str) else [str(i) for i in ids or ()]
        for name in names or ():
            exp = self.get_experiment_by_name(name)
            if exp is None:
                raise NotFound(
                    f"No experiment named {name!r}. List them with `shipyard experiments list`."
                )
            out.append(exp.experiment_id)
        return out or ["0"]

    # ------------------------------------------------------------------ artifacts

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Store one local file as ``<artifact_path>/<file name>`` of the run."""
        src = Path(local_path)
        if not src.is_file():
            raise InvalidInput(
                f"{str(local_path)!r} is not a file; use log_artifacts() for a folder."
            )
        dest = f"{artifact_path.strip('/')}/{src.name}" if artifact_path else src.name
        return self.workspace.artifacts.upload_file(run_id, dest, src)

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Store every file below a local folder under ``artifact_path`` of the run."""
        src = Path(local_dir)
        if not src.is_dir():
            raise InvalidInput(
                f"{str(local_dir)!r} is not a folder; use log_artifact() for a file."
            )
        return self.workspace.artifacts.upload_dir(run_id, (artifact_path or "").strip("/"), src)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactInfo:
        """Store a string as a text file artifact."""
        import io

        return self.workspace.artifacts.upload(run_id, artifact_file, io.BytesIO(text.encode()))

    def log_dict(
        self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str
    ) -> ArtifactInfo:
        """Store a mapping as a JSON artifact."""
        return self.log_text(run_id, json.dumps(dictionary, indent=2, default=str), artifact_file)

    def list_artifacts(self, run_id: str, path: str = "") -> list[ArtifactInfo]:
        return self.workspace.artifacts.list(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | Path | None = None
    ) -> Path:
        """Copy a run's artifact file or folder to ``dst_path`` (a new temp folder by default)."""
        dest = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="shipyard-"))
        return self.workspace.artifacts.download(run_id, path, dest)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Flush buffered metrics and release connections."""
        try:
            self._buffer.close()
        finally:
            if self._workspace is not None:
                self._workspace.close()
                self._workspace = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stringify(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _str_map(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    return None if values is None else {k: _stringify(v) for k, v in values.items()}


def _run_status(status: RunStatus | str) -> str:
    try:
        return RunStatus(str(status).upper()).value
    except ValueError:
        raise InvalidInput(
            f"run status {status!r} is not valid; use one of "
            + ", ".join(s.value for s in RunStatus)
        ) from None


def dataset_from_pandas(df: pd.DataFrame, name: str | None = None, source: str = "") -> Dataset:
    """A :class:`Dataset` describing a DataFrame: content digest, column schema, row count."""
    import hashlib

    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidInput(
            f"log_input expects a shipyard Dataset or a pandas DataFrame, got {type(df).__name__}."
        )
    hashed = pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes()
    digest = hashlib.sha256(hashed + ",".join(map(str, df.columns)).encode()).hexdigest()[:16]
    schema = {"columns": [{"name": str(c), "type": str(t)} for c, t in df.dtypes.items()]}
    profile = {"num_rows": len(df), "num_columns": len(df.columns)}
    return Dataset(
        name=name or "dataset",
        digest=digest,
        source_type="code" if not source else "path",
        source=json.dumps({"uri": source}) if source else "{}",
        schema=json.dumps(schema),
        profile=json.dumps(profile),
    )


def runs_to_dataframe(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per run: info columns, then ``metrics.*``, ``params.*``, ``tags.*``."""
    import pandas as pd

    rows = []
    for run in runs:
        info = run.info
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "run_name": info.run_name,
            "status": info.status,
            "artifact_uri": info.artifact_uri,
            "start_time": pd.to_datetime(info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(info.end_time, unit="ms", utc=True)
            if info.end_time
            else pd.NaT,
        }
        row.update({f"metrics.{k}": m.value for k, m in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(
            columns=["run_id", "experiment_id", "run_name", "status", "start_time", "end_time"]
        )
    return frame


__all__ = ["Client", "dataset_from_pandas", "runs_to_dataframe"]
