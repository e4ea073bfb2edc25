"""Experiments: the list of experiments and each one's runs table.

The runs table is one ``search_runs`` call per page (keyset pagination in the store, so page 500
costs what page 1 costs): the filter box takes the search grammar of
:mod:`shipyard.store.filters`, headers sort by any column, and the column chooser picks which
metrics, params and tags are shown (``cols=metrics.loss&cols=params.lr``; by default the first
metrics and params found on the page). Checked runs open the compare view.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from shipyard import validation
from shipyard.entities import Experiment, LifecycleStage, Run, ViewType
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.server.auth import readable_ids
from shipyard.server.ui._routing import (
    UiRouter,
    list_page,
    query_choice,
    query_int,
    run_duration,
)

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = UiRouter()

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_METRIC_COLUMNS = 6
DEFAULT_PARAM_COLUMNS = 4
MAX_COLUMNS = 60
_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_KINDS = {"metrics": "metric", "params": "param", "tags": "tag"}
ATTRIBUTE_COLUMNS = (
    ("run_name", "Run"),
    ("status", "Status"),
    ("start_time", "Started"),
    ("end_time", "Duration"),
    ("user_id", "User"),
)


@dataclass(frozen=True)
class Column:
    """One chosen column: ``kind`` is ``metrics``, ``params`` or ``tags``."""

    kind: str
    key: str

    @property
    def spec(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def identifier(self) -> str:
        """The column in the search grammar (backticked unless it is a bare key)."""
        if _BARE_KEY.match(self.key):
            return f"{self.kind}.{self.key}"
        return f"{self.kind}.`{self.key.replace('`', '``')}`"

    def value(self, run: Run) -> Any:
        if self.kind == "metrics":
            metric = run.data.metrics.get(self.key)
            return None if metric is None else metric.value
        source = run.data.params if self.kind == "params" else run.data.tags
        return source.get(self.key)


def parse_column(spec: str) -> Column:
    kind, _, key = spec.partition(".")
    if kind not in _KINDS or not key:
        raise InvalidInput(
            f"column {spec!r} is not metrics.<key>, params.<key> or tags.<key>; pick columns "
            "with the column chooser."
        )
    return Column(kind, key)


def identifier_of(name: str) -> str:
    """The search-grammar identifier of a column spec or an attribute name."""
    if name in dict(ATTRIBUTE_COLUMNS):
        return name
    return parse_column(name).identifier


@router.page("/experiments", "experiments.html", resource="ui")
def experiments_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Every active experiment (newest first), narrowed by a name/tag filter; a project-scoped
    user sees the experiments their grants name."""
    text = request.query_params.get("filter", "").strip()
    token = request.query_params.get("page_token") or None
    allowed = readable_ids(request, "experiment")
    error = None

    def search(page_token: str | None, size: int) -> tuple[list[Experiment], str | None]:
        page = ws.store.search_experiments(
            ViewType.ACTIVE_ONLY, max_results=size, filter_string=text, page_token=page_token
        )
        return page.items, page.next_page_token

    try:
        items, next_token = list_page(
            allowed, text, token, partial(_active_experiment, ws), search,
            lambda e: e.experiment_id,
        )  # fmt: skip
        if allowed is not None:  # granted ones, newest first as the search orders them
            items.sort(key=lambda e: (-e.creation_time, e.experiment_id))
    except ShipyardError as exc:
        if not isinstance(exc, InvalidInput):
            raise
        items, next_token, error = [], None, exc.message
    return {"experiments": items, "next_token": next_token, "filter": text, "error": error}


def _active_experiment(ws: Workspace, experiment_id: str) -> Experiment | None:
    """The granted experiment, if it is still there and active; ``None`` also for a grant that
    names no valid id, or names one in another spelling (``007``, which the check refuses)."""
    try:
        found = ws.store.get_experiment(experiment_id)
    except (NotFound, InvalidInput):  # deleted for good, or a grant the store cannot read
        return None
    if found.experiment_id != experiment_id:
        return None
    return found if found.lifecycle_stage == LifecycleStage.ACTIVE else None


