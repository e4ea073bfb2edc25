"""MLflow's proxied artifact service (``/api/2.0/mlflow-artifacts/artifacts``) and the run-scoped
listing ``/api/2.0/mlflow/artifacts/list``.

MLflow clients address a run's files as ``<experiment_id>/<run_id>/artifacts/<relative path>``
(the run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``). Here that
path is split into the owner (the run id) and the relative path, which
:func:`~shipyard.artifacts.paths.clean_path` checks: ``..``, absolute paths, backslashes and NUL
bytes are a 400 before anything touches storage.

* ``PUT .../<path>`` streams the body into the artifact repository (constant memory: a task
  receives the body ~1 MiB at a time into a short queue, which the repository reads from a
  worker thread, so receiving overlaps hashing and writing).
* ``GET .../<path>`` streams a file back (sendfile when the bytes are on local disk); a missing
  file or a folder is a 404 ``RESOURCE_DOES_NOT_EXIST``.
* ``GET ...?path=<dir>`` lists a folder's immediate children by *basename*; a file, a missing
  folder or a path outside any run lists as ``{}``.
* ``DELETE .../<path>`` removes a file or a folder.
"""

from __future__ import annotations

import io
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from shipyard import validation
from shipyard.artifacts.base import CHUNK_SIZE
from shipyard.artifacts.paths import clean_path
from shipyard.errors import InvalidArtifactPath, NotFound
from shipyard.server.auth import authorize
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint, json_response
from shipyard.server.mlflow.runs import run_id
from shipyard.workspace import Workspace

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_RUN_LAYOUT = "<experiment_id>/<run_id>/artifacts/<path>"


def locate(path: str, *, allow_root: bool) -> tuple[str, str, str] | None:
    """Split ``<exp>/<run>/artifacts/<rel>`` into (experiment id, run id, clean rel path).

    Returns ``None`` for a well-formed path that is not inside a run's artifacts (the service
    root, an experiment folder, a logged model's folder). Raises ``InvalidArtifactPath`` for a
    path that could escape (``..``, absolute, backslash, NUL) and ``InvalidInput`` for a
    malformed run id."""
    cleaned = clean_path(path, allow_root=True)
    parts = cleaned.split("/", 3)
    if len(parts) < 3 or parts[2] != "artifacts" or not parts[0].isdigit():
        return None
    rel = parts[3] if len(parts) == 4 else ""
    if not rel and not allow_root:
        raise InvalidArtifactPath(
            f"artifact path {path!r} names the run's artifact folder itself, not a file; "
            f"give a file path such as '{parts[0]}/{parts[1]}/artifacts/model.pkl'."
        )
    return parts[0], validation.run_id(parts[1]), rel


def _require_run_path(path: str, *, allow_root: bool) -> tuple[str, str, str]:
    where = locate(path, allow_root=allow_root)
    if where is None:
        if "/models/" in f"/{path}":
            raise InvalidArtifactPath(
                f"artifact path {path!r} belongs to an MLflow logged model, which this Shipyard "
                "server does not serve yet; log files to a run instead (mlflow.log_artifact)."
            )
        raise InvalidArtifactPath(
            f"artifact path {path!r} does not name a run's file; run artifacts live at "
            f"{_RUN_LAYOUT}, as in the run's artifact_uri."
        )
    return where


def _check_upload_target(ws: Workspace, exp_id: str, rid: str) -> None:
    info = ws.store.get_run(rid).info
    if info.experiment_id != exp_id:
        raise InvalidArtifactPath(
            f"run {rid} belongs to experiment {info.experiment_id}, not {exp_id}; upload below "
            f"the run's artifact_uri ({info.artifact_uri})."
        )


PREFETCH_CHUNKS = 4
"""How many ~1 MiB pieces of an upload may wait, received, for the thread that stores them."""

_Piece = bytes | BaseException | None


