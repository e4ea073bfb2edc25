"""Run artifacts stored by content: bytes once per sha256 in a byte store, paths in the index.

Uploading file ``path`` of an owner (a run id):

1. the source is streamed, 1 MiB at a time, into a temporary file in ``tmp_dir`` while its sha256
   and size are computed (constant memory, whatever the size);
2. unless a blob with that digest is already stored (identical content is kept once), the file
   is put in the byte store under ``sha256/<d[:2]>/<d[2:4]>/<d>``;
3. the metadata store's artifact index points ``path`` at the digest;
4. the blob is checked again, and put back if a concurrent :meth:`free` of the same content
   removed it between steps 2 and 3;
5. when the upload replaced a file with other content, the old content is freed if nothing
   else references it.

A failure at any step removes the temporary file; a blob stored for an index entry that could not
be written is freed again. A killed process leaves its temporary file, and possibly a blob no
index entry references; :func:`shipyard.tracking.gc.collect_garbage` removes both once they are
older than its grace period.

Freeing re-asks the index which digests are unreferenced just before deleting, in small batches,
which keeps the window in which an upload of the same content can race with a delete to
milliseconds; the re-check in step 4 repairs the common case of that race.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts.base import CHUNK_SIZE, ArtifactRepository, BlobInfo, ByteStore
from shipyard.artifacts.paths import clean_path
from shipyard.entities import ArtifactInfo
from shipyard.errors import Conflict, InvalidInput, NotFound, ShipyardError
from shipyard.store.base import TrackingStore

BLOB_PREFIX = "sha256/"
"""Every content-addressed blob's key starts with this."""

_DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_RE = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")
_FREE_BATCH = 500
_SPOOL_PREFIX = "shipyard-upload-"


def blob_key(digest: str) -> str:
    """The byte-store key of a sha256 hex digest: ``sha256/ab/cd/abcd...``."""
    if not _DIGEST_RE.match(digest):
        raise InvalidInput(
            f"{digest!r} is not a sha256 digest; expected 64 lowercase hexadecimal characters."
        )
    return f"{BLOB_PREFIX}{digest[:2]}/{digest[2:4]}/{digest}"


def digest_of_key(key: str) -> str | None:
    """The digest a blob key stores, or ``None`` for a key that is not a content-addressed blob."""
    match = _KEY_RE.match(key)
    if not match or not match[3].startswith(match[1] + match[2]):
        return None
    return match[3]


@dataclass(frozen=True, slots=True)
class Freed:
    """What freeing blobs deleted (or, in a dry run, would delete)."""

    blobs_deleted: int = 0
    bytes_freed: int = 0

    def __add__(self, other: Freed) -> Freed:
        return Freed(self.blobs_deleted + other.blobs_deleted, self.bytes_freed + other.bytes_freed)


