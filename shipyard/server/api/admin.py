"""Maintenance endpoints: the artifact index and the lists garbage collection walks.

These expose the :class:`~shipyard.store.base.TrackingStore` methods that the content-addressed
artifact layer and the garbage collector use, so a :class:`~shipyard.store.rest.RestTrackingStore`
implements the whole interface. They need the ``admin`` permission: pointing an index entry at a
digest bypasses uploads. Ordinary clients never call them; artifact files go through
:mod:`shipyard.server.api.artifacts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard.artifacts.paths import clean_path
from shipyard.entities import to_json
from shipyard.server._http_util import (
    json_response,
    optional_int,
    optional_str,
    optional_str_list,
    query,
    read_json_object,
    require_int,
    require_str,
)
from shipyard.server.api.schemas import INTEGER, STRING, array, obj, ref
from shipyard.server.routing import ApiRouter, QueryParam

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="admin")

_INDEX = "/api/v1/admin/artifact-index"
_DIGESTS = obj({"digests": array(STRING)}, ("digests",))
_ARTIFACT = obj({"artifact": ref("ArtifactInfo")}, ("artifact",))
_PATH_QUERY = QueryParam("path", STRING, "A folder (default: the owner's root).")
_OLDER_THAN = QueryParam("older_than", INTEGER, "Only those deleted before this time (ms).")


def routes(ws: Workspace) -> list[BaseRoute]:
    """The maintenance endpoints bound to ``ws``."""
    return router.routes(ws)


def _folder(request: Request) -> str:
    return clean_path(optional_str(query(request), "path", "") or "", allow_root=True)


@router.put(
    _INDEX + "/{owner}/{path:path}",
    action="admin",
    resource="server",
    summary="Point an artifact path at stored content",
    request=obj({"digest": STRING, "size": INTEGER}, ("digest", "size")),
    response=_ARTIFACT,
)
async def record_artifact(request: Request, ws: Workspace) -> Response:
    """Record that file ``path`` of ``owner`` holds the content ``digest`` (overwrites)."""
    owner = request.path_params["owner"]
    path = clean_path(request.path_params["path"])
    body = await read_json_object(request)
    digest, size = require_str(body, "digest"), require_int(body, "size")
    info = await run_in_threadpool(ws.store.record_artifact, owner, path, digest, size)
    return json_response({"artifact": to_json(info)})


@router.get(
    _INDEX + "/{owner}/{path:path}",
    action="admin",
    resource="server",
    summary="Get one artifact index entry",
    response=_ARTIFACT,
)
async def get_artifact_entry(request: Request, ws: Workspace) -> Response:
    """The index entry of one file."""
    owner = request.path_params["owner"]
    path = clean_path(request.path_params["path"])
    info = await run_in_threadpool(ws.store.get_artifact, owner, path)
    return json_response({"artifact": to_json(info)})


@router.get(
    _INDEX + "/{owner}",
    action="admin",
    resource="server",
    summary="List artifact index entries",
    query=(_PATH_QUERY,),
    response=obj({"artifacts": array(ref("ArtifactInfo"))}, ("artifacts",)),
)
async def list_artifact_entries(request: Request, ws: Workspace) -> Response:
    """The immediate children of a folder in the index."""
    owner = request.path_params["owner"]
    items = await run_in_threadpool(ws.store.list_artifacts, owner, _folder(request))
    return json_response({"artifacts": to_json(items)})


@router.delete(
    _INDEX + "/{owner}",
    action="admin",
    resource="server",
    summary="Remove artifact index entries",
    query=(_PATH_QUERY,),
    response=_DIGESTS,
)
async def delete_artifact_entries(request: Request, ws: Workspace) -> Response:
    """Remove a file or folder from the index only (bytes stay until garbage collection);
    returns the digests the entries referenced."""
    owner = request.path_params["owner"]
    digests = await run_in_threadpool(ws.store.delete_artifacts, owner, _folder(request))
    return json_response({"digests": sorted(digests)})


@router.post(
    _INDEX + "/unreferenced",
    action="admin",
    resource="server",
    summary="Which digests nothing references",
    request=_DIGESTS,
    response=_DIGESTS,
)
async def unreferenced_digests(request: Request, ws: Workspace) -> Response:
    """Those of the given digests that no index entry points at."""
    digests = set(optional_str_list(await read_json_object(request), "digests"))
    result = await run_in_threadpool(ws.store.unreferenced_digests, digests)
    return json_response({"digests": sorted(result)})


@router.get(
    "/api/v1/admin/referenced-digests",
    action="admin",
    resource="server",
    summary="Every referenced digest",
    response=_DIGESTS,
)
async def referenced_digests(request: Request, ws: Workspace) -> Response:
    """Every digest some index entry points at."""
    result = await run_in_threadpool(lambda: sorted(set(ws.store.iter_referenced_digests())))
    return json_response({"digests": result})


@router.get(
    "/api/v1/admin/deleted-experiments",
    action="admin",
    resource="server",
    summary="Soft-deleted experiments",
    query=(_OLDER_THAN,),
    response=obj({"experiment_ids": array(STRING)}, ("experiment_ids",)),
)
async def deleted_experiments(request: Request, ws: Workspace) -> Response:
    """Ids of soft-deleted experiments."""
    older_than = optional_int(query(request), "older_than")
    ids = await run_in_threadpool(ws.store.deleted_experiment_ids, older_than)
    return json_response({"experiment_ids": ids})


@router.get(
    "/api/v1/admin/deleted-runs",
    action="admin",
    resource="server",
    summary="Soft-deleted runs of active experiments",
    query=(_OLDER_THAN,),
    response=obj({"run_ids": array(STRING)}, ("run_ids",)),
)
async def deleted_runs(request: Request, ws: Workspace) -> Response:
    """Ids of soft-deleted runs whose experiment is active."""
    older_than = optional_int(query(request), "older_than")
    ids = await run_in_threadpool(ws.store.deleted_run_ids, older_than)
    return json_response({"run_ids": ids})
