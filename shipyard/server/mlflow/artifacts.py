"""MLflow's proxied artifact service (``/api/2.0/mlflow-artifacts/artifacts``) and the run-scoped
listing ``/api/2.0/mlflow/artifacts/list``.

MLflow clients address files by path below the service root; three layouts name an owner in the
artifact index (:func:`locate`):

* ``<experiment_id>/<run_id>/artifacts/<path>``: a run's files (the run's ``artifact_uri`` is
  ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``);
* ``<experiment_id>/models/<model_id>/artifacts/<path>``: a logged model's files (its
  ``artifact_uri``);
* ``model-versions/<storage owner>/artifacts/<path>``: a registered version's own copy of its
  files, read-only (what ``model-versions/get-download-uri`` hands out).

:func:`~shipyard.artifacts.paths.clean_path` checks every path: ``..``, absolute paths,
backslashes and NUL bytes are a 400 before anything touches storage.

* ``PUT .../<path>`` streams the body into the artifact repository (constant memory: a task
  receives the body ~1 MiB at a time into a short queue, which the repository reads from a
  worker thread, so receiving overlaps hashing and writing).
* ``GET .../<path>`` streams a file back (sendfile when the bytes are on local disk); a missing
  file or a folder is a 404 ``RESOURCE_DOES_NOT_EXIST``.
* ``GET ...?path=<dir>`` lists a folder's immediate children by *basename*; a file, a missing
  folder or a path outside any owner lists as ``{}``.
* ``DELETE .../<path>`` removes a file or a folder.

Each request is authorized on its owner: ``run:<id>``, ``logged-model:<id>``, or
``model:<name>`` for a version's files (``read`` only).
"""

from __future__ import annotations

import io
import mimetypes
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
from shipyard.registry import Registry
from shipyard.server.auth import Action, authorize
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint, json_response
from shipyard.server.mlflow.runs import run_id
from shipyard.store.logged_models import check_model_id
from shipyard.workspace import Workspace

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
MODEL_VERSION_ROOT = "model-versions"
_LAYOUTS = (
    "<experiment_id>/<run_id>/artifacts/<path> (runs), "
    "<experiment_id>/models/<model_id>/artifacts/<path> (logged models) or "
    f"{MODEL_VERSION_ROOT}/<owner>/artifacts/<path> (registered versions)"
)
_VERSION_OWNER_RE = re.compile(r"^mv-[A-Za-z0-9_\-]{1,61}$")

Kind = Literal["run", "logged-model", "model-version"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a service path points: an owner in the artifact index and a path below its root."""

    kind: Kind
    owner: str
    rel: str
    experiment_id: str | None = None

    @property
    def resource(self) -> str:
        """The authorizer's resource (a version's is found by :func:`_version_resource`)."""
        return f"{self.kind}:{self.owner}"


def version_download_uri(storage_owner: str, storage_path: str) -> str:
    """The ``mlflow-artifacts:`` URI of a registered version's own files."""
    uri = f"mlflow-artifacts:/{MODEL_VERSION_ROOT}/{storage_owner}/artifacts"
    return f"{uri}/{storage_path}" if storage_path else uri


def locate(path: str, *, allow_root: bool) -> Target | None:
    """Where ``path`` points (see the module docstring).

    Returns ``None`` for a well-formed path inside no owner (the service root, an experiment
    folder). Raises ``InvalidArtifactPath`` for a path that could escape (``..``, absolute,
    backslash, NUL), ``InvalidInput`` for a malformed run or model id, and, unless
    ``allow_root``, ``InvalidArtifactPath`` for an owner's root folder itself."""
    cleaned = clean_path(path, allow_root=True)
    parts = cleaned.split("/")
    target: Target | None = None
    if len(parts) >= 4 and parts[0].isdigit() and parts[1] == "models" and parts[3] == "artifacts":
        target = Target("logged-model", check_model_id(parts[2]), "/".join(parts[4:]), parts[0])
    elif len(parts) >= 3 and parts[0].isdigit() and parts[2] == "artifacts":
        target = Target("run", validation.run_id(parts[1]), "/".join(parts[3:]), parts[0])
    elif len(parts) >= 3 and parts[0] == MODEL_VERSION_ROOT and parts[2] == "artifacts":
        if not _VERSION_OWNER_RE.match(parts[1]):
            raise InvalidArtifactPath(
                f"artifact path {path!r} names {parts[1]!r}, which is not a registered version's "
                "files; use the URI model-versions/get-download-uri returns."
            )
        target = Target("model-version", parts[1], "/".join(parts[3:]))
    if target is not None and not target.rel and not allow_root:
        raise InvalidArtifactPath(
            f"artifact path {path!r} names an artifact folder itself, not a file; give a file "
            f"path below it, such as '{cleaned}/model.pkl'."
        )
    return target


