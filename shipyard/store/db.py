"""The metadata database: engines, transactions, error translation and the schema lifecycle.

One :class:`Database` wraps the SQLAlchemy engine for a URL (``sqlite:///path`` or
``postgresql://...``) and runs every unit of work as a function inside one transaction
(:meth:`Database.read` / :meth:`Database.write`). That is where three things happen once for
every store method:

* **SQLite concurrency.** Connections are in autocommit mode at the driver level and Shipyard
  emits ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for writes (the write lock is taken up front, so
  concurrent writers queue on the 60 s busy timeout instead of failing with "database is
  locked" when a read transaction tries to turn into a write one) and plain ``BEGIN`` for reads.
  The file runs in WAL mode, so readers never wait for writers.
* **Retries.** A write that still meets a lock (SQLite), a serialization failure or a deadlock
  (PostgreSQL) is run again from the start a few times.
* **Errors.** Database exceptions become :mod:`shipyard.errors` classes with a message that names
  the database (password hidden) and says what to do; SQLAlchemy exceptions never escape.
* **Checkpoints off the request path (SQLite).** A commit in WAL mode appends the changed pages
  to the ``-wal`` file; copying them back into the database file (a *checkpoint*, with two
  fsyncs) is what SQLite does inline in the commit that crosses its threshold, which made every
  fifteenth log-batch several times slower than the others. A :class:`_Checkpointer` thread per
  database runs passive checkpoints instead, after every :data:`CHECKPOINT_EVERY_COMMITS`
  commits or within :data:`CHECKPOINT_AFTER_S` of the last one; SQLite's own inline checkpoint
  stays as the backstop at :data:`SQLITE_WAL_BACKSTOP_PAGES` pages, so the log stays bounded
  even when the thread falls behind. Durability is unchanged: a commit still writes its pages
  to the log before it returns.
* **No-wait transactions.** Inside :meth:`Database.no_wait` a SQLite transaction that meets
  another writer's lock does not wait: it raises :class:`WouldBlock` at once, before anything
  is written. The server uses it to run short logging calls on its event loop, where waiting
  is not allowed, and runs the call again in a worker thread when it would block.

Schema lifecycle (:func:`ensure_schema`): an empty database gets the tables of
:mod:`shipyard.store.schema` and the revision :data:`~shipyard.store.schema.HEAD_REVISION` in one
transaction; a database at another revision, or with Shipyard tables but no revision, raises
:class:`~shipyard.errors.MigrationRequired` naming both revisions and ``shipyard db upgrade``.
:func:`upgrade` migrates with Alembic; a database without a revision is first stamped with the
revision whose tables and columns it has (and refused if it matches none).
Alembic is imported only by :func:`upgrade` and :func:`current_revision`, never on the normal
open path.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from shipyard import errors
from shipyard.store import schema

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60
SQLITE_WAL_BACKSTOP_PAGES = 4096
"""``wal_autocheckpoint``: the log size (pages of 4 KiB, so 64 MiB) at which a commit
checkpoints inline, when the background checkpoints have not kept up."""
CHECKPOINT_EVERY_COMMITS = 16
"""Commits after which the background thread checkpoints at once."""
CHECKPOINT_AFTER_S = 1.0
"""Seconds after a commit within which the background thread checkpoints."""
UPGRADE_COMMAND = "shipyard db upgrade"

_WRITE_OPTION = "shipyard_write"
_RETRIES = 6
_FIRST_BACKOFF_S = 0.05
# Key of the transaction-scoped advisory lock that serializes schema creation and upgrades on
# PostgreSQL (any constant that fits a bigint; this one spells "SHIPYARD").
_PG_SCHEMA_LOCK = 0x5348495059415244
_PG_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_SQLITE_LOCKED = ("database is locked", "database table is locked", "database schema is locked")
_NO_WAIT: ContextVar[bool] = ContextVar("shipyard_db_no_wait", default=False)
_BUSY_TIMEOUT_KEY = "shipyard_busy_timeout_ms"


class WouldBlock(Exception):
    """A transaction run inside :meth:`Database.no_wait` met a lock; nothing was written.

    Not a :class:`~shipyard.errors.ShipyardError`: it never reaches a user. Run the same unit of
    work again outside ``no_wait`` (in a thread that may wait)."""


# Alembic's own bookkeeping table, declared here with Alembic's exact definition so that an
# empty database can be stamped without importing Alembic. Not part of ``schema.metadata``.
version_table = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def engine_url(url: str) -> sa.URL:
    """Parse a tracking URI into a SQLAlchemy URL, choosing the psycopg 3 driver for PostgreSQL."""
    try:
        parsed = sa.make_url(url)
    except sa_exc.ArgumentError:
        raise errors.InvalidInput(
            f"{url!r} is not a database URL; use sqlite:///path/to/shipyard.db or "
            "postgresql://user@host:5432/dbname."
        ) from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    raise errors.InvalidInput(
        f"database URL {parsed.render_as_string(hide_password=True)!r} has the unsupported "
        f"scheme {parsed.drivername!r}; Shipyard stores metadata in SQLite (sqlite:///path) or "
        "PostgreSQL (postgresql://user@host/dbname)."
    )


def display_url(url: str | sa.URL) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except sa_exc.ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def create_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine for ``url`` with Shipyard's connection settings (see the module docstring).

    Use ``engine.execution_options(shipyard_write=True)`` for write transactions: on SQLite they
    start with ``BEGIN IMMEDIATE``.
    """
    parsed = engine_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise errors.missing_extra("psycopg", "postgres") from None
    return sa.create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={"connect_timeout": 10, "application_name": "shipyard"},
    )


