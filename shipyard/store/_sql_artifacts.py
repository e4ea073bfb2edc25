"""The artifact index in SQL: which path of which owner (a run id) holds which content digest.

Folders are implied by ``/`` in paths. Everything below folder ``d`` is found with the range
``d/ <= path < d0`` (``0`` is the character after ``/``), which walks the primary key index
``(owner_id, path)``. On PostgreSQL the comparison uses the byte-order collation ``"C"`` so that
the range means the same thing whatever the database's locale.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from shipyard.entities import ArtifactInfo
from shipyard.errors import Conflict
from shipyard.store._sql_common import chunks, now_ms, upsert
from shipyard.store.schema import artifacts

_a = artifacts.c


def _path(dialect: str) -> ColumnElement[str]:
    return _a.path.collate("C") if dialect == "postgresql" else _a.path


def _below(dialect: str, folder: str) -> ColumnElement[bool]:
    """Paths strictly inside ``folder`` (every path when ``folder`` is the root, ``""``)."""
    if not folder:
        return sa.true()
    path = _path(dialect)
    return sa.and_(path >= folder + "/", path < folder + "0")


def _info(row: Any) -> ArtifactInfo:
    return ArtifactInfo(path=row.path, is_dir=False, file_size=row.size, digest=row.digest)


def record(
    conn: Connection, dialect: str, owner: str, path: str, digest: str, size: int
) -> ArtifactInfo:
    """Point ``path`` at ``digest``; a file can't sit where a folder is, or below a file."""
    parts = path.split("/")
    ancestors = ["/".join(parts[:i]) for i in range(1, len(parts))]
    if ancestors:
        blocking = conn.scalar(
            sa.select(_a.path).where(_a.owner_id == owner, _a.path.in_(ancestors)).limit(1)
        )
        if blocking is not None:
            raise Conflict(
                f"artifact {path!r} can't be stored because {blocking!r} is a file, not a "
                "folder. Delete that file first, or choose another path."
            )
    below = conn.scalar(
        sa.select(_a.path).where(_a.owner_id == owner, _below(dialect, path)).limit(1)
    )
    if below is not None:
        raise Conflict(
            f"artifact {path!r} can't be stored because {path!r} is a folder (it holds "
            f"{below!r}). Delete the folder first, or choose another path."
        )
    now = now_ms()
    stmt = upsert(dialect, artifacts).values(
        owner_id=owner, path=path, digest=digest, size=size, created_time=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[_a.owner_id, _a.path],
        set_={"digest": digest, "size": size, "created_time": now},
    )
    conn.execute(stmt)
    return ArtifactInfo(path=path, is_dir=False, file_size=size, digest=digest)


def get(conn: Connection, owner: str, path: str) -> ArtifactInfo | None:
    row = conn.execute(
        sa.select(_a.path, _a.size, _a.digest).where(_a.owner_id == owner, _a.path == path)
    ).first()
    return _info(row) if row is not None else None


def children(conn: Connection, dialect: str, owner: str, folder: str) -> list[ArtifactInfo]:
    """Files directly in ``folder`` (sorted), then its sub-folders (sorted)."""
    query = (
        sa.select(_a.path, _a.size, _a.digest)
        .where(_a.owner_id == owner, _below(dialect, folder))
        .order_by(_path(dialect))
    )
    prefix = f"{folder}/" if folder else ""
    files: list[ArtifactInfo] = []
    folders: dict[str, None] = {}
    for row in conn.execute(query):
        rest = row.path[len(prefix) :]
        name, sep, _ = rest.partition("/")
        if sep:
            folders[prefix + name] = None
        else:
            files.append(_info(row))
    return files + [ArtifactInfo(path=p, is_dir=True) for p in sorted(folders)]


def delete(conn: Connection, dialect: str, owner: str, path: str) -> set[str]:
    """Remove a file, or a folder with everything below it; the digests they pointed at."""
    where = sa.and_(
        _a.owner_id == owner,
        _below(dialect, path) if not path else sa.or_(_a.path == path, _below(dialect, path)),
    )
    digests = set(conn.scalars(sa.select(_a.digest).where(where).distinct()))
    if digests:
        conn.execute(sa.delete(artifacts).where(where))
    return digests


def delete_owners(conn: Connection, owners: sa.Select[Any] | list[str]) -> set[str]:
    """Remove every entry of the given owners (ids or a subquery of ids); their digests."""
    where = _a.owner_id.in_(owners)
    digests = set(conn.scalars(sa.select(_a.digest).where(where).distinct()))
    conn.execute(sa.delete(artifacts).where(where))
    return digests


def referenced(conn: Connection, digests: set[str]) -> set[str]:
    """Those of ``digests`` that some entry points at."""
    found: set[str] = set()
    for chunk in chunks(sorted(digests)):
        found.update(conn.scalars(sa.select(_a.digest).where(_a.digest.in_(chunk)).distinct()))
    return found


def referenced_after(conn: Connection, after: str | None, limit: int) -> list[str]:
    """The next ``limit`` distinct referenced digests greater than ``after``, in order."""
    query = sa.select(_a.digest).distinct().order_by(_a.digest).limit(limit)
    if after is not None:
        query = query.where(_a.digest > after)
    return list(conn.scalars(query))


def iter_all(read: Any, page: int = 1000) -> Iterator[str]:
    """Every referenced digest, a page per short read transaction (``read`` = Database.read)."""
    after: str | None = None
    while True:
        batch: list[str] = read(lambda conn, start=after: referenced_after(conn, start, page))
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1]
