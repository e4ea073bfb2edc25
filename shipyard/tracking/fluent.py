"""The module-level tracking API (``shipyard.start_run()``, ``shipyard.log_metric()`` ...).

Every function is a thin wrapper over a lazily created default :class:`Client` and a stack of
active runs (process-wide, so worker threads log to the run their caller started). Functions that
log start a run automatically when none is active, as MLflow users expect.
"""

from __future__ import annotations

import atexit
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.entities import (
    ArtifactInfo,
    Dataset,
    Experiment,
    LifecycleStage,
    Page,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from shipyard.errors import InvalidState
from shipyard.tracking import context
from shipyard.tracking.client import Client, _run_status

if TYPE_CHECKING:
    from types import TracebackType

    import pandas as pd

_lock = threading.RLock()
_default_client: Client | None = None
_active_experiment_id: str | None = None
_run_stack: list[ActiveRun] = []
_last_run_id: str | None = None


class ActiveRun:
    """The run started by :func:`start_run`; a context manager that ends it.

    Leaving the ``with`` block normally marks the run FINISHED, by an exception FAILED, by
    Ctrl-C KILLED.
    """

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def info(self) -> RunInfo:
        return self._run.info

    @property
    def run_id(self) -> str:
        return self._run.info.run_id

    @property
    def data(self) -> RunData:
        """The run's current params, tags and latest metrics (read from the store)."""
        return get_client().get_run(self.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        with _lock:
            if self in _run_stack:
                # End nested runs left open inside this block first.
                while _run_stack and _run_stack[-1] is not self:
                    end_run(status)
                end_run(status)

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self.run_id!r} name={self.info.run_name!r}>"


# ---------------------------------------------------------------------- client and settings


def get_client() -> Client:
    """The default client (from SHIPYARD_* settings), created on first use."""
    global _default_client
    with _lock:
        if _default_client is None:
            _default_client = Client()
        return _default_client


def set_tracking_uri(uri: str | None, *, home: str | Path | None = None) -> None:
    """Point the module-level API somewhere else (``None`` goes back to the environment)."""
    global _default_client, _active_experiment_id
    with _lock:
        if _run_stack:
            raise InvalidState(
                f"Run {_run_stack[-1].run_id} is active; end it with shipyard.end_run() before "
                "changing the tracking URI."
            )
        old, _default_client = _default_client, Client(uri, home=home)
        _active_experiment_id = None
    if old is not None:
        old.close()


def get_tracking_uri() -> str:
    return get_client().tracking_uri


# ---------------------------------------------------------------------- experiments


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the active one (created if the name is new)."""
    global _active_experiment_id
    client = get_client()
    if (experiment_name is None) == (experiment_id is None):
        from shipyard.errors import InvalidInput

        raise InvalidInput("set_experiment needs exactly one of experiment_name or experiment_id.")
    if experiment_id is not None:
        exp = client.get_experiment(str(experiment_id))
    else:
        assert experiment_name is not None
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            from shipyard.errors import AlreadyExists

            try:
                exp = client.get_experiment(client.create_experiment(experiment_name))
            except AlreadyExists:  # created concurrently by another process
                found = client.get_experiment_by_name(experiment_name)
                assert found is not None
                exp = found
        else:
            exp = found
    if exp.lifecycle_stage == LifecycleStage.DELETED:
        raise InvalidState(
            f"Experiment {exp.name!r} (id {exp.experiment_id}) is deleted. Restore it with "
            f"`shipyard experiments restore {exp.experiment_id}` or choose another name."
        )
    with _lock:
        _active_experiment_id = exp.experiment_id
    return exp


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    return get_client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return get_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return get_client().get_experiment_by_name(name)


def search_experiments(
    view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> Page[Experiment]:
    return get_client().search_experiments(
        view_type, max_results, filter_string, order_by, page_token
    )


def delete_experiment(experiment_id: str, *, permanent: bool = False) -> None:
    get_client().delete_experiment(experiment_id, permanent=permanent)


# ---------------------------------------------------------------------- runs


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    *,
    capture_environment: bool = True,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active one.

    Records the user, source file, git commit and dirty flag, the Python version and (unless
    ``capture_environment=False``) the installed packages as ``environment/requirements.txt``.
    Use it as a context manager: ``with shipyard.start_run() as run: ...``.
    """
    global _last_run_id
    client = get_client()
    with _lock:
        if _run_stack and not nested:
            active = _run_stack[-1]
            raise InvalidState(
                f"Run {active.run_id} ({active.info.run_name}) is already active. End it with "
                "shipyard.end_run(), or pass nested=True to start a child run."
            )
        if run_id is not None and any(r.run_id == run_id for r in _run_stack):
            raise InvalidState(
                f"Run {run_id} is already active in this process; log to it as it is, or end "
                "it with shipyard.end_run() before resuming it."
            )
        parent = _run_stack[-1].run_id if (_run_stack and nested) else None
        if run_id is not None:
            run = client.get_run(run_id)
            if run.info.lifecycle_stage == LifecycleStage.DELETED:
                raise InvalidState(
                    f"Run {run_id} is deleted; restore it with `shipyard runs restore {run_id}`."
                )
            if run.info.status != RunStatus.RUNNING:
                client.update_run(run_id, status=RunStatus.RUNNING)
                run = client.get_run(run_id)
        else:
            exp_id = str(experiment_id) if experiment_id is not None else _experiment_for_new_run()
            all_tags: dict[str, Any] = context.run_context_tags()
            if parent:
                all_tags[context.PARENT_RUN_TAG] = parent
            if run_name:
                all_tags[context.RUN_NAME_TAG] = run_name
            all_tags.update(tags or {})
            run = client.create_run(
                exp_id,
                run_name=run_name,
                tags=all_tags,
                parent_run_id=parent,
                user_id=all_tags.get(context.USER_TAG),
            )
            if capture_environment:
                _capture_environment(client, run.info.run_id)
        active = ActiveRun(run)
        _run_stack.append(active)
        _last_run_id = run.info.run_id
        return active


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (flushing its metrics). Does nothing when no run is active."""
    status = _run_status(status)  # an invalid status leaves the run active
    with _lock:
        if not _run_stack:
            return
        active = _run_stack.pop()
    get_client().set_terminated(active.run_id, status)


def active_run() -> ActiveRun | None:
    """The innermost active run, or ``None``."""
    with _lock:
        return _run_stack[-1] if _run_stack else None


def last_active_run() -> Run | None:
    """The run most recently started in this process (active or ended)."""
    return get_client().get_run(_last_run_id) if _last_run_id else None


def get_run(run_id: str) -> Run:
    return get_client().get_run(run_id)


def delete_run(run_id: str, *, permanent: bool = False) -> None:
    get_client().delete_run(run_id, permanent=permanent)


def _active_run_id() -> str:
    with _lock:
        if _run_stack:
            return _run_stack[-1].run_id
    return start_run().run_id


def _experiment_for_new_run() -> str:
    if _active_experiment_id is not None:
        return _active_experiment_id
    return "0"


def _capture_environment(client: Client, run_id: str) -> None:
    try:
        client.log_text(run_id, context.installed_packages(), context.REQUIREMENTS_ARTIFACT)
    except Exception as exc:  # best effort: never stop a run for this
        warnings.warn(
            f"Shipyard could not record the installed packages of run {run_id}: {exc}",
            stacklevel=3,
        )


# ---------------------------------------------------------------------- logging


def log_param(key: str, value: Any) -> Any:
    """Record a hyperparameter of the active run (write-once). Returns ``value``."""
    return get_client().log_param(_active_run_id(), key, value)


def log_params(params: Mapping[str, Any]) -> None:
    get_client().log_params(_active_run_id(), params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Record a metric point of the active run (buffered; costs microseconds)."""
    get_client().log_metric(_active_run_id(), key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    get_client().log_metrics(_active_run_id(), metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    get_client().set_tag(_active_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    get_client().set_tags(_active_run_id(), tags)


def delete_tag(key: str) -> None:
    get_client().delete_tag(_active_run_id(), key)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactInfo:
    return get_client().log_artifact(_active_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactInfo]:
    return get_client().log_artifacts(_active_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    return get_client().log_text(_active_run_id(), text, artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
    return get_client().log_dict(_active_run_id(), dictionary, artifact_file)


def log_input(
    dataset: Dataset | pd.DataFrame,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    source: str = "",
) -> Dataset:
    """Record that the active run used a dataset (``context`` such as "training")."""
    return get_client().log_input(
        _active_run_id(), dataset, context, tags, name=name, source=source
    )


def flush() -> None:
    """Write all buffered metrics now and wait for them to be committed."""
    get_client().flush()


def search_runs(
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
    """Search runs (MLflow filter grammar); defaults to the active experiment."""
    if experiment_ids is None and experiment_names is None:
        experiment_ids = [_experiment_for_new_run()]
    return get_client().search_runs(
        experiment_ids,
        filter_string,
        view_type,
        max_results,
        order_by,
        page_token,
        experiment_names=experiment_names,
        output_format=output_format,
    )


def _exit_status() -> RunStatus:
    """How a script that leaves runs open ended: ``FAILED`` after an uncaught exception,
    ``KILLED`` after Ctrl-C, else ``FINISHED``. Python records an uncaught exception in
    ``sys.last_value`` before the exit handlers run; an interactive session keeps the last
    error typed at the prompt there, so it always counts as finished."""
    import sys

    last = getattr(sys, "last_value", None)
    if last is None or hasattr(sys, "ps1") or sys.flags.interactive:
        return RunStatus.FINISHED
    return RunStatus.KILLED if isinstance(last, KeyboardInterrupt) else RunStatus.FAILED


@atexit.register
def _end_runs_at_exit() -> None:
    try:
        status = _exit_status()
        while active_run() is not None:
            end_run(status)
    except Exception as exc:  # pragma: no cover - exit path
        import sys

        print(f"shipyard: could not end the active run at exit: {exc}", file=sys.stderr)


def _reset_for_tests() -> None:
    """Forget the default client, active experiment and run stack (test isolation only)."""
    global _default_client, _active_experiment_id, _last_run_id
    with _lock:
        client, _default_client = _default_client, None
        _run_stack.clear()
        _active_experiment_id = None
        _last_run_id = None
    if client is not None:
        try:
            client.close()
        except Exception:
            pass