def _sqlite_engine(parsed: sa.URL) -> Engine:
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    connect_args: dict[str, Any] = {
        "check_same_thread": False,
        "timeout": SQLITE_BUSY_TIMEOUT_S,
        "isolation_level": None,  # autocommit in the driver; BEGIN comes from _begin below
    }
    if in_memory:
        # One shared connection, so every user of the engine sees the same database.
        engine = sa.create_engine(parsed, connect_args=connect_args, poolclass=StaticPool)
    else:
        Path(database).expanduser().absolute().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
            if not in_memory:
                cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_BACKSTOP_PAGES}")
                (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    _retry_locked(lambda: cursor.execute("PRAGMA journal_mode = WAL").fetchone())
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # No-wait transactions fail at once on a lock; the others wait up to the busy timeout.
        # The setting stays on the connection, so it is only sent when it changes.
        busy_ms = 0 if _NO_WAIT.get() else SQLITE_BUSY_TIMEOUT_S * 1000
        if conn.info.get(_BUSY_TIMEOUT_KEY, SQLITE_BUSY_TIMEOUT_S * 1000) != busy_ms:
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {busy_ms}")
            conn.info[_BUSY_TIMEOUT_KEY] = busy_ms
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _retry_locked(fn: Callable[[], object]) -> None:
    """Run a connection-setup statement, waiting out another process holding the file lock."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            fn()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01 + random.random() * 0.05)


class Database:
    """The engine for one metadata database, running units of work in transactions."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = display_url(engine_url(url))
        self.engine = create_engine(url, pool_size=pool_size)
        self.dialect: str = self.engine.dialect.name
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        database = self.engine.url.database or ""
        self.supports_no_wait = self.dialect == "sqlite" and not (
            database in ("", ":memory:") or database.startswith("file::memory:")
        )
        """Whether :meth:`no_wait` applies: a SQLite file (not PostgreSQL, whose waits are
        network round trips and row locks, nor a shared in-memory database)."""
        self._checkpointer = (
            _Checkpointer(Path(database).expanduser().absolute()) if self.supports_no_wait else None
        )

    @staticmethod
    @contextmanager
    def no_wait() -> Iterator[None]:
        """Within this block (on this thread or task), transactions on a database that
        :attr:`supports_no_wait` raise :class:`WouldBlock` instead of waiting for a lock, and
        are not retried. Elsewhere it changes nothing."""
        token = _NO_WAIT.set(True)
        try:
            yield
        finally:
            _NO_WAIT.reset(token)

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in a read transaction and return its result."""
        return self._run(self.engine, fn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in a write transaction, committed if it returns.

        ``fn`` may be called again (from the start, in a new transaction) when the database
        reports a lock, a serialization failure or a deadlock, so it must not have side effects
        outside the database. A :class:`~shipyard.errors.ShipyardError` it raises rolls the
        transaction back and reaches the caller unchanged.
        """
        result = self._run(self._write_engine, fn)
        if self._checkpointer is not None:
            self._checkpointer.committed()
        return result

    def dispose(self) -> None:
        """Close every pooled connection (and stop the checkpoint thread)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    def _run(self, engine: Engine, fn: Callable[[Connection], T]) -> T:
        delay = _FIRST_BACKOFF_S
        for attempt in range(_RETRIES):
            try:
                with engine.begin() as conn:
                    return fn(conn)
            except sa_exc.DBAPIError as exc:
                if _NO_WAIT.get() and self.supports_no_wait and _is_transient(exc):
                    raise WouldBlock(str(exc.orig)) from exc
                if attempt + 1 < _RETRIES and _is_transient(exc):
                    time.sleep(delay * (1 + random.random()))
                    delay *= 2
                    continue
                raise translate_error(exc, self.url) from exc
            except sa_exc.SQLAlchemyError as exc:
                raise translate_error(exc, self.url) from exc
        raise AssertionError("unreachable")  # pragma: no cover


class _Checkpointer:
    """Passive WAL checkpoints of one SQLite file, in a daemon thread (see the module docstring).

    The thread starts with the first commit (again in a forked child, where it does not exist),
    ends after a quiet :data:`CHECKPOINT_AFTER_S`, and runs each checkpoint on a connection of its own, opened read-write without creating the
    file, so a database removed in the meantime is skipped, never recreated. A checkpoint that
    meets another process's checkpoint, or fails, is left for the next round: it is an
    optimization, and SQLite's inline backstop keeps the log bounded either way.
    """

    def __init__(self, path: Path) -> None:
        self._uri = f"{path.as_uri().replace('file://', 'file:', 1)}?mode=rw"
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pending = 0
        self._stopped = False
        self.checkpoints = 0
        """Checkpoints run so far (for tests and diagnostics)."""

    def committed(self) -> None:
        """Count one commit; start the thread if needed and wake it every so many commits."""
        with self._lock:
            if self._stopped:
                return
            self._pending += 1
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._wake = threading.Event()
                self._thread = threading.Thread(
                    target=self._loop, name="shipyard-sqlite-checkpoint", daemon=True
                )
                self._thread.start()
            if self._pending >= CHECKPOINT_EVERY_COMMITS:
                self._wake.set()

    def stop(self) -> None:
        """Run a last checkpoint and end the thread (it may be started again by a commit)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopped = True
            self._wake.set()
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=SQLITE_BUSY_TIMEOUT_S)
        with self._lock:
            self._stopped = False
            self._pending = 0

    def _loop(self) -> None:
        # Ends once a wait passes without commits (the next commit starts a new thread), so
        # idle or forgotten databases hold no thread.
        wake = self._wake
        while True:
            wake.wait(CHECKPOINT_AFTER_S)
            with self._lock:
                wake.clear()
                pending, self._pending = self._pending, 0
                mine = self._thread is threading.current_thread()
                done = not pending or not mine or self._stopped
                if done and mine:
                    self._thread = None
            if pending:
                self._checkpoint()
            if done:
                return

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self._uri, uri=True, timeout=0, check_same_thread=False)
        except sqlite3.Error:
            return  # the file is gone or unreadable: nothing to checkpoint
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error:
            pass  # another checkpoint is running, or the file went away: the next round
        finally:
            conn.close()


