"""Online stores: the latest feature values per entity, one row per entity per feature view.

A row holds the view's feature values packed as one JSON object, with the event time (which the
read path checks against the view's TTL) and the created time. A write replaces a row only with
a newer one (greater event time, or equal event time and created no earlier), so overlapping or
out-of-order materializations never move a value backwards.

* :class:`SqliteOnlineStore` (the default, ``sqlite:///<home>/features/online.db``): one
  ``WITHOUT ROWID`` table keyed by ``(view, entity_key)``; a read of n keys is one indexed
  ``IN`` query on a per-thread connection.
* :class:`RedisOnlineStore` (``redis://host:port/db``, the ``redis`` extra): one hash per
  entity per view at ``<prefix>:<view>:<entity_key>`` with fields ``e`` (event ms), ``c``
  (created ms) and ``v`` (values); writes go through a Lua script that keeps the newer row.

Entity keys are encoded the same way on both paths (:func:`encode_key`): a lone integer key is
its decimal digits, anything else compact JSON of the key values in join-key order.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from shipyard.errors import InvalidInput, StoreUnavailable, missing_extra

NO_CREATED = -(2**62)
"""The created time stored for rows whose source has none (older than any real one)."""
_SEPARATORS = (",", ":")


def plain_scalar(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (a key taken from a pandas Series or a
    numpy array is ``numpy.int64``, not ``int``); anything else as it is."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def encode_key(values: Sequence[Any]) -> str:
    """The online key of one entity (its join-key values, in order)."""
    if len(values) == 1:
        v = plain_scalar(values[0])
        if type(v) is int:
            return str(v)
        values = [v]
    else:
        values = [plain_scalar(v) for v in values]
    return json.dumps(list(values), separators=_SEPARATORS, ensure_ascii=False)


def pack(values: dict[str, Any]) -> str:
    return json.dumps(values, separators=_SEPARATORS, ensure_ascii=False)


def _loads() -> Any:
    try:  # orjson (the server extra) decodes several times faster; the format is plain JSON
        import orjson

        return orjson.loads
    except ImportError:  # pragma: no cover - the server extra is not installed
        return json.loads


loads = _loads()
"""Decode packed values (or a JSON array of them)."""


Row = tuple[int, str]
"""``(event ms, packed values)`` of one stored entity row."""


class OnlineStore(ABC):
    """Where materialization writes and online reads look."""

    uri: str

    @abstractmethod
    def write(self, view: str, rows: Sequence[tuple[str, int, int, str]]) -> int:
        """Upsert ``(entity key, event ms, created ms, packed values)`` rows, keeping the newer
        row per key; how many rows were taken."""

    @abstractmethod
    def read(self, view: str, keys: Sequence[str]) -> list[Row | None]:
        """The stored row of each key (None where there is none), in the keys' order."""

    @abstractmethod
    def delete_view(self, view: str) -> int:
        """Forget every row of a view; how many there were (where the store can tell)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class SqliteOnlineStore(OnlineStore):
    """The online store in one SQLite file (WAL, one connection per thread)."""

    _DDL = (
        "CREATE TABLE IF NOT EXISTS online_features (view TEXT NOT NULL, entity_key TEXT NOT "
        "NULL, event_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, value TEXT NOT NULL, "
        "PRIMARY KEY (view, entity_key)) WITHOUT ROWID"
    )
    _UPSERT = (
        "INSERT INTO online_features (view, entity_key, event_ms, created_ms, value) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (view, entity_key) DO UPDATE SET "
        "event_ms = excluded.event_ms, created_ms = excluded.created_ms, value = excluded.value "
        "WHERE excluded.event_ms > online_features.event_ms OR (excluded.event_ms = "
        "online_features.event_ms AND excluded.created_ms >= online_features.created_ms)"
    )
    _ONE = "SELECT event_ms, value FROM online_features WHERE view = ? AND entity_key = ?"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.uri = f"sqlite:///{self.path}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().execute(self._DDL)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def write(self, view: str, rows: Sequence[tuple[str, int, int, str]]) -> int:
        conn = self._conn()
        with conn:
            before = conn.total_changes
            conn.executemany(self._UPSERT, [(view, *r) for r in rows])
            return conn.total_changes - before

    def read(self, view: str, keys: Sequence[str]) -> list[Row | None]:
        conn = self._conn()
        if len(keys) == 1:
            row = conn.execute(self._ONE, (view, keys[0])).fetchone()
            return [row]
        found: dict[str, Row] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = conn.execute(
                "SELECT entity_key, event_ms, value FROM online_features WHERE view = ? AND "
                f"entity_key IN ({','.join('?' * len(chunk))})",
                (view, *chunk),
            ).fetchall()
            found.update({k: (e, v) for k, e, v in rows})
        return [found.get(k) for k in keys]

    def delete_view(self, view: str) -> int:
        conn = self._conn()
        with conn:
            return conn.execute("DELETE FROM online_features WHERE view = ?", (view,)).rowcount

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()


_REDIS_UPSERT = """
local n = 0
for i = 1, #KEYS do
  local e = tonumber(ARGV[3 * i - 2])
  local c = tonumber(ARGV[3 * i - 1])
  local cur = redis.call('HMGET', KEYS[i], 'e', 'c')
  local ce = tonumber(cur[1])
  if (not ce) or e > ce or (e == ce and c >= tonumber(cur[2])) then
    redis.call('HSET', KEYS[i], 'e', ARGV[3 * i - 2], 'c', ARGV[3 * i - 1], 'v', ARGV[3 * i])
    n = n + 1
  end
