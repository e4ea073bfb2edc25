"""The compare view for 2-50 runs: param diff table, metric table, overlays, a scatter and
parallel coordinates.

``/compare?runs=<id>&runs=<id>...``: params and latest metrics side by side (``diff=1`` keeps
only the rows that differ), one metric's histories overlaid (``metric=``, on the step or time
axis, each downsampled on the server), a scatter of one param against one metric (``px=``,
``my=``) with one point per run (non-numeric params are placed by category), and parallel
coordinates: one line per run across the params that differ (up to
:data:`MAX_PARALLEL_AXES`) and the scatter's metric, coloured by that metric (drawn on the
server as SVG).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from shipyard import validation
from shipyard.entities import Run
from shipyard.errors import InvalidInput
from shipyard.server.ui._downsample import DEFAULT_POINTS
from shipyard.server.ui._routing import UiRouter, query_choice, query_int
from shipyard.server.ui.runs import AXES, MAX_POINTS, axis_series, full_history

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = UiRouter()

MIN_RUNS, MAX_RUNS = 2, 50
MAX_PARALLEL_AXES = 8
"""How many params the parallel-coordinates chart shows (the first that differ, by name)."""


def runs_of(request: Request, ws: Workspace) -> list[Run]:
    ids = list(dict.fromkeys(request.query_params.getlist("runs")))
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise InvalidInput(
            f"The compare view takes {MIN_RUNS} to {MAX_RUNS} runs and got {len(ids)}; tick "
            "the runs to compare in an experiment's runs table."
        )
    return [ws.store.get_run(validation.run_id(i)) for i in ids]


def runs_scope(request: Request, ws: Workspace) -> str:
    """Runs of one experiment are authorized as that experiment (grants are given on
    experiments, so its readers can compare its runs); runs of several need the workspace."""
    experiments = {r.info.experiment_id for r in runs_of(request, ws)}
    return f"experiment:{experiments.pop()}" if len(experiments) == 1 else "run:*"


@router.page("/compare", "compare.html", resource="run", scope=runs_scope)
def compare_page(request: Request, ws: Workspace) -> dict[str, Any]:
    runs = runs_of(request, ws)
    only_diff = request.query_params.get("diff") == "1"
    param_keys = sorted({k for r in runs for k in r.data.params})
    metric_keys = sorted({k for r in runs for k in r.data.metrics})
    params = _rows(param_keys, [r.data.params for r in runs], only_diff)
    metrics = _rows(
        metric_keys,
        [{k: m.value for k, m in r.data.metrics.items()} for r in runs],
        only_diff,
    )
    metric = request.query_params.get("metric") or (metric_keys[0] if metric_keys else "")
    px = request.query_params.get("px") or (param_keys[0] if param_keys else "")
    my = request.query_params.get("my") or metric
    experiment_ids = {r.info.experiment_id for r in runs}
    return {
        "experiment": (
            ws.store.get_experiment(experiment_ids.pop()) if len(experiment_ids) == 1 else None
        ),
        "runs": runs,
        "ids": [r.info.run_id for r in runs],
        "params": params,
        "metrics": metrics,
        "only_diff": only_diff,
        "param_keys": param_keys,
        "metric_keys": metric_keys,
        "metric": metric,
        "axis": query_choice(request, "x", AXES),
        "axes": AXES,
        "px": px,
        "my": my,
        "scatter": scatter(runs, px, my),
        "parallel": parallel(
            runs, [r["key"] for r in _rows(param_keys, [r.data.params for r in runs], True)], my
        ),
    }


def _rows(keys: list[str], values: list[dict[str, Any]], only_diff: bool) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        cells = [v.get(key) for v in values]
        differs = len({repr(c) for c in cells}) > 1
        if only_diff and not differs:
            continue
        rows.append({"key": key, "cells": cells, "differs": differs})
    return rows


def scatter(runs: list[Run], param: str, metric: str) -> dict[str, Any]:
    """One point per run having both: ``{x, y, names, categories}`` sorted by x; a param whose
    values are not all numbers is placed by category (``categories[i]`` labels x = i)."""
    pairs = [
        (r.data.params[param], r.data.metrics[metric].value, r.info.run_name or r.info.run_id)
        for r in runs
        if param in r.data.params and metric in r.data.metrics
    ]
    pairs = [p for p in pairs if math.isfinite(p[1])]
    numeric = all(_is_number(p[0]) for p in pairs)
    categories: list[str] = []
    if numeric:
        points = [(float(p[0]), p[1], p[2]) for p in pairs]
    else:
        categories = sorted({p[0] for p in pairs})
        index = {c: i for i, c in enumerate(categories)}
        points = [(float(index[p[0]]), p[1], p[2]) for p in pairs]
    points.sort(key=lambda p: p[0])
    return {
        "param": param,
        "metric": metric,
        "x": [p[0] for p in points],
        "y": [p[1] for p in points],
        "names": [p[2] for p in points],
        "categories": categories,
    }


# Parallel coordinates: the chart's geometry, in SVG user units.
_PC_WIDTH, _PC_HEIGHT, _PC_TOP, _PC_BOTTOM, _PC_SIDE = 720, 300, 34, 30, 60
_LOW, _HIGH = (37, 99, 235), (220, 38, 38)  # the metric's lowest and highest value
MAX_CATEGORY_TICKS = 8
LOG_SCALE_RATIO = 100.0
"""A positive numeric axis whose largest value is this many times its smallest is drawn on a
log scale."""


def parallel(runs: list[Run], params: list[str], metric: str) -> dict[str, Any] | None:
    """Parallel coordinates of ``runs``: an axis per param of ``params`` (at most
    :data:`MAX_PARALLEL_AXES`; numbers scaled min to max, on a log scale when positive and
    spanning :data:`LOG_SCALE_RATIO`, other values placed by category)
    and a last one for ``metric``; one path per run, coloured from blue (the metric's lowest)
    to red (its highest), broken where a run lacks a value. ``None`` with fewer than two axes
    or no run having a value."""
    columns: list[tuple[str, list[Any]]] = [
        (k, [r.data.params.get(k) for r in runs]) for k in params[:MAX_PARALLEL_AXES]
    ]
    if metric:
        values = [r.data.metrics[metric].value if metric in r.data.metrics else None for r in runs]
        columns.append(
            (metric, [v if v is not None and math.isfinite(v) else None for v in values])
        )
    if len(columns) < 2:
        return None
    step = (_PC_WIDTH - 2 * _PC_SIDE) / (len(columns) - 1)
    span = _PC_HEIGHT - _PC_TOP - _PC_BOTTOM
    axes, scaled = [], []
    for i, (name, cells) in enumerate(columns):
        present = [c for c in cells if c is not None]
        numeric = bool(present) and all(_is_number(str(c)) for c in present)
        if numeric:
            nums = [float(c) for c in present]
            lo, hi = min(nums), max(nums)
            log = lo > 0 and hi / lo >= LOG_SCALE_RATIO  # learning rates, regularization...
            f = math.log10 if log else float
            spread = f(hi) - f(lo)
            if not math.isfinite(spread):  # values near the float limits: drawn mid-axis
                spread, f = 0.0, float
            place = {c: (f(float(c)) - f(lo)) / spread if spread else 0.5 for c in present}
            ticks = [(1.0, _short(hi)), (0.0, _short(lo))] if hi > lo else [(0.5, _short(lo))]
            if log:
                name = f"{name} (log)"
        else:
            cats = sorted({str(c) for c in present})
            pos = {c: (j / (len(cats) - 1) if len(cats) > 1 else 0.5) for j, c in enumerate(cats)}
            place = {c: pos[str(c)] for c in present}
            shown = cats if len(cats) <= MAX_CATEGORY_TICKS else [cats[0], cats[-1]]
            ticks = [(pos[c], c) for c in shown]
        axes.append(
            {
                "name": name,
                "x": round(_PC_SIDE + i * step, 1),
                "ticks": [(round(_PC_TOP + (1 - at) * span, 1), label) for at, label in ticks],
            }
        )
        scaled.append([None if c is None else _PC_TOP + (1 - place[c]) * span for c in cells])
    metric_values = columns[-1][1] if metric else [None] * len(runs)
    known = [v for v in metric_values if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    lines = []
    for j, run in enumerate(runs):
        path, pen_down = [], False
        for i, axis in enumerate(axes):
            y = scaled[i][j]
            if y is None:
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{axis['x']},{y:.1f}")
            pen_down = True
        if not path:
            continue
        value = metric_values[j]
        share = 0.5 if value is None or hi == lo else (value - lo) / (hi - lo)
        lines.append({
            "name": run.info.run_name or run.info.run_id[:8],
            "run_id": run.info.run_id,
            "d": " ".join(path),
            "color": "#" + "".join(
                f"{round(a + (b - a) * share):02x}" for a, b in zip(_LOW, _HIGH, strict=True)
            ),
            "value": value,
        })  # fmt: skip
    if not lines:
        return None
    return {"axes": axes, "lines": lines, "metric": metric, "width": _PC_WIDTH,
            "height": _PC_HEIGHT, "top": _PC_TOP, "bottom": _PC_HEIGHT - _PC_BOTTOM}  # fmt: skip


def _short(value: float) -> str:
    return f"{value:.4g}"


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


@router.data("/ui/data/compare/metric", resource="run", scope=runs_scope)
def compare_metric_data(request: Request, ws: Workspace) -> dict[str, Any]:
    """The histories of one metric across the runs, each downsampled on the chosen axis."""
    runs = runs_of(request, ws)
    key = request.query_params.get("key", "")
    if not key:
        raise InvalidInput("key is missing; name the metric to overlay (?key=loss).")
    axis = query_choice(request, "x", AXES)
    points = query_int(request, "points", DEFAULT_POINTS, 10, MAX_POINTS)
    series = []
    for run in runs:
        if key not in run.data.metrics:
            continue
        history = full_history(ws, run.info.run_id, key)
        series.append(
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name or run.info.run_id[:8],
                **axis_series(history, axis, points),
            }
        )
    return {"key": key, "axis": axis, "series": series}
