"""On-demand features (offline and online), dataset-version sources, training sets registered
as dataset versions with lineage, TTL on online reads, and the Redis online store."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.data import Datasets
from shipyard.errors import InvalidInput
from shipyard.features import (
    DatasetSource,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
)
from shipyard.features.online import RedisOnlineStore, SqliteOnlineStore
from shipyard.workspace import Workspace
from tests.features.conftest import TTL, Generated, customer, definitions, reference
from tests.features.test_definitions import write_defs


def test_on_demand_features_offline_and_online_agree(
    fs: FeatureStore, generated: Generated, tmp_path: Path
) -> None:
    fs.apply(str(write_defs(tmp_path, generated.path)))
    at = max(r["ts"] for r in generated.rows)
    ids = sorted({r["customer_id"] for r in generated.rows})[:10]
    entity = pd.DataFrame(
        {"customer_id": ids, "event_timestamp": [at] * len(ids), "basket": [10.0] * len(ids)}
    )
    offline = fs.get_training_set(entity, "churn").to_pandas()
    assert list(offline.columns) == [
        "customer_id", "event_timestamp", "basket", "spend", "orders", "tier", "basket_share",
    ]  # fmt: skip
    for _, row in offline.iterrows():
        best = reference(generated.rows, row["customer_id"], at, TTL)
        if best is None or best["spend"] is None:
            assert pd.isna(row["basket_share"])
        else:
            assert row["basket_share"] == pytest.approx(10.0 / (best["spend"] + 10.0))
    fs.materialize(end=at)
    online = fs.get_online_features(
        "churn", [{"customer_id": i, "basket": 10.0} for i in ids], now=at
    ).to_pandas()
    pd.testing.assert_series_equal(
        online["basket_share"].astype(float), offline["basket_share"].astype(float)
    )
    with pytest.raises(Exception, match="request field 'basket'"):
        fs.get_online_features("churn", [{"customer_id": ids[0]}], now=at)


def test_dataset_version_source_and_training_set_lineage(
    workspace: Workspace, fs: FeatureStore, generated: Generated
) -> None:
    datasets = Datasets(workspace)
    rows_version, _ = datasets.register("customer-rows", generated.path)
    view = FeatureView(
        "customer_stats",
        entities=[customer],
        features=[Field("spend"), Field("orders", "int64")],
        source=DatasetSource("customer-rows", event_time="ts", created_time="created"),
        ttl=TTL,
    )
    fs.apply([customer, view])
    ts = fs.get_training_set(pd.DataFrame(generated.entity_rows), ["customer_stats"])
    expected = [
        (best["orders"] if best else None)
        for e in generated.entity_rows
        if (best := reference(generated.rows, e["customer_id"], e["event_timestamp"], TTL)) or True
    ]
    assert ts.to_arrow().column("orders").to_pylist() == expected
    version = ts.register("churn-training", description="point-in-time join")
    assert version.tags["shipyard.features.views"] == "customer_stats:1"
    assert fs.training_set_views("churn-training", version.version) == [("customer_stats", 1)]
    assert fs.training_sets_of("customer_stats") == [("churn-training", version.version, 1)]
    assert datasets.open("churn-training", version.version).to_table().num_rows == len(expected)
    assert rows_version.version == 1


def test_online_reads_enforce_the_ttl(fs: FeatureStore, generated: Generated) -> None:
    fs.apply(definitions(generated.path))
    end = max(r["ts"] for r in generated.rows)
    fs.materialize(end=end)
    cid = generated.rows[-1]["customer_id"]
    latest = reference(generated.rows, cid, end, None)
    assert latest is not None
    fresh = fs.get_online_features(["customer_stats:orders"], [{"customer_id": cid}], now=end)
    assert fresh.to_dict()["orders"] == [latest["orders"] if latest["ts"] >= end - TTL else None]
    stale = fs.get_online_features(
        ["customer_stats:orders"],
        [{"customer_id": cid}],
        now=latest["ts"] + TTL + timedelta(seconds=1),
    )
    assert stale.to_dict() == {"customer_id": [cid], "orders": [None]}


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_online_store_keeps_the_newer_row(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = (
        SqliteOnlineStore(tmp_path / "online.db")
        if kind == "sqlite"
        else RedisOnlineStore(request.getfixturevalue("redis_uri"))
    )
    try:
        assert store.write("v", [("1", 100, 5, '{"x":1}'), ("2", 100, 5, '{"x":2}')]) == 2
        store.write("v", [("1", 50, 9, '{"x":"older"}')])  # older event time: ignored
        store.write("v", [("2", 100, 6, '{"x":"tie"}')])  # same event time, created later: wins
        assert store.read("v", ["1", "2", "3"]) == [(100, '{"x":1}'), (100, '{"x":"tie"}'), None]
        assert store.read("v", ["2"]) == [(100, '{"x":"tie"}')]
        assert store.read("other", ["1"]) == [None]
        assert store.delete_view("v") == 2
        assert store.read("v", ["1", "2"]) == [None, None]
    finally:
        store.close()


def test_an_unreachable_redis_is_a_clear_error(fs: FeatureStore) -> None:
    from shipyard.errors import StoreUnavailable
    from tests.conftest import free_port

    store = RedisOnlineStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable, match="Cannot reach the Redis online store"):
        store.read("v", ["1"])


def test_materialize_range_and_times(fs: FeatureStore, generated: Generated) -> None:
    fs.apply(definitions(generated.path))
    start = datetime(2026, 1, 2, tzinfo=UTC)
    end = datetime(2026, 1, 3, tzinfo=UTC)
    [m] = fs.materialize(["customer_stats"], start=start, end=end.isoformat())
    in_window = {r["customer_id"] for r in generated.rows if start <= r["ts"] <= end}
    assert m.num_rows == len(in_window)
    assert m.mode == "range"
    with pytest.raises(Exception, match="not ISO 8601"):
        fs.materialize(end="yesterday")
    with pytest.raises(Exception, match="either --incremental or --start"):
        fs.materialize(start=start, incremental=True)
    before = fs.meta.materializations("customer_stats")
    with pytest.raises(InvalidInput, match=r"starts .* after it ends"):
        fs.materialize(["customer_stats"], start=end, end=start)
    assert fs.meta.materializations("customer_stats") == before  # nothing recorded


def test_entity_columns_named_like_features_are_refused(
    fs: FeatureStore, generated: Generated
) -> None:
    """An entity column with a feature's name would come back twice (which one is the
    feature?); the error names the fix."""
    fs.apply(definitions(generated.path))
    at = max(r["ts"] for r in generated.rows)
    entity = pd.DataFrame({"customer_id": [1], "event_timestamp": [at], "spend": [1.0]})
    with pytest.raises(InvalidInput, match=r"already have column\(s\) \['spend'\]"):
        fs.get_training_set(entity, "churn")
    full = fs.get_training_set(entity, "churn", full_feature_names=True).to_pandas()
    assert list(full.columns) == [
        "customer_id", "event_timestamp", "spend", "customer_stats__spend",
        "customer_stats__orders", "customer_stats__tier",
    ]  # fmt: skip


def test_on_demand_functions_see_training_dtypes_online(
    fs: FeatureStore, generated: Generated, tmp_path: Path
) -> None:
    """Online, an on-demand function gets the columns typed as in a training set (float64 NaN
    where a feature is NULL), so numpy code that works offline works for an unknown entity."""
    defs = tmp_path / "odfv_defs.py"
    defs.write_text(
        textwrap.dedent(
            f"""
            import numpy as np
            import pandas as pd
            from shipyard.features import Entity, FeatureView, Field, FileSource
            from shipyard.features import on_demand_feature_view

            customer = Entity("customer", join_keys=["customer_id"])
            stats = FeatureView(
                "customer_stats", entities=[customer],
                features=[Field("spend"), Field("orders", "int64")],
                source=FileSource({str(generated.path)!r}, event_time="ts", created_time="created"),
            )

            @on_demand_feature_view(sources=[stats], features=[Field("log_spend")])
            def logs(df):
                return pd.DataFrame({{"log_spend": np.log1p(df["spend"])}})
            """
        )
    )
    fs.apply(str(defs))
    fs.materialize()
    cid = generated.rows[-1]["customer_id"]
    got = fs.get_online_features(
        ["logs:log_spend"], [{"customer_id": 99999}, {"customer_id": cid}]
    ).to_dict()
    spend = reference(generated.rows, cid, datetime(2030, 1, 1, tzinfo=UTC), None)
    assert spend is not None
    assert got["log_spend"][0] is None
    if spend["spend"] is None:
        assert got["log_spend"][1] is None
    else:
        assert got["log_spend"][1] == pytest.approx(float(np.log1p(spend["spend"])))
    alone = fs.get_online_features(["logs:log_spend"], [{"customer_id": 99999}]).to_dict()
    assert alone == {"customer_id": [99999], "log_spend": [None]}


def test_incremental_after_a_view_change_rewrites_every_entity(
    fs: FeatureStore, generated: Generated
) -> None:
    """A new view version (here: one more feature) is materialized in full by the next
    incremental run; the earlier version's watermark would skip every entity with no new rows."""
    narrow = FeatureView(
        "customer_stats",
        entities=[customer],
        features=[Field("spend"), Field("orders", "int64")],
        source=definitions(generated.path)[1].source,
    )
    fs.apply([customer, narrow])
    now = datetime(2026, 1, 9, tzinfo=UTC)
    first = fs.materialize(incremental=True, end=now)[0]
    assert fs.materialize(incremental=True, end=now)[0].num_rows == 0
    fs.apply(definitions(generated.path, ttl=None)[:2])  # adds "tier": version 2
    second = fs.materialize(incremental=True, end=now)[0]
    assert (second.view_version, second.num_rows) == (2, first.num_rows)
    ids = sorted({r["customer_id"] for r in generated.rows})
    tiers = fs.get_online_features(
        ["customer_stats:tier"], [{"customer_id": c} for c in ids], now=now
    ).to_dict()["tier"]
    assert tiers == [reference(generated.rows, c, now, None)["tier"] for c in ids]  # type: ignore[index]


