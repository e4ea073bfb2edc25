"""Experiments: create, read, search, rename, delete (soft or permanent), restore, tags.

Every handler parses the request, makes one call to the tracking store (or the garbage
collector, for permanent deletion) in the threadpool, and serializes the answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard import validation
from shipyard.entities import ViewType, to_json
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.server._http_util import (
    json_response,
    optional_bool,
    optional_int,
    optional_str,
    optional_str_dict,
    optional_str_list,
    query,
    read_json_object,
    require_str,
)
from shipyard.server.api.schemas import (
    BOOLEAN,
    EMPTY,
    INTEGER,
    STRING,
    STRING_MAP,
    VIEW_TYPE,
    array,
    obj,
    page,
    ref,
)
from shipyard.server.routing import ApiRouter, QueryParam

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="experiments")

DEFAULT_MAX_RESULTS = 1000
_SHA256 = re.compile(r"[0-9a-f]{64}")

_EXPERIMENT = obj({"experiment": ref("Experiment")}, ("experiment",))
_SEARCH_FIELDS = {
    "view_type": VIEW_TYPE,
    "max_results": INTEGER,
    "filter": STRING,
    "order_by": array(STRING),
    "page_token": STRING,
}
PURGED = obj(
    {
        "bytes_freed": INTEGER,
        "digests": {
            **array(STRING),
            "description": "Content digests the permanently deleted artifacts referenced.",
        },
    }
)
"""The answer of a delete: empty for a soft delete, this for ``permanent=true``."""
_PERMANENT = QueryParam(
    "permanent",
    BOOLEAN,
    "Delete for good: rows, artifacts and the name. Without it the delete is restorable.",
)


def routes(ws: Workspace) -> list[BaseRoute]:
    """The experiment endpoints bound to ``ws``."""
    return router.routes(ws)


def experiment_id_of(request: Request) -> str:
    """The validated ``experiment_id`` path parameter."""
    return validation.experiment_id(request.path_params["experiment_id"])


def view_type_of(body: dict[str, Any]) -> ViewType:
    """The ``view_type`` field (default ``ACTIVE_ONLY``)."""
    raw = optional_str(body, "view_type") or ViewType.ACTIVE_ONLY.value
    try:
        return ViewType(raw.upper())
    except ValueError:
        raise InvalidInput(
            f"Invalid value {raw!r} for parameter 'view_type': expected one of "
            f"{', '.join(v.value for v in ViewType)}."
        ) from None


def max_results_of(body: dict[str, Any], default: int = DEFAULT_MAX_RESULTS) -> int:
    """The ``max_results`` field, checked against the server's limit."""
    n = optional_int(body, "max_results", default)
    assert n is not None
    return validation.max_results(n, validation.MAX_SEARCH_RESULTS)


@router.post(
    "/api/v1/experiments",
    action="write",
    resource="experiment",
    summary="Create an experiment",
    request=obj(
        {"name": STRING, "artifact_location": STRING, "tags": STRING_MAP}, required=("name",)
    ),
    response=obj({"experiment_id": STRING}, ("experiment_id",)),
    status=201,
)
async def create_experiment(request: Request, ws: Workspace) -> Response:
    """Create an experiment. Names are unique, also among deleted experiments."""
    body = await read_json_object(request)
    name = require_str(body, "name")
    location = optional_str(body, "artifact_location")
    tags = optional_str_dict(body, "tags")
    experiment_id = await run_in_threadpool(
        ws.store.create_experiment, name, location, tags or None
    )
    return json_response({"experiment_id": experiment_id}, 201)


@router.get(
    "/api/v1/experiments/by-name/{name:path}",
    action="read",
    resource="experiment",
    summary="Get an experiment by name",
    response=_EXPERIMENT,
)
async def get_experiment_by_name(request: Request, ws: Workspace) -> Response:
    """The experiment with this exact name (percent-encode it), deleted or not."""
    name = request.path_params["name"]
    experiment = await run_in_threadpool(ws.store.get_experiment_by_name, name)
    if experiment is None:
        raise NotFound(
            f"No experiment is named {name!r}. Create it with POST /api/v1/experiments, or list "
            "experiments with POST /api/v1/experiments/search."
        )
    return json_response({"experiment": to_json(experiment)})


@router.get(
    "/api/v1/experiments/{experiment_id}",
    action="read",
    resource="experiment",
    resource_param="experiment_id",
    summary="Get an experiment",
    response=_EXPERIMENT,
)
async def get_experiment(request: Request, ws: Workspace) -> Response:
    """The experiment with this id, deleted or not."""
    experiment_id = experiment_id_of(request)
    experiment = await run_in_threadpool(ws.store.get_experiment, experiment_id)
    return json_response({"experiment": to_json(experiment)})


async def _search(body: dict[str, Any], ws: Workspace) -> Response:
    view_type = view_type_of(body)
    max_results = max_results_of(body)
    filter_string = optional_str(body, "filter", "") or ""
    order_by = optional_str_list(body, "order_by") or None
    page_token = optional_str(body, "page_token") or None
    result = await run_in_threadpool(
        ws.store.search_experiments, view_type, max_results, filter_string, order_by, page_token
    )
    return json_response(
        {"experiments": to_json(result.items), "next_page_token": result.next_page_token}
    )