def _require_writable(path: str, *, allow_root: bool) -> Target:
    where = locate(path, allow_root=allow_root)
    if where is None:
        raise InvalidArtifactPath(
            f"artifact path {path!r} does not name a run's or a logged model's file; artifacts "
            f"live at {_LAYOUTS}, as in their artifact_uri."
        )
    if where.kind == "model-version":
        raise InvalidArtifactPath(
            f"artifact path {path!r} holds a registered model version's files, which never "
            "change; register a new version (model-versions/create) to change them."
        )
    return where


def _check_upload_target(ws: Workspace, where: Target) -> None:
    if where.kind == "run":
        info = ws.store.get_run(where.owner).info
        exp_id, uri = info.experiment_id, info.artifact_uri
    else:
        model = ws.logged_models.get_logged_model(where.owner)
        exp_id, uri = model.experiment_id, model.artifact_uri
    if exp_id != where.experiment_id:
        what = "run" if where.kind == "run" else "logged model"
        raise InvalidArtifactPath(
            f"{what} {where.owner} belongs to experiment {exp_id}, not {where.experiment_id}; "
            f"upload below its artifact_uri ({uri})."
        )


def _version_resource(ws: Workspace, owner: str) -> str:
    """``model:<name>`` of the version owning files ``owner``; ``NotFound`` if none does."""
    version = Registry(ws).version_owning(owner)
    if version is None:
        raise NotFound(
            f"No registered model version owns the files {MODEL_VERSION_ROOT}/{owner}; the "
            "version may have been deleted. Ask model-versions/get-download-uri for a current "
            "URI."
        )
    return f"model:{version.name}"


async def _authorize(request: Request, ws: Workspace, action: Action, where: Target) -> None:
    if where.kind == "model-version":
        resource = await run_in_threadpool(_version_resource, ws, where.owner)
    else:
        resource = where.resource
    await authorize(request, action, resource)


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
    """``PUT /artifacts/<path>``: store the body as that file of a run or a logged model."""
    where = _require_writable(path, allow_root=False)
    await authorize(request, "write", where.resource)
    await run_in_threadpool(_check_upload_target, ws, where)
    source = _RequestBody(request)
    body = io.BufferedReader(source, CHUNK_SIZE)
    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(source.pump)
        try:
            await run_in_threadpool(ws.artifacts.upload, where.owner, where.rel, body)
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
    """``GET /artifacts/<path>``: stream the file back."""
    where = locate(path, allow_root=True)
    if where is None or not where.rel:
        raise NotFound(
            f"No artifact file at {path!r}. Artifacts live at {_LAYOUTS}; list a folder with "
            "GET .../artifacts?path=<folder>."
        )
    await _authorize(request, ws, "read", where)
    local = await run_in_threadpool(_find_file, ws, where.owner, where.rel, path)
    media_type = mimetypes.guess_type(where.rel)[0] or "application/octet-stream"
    if local is not None:
        return _FileResponse(local, media_type=media_type)
    return StreamingResponse(
        iterate_in_threadpool(_iter_file(ws, where.owner, where.rel)), media_type=media_type
    )


class _FileResponse(FileResponse):
    """A file sent in 1 MiB reads (Starlette reads 64 KiB, one worker-thread hop each)."""

    chunk_size = CHUNK_SIZE


def _find_file(ws: Workspace, owner: str, rel: str, path: str) -> Path | None:
    """Check the file exists (404 otherwise); its local path when the bytes are on disk."""
    try:
        ws.artifacts.stat(owner, rel)
    except NotFound:
        raise NotFound(
            f"No artifact file at {path!r}: there is no such file (a folder cannot be "
            "downloaded as one file; list it with GET .../artifacts?path=<folder>)."
        ) from None
    return ws.artifacts.local_path(owner, rel)


def _listing(ws: Workspace, owner: str, rel: str) -> dict[str, Any]:
    files = ws.artifacts.list(owner, rel)
    if not files:
        return {}
    return {"files": [_convert.file_info(f, basename=True) for f in files]}


async def list_folder(request: Request, ws: Workspace, path: str) -> Response:
    """``GET /artifacts?path=<owner folder>/<dir>`` -> ``{files: [...]}`` or ``{}``."""
    where = locate(path, allow_root=True)
    if where is None:
        return json_response({})
    await _authorize(request, ws, "read", where)
    return json_response(await run_in_threadpool(_listing, ws, where.owner, where.rel))


async def delete(request: Request, ws: Workspace, path: str) -> Response:
    """``DELETE /artifacts/<path>``: remove a file or a folder of a run or a logged model."""
    where = _require_writable(path, allow_root=True)
    await authorize(request, "write", where.resource)
    await run_in_threadpool(ws.artifacts.delete, where.owner, where.rel)
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
