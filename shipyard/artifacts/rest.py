"""Artifact files of runs and registered model versions on a Shipyard server, streamed over its
REST API.

An owner is a run (``/api/v1/runs/<run_id>/artifacts...``) or, when it starts with
:data:`~shipyard.store.registry.STORAGE_OWNER_PREFIX`, the files of a registered model version
(``/api/v1/model-versions/<storage_owner>/artifacts...``, read-only). So
:func:`shipyard.registry.resolve_model_uri` and ``load_model("models:/...")`` work against a
server as they do embedded.

Uploads send the source in 1 MiB chunks (with its length when known, so proxies see an ordinary
request); downloads hand back a file object that reads the response as it arrives. Neither holds
a whole file in memory. The server stores and frees the bytes, so :meth:`free` does nothing here.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import httpx

from shipyard._http import HttpClient
from shipyard.artifacts.base import CHUNK_SIZE, ArtifactRepository
from shipyard.artifacts.paths import clean_path
from shipyard.entities import ArtifactInfo
from shipyard.errors import InvalidState, StoreUnavailable
from shipyard.store.registry import STORAGE_OWNER_PREFIX


def _owner_url(owner: str) -> str:
    """The URL of a run, or of a model version's files."""
    kind = "model-versions" if owner.startswith(STORAGE_OWNER_PREFIX) else "runs"
    return f"/api/v1/{kind}/{quote(owner, safe='')}"


def _writable(owner: str) -> str:
    if owner.startswith(STORAGE_OWNER_PREFIX):
        raise InvalidState(
            f"{owner} holds the files of a registered model version, which never change; log "
            "the files to a run and register them as a new version instead."
        )
    return _owner_url(owner)


class RestArtifactRepository(ArtifactRepository):
    """:class:`ArtifactRepository` over a Shipyard server's artifact endpoints."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"RestArtifactRepository({self.http.base_url!r})"

    def upload(self, owner: str, path: str, src: BinaryIO) -> ArtifactInfo:
        """Stream ``src`` to the server as file ``path`` of run ``owner``."""
        path = clean_path(path)
        body = UploadBody(src)
        headers = {"Content-Type": "application/octet-stream"}
        if body.size is not None:
            headers["Content-Length"] = str(body.size)
        url = f"{_writable(owner)}/artifacts/{quote(path, safe='/')}"
        resp = self.http.send("PUT", url, content=body, headers=headers)
        return ArtifactInfo.from_json(resp.json()["artifact"])

    def upload_file(self, owner: str, path: str, local_path: Path) -> ArtifactInfo:
        with open(local_path, "rb") as src:
            return self.upload(owner, path, src)

    def open(self, owner: str, path: str) -> BinaryIO:
        """A file object streaming file ``path`` from the server; close it when done."""
        path = clean_path(path)
        stream = self.http.stream("GET", f"{_owner_url(owner)}/artifacts/{quote(path, safe='/')}")
        response = stream.__enter__()  # raises NotFound etc. before anything is returned
        raw = ResponseReader(response, stream)
        return io.BufferedReader(raw, CHUNK_SIZE)  # type: ignore[return-value]

    def list(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        path = clean_path(path, allow_root=True)
        answer = self.http.call("GET", f"{_owner_url(owner)}/artifacts", params={"path": path})
        return [ArtifactInfo.from_json(a) for a in answer["artifacts"]]

    def stat(self, owner: str, path: str) -> ArtifactInfo:
        path = clean_path(path)
        answer = self.http.call("GET", f"{_owner_url(owner)}/artifact-info/{quote(path, safe='/')}")
        return ArtifactInfo.from_json(answer["artifact"])

    def delete(self, owner: str, path: str = "") -> None:
        path = clean_path(path, allow_root=True)
        suffix = f"/{quote(path, safe='/')}" if path else ""
        self.http.call("DELETE", f"{_writable(owner)}/artifacts{suffix}")

    def free(self, digests: set[str]) -> int:
        """Nothing to do: the server frees bytes when files and runs are deleted."""
        return 0

    def close(self) -> None:
        self.http.close()


class UploadBody:
    """An upload's body for httpx: the source in 1 MiB chunks, iterable again after a retry
    when the source can be rewound."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.start: int | None = None
        self.size: int | None = None
        self._iterated = False
        seekable = getattr(src, "seekable", None)
        if callable(seekable) and seekable():
            self.start = src.tell()
            try:
                self.size = os.fstat(src.fileno()).st_size - self.start
            except (AttributeError, OSError, io.UnsupportedOperation):
                self.size = src.seek(0, os.SEEK_END) - self.start
                src.seek(self.start)

    def __iter__(self) -> Iterator[bytes]:
        if self._iterated:
            if self.start is None:
                raise StoreUnavailable(
                    "the upload was interrupted and its source cannot be read again; "
                    "upload the file again."
                )
            self.src.seek(self.start)
        self._iterated = True
        while chunk := self.src.read(CHUNK_SIZE):
            yield chunk


class ResponseReader(io.RawIOBase):
    """A readable raw stream over an httpx streaming response; closing it ends the response."""

    def __init__(
        self, response: httpx.Response, context: AbstractContextManager[httpx.Response]
    ) -> None:
        super().__init__()
        self._context = context
        self._chunks = response.iter_bytes(CHUNK_SIZE)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if not self._pending:
            try:
                chunk = next(self._chunks, b"")
            except httpx.TransportError as exc:
                raise StoreUnavailable(
                    f"the download broke off ({exc}); check the connection to the server and "
                    "download again."
                ) from exc
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._context.__exit__(None, None, None)
            finally:
                super().close()