def _is_transient(exc: sa_exc.DBAPIError) -> bool:
    if exc.connection_invalidated:
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _PG_RETRY_SQLSTATES:
        return True
    return isinstance(exc, sa_exc.OperationalError) and any(
        text in str(exc.orig) for text in _SQLITE_LOCKED
    )


def translate_error(exc: sa_exc.SQLAlchemyError, url: str) -> errors.ShipyardError:
    """The Shipyard error for a database exception (what happened and what to do)."""
    orig = getattr(exc, "orig", None)
    reason = (str(orig) if orig is not None else str(exc)).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    if "no such table" in detail or sqlstate == "42P01":
        return errors.MigrationRequired(
            f"The metadata database at {url} is missing Shipyard tables ({detail}). Run "
            f"`{UPGRADE_COMMAND}` to create or migrate them."
        )
    if isinstance(exc, sa_exc.IntegrityError):
        return errors.Conflict(
            f"The metadata database refused the change because it contradicts stored data "
            f"({detail}). Reload the resource and try again."
        )
    if isinstance(exc, sa_exc.DataError):
        return errors.InvalidInput(
            f"The metadata database refused a value ({detail}). Check the lengths and types of "
            "the values sent."
        )
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        if any(text in detail for text in _SQLITE_LOCKED):
            return errors.StoreUnavailable(
                f"The metadata database at {url} stayed locked by other writers for more than "
                f"{SQLITE_BUSY_TIMEOUT_S} s. Retry later; if many processes write at once, move "
                "the metadata to PostgreSQL."
            )
        return errors.StoreUnavailable(
            f"Can't use the metadata database at {url}: {detail}. Check that the database "
            "exists and is reachable and that the URL and credentials are right."
        )
    return errors.ShipyardError(f"The metadata database at {url} failed: {detail}.")


