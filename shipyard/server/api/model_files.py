"""The files of registered model versions: listing, streamed download, size and digest.

A version's files are its own entries in the artifact index, under its ``storage_owner``
(``mv-`` and 32 hex digits), copied from the run it was registered from; the package is at the
version's ``storage_path``. They are served at ``/api/v1/model-versions/{storage_owner}/...`` in
the same shapes as a run's files (:mod:`.artifacts`), so the SDK's REST artifact repository reads
a version exactly as it reads a run, and ``models:/`` URIs load through a server.

Reading them needs ``read`` on the version's model, found from the storage owner. Nothing writes
them: a registered version never changes (the run routes refuse a storage owner, too).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard.artifacts.paths import clean_path
from shipyard.entities import to_json
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry import Registry
from shipyard.server._http_util import json_response, optional_str, query
from shipyard.server.api.artifacts import file_response
from shipyard.server.api.schemas import STRING, array, obj, ref
from shipyard.server.auth import authorize
from shipyard.server.routing import ApiRouter, QueryParam

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="model-versions")

FILES = "/api/v1/model-versions/{storage_owner}"

_ARTIFACT = obj({"artifact": ref("ArtifactInfo")}, ("artifact",))
_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}
_STORAGE_OWNER = re.compile(r"mv-[0-9a-f]{32}")


def routes(ws: Workspace) -> list[BaseRoute]:
    """The model-version file endpoints bound to ``ws``."""
    return router.routes(ws)


async def _readable_owner(request: Request, ws: Workspace) -> str:
    """The ``storage_owner`` path parameter, once the caller may read its version's model."""
    owner = str(request.path_params["storage_owner"])
    if not _STORAGE_OWNER.fullmatch(owner):
        raise InvalidInput(
            f"{owner!r} is not a model version's storage owner (mv- and 32 hex digits); take "
            "it from the version's storage_owner (GET /api/v1/registered-models/<name>/"
            "versions/<version>)."
        )
    version = await run_in_threadpool(Registry(ws).version_owning, owner)
    if version is None:
        raise NotFound(
            f"No model version keeps its files under {owner!r}: the version was deleted, or the "
            "id is wrong. Look the version up again for its storage_owner."
        )
    await authorize(request, "read", f"model:{version.name}")
    return owner


@router.get(
    FILES + "/artifacts",
    action="read",
    resource="model",
    summary="List a model version's files",
    query=(QueryParam("path", STRING, "The folder to list (default: the root)."),),
    response=obj({"artifacts": array(ref("ArtifactInfo"))}, ("artifacts",)),
    authorized_by_handler=True,
)
async def list_model_version_artifacts(request: Request, ws: Workspace) -> Response:
    """The immediate children of a folder of the version's files (the package is at the
    version's ``storage_path``): files with size and digest, then folders."""
    owner = await _readable_owner(request, ws)
    path = clean_path(optional_str(query(request), "path", "") or "", allow_root=True)
    items = await run_in_threadpool(ws.artifacts.list, owner, path)
    return json_response({"artifacts": to_json(items)})


@router.get(
    FILES + "/artifacts/{path:path}",
    action="read",
    resource="model",
    summary="Download a model version's file",
    response=_BINARY,
    response_media_type="application/octet-stream",
    authorized_by_handler=True,
)
async def download_model_version_artifact(request: Request, ws: Workspace) -> Response:
    """The bytes of one file of the version, streamed."""
    owner = await _readable_owner(request, ws)
    return await file_response(ws, owner, clean_path(request.path_params["path"]))


@router.get(
    FILES + "/artifact-info/{path:path}",
    action="read",
    resource="model",
    summary="Get a model version file's size and digest",
    response=_ARTIFACT,
    authorized_by_handler=True,
)
async def stat_model_version_artifact(request: Request, ws: Workspace) -> Response:
    """Size and content digest (sha256) of one file of the version."""
    owner = await _readable_owner(request, ws)
    path = clean_path(request.path_params["path"])
    info = await run_in_threadpool(ws.artifacts.stat, owner, path)
    return json_response({"artifact": to_json(info)})
