"""Fixtures of the feature-store tests: generated feature data with late-arriving, tied and
out-of-TTL rows, definitions over it, a brute-force reference, and a real Redis server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from shipyard.workspace import Workspace

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TTL = timedelta(hours=12)
REDIS_URL = os.environ.get("SHIPYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Generated:
    rows: list[dict[str, Any]]
    """Feature rows: customer_id, ts, created, spend, orders, tier."""
    entity_rows: list[dict[str, Any]]
    path: Path


def generate(folder: Path, *, seed: int = 7, entities: int = 40, rows: int = 1500) -> Generated:
    """Feature rows over 5 days: late-arriving rows (created days after their event time),
    exact event-time ties broken by created time, NULL feature values, and entity rows probing
    before the first row, inside and beyond the TTL, at the TTL's edge, and at the exact event
    times."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    created_seen: set[int] = set()
    for _i in range(rows):
        cid = int(rng.integers(0, entities))
        ts = T0 + timedelta(minutes=int(rng.integers(0, 5 * 24 * 60)))
        delay = int(rng.integers(0, 10)) if rng.random() > 0.1 else int(rng.integers(2000, 6000))
        created_min = int((ts - T0).total_seconds() // 60) + delay
        while created_min in created_seen:
            created_min += 1
        created_seen.add(created_min)
        out.append(
            {
                "customer_id": cid,
                "ts": ts,
                "created": T0 + timedelta(minutes=created_min),
                "spend": None if rng.random() < 0.05 else round(float(rng.normal(100, 30)), 3),
                "orders": int(rng.integers(0, 20)),
                "tier": ["gold", "silver", "bronze"][int(rng.integers(0, 3))],
            }
        )
    # ties: copies of some rows at the same event time, created later with other values
    for r in out[:60]:
        created_min = int((r["created"] - T0).total_seconds() // 60) + 1
        while created_min in created_seen:
            created_min += 1
        created_seen.add(created_min)
        out.append(
            {**r, "created": T0 + timedelta(minutes=created_min), "orders": r["orders"] + 100}
        )
    path = folder / "customer_stats.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(out), path)
    entity_rows: list[dict[str, Any]] = []
    for _ in range(800):
        entity_rows.append(
            {
                "customer_id": int(rng.integers(0, entities + 3)),  # some with no rows at all
                "event_timestamp": T0 + timedelta(minutes=int(rng.integers(-600, 6 * 24 * 60))),
                "label": int(rng.integers(0, 2)),
            }
        )
    for r in out[::50]:  # probes at the exact event time of a feature row
        entity_rows.append(
            {"customer_id": r["customer_id"], "event_timestamp": r["ts"], "label": 1}
        )
    last: dict[int, dict[str, Any]] = {}
    for r in out:
        if r["customer_id"] not in last or r["ts"] > last[r["customer_id"]]["ts"]:
            last[r["customer_id"]] = r
    for r in sorted(last.values(), key=lambda r: r["customer_id"])[::4]:
        # probes at the TTL's edge of an entity's last row: exactly TTL later (still valid: the
        # TTL is inclusive) and one second after that (NULL)
        for after in (TTL, TTL + timedelta(seconds=1)):
            entity_rows.append(
                {"customer_id": r["customer_id"], "event_timestamp": r["ts"] + after, "label": 0}
            )
    entity_rows += entity_rows[:5]  # duplicate entity rows stay duplicated
    return Generated(out, entity_rows, path)


def reference(
    rows: list[dict[str, Any]], cid: Any, at: datetime, ttl: timedelta | None
) -> dict[str, Any] | None:
    """Brute force: the row with the greatest (event time, created time) at or before ``at``,
    if it is within ``ttl`` of ``at``."""
    best = None
    for r in rows:
        if (
            r["customer_id"] == cid
            and r["ts"] <= at
            and (best is None or (r["ts"], r["created"]) > (best["ts"], best["created"]))
        ):
            best = r
    if best is None or (ttl is not None and best["ts"] < at - ttl):
        return None
    return best


customer = Entity("customer", join_keys=["customer_id"], description="A paying customer")


def definitions(path: Path, ttl: timedelta | None = TTL) -> list[Any]:
    stats = FeatureView(
        "customer_stats",
        entities=[customer],
        features=[Field("spend", "float64"), Field("orders", "int64"), Field("tier", "string")],
        source=FileSource(str(path), event_time="ts", created_time="created"),
        ttl=ttl,
        owner="growth",
        description="Spend and orders per customer",
    )
    service = FeatureService("churn", features=[stats])
    return [customer, stats, service]


@pytest.fixture
def generated(tmp_path: Path) -> Generated:
    return generate(tmp_path / "data")


@pytest.fixture
def fs(workspace: Workspace) -> Iterator[FeatureStore]:
    store = FeatureStore(workspace)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def redis_uri() -> Iterator[str]:
    """A real Redis (SHIPYARD_TEST_REDIS_URL, else 127.0.0.1:6379; scripts/test starts one
    where none answers), under a key prefix of this test's own, cleaned up after."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        raise RuntimeError(
            f"no Redis at {REDIS_URL} ({exc}); start one (scripts/test does) or set "
            "SHIPYARD_TEST_REDIS_URL"
        ) from exc
    prefix = f"shipyard-test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
