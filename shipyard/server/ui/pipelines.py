"""Pipelines: runs (newest first) and one run's DAG with step status, cache hits, durations, logs.

The DAG's edges come from each step run's recorded inputs (``{"arg": [{"step": upstream}]}``,
what :mod:`shipyard.pipelines.engine` stores), so a run draws as it ran, even after the
pipeline's code changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from shipyard.server.ui._graph import Edge, Node, layout
from shipyard.server.ui._routing import UiRouter, format_duration, query_int

if TYPE_CHECKING:
    from shipyard.store.pipelines import PipelineRun, StepRun
    from shipyard.workspace import Workspace

router = UiRouter()


@router.page("/pipelines", "pipelines.html", resource="pipeline")
def pipelines_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Pipeline runs newest first, optionally of one pipeline (``?pipeline=``)."""
    name = request.query_params.get("pipeline", "").strip() or None
    limit = query_int(request, "max_results", 100, 1, 1000)
    runs = ws.pipelines.list_runs(pipeline=name, max_results=limit)
    return {"runs": runs, "pipeline": name or "", "max_results": limit}


@router.page(
    "/pipelines/runs/{run_id}", "pipeline_run.html", resource="pipeline", resource_param="run_id"
)
def pipeline_run_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """One run: the DAG, each step's status, cache hit, duration and attempts, and its logs."""
    run = ws.pipelines.get_run(request.path_params["run_id"])
    steps = sorted(run.steps, key=lambda s: (s.start_time or 0, s.name))
    return {
        "run": run,
        "steps": steps,
        "graph": dag(run),
        "cached": sum(1 for s in run.steps if s.cached),
        "duration": (run.end_time - run.start_time) / 1000 if run.end_time else None,
    }


def upstream_of(step: StepRun) -> list[str]:
    """The names of the steps whose outputs ``step`` read."""
    names: dict[str, None] = {}
    for refs in step.inputs.values():
        for ref in refs if isinstance(refs, list) else []:
            if isinstance(ref, dict) and isinstance(ref.get("step"), str):
                names[ref["step"]] = None
    return list(names)


def dag(run: PipelineRun) -> Any:
    nodes = []
    edges = []
    for step in run.steps:
        sub = [step.status.lower()]
        if step.cached:
            sub.append("cached")
        if step.duration_s is not None:
            sub.append(format_duration(step.duration_s))
        classes = f"status-{step.status.lower()}" + (" cached" if step.cached else "")
        nodes.append(Node(step.name, step.name, " · ".join(sub), classes, f"#step-{step.name}"))
        edges += [Edge(u, step.name) for u in upstream_of(step)]
    return layout(nodes, edges)