# ---------------------------------------------------------------------------- schema lifecycle


def ensure_schema(db: Database, initialize: Callable[[Connection], None]) -> bool:
    """Create the tables in an empty database, or check that an existing one is current.

    ``initialize(connection)`` runs in the same transaction as the table creation (it writes the
    default rows). Returns whether the tables were created now. Raises
    :class:`~shipyard.errors.MigrationRequired` when the database is at another revision.
    Concurrent first openers are safe: on SQLite the write lock, on PostgreSQL an advisory lock
    lets one of them create the tables while the others wait and then find them.
    """
    revisions = db.read(_read_revisions)
    if revisions is not None:
        check_revisions(revisions, db.url)
        return False

    def create(conn: Connection) -> bool:
        if db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
        found = _read_revisions(conn)
        if found is not None:  # another process created the tables first
            check_revisions(found, db.url)
            return False
        present = set(sa.inspect(conn).get_table_names()) & set(schema.metadata.tables)
        if present:
            head = schema.HEAD_REVISION
            raise errors.MigrationRequired(
                f"The metadata database at {db.url} has Shipyard tables "
                f"({', '.join(sorted(present))}) but no schema revision (database revision: "
                f"none; this version of Shipyard needs revision {head}). Back the database "
                f"up, then run `{UPGRADE_COMMAND}`: it records the revision the tables match "
                "and migrates them to the newest one.",
                details={"database_revision": "none", "code_revision": head},
            )
        schema.metadata.create_all(conn)
        version_table.create(conn)
        conn.execute(version_table.insert().values(version_num=schema.HEAD_REVISION))
        initialize(conn)
        return True

    return db.write(create)


def _read_revisions(conn: Connection) -> list[str] | None:
    if not sa.inspect(conn).has_table(version_table.name):
        return None
    return sorted(conn.scalars(sa.select(version_table.c.version_num)))


def known_revisions() -> set[str]:
    """The revisions this version of Shipyard ships migrations for (file name = revision id)."""
    return {p.stem for p in (MIGRATIONS_DIR / "versions").glob("*.py") if p.stem != "__init__"}