def test_materialize_reports_progress(fs: FeatureStore, generated: Generated) -> None:
    fs.apply(definitions(generated.path))
    calls: list[tuple[str, int, int]] = []
    [m] = fs.materialize(progress=lambda view, done, total: calls.append((view, done, total)))
    assert calls[0] == ("customer_stats", 0, m.num_rows)
    assert calls[-1] == ("customer_stats", m.num_rows, m.num_rows)
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)


def test_on_demand_training_sets_keep_every_entity_column(
    fs: FeatureStore, generated: Generated, tmp_path: Path
) -> None:
    """Only the on-demand inputs nobody asked for are dropped; an entity column such as
    pandas' ``__index_level_0__`` comes back as given."""
    fs.apply(str(write_defs(tmp_path, generated.path)))
    at = max(r["ts"] for r in generated.rows)
    entity = pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [at] * 2, "basket": [10.0] * 2,
         "__label__": [0, 1]}
    )  # fmt: skip
    out = fs.get_training_set(entity, ["basket:basket_share"]).to_pandas()
    assert list(out.columns) == [
        "customer_id", "event_timestamp", "basket", "__label__", "basket_share",
    ]  # fmt: skip
    assert list(out["__label__"]) == [0, 1]


def test_an_infinite_feature_value_does_not_break_online_reads(
    fs: FeatureStore, tmp_path: Path
) -> None:
    """JSON has no infinity: stored as is, one such value made every online read of a batch
    with that entity fail to decode. It is served as null, like NaN."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    path = tmp_path / "spend.parquet"
    rows = [{"customer_id": 1, "ts": t0, "spend": float("inf")},
            {"customer_id": 2, "ts": t0, "spend": 2.0},
            {"customer_id": 3, "ts": t0, "spend": float("-inf")}]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), path)
    view = FeatureView("spend", entities=[customer], features=[Field("spend")],
                       source=FileSource(str(path), event_time="ts"))  # fmt: skip
    fs.apply([customer, view])
    fs.materialize(end=t0)
    online = fs.get_online_features(["spend:spend"], [{"customer_id": i} for i in (1, 2, 3)])
    assert online.to_dict() == {"customer_id": [1, 2, 3], "spend": [None, 2.0, None]}


def test_online_keys_from_numpy_read_as_plain_ones(fs: FeatureStore, tmp_path: Path) -> None:
    """Keys taken from a numpy array (``df["id"].to_numpy()``) are ``numpy.int64``: they failed
    to encode (an internal error) instead of finding the entity."""
    import numpy as np

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    path = tmp_path / "spend.parquet"
    pq.write_table(pa.Table.from_pylist(
        [{"customer_id": i, "ts": t0, "spend": float(i)} for i in (1, 2)]), path)  # fmt: skip
    view = FeatureView("spend", entities=[customer], features=[Field("spend")],
                       source=FileSource(str(path), event_time="ts"))  # fmt: skip
    fs.apply([customer, view])
    fs.materialize(end=t0)
    ids = np.array([2, 1, 3])
    rows = [{"customer_id": i} for i in ids]
    assert all(isinstance(r["customer_id"], np.integer) for r in rows)
    online = fs.get_online_features(["spend:spend"], rows)
    assert online.to_dict()["spend"] == [2.0, 1.0, None]


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_online_keys_given_as_the_other_type_find_their_entity(
    workspace: Workspace, tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    """A client that quotes ids (``{"customer_id": "7"}`` in JSON) found nothing for an integer
    key, silently. A miss is retried with the key's other form; an exact match always wins."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ints, texts = tmp_path / "ints.parquet", tmp_path / "texts.parquet"
    pq.write_table(pa.Table.from_pylist(
        [{"customer_id": i, "ts": t0, "spend": float(i)} for i in (7, 8)]), ints)  # fmt: skip
    pq.write_table(pa.Table.from_pylist(
        [{"store_id": s, "ts": t0, "sales": float(len(s))} for s in ("12", "007", "a")]),
        texts)  # fmt: skip
    shop = Entity("shop", join_keys=["store_id"])
    views = [FeatureView("spend", entities=[customer], features=[Field("spend")],
                         source=FileSource(str(ints), event_time="ts")),
             FeatureView("sales", entities=[shop], features=[Field("sales")],
                         source=FileSource(str(texts), event_time="ts"))]  # fmt: skip
    online = None if store == "sqlite" else request.getfixturevalue("redis_uri")
    fs = FeatureStore(workspace, online_store=online)
    try:
        fs.apply([customer, shop, *views])
        fs.materialize(end=t0)
        asked = [{"customer_id": v} for v in ("7", 8, 8.0, "08", " 7", "x", 9, "9")]
        got = fs.get_online_features(["spend:spend"], asked).to_dict()["spend"]
        assert got == [7.0, 8.0, 8.0, None, None, None, None, None]
        asked = [{"store_id": v} for v in (12, "12", 7, "007", 12.0, "a", 13, np.int64(12))]
        got = fs.get_online_features(["sales:sales"], asked).to_dict()["sales"]
        assert got == [2.0, 2.0, None, 3.0, 2.0, 1.0, None, 2.0]  # numpy ints too
    finally:
        fs.close()