@router.post(
    "/api/v1/experiments/search",
    action="read",
    resource="experiment",
    summary="Search experiments",
    request=obj(_SEARCH_FIELDS),
    response=page("experiments", ref("Experiment")),
)
async def search_experiments(request: Request, ws: Workspace) -> Response:
    """Experiments matching a filter such as ``name LIKE 'churn%' AND tags.team = 'ml'``,
    newest first unless ``order_by`` says otherwise."""
    return await _search(await read_json_object(request), ws)


@router.get(
    "/api/v1/experiments",
    action="read",
    resource="experiment",
    summary="List experiments",
    query=tuple(QueryParam(k, v) for k, v in _SEARCH_FIELDS.items()),
    response=page("experiments", ref("Experiment")),
)
async def list_experiments(request: Request, ws: Workspace) -> Response:
    """The same as the search endpoint, with its fields in the query string."""
    return await _search(query(request), ws)


@router.patch(
    "/api/v1/experiments/{experiment_id}",
    action="write",
    resource="experiment",
    resource_param="experiment_id",
    summary="Rename an experiment",
    request=obj({"name": STRING}, ("name",)),
    response=EMPTY,
)
async def rename_experiment(request: Request, ws: Workspace) -> Response:
    """Give an experiment a new, unused name."""
    experiment_id = experiment_id_of(request)
    name = require_str(await read_json_object(request), "name")
    await run_in_threadpool(ws.store.rename_experiment, experiment_id, name)
    return json_response({})


@router.delete(
    "/api/v1/experiments/{experiment_id}",
    action="write",
    resource="experiment",
    resource_param="experiment_id",
    summary="Delete an experiment",
    query=(_PERMANENT,),
    response=PURGED,
)
async def delete_experiment(request: Request, ws: Workspace) -> Response:
    """Soft-delete an experiment and its runs (restorable), or with ``permanent=true`` delete
    it for good, freeing its name and the artifact bytes nothing else references."""
    experiment_id = experiment_id_of(request)
    if optional_bool(query(request), "permanent"):
        return json_response(await run_in_threadpool(purge, ws, "experiment", experiment_id))
    await run_in_threadpool(ws.store.delete_experiment, experiment_id)
    return json_response({})


@router.post(
    "/api/v1/experiments/{experiment_id}/restore",
    action="write",
    resource="experiment",
    resource_param="experiment_id",
    summary="Restore a deleted experiment",
    response=EMPTY,
)
async def restore_experiment(request: Request, ws: Workspace) -> Response:
    """Undo a soft delete of the experiment and the runs deleted with it."""
    experiment_id = experiment_id_of(request)
    await run_in_threadpool(ws.store.restore_experiment, experiment_id)
    return json_response({})


@router.put(
    "/api/v1/experiments/{experiment_id}/tags/{key:path}",
    action="write",
    resource="experiment",
    resource_param="experiment_id",
    summary="Set an experiment tag",
    request=obj({"value": STRING}, ("value",)),
    response=EMPTY,
)
async def set_experiment_tag(request: Request, ws: Workspace) -> Response:
    """Set (or overwrite) one tag of an experiment."""
    experiment_id = experiment_id_of(request)
    body = await read_json_object(request)
    value = require_str(body, "value", allow_empty=True)
    key = request.path_params["key"]
    await run_in_threadpool(ws.store.set_experiment_tag, experiment_id, key, value)
    return json_response({})


@router.delete(
    "/api/v1/experiments/{experiment_id}/tags/{key:path}",
    action="write",
    resource="experiment",
    resource_param="experiment_id",
    summary="Delete an experiment tag",
    response=EMPTY,
)
async def delete_experiment_tag(request: Request, ws: Workspace) -> Response:
    """Remove one tag from an experiment."""
    experiment_id = experiment_id_of(request)
    key = request.path_params["key"]
    await run_in_threadpool(ws.store.delete_experiment_tag, experiment_id, key)
    return json_response({})


def purge(ws: Workspace, kind: Literal["experiment", "run"], ident: str) -> dict[str, Any]:
    """Delete an experiment or a run for good (rows, then the bytes nothing else references).

    Returns the answer of the permanent-delete endpoints: ``bytes_freed`` and ``digests``, the
    content digests the removed artifacts referenced (what
    :meth:`~shipyard.store.base.TrackingStore.purge_experiment` returns)."""
    from shipyard.artifacts.cas import ContentAddressedRepository

    artifacts = ws.artifacts
    if not isinstance(artifacts, ContentAddressedRepository):
        raise ShipyardError(
            f"permanent deletion needs the server's own content-addressed artifact store, but "
            f"this server uses {type(artifacts).__name__}; start `shipyard server` on a "
            "database tracking URI (sqlite:// or postgresql://)."
        )
    if kind == "experiment":
        digests = ws.store.purge_experiment(ident)
    else:
        digests = ws.store.purge_run(ident)
    # Index entries recorded through the admin API may name digests that are not sha256 (no
    # blob can hold them); the rows are gone already, so those are simply skipped here.
    freed = artifacts.release(d for d in digests if _SHA256.fullmatch(d))
    return {"bytes_freed": freed.bytes_freed, "digests": sorted(digests)}
