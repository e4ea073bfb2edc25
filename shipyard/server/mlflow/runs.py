"""MLflow ``runs/*`` lifecycle endpoints: create, get, update, delete, restore and search.

The logging endpoints (params, metrics, tags, batches, inputs) live in :mod:`.run_data`.

MLflow conventions mapped here: a run's name travels both as ``run_name`` and as the
``mlflow.runName`` tag; a nested run is marked by the ``mlflow.parentRunId`` tag, which becomes
the store's ``parent_run_id``; a request may name its run ``run_id`` or ``run_uuid``.
"""

from __future__ import annotations

from typing import Any

from shipyard import validation
from shipyard.entities import RunModels, RunStatus, ViewType
from shipyard.server.auth import ANONYMOUS
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.server.mlflow.experiments import VIEW_TYPES
from shipyard.store.base import DEFAULT_EXPERIMENT_ID
from shipyard.workspace import Workspace

PARENT_RUN_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
RUN_STATUSES = tuple(s.value for s in RunStatus)
"""MLflow's RunStatus enum in proto order (RUNNING=1 ... KILLED=5)."""
DEFAULT_SEARCH_RESULTS = 1000


def run_id(args: Args) -> str:
    """The run a request names (``run_id`` or ``run_uuid``), checked for shape."""
    return validation.run_id(args.run_id())


def create_run(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/create {experiment_id, user_id, run_name, start_time, tags}`` -> ``{run}``.

    Without ``experiment_id`` the run goes to the default experiment ``"0"``.
    """
    raw_exp = args.raw("experiment_id")
    exp_id = (
        DEFAULT_EXPERIMENT_ID
        if raw_exp is None or raw_exp == ""
        else validation.experiment_id(raw_exp)
    )
    tags = _convert.pairs(args.objects("tags"))
    user_id = args.string("user_id", "")
    if args.user and args.user != ANONYMOUS.name:
        # A signed-in caller is recorded as itself, whatever the client claims.
        user_id = tags[USER_TAG] = args.user
    run = ws.store.create_run(
        exp_id,
        run_name=args.string("run_name") or None,
        user_id=user_id,
        start_time=args.integer("start_time"),
        tags=tags,
        parent_run_id=tags.get(PARENT_RUN_TAG) or None,
    )
    return {"run": _convert.run(run)}


def run_models(ws: Workspace, run_ids: list[str]) -> dict[str, RunModels]:
    """The logged models the runs used and produced (none in a workspace without logged
    models)."""
    if ws.logged_model_store is None or not run_ids:
        return {}
    return ws.logged_model_store.run_models(run_ids)


def get_run(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET runs/get?run_id=`` -> ``{run}`` with latest metrics, params, tags, inputs (datasets
    and logged models) and outputs (logged models)."""
    run = ws.store.get_run(run_id(args))
    return {"run": _convert.run(run, run_models(ws, [run.info.run_id]).get(run.info.run_id))}


def update_run(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/update {run_id, status?, end_time?, run_name?}`` -> ``{run_info}``."""
    info = ws.store.update_run(
        run_id(args),
        status=args.enum("status", RUN_STATUSES, "") or None,
        end_time=args.integer("end_time"),
        run_name=args.string("run_name") or None,
    )
    return {"run_info": _convert.run_info(info)}


def delete_run(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/delete {run_id}``: soft delete (restorable)."""
    ws.store.delete_run(run_id(args))
    return {}


def restore_run(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/restore {run_id}``."""
    ws.store.restore_run(run_id(args))
    return {}


def search_runs(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/search {experiment_ids[], filter, run_view_type, max_results, order_by[],
    page_token}`` -> ``{runs, next_page_token}``. The page token is the store's, opaque."""
    exp_ids = [
        validation.experiment_id(e) for e in args.strings("experiment_ids", allow_numbers=True)
    ]
    max_results = args.integer("max_results", DEFAULT_SEARCH_RESULTS)
    validation.max_results(max_results, validation.MAX_SEARCH_RESULTS)
    page = ws.store.search_runs(
        exp_ids,
        filter_string=args.string("filter", ""),
        view_type=ViewType(args.enum("run_view_type", VIEW_TYPES, "ACTIVE_ONLY")),
        max_results=max_results,
        order_by=args.strings("order_by") or None,
        page_token=args.string("page_token") or None,
    )
    out: dict[str, Any] = {}
    if page.items:
        models = run_models(ws, [r.info.run_id for r in page.items])
        out["runs"] = [_convert.run(r, models.get(r.info.run_id)) for r in page.items]
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


ENDPOINTS: list[Endpoint] = [
    Endpoint("/runs/get", ("GET",), get_run, "read", "run"),
    Endpoint("/runs/create", ("POST",), create_run, "write", "experiment"),
    Endpoint("/runs/update", ("POST",), update_run, "write", "run"),
    Endpoint("/runs/search", ("POST", "GET"), search_runs, "read", "experiments"),
    Endpoint("/runs/delete", ("POST",), delete_run, "write", "run"),
    Endpoint("/runs/restore", ("POST",), restore_run, "write", "run"),
]
"""The specs of every run lifecycle endpoint."""