@router.page(
    "/experiments/{experiment_id}",
    "runs.html",
    resource="experiment",
    resource_param="experiment_id",
)
def runs_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """The runs table of one experiment."""
    experiment_id = validation.experiment_id(request.path_params["experiment_id"])
    experiment = ws.store.get_experiment(experiment_id)
    q = request.query_params
    text = q.get("filter", "").strip()
    order = q.get("order", "").strip()
    per_page = query_int(request, "per_page", 50, 1, max(PAGE_SIZES))
    view = query_choice(request, "view", ("active", "deleted", "all"))
    token = q.get("page_token") or None
    trail = q.getlist("trail")
    specs = [c.strip() for c in q.getlist("cols") if c.strip()]
    chosen = [parse_column(c) for c in dict.fromkeys(specs)][:MAX_COLUMNS]
    error = None
    try:
        page = ws.store.search_runs(
            [experiment_id],
            text,
            {"active": ViewType.ACTIVE_ONLY, "deleted": ViewType.DELETED_ONLY}.get(
                view, ViewType.ALL
            ),
            max_results=per_page,
            order_by=[order] if order else None,
            page_token=token,
        )
        runs, next_token = page.items, page.next_page_token
    except InvalidInput as exc:  # a bad filter or order: say why above an empty table
        runs, next_token, error = [], None, exc.message
    available = _available_columns(runs, chosen)
    columns = chosen if specs else _default_columns(available)
    return {
        "experiment": experiment,
        "runs": [_row(run, columns) for run in runs],
        "columns": columns,
        "available": available,
        "chosen": {c.spec for c in columns},
        "filter": text,
        "order": order,
        "sort": _sort_links(order, columns),
        "per_page": per_page,
        "page_sizes": PAGE_SIZES,
        "view": view,
        "error": error,
        "next_token": next_token,
        "token": token,
        "trail": trail,
        "page_number": len(trail) + 1 if token else 1,
    }


def _row(run: Run, columns: list[Column]) -> dict[str, Any]:
    info = run.info
    return {
        "run": info,
        "duration": run_duration(info.start_time, info.end_time),
        "cells": [c.value(run) for c in columns],
    }


def _available_columns(runs: list[Run], chosen: list[Column]) -> dict[str, list[Column]]:
    keys: dict[str, set[str]] = {"metrics": set(), "params": set(), "tags": set()}
    for run in runs:
        keys["metrics"].update(run.data.metrics)
        keys["params"].update(run.data.params)
        keys["tags"].update(k for k in run.data.tags if not k.startswith("mlflow."))
    for c in chosen:
        keys[c.kind].add(c.key)
    return {kind: [Column(kind, k) for k in sorted(found)] for kind, found in keys.items()}


def _default_columns(available: dict[str, list[Column]]) -> list[Column]:
    return (
        available["metrics"][:DEFAULT_METRIC_COLUMNS] + available["params"][:DEFAULT_PARAM_COLUMNS]
    )


def _sort_links(order: str, columns: list[Column]) -> dict[str, dict[str, str]]:
    """Per column: the ``order`` a click on its header asks for, and how it sorts now."""
    current = (order or "start_time DESC").rsplit(" ", 1)  # the store's default order
    current_id = current[0] if current else ""
    descending = len(current) == 2 and current[1].upper() == "DESC"
    out: dict[str, dict[str, str]] = {}
    names = [a for a, _ in ATTRIBUTE_COLUMNS] + [c.spec for c in columns]
    for name in names:
        ident = identifier_of(name)
        if ident == current_id:
            state = "descending" if descending else "ascending"
            out[name] = {"order": f"{ident} {'ASC' if descending else 'DESC'}", "state": state}
        else:
            first = "DESC" if name.startswith("metrics.") or name == "start_time" else "ASC"
            out[name] = {"order": f"{ident} {first}", "state": "none"}
    return out
