"""One run: its params, metrics, tags, inputs, artifacts browser and metric charts.

Charts fetch ``/ui/data/runs/{run_id}/metric?key=...&x=step|time|relative&points=N``: the whole
history is read from the store once and downsampled on the server
(:func:`shipyard.server.ui._downsample.minmax_buckets`), so a 100,000-point history ships a
couple of thousand points and draws at once.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request

from shipyard import validation
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.ui import _preview
from shipyard.server.ui._downsample import DEFAULT_POINTS, Series, series_json
from shipyard.server.ui._routing import UiRouter, query_choice, query_int, run_duration

if TYPE_CHECKING:
    import numpy as np

    from shipyard.workspace import Workspace

router = UiRouter()

AXES = ("step", "time", "relative")
DEFAULT_CHARTS = 6
MAX_CHARTS = 24
MAX_POINTS = 20_000


def run_id_of(request: Request) -> str:
    return validation.run_id(request.path_params["run_id"])


@router.page("/runs/{run_id}", "run.html", resource="run", resource_param="run_id")
def run_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Params, latest metrics, tags, dataset inputs, top-level artifacts, and charts."""
    run = ws.store.get_run(run_id_of(request))
    experiment = ws.store.get_experiment(run.info.experiment_id)
    keys = sorted(run.data.metrics)
    charted = [k for k in request.query_params.getlist("chart") if k in run.data.metrics]
    charted = (charted or keys[:DEFAULT_CHARTS])[:MAX_CHARTS]
    return {
        "run": run,
        "experiment": experiment,
        "duration": run_duration(run.info.start_time, run.info.end_time),
        "params": sorted(run.data.params.items()),
        "metrics": [run.data.metrics[k] for k in keys],
        "tags": sorted(run.data.tags.items()),
        "charted": charted,
        "axis": query_choice(request, "x", AXES),
        "axes": AXES,
        "artifacts": ws.artifacts.list(run.info.run_id, ""),
        "quote": quote,
    }


@router.page("/runs/{run_id}/artifacts", "artifacts.html", resource="run", resource_param="run_id")
def artifacts_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """A folder of the run's artifacts, or one file with its preview (``?path=``)."""
    run = ws.store.get_run(run_id_of(request))
    owner = run.info.run_id
    path = request.query_params.get("path", "").strip("/")
    if path:
        validation.artifact_path(path)
    entries = ws.artifacts.list(owner, path)
    file = None
    shown = None
    if path and not entries:
        file = ws.artifacts.stat(owner, path)  # NotFound for a path that is not there
        shown = _preview.preview(ws.artifacts, owner, path, file.file_size)
    parts = path.split("/") if path else []
    crumbs = [("/".join(parts[: i + 1]), part) for i, part in enumerate(parts)]
    return {
        "run": run,
        "path": path,
        "entries": entries,
        "file": file,
        "preview": shown,
        "crumbs": crumbs,
        "raw_url": f"/api/v1/runs/{owner}/artifacts/{quote(path)}" if file else None,
        "quote": quote,
    }


@router.data("/ui/data/runs/{run_id}/metric", resource="run", resource_param="run_id")
def metric_data(request: Request, ws: Workspace) -> dict[str, Any]:
    """One metric's history on the chosen axis, downsampled to ``points``."""
    run_id = run_id_of(request)
    key = request.query_params.get("key", "")
    if not key:
        raise InvalidInput("key is missing; name the metric to chart (?key=loss).")
    axis = query_choice(request, "x", AXES)
    points = query_int(request, "points", DEFAULT_POINTS, 10, MAX_POINTS)
    history = full_history(ws, run_id, key)
    if not len(history):
        raise NotFound(f"Run {run_id} has no metric {key!r}; pick one of the run's metrics.")
    return {"key": key, "axis": axis, **axis_series(history, axis, points)}


def full_history(ws: Workspace, run_id: str, key: str) -> np.ndarray:
    """Every point of ``key`` in step order as an ``(n, 3)`` array of step, timestamp, value
    (NaN where a NaN was logged): one store call, as plain rows rather than an entity per
    point, which is most of the cost of a 100,000-point history."""
    import numpy as np

    rows = ws.store.get_metric_history_rows(run_id, key).items
    out = np.empty((len(rows), 3), dtype=np.float64)
    n = len(rows)
    for column in range(2):  # step, timestamp: one C-level pass each
        out[:, column] = np.fromiter(map(itemgetter(column), rows), np.float64, n)
    # The value is None where a NaN was logged, which a float array reads as NaN.
    out[:, 2] = np.array(list(map(itemgetter(2), rows)), dtype=np.float64)
    return out


def axis_series(history: np.ndarray, axis: str, points: int) -> Series:
    """The chart payload of a history on the ``step``, ``time`` (epoch seconds, what the chart's
    time scale reads) or ``relative`` (seconds since the first value) axis."""
    import numpy as np

    y = history[:, 2]
    if axis == "step":
        x = history[:, 0]
    else:
        x = history[:, 1] / 1000.0
        if axis == "relative" and len(x):
            x = x - x.min()
    if len(x) > 1 and np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    return series_json(x, y, points)