end
return n
"""


class RedisOnlineStore(OnlineStore):
    """The online store in Redis: one hash per entity per view (``redis://host:port/db``;
    ``?prefix=...`` names the key prefix, ``shipyard:features`` by default)."""

    def __init__(self, uri: str) -> None:
        try:
            import redis
        except ImportError:
            raise missing_extra("redis", "redis") from None
        parsed = urlparse(uri)
        self.prefix = parse_qs(parsed.query).get("prefix", ["shipyard:features"])[0]
        self.uri = uri
        self._redis = redis.Redis.from_url(uri.split("?", 1)[0], decode_responses=True)
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._upsert = self._redis.register_script(_REDIS_UPSERT)

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}:{view}:{key}"

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"Cannot reach the Redis online store at {self.uri.split('?', 1)[0]} ({exc}). Check "
            "that Redis is running there, or fix SHIPYARD_ONLINE_STORE."
        )

    def write(self, view: str, rows: Sequence[tuple[str, int, int, str]]) -> int:
        taken = 0
        try:
            for start in range(0, len(rows), 1000):
                chunk = rows[start : start + 1000]
                args: list[Any] = []
                for _, e, c, v in chunk:
                    args += [e, c, v]
                taken += int(self._upsert(keys=[self._key(view, r[0]) for r in chunk], args=args))
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return taken

    def read(self, view: str, keys: Sequence[str]) -> list[Row | None]:
        try:
            if len(keys) == 1:
                replies = [self._redis.hmget(self._key(view, keys[0]), "e", "v")]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for k in keys:
                    pipe.hmget(self._key(view, k), "e", "v")
                replies = pipe.execute()
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return [(int(e), str(v)) if e is not None else None for e, v in replies]

    def delete_view(self, view: str) -> int:
        n = 0
        try:
            batch = []
            for key in self._redis.scan_iter(match=f"{self.prefix}:{view}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    n += int(self._redis.delete(*batch))
                    batch = []
            if batch:
                n += int(self._redis.delete(*batch))
        except self._errors as exc:
            raise self._unavailable(exc) from None
        return n

    def close(self) -> None:
        self._redis.close()


def open_online_store(uri: str) -> OnlineStore:
    """The online store a URI names: ``sqlite:///PATH`` or ``redis://HOST:PORT/DB``."""
    if uri.startswith("sqlite:///"):
        return SqliteOnlineStore(uri[len("sqlite:///") :])
    if uri.startswith(("redis://", "rediss://", "unix://")):
        return RedisOnlineStore(uri)
    raise InvalidInput(
        f"online store URI {uri!r} is not one Shipyard knows; use sqlite:///PATH (the default) "
        "or redis://HOST:PORT/DB."
    )
