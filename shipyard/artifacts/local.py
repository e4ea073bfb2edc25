"""A byte store in a local folder: one file per blob, written atomically.

A blob ``a/b/c`` is the file ``<root>/a/b/c``. Writers never expose a partial file: the bytes go
to a temporary name in the target's folder (:data:`_TMP_RE` names, skipped by :meth:`list`), are
flushed to disk, and are renamed over the target in one step. A file that is already on the same
file system is renamed without copying.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shipyard.artifacts.base import BlobInfo, ByteStore
from shipyard.artifacts.paths import clean_path
from shipyard.errors import InvalidInput, NotFound, StoreUnavailable

_TMP_PREFIX = ".shipyard-tmp-"
_TMP_RE = re.compile(r"^\.shipyard-tmp-[0-9a-f]{32}$")
_FILE_MODE = 0o644


class LocalByteStore(ByteStore):
    """Blobs as files below ``root`` (created on the first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = self.root.as_uri()

    def __repr__(self) -> str:
        return f"LocalByteStore({str(self.root)!r})"

    # ---------------------------------------------------------------- writes

    def put_file(self, key: str, local_path: Path) -> None:
        """Move (same file system) or copy ``local_path`` to ``key``, flushed and atomic."""
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.stat(local_path).st_dev == os.stat(target.parent).st_dev:
                _fsync_file(local_path)
                try:
                    os.replace(local_path, target)
                except OSError as exc:  # same device, different mount: copy after all
                    if exc.errno != errno.EXDEV:
                        raise
                    self._copy_into(local_path, target)
            else:
                self._copy_into(local_path, target)
            _fsync_dir(target.parent)
        except FileNotFoundError as exc:
            if not Path(local_path).exists():
                raise NotFound(f"cannot store {local_path}: the file does not exist.") from exc
            raise self._unavailable("write", key, exc) from exc
        except OSError as exc:
            raise self._unavailable("write", key, exc) from exc

    def _copy_into(self, source: Path, target: Path) -> None:
        """Copy ``source`` next to ``target`` under a temporary name, flush, rename."""
        tmp = target.with_name(f"{_TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(dst.fileno())
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        """Remove a blob; a missing one is fine. Empty folders are left (a writer may use them)."""
        try:
            self._path(key).unlink(missing_ok=True)
        except IsADirectoryError:
            return
        except OSError as exc:
            raise self._unavailable("delete", key, exc) from exc

    # ---------------------------------------------------------------- reads

    def open(self, key: str) -> BinaryIO:
        """The blob's file, opened for reading. ``NotFound`` if there is no such blob."""
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no blob {key!r} in the artifact store at {self.root}.") from None
        except OSError as exc:
            raise self._unavailable("read", key, exc) from exc

    def exists(self, key: str) -> bool:
        """Whether the blob's file exists."""
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Blobs whose key starts with ``prefix``, streamed folder by folder (names sorted)."""
        folder, _, name_start = prefix.rpartition("/")
        start = self._path(folder) if folder else self.root
        if not start.is_dir():
            return
        with os.scandir(start) as it:
            entries = sorted((e for e in it if e.name.startswith(name_start)), key=lambda e: e.name)
        base = f"{folder}/" if folder else ""
        for entry in entries:
            yield from self._walk(entry, base + entry.name)

    def _walk(self, entry: os.DirEntry[str], key: str) -> Iterator[BlobInfo]:
        if entry.is_dir(follow_symlinks=False):
            with os.scandir(entry.path) as it:
                children = sorted(it, key=lambda e: e.name)
            for child in children:
                yield from self._walk(child, f"{key}/{child.name}")
        elif entry.is_file() and not _TMP_RE.match(entry.name):
            try:
                st = entry.stat()
            except FileNotFoundError:  # deleted while listing
                return
            yield BlobInfo(key=key, size=st.st_size, mtime=st.st_mtime)

    def local_path(self, key: str) -> Path | None:
        """The blob's file, or ``None`` if there is no such blob."""
        path = self._path(key)
        return path if path.is_file() else None

    # ---------------------------------------------------------------- helpers

    def _path(self, key: str) -> Path:
        """The file of ``key``; refuses keys that would leave the root or clash with temp names."""
        cleaned = clean_path(key)
        if _TMP_RE.match(cleaned.rsplit("/", 1)[-1]):
            raise InvalidInput(
                f"blob key {key!r} ends in a name reserved for temporary files "
                f"('{_TMP_PREFIX}...'); choose another key."
            )
        return self.root / cleaned

    def _unavailable(self, action: str, key: str, exc: OSError) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot {action} blob {key!r} in the artifact store at {self.root}: "
            f"{exc.strerror or exc}. Check that the folder exists, is writable and has free space."
        )


def _fsync_file(path: Path) -> None:
    """Make a finished file readable like any blob and flush its bytes before it is renamed."""
    os.chmod(path, _FILE_MODE)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable; skipped where folders cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
