"""Back up and restore a workspace: its metadata and its artifact bytes, while a server runs.

A backup is a folder::

    manifest.json        what was backed up: format, Shipyard version, schema revision, counts
    metadata.sqlite      SQLite: a page-consistent copy made with SQLite's online backup API
    metadata.pgdump      PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot)
    blobs/sha256/...     every artifact blob, by content digest (the byte store's own keys)

The folder is made readable by its owner only (``0700``): it holds the users' password hashes
and every artifact. ``pg_dump`` and ``pg_restore`` get the database password through
``PGPASSWORD``, never on their command line.

Consistency while writes go on: the metadata snapshot is taken first, then the blobs are
copied. Artifact bytes are written before the index rows that name them, and blobs are immutable
and content-addressed, so every blob the snapshot references is already in the store when the
copy starts; only garbage collection could remove one meanwhile, and it keeps unreferenced bytes
for ``SHIPYARD_GC_GRACE_SECONDS`` (default an hour). For SQLite the backup then checks that
every digest its snapshot references was copied (and copies late ones), so a backup that
reports success is complete.

:func:`restore` goes into an *empty* workspace (no metadata tables, no blobs): the SQLite file
is copied into place, a PostgreSQL dump is loaded with ``pg_restore``; blobs are put into the
target's byte store (a folder or S3). The restored database keeps its schema revision;
``shipyard db upgrade`` moves it to this version's head if it is older.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shipyard._version import __version__
from shipyard.artifacts.base import ByteStore
from shipyard.artifacts.cas import digest_of_key
from shipyard.config import Settings
from shipyard.errors import InvalidInput, MissingDependency, ShipyardError

FORMAT = "shipyard-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "metadata.sqlite"
PG_FILE = "metadata.pgdump"
BLOBS = "blobs"

Progress = Callable[[int, int], None]
"""``progress(done, total)`` while blobs are copied."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    backend: str
    revision: str | None
    blobs: int
    bytes: int
    seconds: float


@dataclass(frozen=True, slots=True)
class RestoreReport:
    home: Path
    backend: str
    revision: str | None
    blobs: int
    bytes: int


def _backend(url: str) -> str:
    from shipyard.store.db import engine_url

    return engine_url(url).get_backend_name()


def _sqlite_path(url: str) -> Path:
    from shipyard.store.db import engine_url

    database = engine_url(url).database
    if not database or database == ":memory:":
        raise InvalidInput(f"{url} is not a SQLite file; back up a file database.")
    return Path(database)


def _libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL of ``url`` without its password, and the environment carrying it
    (``PGPASSWORD``): a command line is readable by every local user (``ps``), the environment
    of another user's process is not."""
    from shipyard.store.db import engine_url

    parsed = engine_url(url).set(drivername="postgresql")
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    bare = sa.engine.URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    return bare.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingDependency(
            f"{name} is not on PATH, and backing up or restoring PostgreSQL needs it. Install "
            "the PostgreSQL client tools of your server's major version (Debian: apt-get "
            "install postgresql-client)."
        )
    return found


def _run(cmd: list[str], what: str, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise ShipyardError(
            f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}. Check that "
            "the client tools' major version is at least the server's."
        )


