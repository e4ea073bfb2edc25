"""Runs: create, read, update, delete (soft or permanent), restore, search, tags, dataset inputs.

Logging metrics and params lives in :mod:`shipyard.server.api.metrics`; artifact bytes in
:mod:`shipyard.server.api.artifacts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard import validation
from shipyard.entities import Dataset, DatasetInput, RunStatus, to_json
from shipyard.errors import InvalidInput
from shipyard.server._http_util import (
    json_response,
    optional_bool,
    optional_int,
    optional_object,
    optional_object_list,
    optional_str,
    optional_str_dict,
    optional_str_list,
    query,
    read_json_object,
    require_str,
)
from shipyard.server.api.experiments import PURGED, max_results_of, purge, view_type_of
from shipyard.server.api.schemas import (
    BOOLEAN,
    EMPTY,
    INTEGER,
    RUN_STATUS,
    STRING,
    STRING_MAP,
    VIEW_TYPE,
    array,
    obj,
    page,
    ref,
)
from shipyard.server.auth import authorize, experiment_scopes, principal_of
from shipyard.server.routing import ApiRouter, QueryParam

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="runs")

_RUN = obj({"run": ref("Run")}, ("run",))


def routes(ws: Workspace) -> list[BaseRoute]:
    """The run endpoints bound to ``ws``."""
    return router.routes(ws)


def run_id_of(request: Request) -> str:
    """The validated ``run_id`` path parameter."""
    return validation.run_id(request.path_params["run_id"])


@router.post(
    "/api/v1/runs",
    action="write",
    resource="experiment",
    summary="Start a run",
    request=obj(
        {
            "experiment_id": STRING,
            "run_name": STRING,
            "user_id": STRING,
            "start_time": INTEGER,
            "tags": STRING_MAP,
            "parent_run_id": STRING,
        },
        ("experiment_id",),
    ),
    response=_RUN,
    status=201,
    authorized_by_handler=True,
)
async def create_run(request: Request, ws: Workspace) -> Response:
    """Start a run (status RUNNING) in an active experiment. An authenticated caller is recorded
    as the run's user; anonymous callers may name one."""
    body = await read_json_object(request)
    experiment_id = validation.experiment_id(require_str(body, "experiment_id"))
    await authorize(request, "write", f"experiment:{experiment_id}")
    principal = principal_of(request)
    user_id = principal.name if principal.authenticated else optional_str(body, "user_id", "")
    run_name = optional_str(body, "run_name")
    start_time = optional_int(body, "start_time")
    tags = optional_str_dict(body, "tags") or None
    parent_run_id = optional_str(body, "parent_run_id")
    run = await run_in_threadpool(
        lambda: ws.store.create_run(
            experiment_id,
            run_name=run_name,
            user_id=user_id or "",
            start_time=start_time,
            tags=tags,
            parent_run_id=parent_run_id,
        )
    )
    return json_response({"run": to_json(run)}, 201)


@router.get(
    "/api/v1/runs/{run_id}",
    action="read",
    resource="run",
    resource_param="run_id",
    summary="Get a run",
    response=_RUN,
)
async def get_run(request: Request, ws: Workspace) -> Response:
    """The run with its latest metrics, params, tags and dataset inputs."""
    run = await run_in_threadpool(ws.store.get_run, run_id_of(request))
    return json_response({"run": to_json(run)})


@router.patch(
    "/api/v1/runs/{run_id}",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Update a run",
    request=obj({"status": RUN_STATUS, "end_time": INTEGER, "run_name": STRING}),
    response=obj({"run_info": ref("RunInfo")}, ("run_info",)),
)
async def update_run(request: Request, ws: Workspace) -> Response:
    """Change a run's status, end time or name (fields left out are unchanged)."""
    run_id = run_id_of(request)
    body = await read_json_object(request)
    status = optional_str(body, "status")
    if status is not None:
        status = _run_status(status)
    end_time = optional_int(body, "end_time")
    run_name = optional_str(body, "run_name")
    info = await run_in_threadpool(
        lambda: ws.store.update_run(run_id, status=status, end_time=end_time, run_name=run_name)
    )
    return json_response({"run_info": to_json(info)})


def _run_status(raw: str) -> str:
    try:
        return RunStatus(raw.upper()).value
    except ValueError:
        raise InvalidInput(
            f"Invalid value {raw!r} for parameter 'status': expected one of "
            f"{', '.join(s.value for s in RunStatus)}."
        ) from None