def check_revisions(revisions: list[str], url: str) -> None:
    """Raise :class:`~shipyard.errors.MigrationRequired` unless the database is at the head."""
    if revisions == [schema.HEAD_REVISION]:
        return
    found = ", ".join(revisions) or "none"
    head = schema.HEAD_REVISION
    if revisions and set(revisions) <= known_revisions():
        raise errors.MigrationRequired(
            f"The metadata database at {url} is at schema revision {found}, but this version of "
            f"Shipyard needs revision {head}. Back the database up, then run "
            f"`{UPGRADE_COMMAND}` to migrate it.",
            details={"database_revision": found, "code_revision": head},
        )
    raise errors.MigrationRequired(
        f"The metadata database at {url} is at schema revision {found}, which this version of "
        f"Shipyard (revision {head}) does not know: a newer Shipyard or another program wrote "
        f"it. Upgrade Shipyard (pip install -U shipyard) to use it; `{UPGRADE_COMMAND}` can "
        "only move a database forward from a revision this version knows.",
        details={"database_revision": found, "code_revision": head},
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest) with Alembic.

    An empty database gets every table. Safe to run while other processes use the database:
    the migration runs in one write transaction (and under an advisory lock on PostgreSQL).
    """
    from alembic import command
    from alembic.util import CommandError

    db = Database(url, pool_size=1)

    def run(conn: Connection) -> None:
        if db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
        try:
            if _read_revisions(conn) is None:
                found = _unversioned_revision(conn, db.url)
                if found is not None:
                    command.stamp(alembic_config(conn), found)
            command.upgrade(alembic_config(conn), revision)
        except CommandError as exc:
            raise errors.MigrationRequired(
                f"Can't migrate the metadata database at {db.url}: {exc}. If a newer Shipyard "
                "wrote it, upgrade Shipyard instead."
            ) from None

    try:
        db.write(run)
    finally:
        db.dispose()


def _unversioned_revision(conn: Connection, url: str) -> str | None:
    """The revision whose tables and columns an unversioned database has, or ``None`` if empty.

    Each migration is run on a scratch in-memory SQLite database and compared by table and
    column names (indexes differ between dialects), newest revision first. Raises
    :class:`~shipyard.errors.MigrationRequired` when no revision matches.
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    shipped = set(schema.metadata.tables)
    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    shapes: dict[str, dict[str, frozenset[str]]] = {}
    for rev in revisions:  # newest first
        scratch = Database("sqlite://", pool_size=1)
        try:

            def migrate(conn: Connection, rev: str = rev) -> None:
                command.upgrade(alembic_config(conn), rev)

            scratch.write(migrate)
            shapes[rev] = scratch.read(_table_shape)
        finally:
            scratch.dispose()
        shipped |= set(shapes[rev])
    found = {t: cols for t, cols in _table_shape(conn).items() if t in shipped}
    if not found:
        return None
    for rev in revisions:
        if shapes[rev] == found:
            return rev
    raise errors.MigrationRequired(
        f"The metadata database at {url} has Shipyard tables ({', '.join(sorted(found))}) but "
        f"no schema revision, and its tables and columns match no revision this version of "
        f"Shipyard knows (the newest is {schema.HEAD_REVISION}). Restore it from a backup, or "
        "use an empty database.",
        details={"database_revision": "none", "code_revision": schema.HEAD_REVISION},
    )


def _table_shape(conn: Connection) -> dict[str, frozenset[str]]:
    inspector = sa.inspect(conn)
    return {
        name: frozenset(c["name"] for c in inspector.get_columns(name))
        for name in inspector.get_table_names()
        if name != version_table.name
    }


def current_revision(url: str) -> str | None:
    """The schema revision of the database at ``url`` (``None`` when it has no Shipyard tables)."""
    db = Database(url, pool_size=1)
    try:
        revisions = db.read(_read_revisions)
    finally:
        db.dispose()
    return ", ".join(revisions) if revisions else None


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic ``Config`` for Shipyard's migrations, built in code (no ``alembic.ini``).

    ``connection``, when given, is the one the migrations run on (``env.py`` picks it up).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg
