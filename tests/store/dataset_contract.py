"""The contract every DatasetStore implementation meets (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from shipyard import errors
from shipyard.store.datasets import DatasetStore, NewVersion, VersionFile
from shipyard.store.sql import SqlTrackingStore

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def _new(digest: str, **kw: object) -> NewVersion:
    return NewVersion(content_digest=digest, format="parquet", num_bytes=10, **kw)  # type: ignore[arg-type]


class DatasetStoreContract:
    __test__ = False

    @pytest.fixture
    def stores(self) -> tuple[SqlTrackingStore, DatasetStore]:
        raise NotImplementedError

    def test_versions_are_numbered_and_one_per_content(
        self, stores: tuple[SqlTrackingStore, DatasetStore]
    ) -> None:
        _, store = stores
        files = [VersionFile("data.parquet", DIGEST_A, 10)]
        v1, created = store.create_version("d", _new(DIGEST_A, num_rows=3, tags={"k": "v"}), files)
        assert (v1.version, created, v1.num_rows, v1.tags) == (1, True, 3, {"k": "v"})
        again, created = store.create_version("d", _new(DIGEST_A), files)
        assert (again.version, created) == (1, False)
        v2, created = store.create_version("d", _new(DIGEST_B), [VersionFile("x", DIGEST_B, 10)])
        assert (v2.version, created) == (2, True)
        assert v1.storage_owner != v2.storage_owner
        assert v1.storage_owner.startswith("dv-")
        assert [v.version for v in store.list_versions("d")] == [2, 1]
        assert store.get_version("d").version == 2
        assert store.find_version("d", DIGEST_A) == store.get_version("d", 1)
        assert store.find_version("nope", DIGEST_A) is None
        assert store.get_dataset("d").latest_version == 2

    def test_not_found_and_bad_names(self, stores: tuple[SqlTrackingStore, DatasetStore]) -> None:
        _, store = stores
        with pytest.raises(errors.NotFound, match="shipyard data list"):
            store.get_dataset("missing")
        store.create_version("d", _new(DIGEST_A), [])
        with pytest.raises(errors.NotFound, match="no version 7"):
            store.get_version("d", 7)
        with pytest.raises(errors.InvalidInput):
            store.create_version("a/b", _new(DIGEST_A), [])
        with pytest.raises(errors.InvalidInput):
            store.get_version("d", 0)

    def test_tags_user_schema_and_delete(
        self, stores: tuple[SqlTrackingStore, DatasetStore]
    ) -> None:
        _, store = stores
        store.create_version("d", _new(DIGEST_A), [VersionFile("f", DIGEST_A, 10)])
        store.set_version_tag("d", 1, "stage", "clean")
        store.set_version_tag("d", 1, "stage", "gold")
        assert store.get_version("d", 1).tags == {"stage": "gold"}
        assert store.get_user_schema("d") is None
        store.set_user_schema("d", "columns: {}")
        assert store.get_user_schema("d") == "columns: {}"
        assert store.get_dataset("d").has_user_schema
        assert store.delete_version("d", 1) == {DIGEST_A}
        with pytest.raises(errors.NotFound):
            store.get_version("d", 1)
        v, _ = store.create_version("d", _new(DIGEST_B), [])
        assert v.version == 2  # numbers are never reused

    def test_run_lineage(self, stores: tuple[SqlTrackingStore, DatasetStore]) -> None:
        tracking, store = stores
        run = tracking.create_run("0", user_id="u", run_name="r")
        rid = run.info.run_id
        store.create_version("d", _new(DIGEST_A), [])
        store.link_run(rid, "d", 1, "training")
        store.link_run(rid, "d", 1, "training")
        assert store.runs_of("d", 1) == [rid]
        [(version, context)] = store.inputs_of(rid)
        assert (version.name, version.version, context) == ("d", 1, "training")
        with pytest.raises(errors.NotFound):
            store.link_run("f" * 32, "d", 1, None)
