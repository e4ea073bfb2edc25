"""The pipelines service: run, resume, explain cache misses, fire events.

Functions here take a :class:`~shipyard.workspace.Workspace` (or open the default one from the
``SHIPYARD_*`` settings) and call the engine; the CLI and the scheduler call them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines.dsl import Pipeline, load_pipeline
from shipyard.pipelines.engine import Engine, ProgressCallback
from shipyard.pipelines.executors import make_executor
from shipyard.store.pipelines import PipelineEvent, PipelineRun, StepRun, StepStatus, TriggerEvent
from shipyard.workspace import Workspace

COMPONENTS = ("code", "params", "inputs", "external", "env")


@contextlib.contextmanager
def _workspace(workspace: Workspace | None) -> Iterator[Workspace]:
    if workspace is not None:
        yield workspace
        return
    from shipyard.config import Settings

    ws = Workspace.open(Settings.from_env())
    try:
        yield ws
    finally:
        ws.close()


def run(
    target: Pipeline | str,
    params: dict[str, Any] | None = None,
    *,
    workspace: Workspace | None = None,
    executor: str = "inprocess",
    cache: bool = True,
    max_workers: int | None = None,
    ray_address: str | None = None,
    progress: ProgressCallback | None = None,
    trigger: dict[str, Any] | None = None,
    raise_on_failure: bool = False,
) -> PipelineRun:
    """Run a pipeline (a :class:`Pipeline` or a ``module:name`` / ``file.py:name`` reference)
    with ``params`` overriding its defaults; returns the finished :class:`PipelineRun`.

    ``executor``: ``inprocess`` (threads, the default), ``process`` (a local process pool) or
    ``ray``. ``cache=False`` runs every step. With ``raise_on_failure``, a failed run raises
    :class:`~shipyard.errors.StepFailed` for its first failed step (chaining the step's own
    exception when it ran in this process).
    """
    pipeline = load_pipeline(target) if isinstance(target, str) else target
    graph = pipeline.build(params)
    with _workspace(workspace) as ws:
        engine = Engine(
            ws,
            graph,
            make_executor(executor, max_workers=max_workers, ray_address=ray_address),
            reference=target if isinstance(target, str) else pipeline.reference,
            cache=cache,
            trigger=trigger,
            progress=progress,
        )
        result = engine.run()
        failure = engine.failure()
        if raise_on_failure and failure is not None:
            raise failure
        return result


def resume(
    run_id: str,
    *,
    from_step: str | None = None,
    params: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
    executor: str | None = None,
    max_workers: int | None = None,
    ray_address: str | None = None,
    progress: ProgressCallback | None = None,
) -> PipelineRun:
    """Run a pipeline again as a new run that reuses the successful outputs of run ``run_id``.

    Steps that succeeded there are reused as they are, even after their code changed, unless
    their parameters changed; ``from_step`` and every step downstream of it are run again (by
    default: the steps that did not succeed). The pipeline is imported again from its reference,
    so code edits take effect; ``params`` override the earlier run's parameters.
    """
    with _workspace(workspace) as ws:
        origin = ws.pipelines.get_run(run_id)
        pipeline = load_pipeline(origin.reference)
        graph = pipeline.build({**origin.params, **(params or {})})
        if from_step is not None:
            if from_step not in graph.nodes:
                raise InvalidInput(
                    f"pipeline {pipeline.name!r} has no step {from_step!r}; its steps are: "
                    f"{', '.join(graph.nodes)}."
                )
            rerun = graph.downstream(from_step)
        else:
            succeeded = {s.name for s in origin.steps if s.status == StepStatus.SUCCEEDED}
            rerun = set()
            for name in graph.nodes:
                if name not in succeeded:
                    rerun |= graph.downstream(name)
        engine = Engine(
            ws,
            graph,
            make_executor(
                executor or origin.executor, max_workers=max_workers, ray_address=ray_address
            ),
            reference=origin.reference,
            cache=origin.cache_enabled,
            trigger={"kind": "resume", "run_id": origin.run_id, "from_step": from_step},
            resume=origin,
            rerun=rerun,
            progress=progress,
        )
        return engine.run()


def parse_params(pipeline: Pipeline, pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as parameters: JSON values (``3``, ``true``, ``[1,2]``) or text,
    turned into the type of the parameter's default when it has one."""
    defaults = pipeline.defaults
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"{pair!r} is not KEY=VALUE; write -p n_estimators=50.")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        default = defaults.get(key)
        if isinstance(default, bool) and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise InvalidInput(f"parameter {key!r} is a flag; give true or false, not {raw!r}.")
            value = value.lower() in ("true", "1", "yes")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(default, str) and not isinstance(value, str):
            value = raw
        elif isinstance(default, int | float) and isinstance(value, str):
            raise InvalidInput(
                f"parameter {key!r} is a number (default {default!r}); {raw!r} is not one."
            )
        params[key] = value
    return params