class ContentAddressedRepository(ArtifactRepository):
    """Artifacts of owners indexed in ``store``, their bytes kept once per digest in ``blobs``.

    ``tmp_dir`` receives uploads while they are hashed; on the same file system as a local byte
    store, finished uploads are renamed into place rather than copied.
    """

    def __init__(self, store: TrackingStore, blobs: ByteStore, tmp_dir: Path) -> None:
        self.store = store
        self.blobs = blobs
        self.tmp_dir = Path(tmp_dir)

    def __repr__(self) -> str:
        return f"ContentAddressedRepository(blobs={self.blobs!r})"

    # ---------------------------------------------------------------- writes

    def upload(self, owner: str, path: str, src: BinaryIO) -> ArtifactInfo:
        """Store the stream as file ``path`` of ``owner`` (see the module docstring)."""
        path = clean_path(path)
        previous = self._previous_digest(owner, path)
        spooled, digest, size = self._spool(src)
        handoff: Path | None = None
        try:
            key = blob_key(digest)
            stored_here = False
            if not self.blobs.exists(key):
                handoff = self._handoff(spooled)
                self.blobs.put_file(key, handoff)
                stored_here = True
            try:
                info = self.store.record_artifact(owner, path, digest, size)
            except BaseException:
                if stored_here:
                    with contextlib.suppress(Exception):
                        self.release([digest])
                raise
            if not self.blobs.exists(key):  # a concurrent free removed it: put it back
                self.blobs.put_file(key, spooled)
            if previous is not None and previous != digest:
                # The overwritten content may now be unreferenced. The upload itself succeeded,
                # so a failure here only leaves an orphan for the garbage collector's sweep.
                with contextlib.suppress(ShipyardError):
                    self.free({previous})
            return info
        finally:
            spooled.unlink(missing_ok=True)
            if handoff is not None:
                handoff.unlink(missing_ok=True)

    def upload_file(self, owner: str, path: str, local_path: Path) -> ArtifactInfo:
        """Store the local file ``local_path`` as ``path`` (the local file is left as it is)."""
        local_path = Path(local_path)
        if local_path.is_dir():
            raise InvalidInput(
                f"{local_path} is a folder; upload it with upload_dir, or name a file in it."
            )
        if not local_path.exists():
            raise NotFound(f"cannot upload {local_path}: the file does not exist.")
        with open(local_path, "rb") as src:
            return self.upload(owner, path, src)

    def delete(self, owner: str, path: str = "") -> None:
        """Remove file or folder ``path`` (``""``: everything of the owner) and free its bytes."""
        self.free(self.store.delete_artifacts(owner, clean_path(path, allow_root=True)))

    def free(self, digests: set[str]) -> int:
        """Delete the blobs of ``digests`` that nothing references any more; returns bytes freed."""
        return self.release(digests).bytes_freed

    def release(
        self,
        digests: Iterable[str],
        *,
        sizes: Mapping[str, int] | None = None,
        dry_run: bool = False,
    ) -> Freed:
        """Delete the blobs of ``digests`` that no index entry references, in batches, asking the
        index just before each batch. ``sizes`` (digest -> bytes) spares a size lookup per blob;
        with ``dry_run`` nothing is deleted and the result says what would have been."""
        freed = Freed()
        it = iter(digests)
        while batch := set(itertools.islice(it, _FREE_BATCH)):
            for digest in sorted(self.store.unreferenced_digests(batch)):
                key = blob_key(digest)
                size = sizes[digest] if sizes and digest in sizes else self._blob_size(key)
                if size is None:  # already gone
                    continue
                if not dry_run:
                    self.blobs.delete(key)
                freed += Freed(1, size)
        return freed

    # ---------------------------------------------------------------- reads

    def open(self, owner: str, path: str) -> BinaryIO:
        """A readable stream of file ``path``. ``NotFound`` if there is no such file."""
        info = self.stat(owner, path)
        digest = _digest(info, owner)
        try:
            return self.blobs.open(blob_key(digest))
        except NotFound:
            raise NotFound(
                f"artifact {info.path!r} of {owner} is indexed, but its bytes (sha256 {digest}) "
                f"are missing from {self.blobs.uri}; upload the file again, or delete the entry."
            ) from None

    def list(self, owner: str, path: str = "") -> list[ArtifactInfo]:
        """Immediate children of folder ``path`` (``""``: the owner's root)."""
        return self.store.list_artifacts(owner, clean_path(path, allow_root=True))

    def stat(self, owner: str, path: str) -> ArtifactInfo:
        """Size and digest of file ``path``. ``NotFound`` if there is no such file."""
        return self.store.get_artifact(owner, clean_path(path))

    def local_path(self, owner: str, path: str) -> Path | None:
        """The local file holding ``path``'s bytes (local byte stores only), else ``None``."""
        return self.blobs.local_path(blob_key(_digest(self.stat(owner, path), owner)))

    def remove_stale_uploads(self, older_than_s: float) -> int:
        """Delete upload spool files that a killed process left in ``tmp_dir`` and that are older
        than ``older_than_s`` seconds (younger ones may belong to an upload in progress); returns
        how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for spooled in self.tmp_dir.glob(f"{_SPOOL_PREFIX}*"):
            try:
                if spooled.is_file() and spooled.stat().st_mtime < cutoff:
                    spooled.unlink()
                    removed += 1
            except FileNotFoundError:  # its upload finished meanwhile
                continue
        return removed

    def iter_blobs(self) -> Iterator[tuple[str, BlobInfo]]:
        """Every content-addressed blob in the byte store, as ``(digest, info)``."""
        for info in self.blobs.list(BLOB_PREFIX):
            digest = digest_of_key(info.key)
            if digest is not None:
                yield digest, info

    def close(self) -> None:
        """Release the byte store's connections (the metadata store is closed by its owner)."""
        self.blobs.close()

    # ---------------------------------------------------------------- helpers

    def _previous_digest(self, owner: str, path: str) -> str | None:
        """The digest file ``path`` holds now (``None`` if it is new). ``Conflict`` if ``path`` is
        a folder, or lies below a path that is a file."""
        try:
            return self.store.get_artifact(owner, path).digest
        except NotFound:
            pass
        if self.store.list_artifacts(owner, path):
            raise Conflict(
                f"artifact path {path!r} of {owner} is a folder, so it cannot also be a file; "
                f"upload to a path inside it (such as '{path}/file') or delete the folder first."
            )
        parts = path.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            try:
                self.store.get_artifact(owner, ancestor)
            except NotFound:
                continue
            raise Conflict(
                f"cannot upload {path!r} to {owner}: {ancestor!r} is a file, so it cannot be a "
                f"folder. Delete {ancestor!r} first, or choose another path."
            )
        return None

    def _spool(self, src: BinaryIO) -> tuple[Path, str, int]:
        """Copy ``src`` to a temporary file, hashing as it goes: (file, sha256 hex, size)."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=_SPOOL_PREFIX, suffix=".part", dir=self.tmp_dir)
        spooled = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK_SIZE):
                    if not isinstance(chunk, bytes | bytearray | memoryview):
                        raise InvalidInput(
                            f"the upload source returned {type(chunk).__name__}, not bytes; "
                            "open files in binary mode ('rb')."
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        except BaseException:
            spooled.unlink(missing_ok=True)
            raise
        return spooled, digest.hexdigest(), size

    @staticmethod
    def _handoff(spooled: Path) -> Path:
        """A second name for the spooled file for the byte store to take (it may move it), so
        the spooled bytes stay at hand for the re-check after indexing."""
        handoff = spooled.with_suffix(".put")
        try:
            os.link(spooled, handoff)
        except OSError:  # no hard links on this file system
            shutil.copyfile(spooled, handoff)
        return handoff

    def _blob_size(self, key: str) -> int | None:
        return next((info.size for info in self.blobs.list(key) if info.key == key), None)


def _digest(info: ArtifactInfo, owner: str) -> str:
    if not info.digest:
        raise NotFound(
            f"artifact {info.path!r} of {owner} has no content digest; upload the file again."
        )
    return info.digest
