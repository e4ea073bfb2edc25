"""Artifact interfaces: bytes at the bottom, run-level files above.

:class:`ByteStore` is all a new storage backend implements: put/get/list/exists/delete of opaque
keys, streaming, atomic. Backends are chosen by URI scheme (:mod:`shipyard.artifacts.registry`).

:class:`ArtifactRepository` is what the SDK and the server use: files and folders of an *owner*
(a run id), stored content-addressed (sha256) in a byte store and indexed in the metadata store
(:class:`~shipyard.artifacts.cas.ContentAddressedRepository`), or sent to a Shipyard server
(:class:`~shipyard.artifacts.rest.RestArtifactRepository`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts.paths import clean_path
from shipyard.entities import ArtifactInfo
from shipyard.errors import InvalidArtifactPath

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int
    mtime: float
    """Seconds since the epoch when the blob was written (garbage collection keeps young ones)."""


class ByteStore(ABC):
    """A flat namespace of immutable byte blobs addressed by ``key`` (``a/b/c`` style)."""

    uri: str

    @abstractmethod
    def put_file(self, key: str, local_path: Path) -> None:
        """Store the file's bytes under ``key`` atomically: readers see all of it or nothing.
        The store may move ``local_path`` instead of copying it."""

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable binary stream of the blob. ``NotFound`` if it does not exist."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose key starts with ``prefix``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a blob; removing a missing blob is not an error."""

    def local_path(self, key: str) -> Path | None:
        """The blob's path on the local disk if it has one (lets servers use sendfile)."""
        return None

    def iter_bytes(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream a blob in chunks (constant memory)."""
        with self.open(key) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (the store must not be used afterwards)."""


class ArtifactRepository(ABC):
    """Files and folders of an owner (a run id), addressed by a relative POSIX path."""

    @abstractmethod
    def upload(self, owner: str, path: str, src: BinaryIO) -> ArtifactInfo:
        """Store a stream as file ``path`` (constant memory). Overwrites an existing file."""

    @abstractmethod
    def upload_file(self, owner: str, path: str, local_path: Path) -> ArtifactInfo:
        """Store one local file as ``path``."""

    def upload_dir(self, owner: str, path: str, local_dir: Path) -> list[ArtifactInfo]:
        """Store every file under ``local_dir`` below folder ``path`` (``""`` for the root)."""
        out = []
        for f in sorted(p for p in local_dir.rglob("*") if p.is_file()):
            rel = f.relative_to(local_dir).as_posix()
            out.append(self.upload_file(owner, f"{path}/{rel}" if path else rel, f))
        return out

    @abstractmethod
    def open(self, owner: str, path: str) -> BinaryIO:
        """A readable stream of file ``path``. ``NotFound`` if there is no such file."""

    @abstractmethod
    def list(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        """Immediate children of folder ``path``; an empty list for a file or a missing folder."""

    @abstractmethod
    def stat(self, owner: str, path: str) -> ArtifactInfo:
        """Size and digest of file ``path``. ``NotFound`` if there is no such file."""

    @abstractmethod
    def delete(self, owner: str, path: str = "") -> None:
        """Remove a file or a folder (recursively) and free bytes nothing else references."""

    @abstractmethod
    def free(self, digests: set[str]) -> int:
        """Delete the blobs of ``digests`` that nothing references any more; returns bytes freed."""

    def local_path(self, owner: str, path: str) -> Path | None:
        """The file on local disk holding ``path``'s bytes, if there is one."""
        return None

    def download(self, owner: str, path: str, dest: Path) -> Path:
        """Copy a file or a folder to ``dest`` (a folder, created if missing); returns the copy.

        Each file is written to a temporary name and renamed, so a crash leaves no partial file.
        Every listed path is checked again, so a listing (from a server, say) naming a file
        outside folder ``path`` cannot write outside ``dest``.
        """
        path = clean_path(path, allow_root=True)
        dest.mkdir(parents=True, exist_ok=True)
        children = self.list(owner, path)
        if not children:
            target = dest / (path.rsplit("/", 1)[-1] or "artifacts")
            self._download_file(owner, path, target)
            return target
        root = dest / (path.rsplit("/", 1)[-1] if path else "artifacts")
        stack = list(children)
        while stack:
            item = stack.pop()
            item_path = clean_path(item.path)
            if path and not item_path.startswith(f"{path}/"):
                raise InvalidArtifactPath(
                    f"the listing of folder {path!r} of {owner} names {item.path!r}, which is "
                    "not inside it; the artifact store answered wrongly, nothing more was copied."
                )
            rel = item_path[len(path) + 1 :] if path else item_path
            if item.is_dir:
                stack.extend(self.list(owner, item_path))
            else:
                self._download_file(owner, item_path, root / rel)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _download_file(self, owner: str, path: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        try:
            with self.open(owner, path) as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK_SIZE):
                    out.write(chunk)
            tmp.replace(target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
