"""Definitions: apply with a diff, versions, prune, references, conflicts, and the metadata
store on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from shipyard.features.registry import apply_changes
from shipyard.workspace import Workspace
from tests.features.conftest import Generated, definitions

TEMPLATE = Path(__file__).with_name("defs_template.py.txt")


def write_defs(folder: Path, data: Path, ttl_hours: int = 12) -> Path:
    text = TEMPLATE.read_text().replace("@PATH@", str(data)).replace("@TTL@", str(ttl_hours))
    path = folder / "defs.py"
    path.write_text(text)
    return path


def test_apply_versions_and_diffs(fs: FeatureStore, generated: Generated, tmp_path: Path) -> None:
    defs = write_defs(tmp_path, generated.path)
    first = fs.apply(str(defs))
    assert first.lines() == [
        "+ entity customer",
        "+ feature view customer_stats",
        "+ on-demand feature view basket",
        "+ feature service churn",
    ]
    assert {r.version for r in first.records} == {1}
    assert fs.apply(str(defs)).changes == []  # unchanged: nothing written

    changed = fs.apply(str(write_defs(tmp_path, generated.path, ttl_hours=1)))
    assert changed.lines() == [
        "~ feature view customer_stats (version 1 -> 2)",
        "    ttl_seconds: 43200.0 -> 3600.0",
    ]
    assert [r.version for r in fs.meta.history("feature_view", "customer_stats")] == [2, 1]
    assert fs.get("feature_view", "customer_stats", 1).spec["ttl_seconds"] == 43200.0  # type: ignore[index]

    pruned = fs.apply(definitions(generated.path)[:2], prune=True)
    assert [line for line in pruned.lines() if line.startswith(("-", "~"))] == [
        "~ entity customer (version 1 -> 2)",
        "~ feature view customer_stats (version 2 -> 3)",
        "- on-demand feature view basket (version 1)",
        "- feature service churn (version 1)",
    ]
    assert {(r.kind, r.name) for r in fs.definitions()} == {
        ("entity", "customer"),
        ("feature_view", "customer_stats"),
    }
    with pytest.raises(NotFound, match="feature service 'churn'"):
        fs.get("feature_service", "churn")
    assert fs.meta.history("feature_service", "churn")[0].removed
    again = fs.apply(str(defs))  # re-created after removal (version 2): version 3
    assert ("feature_service", "churn", 3) in {(r.kind, r.name, r.version) for r in again.records}


def test_dry_run_changes_nothing(fs: FeatureStore, generated: Generated) -> None:
    result = fs.apply(definitions(generated.path), dry_run=True)
    assert result.dry_run
    assert len(result.changes) == 3
    assert fs.definitions() == []


def test_references_must_resolve(fs: FeatureStore, generated: Generated) -> None:
    view = FeatureView(
        "v", entities=["ghost"], features=[Field("x")], source=FileSource(str(generated.path))
    )
    with pytest.raises(InvalidInput, match="entity 'ghost'"):
        fs.apply([view])
    with pytest.raises(InvalidInput, match="no feature 'nope'"):
        fs.apply([*definitions(generated.path), FeatureService("s", ["customer_stats:nope"])])
    with pytest.raises(InvalidInput, match=r"defined twice|two different"):
        fs.apply([Entity("customer"), Entity("customer", join_keys=["other"])])


def test_bad_definitions_say_what_to_fix(generated: Generated) -> None:
    with pytest.raises(InvalidInput, match="use one of int64"):
        Field("x", "decimal")
    with pytest.raises(InvalidInput, match="format"):
        FileSource("data.xlsx")
    with pytest.raises(InvalidInput, match="at least one feature"):
        FeatureView("v", entities=["e"], features=[], source=FileSource("a.parquet"))
    with pytest.raises(InvalidInput, match="negative"):
        FeatureView(
            "v", entities=["e"], features=[Field("x")], source=FileSource("a.parquet"),
            ttl=timedelta(seconds=-1),
        )  # fmt: skip
    for ttl in (float("nan"), float("inf")):
        with pytest.raises(InvalidInput, match="finite"):  # not a crash when training
            FeatureView(
                "v", entities=["e"], features=[Field("x")], source=FileSource("a.parquet"),
                ttl=ttl,
            )  # fmt: skip


def test_concurrent_apply_conflicts(fs: FeatureStore, generated: Generated) -> None:
    fs.apply(definitions(generated.path))
    stale = fs.plan(definitions(generated.path, ttl=timedelta(hours=1)))
    fs.apply(definitions(generated.path, ttl=timedelta(hours=2)))
    with pytest.raises(Conflict, match="changed while this apply was prepared"):
        apply_changes(fs.meta, stale)
    with pytest.raises(Conflict, match="changed while this apply was prepared"):
        fs.apply_planned(stale)  # what `shipyard features apply` writes after its diff
    assert fs.get("feature_view", "customer_stats").spec["ttl_seconds"] == 7200.0  # type: ignore[index]


def test_unknown_references_in_queries(fs: FeatureStore, generated: Generated) -> None:
    fs.apply(definitions(generated.path))
    rows = [{"customer_id": 1}]
    with pytest.raises(NotFound, match="No feature view 'nope'"):
        fs.get_online_features(["nope:x"], rows)
    with pytest.raises(NotFound, match="has no feature 'x'"):
        fs.get_online_features(["customer_stats:x"], rows)
    with pytest.raises(NotFound, match="No feature service 'nope'"):
        fs.get_online_features("nope", rows)
    with pytest.raises(InvalidInput, match="no join key 'customer_id'"):
        fs.get_online_features("churn", [{"id": 1}])
    with pytest.raises(InvalidInput, match="more than once"):
        fs.get_online_features(["customer_stats:spend", "customer_stats"], rows)
    full = fs.get_online_features(
        ["customer_stats:spend", "customer_stats:orders"], rows, full_feature_names=True
    )
    assert list(full.to_dict()) == [
        "customer_id", "customer_stats__spend", "customer_stats__orders",
    ]  # fmt: skip
    import pandas as pd

    with pytest.raises(InvalidInput, match="no timestamp column"):
        fs.get_training_set(pd.DataFrame({"customer_id": [1]}), "churn")
    with pytest.raises(InvalidInput, match="lack join keys"):
        fs.get_training_set(
            pd.DataFrame({"event_timestamp": pd.to_datetime(["2026-01-01"])}), "churn"
        )


@pytest.mark.postgres
def test_metadata_store_on_postgresql(
    postgres_uri: str, tmp_path: Path, generated: Generated
) -> None:
    settings = Settings.from_env({}, home=tmp_path / "pg-home", tracking_uri=postgres_uri)
    with Workspace.open(settings) as ws:
        fs = FeatureStore(ws)
        fs.apply(definitions(generated.path))
        fs.apply(definitions(generated.path, ttl=timedelta(hours=3)))
        assert [r.version for r in fs.meta.history("feature_view", "customer_stats")] == [2, 1]
        [m] = fs.materialize(end="2026-01-03T00:00:00")
        assert fs.meta.materializations("customer_stats")[0] == m
        fs.meta.link_training_set("train", 1, [("customer_stats", 2)])
        assert fs.training_set_views("train", 1) == [("customer_stats", 2)]
        assert fs.training_sets_of("customer_stats") == [("train", 1, 2)]
        fs.close()