# ---------------------------------------------------------------------------- cache why


def cache_why(run_id: str, step: str, *, workspace: Workspace | None = None) -> dict[str, Any]:
    """Why step ``step`` of run ``run_id`` ran (or was a hit): what changed against the closest
    earlier execution of a step of that name.

    Returns ``{"run_id", "step", "cached", "reused", "compared_with", "changes": [{"component",
    "item", "before", "after"}], "summary"}``."""
    with _workspace(workspace) as ws:
        pl_run = ws.pipelines.get_run(run_id)
        try:
            current = pl_run.step(step)
        except KeyError:
            raise NotFound(
                f"Pipeline run {pl_run.run_id} has no step {step!r}; its steps are: "
                f"{', '.join(s.name for s in pl_run.steps)}."
            ) from None
        base = {"run_id": pl_run.run_id, "step": step, "cached": current.cached}
        if current.cached:
            return {
                **base,
                "reused": current.cache_source,
                "compared_with": current.cache_source,
                "changes": [],
                "summary": f"cache hit: nothing changed; reused the output of step run "
                f"{current.cache_source}.",
            }
        if not current.cache_components:
            return {
                **base,
                "reused": None,
                "compared_with": None,
                "changes": [],
                "summary": f"the step did not get as far as a cache key ({current.status}: "
                f"{current.error or 'no error recorded'}).",
            }
        history = [
            s
            for s in ws.pipelines.step_history(step, before=current.start_time)
            if s.step_run_id != current.step_run_id
        ]
        if not history:
            return {
                **base,
                "reused": None,
                "compared_with": None,
                "changes": [],
                "summary": "no earlier execution of this step: it ran for the first time.",
            }
        closest = max(
            history,
            key=lambda s: (_same(s.cache_components, current.cache_components), s.start_time or 0),
        )
        changes = diff_components(closest.cache_components, current.cache_components)
        if not changes:
            summary = (
                "nothing changed against the closest earlier execution; caching was off for "
                "this step or run, or it was re-run by `resume --from`."
            )
        else:
            parts = sorted({c["component"] for c in changes}, key=COMPONENTS.index)
            summary = (
                "re-ran because its "
                + ", ".join(parts)
                + " changed: "
                + "; ".join(_describe(c) for c in changes[:10])
            )
        return {
            **base,
            "reused": None,
            "compared_with": {"step_run_id": closest.step_run_id, "run_id": closest.run_id},
            "changes": changes,
            "summary": summary,
        }


def _same(a: dict[str, Any], b: dict[str, Any]) -> int:
    return sum(1 for c in COMPONENTS if a.get(c) == b.get(c))


def diff_components(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The items that differ between two steps' cache components."""
    changes: list[dict[str, Any]] = []
    for component in COMPONENTS:
        if before.get(component) == after.get(component):
            continue
        if component == "code":
            old, new = before.get("code_parts") or {}, after.get("code_parts") or {}
        else:
            old, new = before.get(component) or {}, after.get(component) or {}
        if not isinstance(old, dict) or not isinstance(new, dict):
            changes.append({"component": component, "item": component, "before": old, "after": new})
            continue
        for item in sorted(set(old) | set(new)):
            if old.get(item) != new.get(item):
                changes.append(
                    {
                        "component": component,
                        "item": item,
                        "before": old.get(item),
                        "after": new.get(item),
                    }
                )
    return changes


def _describe(change: dict[str, Any]) -> str:
    component, item = change["component"], change["item"]
    if change["before"] is None:
        return f"{component} {item} was added"
    if change["after"] is None:
        return f"{component} {item} was removed"
    if component == "env":
        return f"{item} {change['before']} -> {change['after']}"
    if component == "code":
        return f"the code of {item} changed"
    return f"{component[:-1] if component.endswith('s') else component} {item!r} changed"


# ---------------------------------------------------------------------------- events


def fire_event(
    kind: str,
    name: str,
    payload: dict[str, Any] | None = None,
    *,
    workspace: Workspace | None = None,
) -> PipelineEvent:
    """Record an event that event schedules react to on the scheduler's next poll.

    ``kind`` is ``"alert"`` (what monitoring calls when an alert fires, with ``name`` the alert's
    name); dataset and model versions are noticed by the scheduler by itself."""
    if kind != TriggerEvent.ALERT:
        raise InvalidInput(
            f"event kind {kind!r} can't be fired by hand; fire 'alert' events. New dataset and "
            "model versions are picked up by the scheduler from the metadata store."
        )
    if not name:
        raise InvalidInput("an event needs a name (the alert's name).")
    with _workspace(workspace) as ws:
        return ws.pipelines.record_event(kind, name, dict(payload or {}))


def step_summary(step: StepRun) -> dict[str, Any]:
    """The ``--json`` shape of one step: ``{name, status, cached, duration_s}``."""
    return {
        "name": step.name,
        "status": step.status,
        "cached": step.cached,
        "duration_s": step.duration_s,
    }