@router.delete(
    "/api/v1/runs/{run_id}",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Delete a run",
    query=(
        QueryParam(
            "permanent",
            BOOLEAN,
            "Delete for good: rows and the artifact bytes nothing else references.",
        ),
    ),
    response=PURGED,
)
async def delete_run(request: Request, ws: Workspace) -> Response:
    """Soft-delete a run (restorable), or with ``permanent=true`` delete it for good."""
    run_id = run_id_of(request)
    if optional_bool(query(request), "permanent"):
        return json_response(await run_in_threadpool(purge, ws, "run", run_id))
    await run_in_threadpool(ws.store.delete_run, run_id)
    return json_response({})


@router.post(
    "/api/v1/runs/{run_id}/restore",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Restore a deleted run",
    response=EMPTY,
)
async def restore_run(request: Request, ws: Workspace) -> Response:
    """Undo a soft delete of a run."""
    await run_in_threadpool(ws.store.restore_run, run_id_of(request))
    return json_response({})


@router.post(
    "/api/v1/runs/search",
    action="read",
    resource="experiment",
    authorized_by_handler=True,
    summary="Search runs",
    request=obj(
        {
            "experiment_ids": array(STRING),
            "filter": STRING,
            "view_type": VIEW_TYPE,
            "max_results": INTEGER,
            "order_by": array(STRING),
            "page_token": STRING,
        },
        ("experiment_ids",),
    ),
    response=page("runs", ref("Run")),
)
async def search_runs(request: Request, ws: Workspace) -> Response:
    """Runs of the given experiments matching a filter such as
    ``metrics.acc > 0.9 AND params.lr = '0.01'``, in ``order_by`` order (newest first by
    default). Pages are keyset-based: deep pages cost the same as the first. Needs ``read`` on
    each listed experiment (a workspace grant when none is listed)."""
    body = await read_json_object(request)
    experiment_ids = [
        validation.experiment_id(e) for e in optional_str_list(body, "experiment_ids")
    ]
    for resource in experiment_scopes(experiment_ids):
        await authorize(request, "read", resource)
    view_type = view_type_of(body)
    max_results = max_results_of(body)
    filter_string = optional_str(body, "filter", "") or ""
    order_by = optional_str_list(body, "order_by") or None
    page_token = optional_str(body, "page_token") or None
    result = await run_in_threadpool(
        lambda: ws.store.search_runs(
            experiment_ids,
            filter_string,
            view_type,
            max_results,
            order_by,
            page_token,
        )
    )
    return json_response({"runs": to_json(result.items), "next_page_token": result.next_page_token})


@router.put(
    "/api/v1/runs/{run_id}/tags/{key:path}",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Set a run tag",
    request=obj({"value": STRING}, ("value",)),
    response=EMPTY,
)
async def set_tag(request: Request, ws: Workspace) -> Response:
    """Set (or overwrite) one tag of a run."""
    run_id = run_id_of(request)
    value = require_str(await read_json_object(request), "value", allow_empty=True)
    key = request.path_params["key"]
    await run_in_threadpool(lambda: ws.store.log_batch(run_id, tags={key: value}))
    return json_response({})


@router.delete(
    "/api/v1/runs/{run_id}/tags/{key:path}",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Delete a run tag",
    response=EMPTY,
)
async def delete_tag(request: Request, ws: Workspace) -> Response:
    """Remove one tag from a run."""
    run_id = run_id_of(request)
    await run_in_threadpool(ws.store.delete_tag, run_id, request.path_params["key"])
    return json_response({})


@router.post(
    "/api/v1/runs/{run_id}/inputs",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Record the datasets a run used",
    request=obj({"datasets": array(ref("DatasetInput"))}, ("datasets",)),
    response=EMPTY,
)
async def log_inputs(request: Request, ws: Workspace) -> Response:
    """Record dataset inputs (deduplicated by experiment, name and digest)."""
    run_id = run_id_of(request)
    body = await read_json_object(request)
    datasets = [parse_dataset_input(d) for d in optional_object_list(body, "datasets")]
    await run_in_threadpool(ws.store.log_inputs, run_id, datasets)
    return json_response({})


def parse_dataset_input(d: dict[str, Any]) -> DatasetInput:
    """A :class:`DatasetInput` from its JSON form, with messages naming the bad field."""
    ds = optional_object(d, "dataset")
    if ds is None:
        raise InvalidInput(
            "Missing value for required parameter 'dataset' in an entry of 'datasets'; each "
            'entry is {"dataset": {"name": ..., "digest": ...}, "tags": {...}}.'
        )
    dataset = Dataset(
        name=require_str(ds, "name"),
        digest=require_str(ds, "digest"),
        source_type=optional_str(ds, "source_type", "") or "",
        source=optional_str(ds, "source", "") or "",
        schema=optional_str(ds, "schema"),
        profile=optional_str(ds, "profile"),
    )
    return DatasetInput(dataset=dataset, tags=optional_str_dict(d, "tags"))
