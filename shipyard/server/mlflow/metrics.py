"""MLflow ``metrics/*`` endpoints: paged metric history and the sampled multi-run read that
charts use.

``get-history`` pages with the store's opaque token (at most 25,000 points a page, MLflow's
limit). ``get-history-bulk-interval`` reads one metric of up to 100 runs and keeps, per run, at
most ``max_results`` (<= 2,500) evenly spaced steps of the requested step range, always including
the first and the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard import validation
from shipyard.entities import Metric
from shipyard.errors import InvalidInput
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.server.mlflow.runs import run_id
from shipyard.workspace import Workspace

MAX_BULK_RUNS = 100
MAX_BULK_RESULTS_PER_RUN = 2500
INT32_MAX = 2**31 - 1


def get_metric_history(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET metrics/get-history?run_id=&metric_key=&max_results=&page_token=`` ->
    ``{metrics, next_page_token}``; ``{}`` for a key the run never logged."""
    rid = run_id(args)
    key = args.require_string("metric_key")
    max_results = args.integer("max_results")
    if max_results is not None:
        validation.max_results(max_results, validation.MAX_HISTORY_RESULTS)
    page = ws.store.get_metric_history_rows(
        rid, key, max_results=max_results, page_token=args.string("page_token") or None
    )
    out: dict[str, Any] = {}
    if page.items:
        out["metrics"] = _convert.history_rows(key, page.items)
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def sample_steps(steps: Sequence[int], limit: int) -> set[int]:
    """At most ``limit`` of the sorted distinct ``steps``, evenly spaced, first and last kept."""
    n = len(steps)
    if n <= limit:
        return set(steps)
    if limit == 1:
        return {steps[-1]}
    last = n - 1
    return {steps[(i * last) // (limit - 1)] for i in range(limit)}


def _sampled(
    history: Sequence[Metric], start: int | None, end: int | None, limit: int
) -> list[Metric]:
    if start is not None and end is not None:
        history = [m for m in history if start <= m.step <= end]
    steps = sorted({m.step for m in history})
    keep = sample_steps(steps, limit)
    if len(keep) == len(steps):
        return list(history)
    return [m for m in history if m.step in keep]


def get_metric_history_bulk_interval(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET metrics/get-history-bulk-interval?run_ids=..&metric_key=&start_step=&end_step=
    &max_results=`` -> ``{metrics}`` (each with its ``run_id``), sampled per run."""
    run_ids = args.strings("run_ids")
    if not run_ids:
        raise args.missing("run_ids")
    if len(run_ids) > MAX_BULK_RUNS:
        raise InvalidInput(
            f"get-history-bulk-interval accepts at most {MAX_BULK_RUNS} run_ids, got "
            f"{len(run_ids)}; split the runs into several requests."
        )
    run_ids = [validation.run_id(r) for r in dict.fromkeys(run_ids)]
    key = args.require_string("metric_key")
    limit = args.integer("max_results", MAX_BULK_RESULTS_PER_RUN)
    validation.max_results(limit, MAX_BULK_RESULTS_PER_RUN)
    start = args.integer("start_step", minimum=-INT32_MAX - 1, maximum=INT32_MAX)
    end = args.integer("end_step", minimum=-INT32_MAX - 1, maximum=INT32_MAX)
    if (start is None) != (end is None):
        raise InvalidInput(
            "start_step and end_step go together: send both to read a step range, or neither "
            "to read every step."
        )
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"start_step ({start}) is greater than end_step ({end}); swap them.")
    out: list[dict[str, Any]] = []
    for rid in run_ids:
        history = _full_history(ws, rid, key)
        out.extend(_convert.metrics(_sampled(history, start, end, limit), rid))
    return {"metrics": out} if out else {}


def _full_history(ws: Workspace, rid: str, key: str) -> list[Metric]:
    items: list[Metric] = []
    token: str | None = None
    while True:
        page = ws.store.get_metric_history(
            rid, key, max_results=validation.MAX_HISTORY_RESULTS, page_token=token
        )
        items.extend(page.items)
        token = page.next_page_token
        if not token:
            return items


ENDPOINTS: list[Endpoint] = [
    Endpoint("/metrics/get-history", ("GET",), get_metric_history, "read", "run"),
    Endpoint(
        "/metrics/get-history-bulk-interval",
        ("GET",),
        get_metric_history_bulk_interval,
        "read",
        "run:*",
    ),
]
"""The specs of every metric endpoint."""