class _RequestBody(io.RawIOBase):
    """A blocking, readable view of an ASGI request body, for code running in a worker thread.

    :meth:`pump` runs on the event loop and receives the body while the thread hashes and
    writes what came before: it gathers the server's ~64 KiB chunks into ~1 MiB pieces and
    queues at most :data:`PREFETCH_CHUNKS` of them, so an upload of any size holds a few MiB in
    memory, and receiving overlaps storing. A failure to receive (the client went away) is
    handed to the reader, which raises it, so a cut-off upload is never stored as a file."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._send, self._recv = anyio.create_memory_object_stream[_Piece](PREFETCH_CHUNKS)
        self._buf = memoryview(b"")
        self._eof = False

    async def pump(self) -> None:
        """Receive the whole body into the queue (runs as a task beside the storing thread)."""
        async with self._send:
            parts: list[bytes] = []
            size = 0
            try:
                async for chunk in self._request.stream():
                    if not chunk:
                        continue
                    parts.append(chunk)
                    size += len(chunk)
                    if size >= CHUNK_SIZE:
                        await self._send.send(b"".join(parts))
                        parts, size = [], 0
                if parts:
                    await self._send.send(b"".join(parts))
                await self._send.send(None)
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:  # handed to the reader, which raises it
                await self._send.send(exc)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._recv.close()
        super().close()

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            try:
                piece = anyio.from_thread.run(self._recv.receive)
            except anyio.EndOfStream:
                piece = ConnectionError("the upload's request body ended without its last piece")
            if isinstance(piece, BaseException):
                raise piece
            if piece is None:
                self._eof = True
            else:
                self._buf = memoryview(piece)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


async def upload(request: Request, ws: Workspace, path: str) -> Response:
    """``PUT /artifacts/<exp>/<run>/artifacts/<rel>``: store the body as that file."""
    exp_id, rid, rel = _require_run_path(path, allow_root=False)
    await authorize(request, "write", f"run:{rid}")
    await run_in_threadpool(_check_upload_target, ws, exp_id, rid)
    source = _RequestBody(request)
    body = io.BufferedReader(source, CHUNK_SIZE)
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(source.pump)
        try:
            await run_in_threadpool(ws.artifacts.upload, rid, rel, body)
        except Exception as exc:  # raised below, outside the task group (which would wrap it)
            error = exc
        # Stored, or failed before reading everything: stop receiving either way.
        tg.cancel_scope.cancel()
    source.close()
    if error is not None:
        raise error
    return json_response({})


def _iter_file(ws: Workspace, owner: str, rel: str) -> Iterator[bytes]:
    with ws.artifacts.open(owner, rel) as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


async def download(request: Request, ws: Workspace, path: str) -> Response:
    """``GET /artifacts/<exp>/<run>/artifacts/<rel>``: stream the file back."""
    where = locate(path, allow_root=True)
    if where is None or not where[2]:
        raise NotFound(
            f"No artifact file at {path!r}. Run artifacts live at {_RUN_LAYOUT}; list a "
            "folder with GET .../artifacts?path=<folder>."
        )
    _, rid, rel = where
    await authorize(request, "read", f"run:{rid}")
    local = await run_in_threadpool(_find_file, ws, rid, rel, path)
    media_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    if local is not None:
        return _FileResponse(local, media_type=media_type)
    return StreamingResponse(iterate_in_threadpool(_iter_file(ws, rid, rel)), media_type=media_type)


class _FileResponse(FileResponse):
    """A file sent in 1 MiB reads (Starlette reads 64 KiB, one worker-thread hop each)."""

    chunk_size = CHUNK_SIZE


def _find_file(ws: Workspace, owner: str, rel: str, path: str) -> Path | None:
    """Check the file exists (404 otherwise); its local path when the bytes are on disk."""
    try:
        ws.artifacts.stat(owner, rel)
    except NotFound:
        raise NotFound(
            f"No artifact file at {path!r}: the run has no such file (a folder cannot be "
            "downloaded as one file; list it with GET .../artifacts?path=<folder>)."
        ) from None
    return ws.artifacts.local_path(owner, rel)


def _listing(ws: Workspace, rid: str, rel: str) -> dict[str, Any]:
    files = ws.artifacts.list(rid, rel)
    if not files:
        return {}
    return {"files": [_convert.file_info(f, basename=True) for f in files]}


async def list_folder(request: Request, ws: Workspace, path: str) -> Response:
    """``GET /artifacts?path=<exp>/<run>/artifacts/<dir>`` -> ``{files: [...]}`` or ``{}``."""
    where = locate(path, allow_root=True)
    if where is None:
        return json_response({})
    _, rid, rel = where
    await authorize(request, "read", f"run:{rid}")
    return json_response(await run_in_threadpool(_listing, ws, rid, rel))


async def delete(request: Request, ws: Workspace, path: str) -> Response:
    """``DELETE /artifacts/<exp>/<run>/artifacts/<rel>``: remove a file or a folder."""
    _, rid, rel = _require_run_path(path, allow_root=True)
    await authorize(request, "write", f"run:{rid}")
    await run_in_threadpool(ws.artifacts.delete, rid, rel)
    return json_response({})


def service_routes(workspace: Workspace) -> list[BaseRoute]:
    """Routes of the proxied artifact service, under both MLflow prefixes."""

    async def artifacts_root(request: Request) -> Response:
        return await list_folder(request, workspace, request.query_params.get("path", ""))

    async def artifact(request: Request) -> Response:
        path: str = request.path_params["path"]
        method = request.method
        if method == "PUT":
            return await upload(request, workspace, path)
        if method == "DELETE":
            return await delete(request, workspace, path)
        if not path:
            return await list_folder(request, workspace, request.query_params.get("path", ""))
        return await download(request, workspace, path)

    out: list[BaseRoute] = []
    for prefix in ARTIFACT_PREFIXES:
        out.append(Route(f"{prefix}/artifacts", artifacts_root, methods=["GET"]))
        out.append(
            Route(f"{prefix}/artifacts/{{path:path}}", artifact, methods=["GET", "PUT", "DELETE"])
        )
    return out


def list_run_artifacts(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET mlflow/artifacts/list?run_id=&path=`` -> ``{root_uri, files}`` with paths relative
    to the run's artifact root (the listing MLflow's web UI and non-Python clients use)."""
    rid = run_id(args)
    rel = clean_path(args.string("path", ""), allow_root=True)
    info = ws.store.get_run(rid).info
    out: dict[str, Any] = {"root_uri": info.artifact_uri}
    files = ws.artifacts.list(rid, rel)
    if files:
        out["files"] = [_convert.file_info(f, basename=False) for f in files]
    return out


ENDPOINTS: list[Endpoint] = [
    Endpoint("/artifacts/list", ("GET",), list_run_artifacts, "read", "run"),
]
"""The specs of the run-scoped listing."""