def _revision_of_sqlite(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            return None
    return str(row[0]) if row else None


def _sqlite_digests(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {str(r[0]) for r in conn.execute("SELECT DISTINCT digest FROM artifacts")}


def _copy_blob(source: ByteStore, key: str, target: Path) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    size = 0
    with open(partial, "wb") as out:
        for chunk in source.iter_bytes(key):
            out.write(chunk)
            size += len(chunk)
    partial.replace(target)
    return size


def backup(settings: Settings, dest: Path, *, progress: Progress | None = None) -> BackupReport:
    """Back up the workspace ``settings`` names into the new folder ``dest``."""
    from shipyard.artifacts.cas import blob_key
    from shipyard.artifacts.registry import open_byte_store
    from shipyard.store.db import current_revision

    if settings.is_remote:
        raise InvalidInput(
            "Back up on the server's host: give the database URI (--tracking-uri sqlite:///... "
            "or postgresql://...), not the server's http address."
        )
    dest = dest.absolute()
    if dest.exists() and any(dest.iterdir()):
        raise InvalidInput(f"{dest} is not empty; back up into a new or empty folder.")
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    # The backup holds password hashes, token digests and every artifact: owner only.
    dest.chmod(0o700)
    backend = _backend(settings.tracking_uri)
    if backend == "sqlite":
        source_path = _sqlite_path(settings.tracking_uri)
        if not source_path.exists():
            raise InvalidInput(f"There is no database at {source_path}; nothing to back up.")
        target = dest / SQLITE_FILE
        with sqlite3.connect(source_path, timeout=60) as src, sqlite3.connect(target) as dst:
            src.backup(dst)  # online: a consistent copy while other connections write
        revision = _revision_of_sqlite(target)
    else:
        revision = current_revision(settings.tracking_uri)
        libpq_url, env = _libpq_target(settings.tracking_uri)
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                "--file",
                str(dest / PG_FILE),
                libpq_url,
            ],
            "pg_dump",
            env,
        )
    blobs = open_byte_store(settings.artifact_uri, settings)
    try:
        keys = [b.key for b in blobs.list("sha256/")]
        total_bytes = 0
        copied: set[str] = set()
        for i, key in enumerate(keys, start=1):
            total_bytes += _copy_blob(blobs, key, dest / BLOBS / key)
            copied.add(key)
            if progress is not None:
                progress(i, len(keys))
        if backend == "sqlite":
            for digest in _sqlite_digests(dest / SQLITE_FILE):
                try:
                    key = blob_key(digest)
                except (InvalidInput, ValueError):
                    continue  # index rows recorded through the admin API may name other digests
                if key in copied:
                    continue
                if not blobs.exists(key):
                    raise ShipyardError(
                        f"The snapshot references blob {digest}, which left the artifact store "
                        "while the backup ran (garbage collection?). Run the backup again."
                    )
                total_bytes += _copy_blob(blobs, key, dest / BLOBS / key)
                copied.add(key)
    finally:
        blobs.close()
    seconds = time.monotonic() - started
    manifest = {
        "format": FORMAT,
        "shipyard_version": __version__,
        "backend": backend,
        "revision": revision,
        "created": int(time.time() * 1000),
        "blobs": len(copied),
        "bytes": total_bytes,
        "metadata_sha256": _sha256(dest / (SQLITE_FILE if backend == "sqlite" else PG_FILE)),
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BackupReport(dest, backend, revision, len(copied), total_bytes, seconds)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src``, checked."""
    path = src / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        raise InvalidInput(
            f"{src} holds no readable {MANIFEST}: it is not a Shipyard backup (or an "
            "unfinished one)."
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a {FORMAT} manifest; this Shipyard can't restore it.")
    meta = src / (SQLITE_FILE if manifest.get("backend") == "sqlite" else PG_FILE)
    if not meta.exists() or _sha256(meta) != manifest.get("metadata_sha256"):
        raise InvalidInput(
            f"{meta} is missing or does not match the manifest's checksum; the backup is damaged."
        )
    return manifest


def _refuse_used_metadata(settings: Settings, backend: str) -> None:
    """``InvalidInput`` unless the target's metadata database is empty (blobs left by a restore
    that failed before its database went in are fine: the same ones go in again)."""
    from shipyard.store.db import create_engine

    if backend == "sqlite":
        target = _sqlite_path(settings.tracking_uri)
        if target.exists() and target.stat().st_size > 0:
            raise InvalidInput(
                f"{target} already exists; restore into an empty workspace (a new --home)."
            )
        return
    engine = create_engine(settings.tracking_uri, pool_size=1)
    try:
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise InvalidInput(
            f"The target database already has tables ({', '.join(sorted(tables)[:5])}"
            "...); restore into an empty database."
        )


def _restore_metadata(settings: Settings, backend: str, src: Path) -> None:
    """The database, in one step: a file renamed into place, or one ``pg_restore``."""
    if backend == "sqlite":
        target = _sqlite_path(settings.tracking_uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(src / SQLITE_FILE, partial)
        partial.replace(target)
        return
    libpq_url, env = _libpq_target(settings.tracking_uri)
    _run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            libpq_url,
            str(src / PG_FILE),
        ],
        "pg_restore",
        env,
    )


def restore(settings: Settings, src: Path, *, progress: Progress | None = None) -> RestoreReport:
    """Restore the backup in ``src`` into the empty workspace ``settings`` names."""
    from shipyard.artifacts.registry import open_byte_store

    if settings.is_remote:
        raise InvalidInput("Restore on the server's host, into a database URI, not over HTTP.")
    src = src.absolute()
    manifest = read_manifest(src)
    backend = _backend(settings.tracking_uri)
    if backend != manifest["backend"]:
        raise InvalidInput(
            f"The backup holds a {manifest['backend']} database and the target is {backend}; "
            "restore into the same kind of database."
        )
    blobs = open_byte_store(settings.artifact_uri, settings)
    try:
        # The metadata goes in last: until it does, the workspace is empty to every reader, and
        # a restore that failed half-way (blobs in, no database) can simply be run again.
        _refuse_used_metadata(settings, backend)
        files = sorted(p for p in (src / BLOBS).rglob("*") if p.is_file())
        total = 0
        settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(files, start=1):
            key = path.relative_to(src / BLOBS).as_posix()
            digest = digest_of_key(key)
            if digest is None:
                raise InvalidInput(
                    f"{path} is not a content-addressed blob of a Shipyard backup; restore from "
                    "the folder `shipyard backup` wrote, unchanged."
                )
            # put_file may move its file: hand it a copy, so the backup stays whole.
            staged = settings.tmp_dir / f"restore-{i}.blob"
            try:
                with path.open("rb") as source, staged.open("wb") as copy:
                    hasher = hashlib.sha256()
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        hasher.update(chunk)
                        copy.write(chunk)
                if hasher.hexdigest() != digest:
                    raise InvalidInput(
                        f"{path} does not hold the bytes its name says (sha256 "
                        f"{hasher.hexdigest()}); the backup is damaged, so nothing was restored "
                        "into the database. Restore from an intact copy."
                    )
                total += staged.stat().st_size
                blobs.put_file(key, staged)
            finally:
                staged.unlink(missing_ok=True)
            if progress is not None:
                progress(i, len(files))
        _restore_metadata(settings, backend, src)
    finally:
        blobs.close()
    return RestoreReport(settings.home, backend, manifest.get("revision"), len(files), total)
