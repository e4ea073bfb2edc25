"""Artifact files of a run: streamed upload and download, listing, metadata, deletion.

Bytes never sit whole in memory. An upload hands the request body to
:meth:`ArtifactRepository.upload` as a blocking file object that pulls chunks from the event loop
as the repository reads (uvicorn stops reading the socket while its buffer is full, so a slow
disk slows the client instead of filling memory). A download is a ``FileResponse`` when the
bytes are on local disk, otherwise a stream of 1 MiB chunks.
"""

from __future__ import annotations

import io
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from shipyard.artifacts.base import CHUNK_SIZE
from shipyard.artifacts.paths import clean_path
from shipyard.entities import ArtifactInfo, to_json
from shipyard.server._http_util import json_response, optional_str, query
from shipyard.server.api.runs import run_id_of
from shipyard.server.api.schemas import EMPTY, STRING, array, obj, ref
from shipyard.server.routing import ApiRouter, QueryParam

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="artifacts")

_ARTIFACT = obj({"artifact": ref("ArtifactInfo")}, ("artifact",))
_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}

_INERT_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/javascript",
        "application/javascript",
        "text/xml",
        "application/xml",
    }
)
"""Types a browser would run if served from the API's origin: sent as plain text instead."""


def routes(ws: Workspace) -> list[BaseRoute]:
    """The artifact endpoints bound to ``ws``."""
    return router.routes(ws)


def content_type(path: str) -> str:
    """The Content-Type a download of ``path`` is served with (never an active type)."""
    guessed, _ = mimetypes.guess_type(path, strict=False)
    if guessed is None:
        return "application/octet-stream"
    if guessed in _INERT_TYPES:
        return "text/plain; charset=utf-8"
    return guessed


class RequestBodyReader(io.RawIOBase):
    """A blocking, readable file over a request body, for code running in a worker thread.

    Each read that finds the buffer empty asks the event loop for the next chunk
    (``anyio.from_thread.run``), so memory holds at most one chunk.
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    async def _next_chunk(self) -> bytes | None:
        async for chunk in self._chunks:
            if chunk:
                return chunk
        return None

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if not self._pending:
            if self._eof:
                return 0
            chunk = anyio.from_thread.run(self._next_chunk)
            if chunk is None:
                self._eof = True
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _path_of(request: Request) -> str:
    return clean_path(request.path_params["path"])


def _run_of(request: Request) -> str:
    """The ``run_id`` path parameter. The ids of the index's other owners (model versions,
    logged models, dataset versions, step outputs) are refused by :func:`validation.run_id`, so
    their files can't be changed or deleted behind their own checks."""
    return run_id_of(request)


@router.put(
    "/api/v1/runs/{run_id}/artifacts/{path:path}",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Upload an artifact file",
    request=_BINARY,
    request_media_type="application/octet-stream",
    response=_ARTIFACT,
    status=201,
)
async def upload_artifact(request: Request, ws: Workspace) -> Response:
    """Store the request body as file ``path`` of the run (overwriting it). The body is
    streamed to storage in constant memory, whatever its size."""
    run_id = _run_of(request)
    path = _path_of(request)
    src = io.BufferedReader(RequestBodyReader(request.stream()), CHUNK_SIZE)

    def upload() -> ArtifactInfo:
        ws.store.get_run(run_id)  # NotFound for an unknown run, before any byte is stored
        with src:
            return ws.artifacts.upload(run_id, path, src)  # type: ignore[arg-type]

    info = await run_in_threadpool(upload)
    return json_response({"artifact": to_json(info)}, 201)


@router.get(
    "/api/v1/runs/{run_id}/artifacts/{path:path}",
    action="read",
    resource="run",
    resource_param="run_id",
    summary="Download an artifact file",
    response=_BINARY,
    response_media_type="application/octet-stream",
)
async def download_artifact(request: Request, ws: Workspace) -> Response:
    """The bytes of file ``path`` (range requests are answered when the server stores
    artifacts on local disk)."""
    return await file_response(ws, _run_of(request), _path_of(request))


async def file_response(ws: Workspace, owner: str, path: str) -> Response:
    """The bytes of file ``path`` of ``owner``: sendfile from local disk when the bytes are
    there, otherwise streamed in 1 MiB chunks (constant memory either way)."""
    headers = {"X-Content-Type-Options": "nosniff"}

    def locate() -> Path | BinaryIO:
        local = ws.artifacts.local_path(owner, path)
        if local is not None and local.is_file():
            return local
        return ws.artifacts.open(owner, path)

    found = await run_in_threadpool(locate)
    if isinstance(found, Path):
        return FileResponse(found, media_type=content_type(path), headers=headers)
    return StreamingResponse(_chunks(found), media_type=content_type(path), headers=headers)


async def _chunks(src: BinaryIO) -> AsyncIterator[bytes]:
    """Read ``src`` in 1 MiB chunks in the threadpool; close it however the response ends."""
    try:
        while chunk := await run_in_threadpool(src.read, CHUNK_SIZE):
            yield chunk
    finally:
        await run_in_threadpool(src.close)


@router.get(
    "/api/v1/runs/{run_id}/artifacts",
    action="read",
    resource="run",
    resource_param="run_id",
    summary="List artifacts",
    query=(QueryParam("path", STRING, "The folder to list (default: the run's root)."),),
    response=obj({"artifacts": array(ref("ArtifactInfo"))}, ("artifacts",)),
)
async def list_artifacts(request: Request, ws: Workspace) -> Response:
    """The immediate children of a folder: files with size and digest, then folders. A file
    path or a missing folder gives an empty list."""
    run_id = _run_of(request)
    path = clean_path(optional_str(query(request), "path", "") or "", allow_root=True)
    items = await run_in_threadpool(ws.artifacts.list, run_id, path)
    return json_response({"artifacts": to_json(items)})


@router.get(
    "/api/v1/runs/{run_id}/artifact-info/{path:path}",
    action="read",
    resource="run",
    resource_param="run_id",
    summary="Get an artifact file's size and digest",
    response=_ARTIFACT,
)
async def stat_artifact(request: Request, ws: Workspace) -> Response:
    """Size and content digest (sha256) of file ``path``."""
    run_id = _run_of(request)
    info = await run_in_threadpool(ws.artifacts.stat, run_id, _path_of(request))
    return json_response({"artifact": to_json(info)})


@router.delete(
    "/api/v1/runs/{run_id}/artifacts/{path:path}",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Delete an artifact file or folder",
    response=EMPTY,
)
async def delete_artifact(request: Request, ws: Workspace) -> Response:
    """Remove a file, or a folder and everything below it; bytes nothing else references are
    freed."""
    run_id = _run_of(request)
    await run_in_threadpool(ws.artifacts.delete, run_id, _path_of(request))
    return json_response({})


@router.delete(
    "/api/v1/runs/{run_id}/artifacts",
    action="write",
    resource="run",
    resource_param="run_id",
    summary="Delete all artifacts of a run",
    response=EMPTY,
)
async def delete_all_artifacts(request: Request, ws: Workspace) -> Response:
    """Remove every artifact of the run; bytes nothing else references are freed."""
    run_id = _run_of(request)
    await run_in_threadpool(ws.artifacts.delete, run_id, "")
    return json_response({})
