"""The behaviour every :class:`~shipyard.store.base.TrackingStore` must have.

Subclass :class:`TrackingStoreContract` once per backend, set ``__test__ = True`` and override the
``store`` fixture; nothing else. The tests use only the ``TrackingStore`` interface, so the same
suite runs against SQLite, PostgreSQL and a Shipyard server (the REST store).
"""

from __future__ import annotations

import math
import random
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard import errors
from shipyard.entities import Dataset, DatasetInput, Metric, Run, ViewType
from shipyard.store.base import TrackingStore

MISSING_RUN = "0" * 32


def new_experiment(store: TrackingStore, prefix: str = "exp", **kwargs: Any) -> str:
    return store.create_experiment(f"{prefix}-{uuid.uuid4().hex[:8]}", **kwargs)


def metric(key: str, value: float, step: int = 0, timestamp: int = 1) -> Metric:
    return Metric(key=key, value=value, timestamp=timestamp, step=step)


def all_pages(fetch: Any, page_size: int) -> list[Any]:
    """Follow next_page_token to the end; fail on a token loop."""
    items: list[Any] = []
    token = None
    for _ in range(1000):
        page = fetch(max_results=page_size, page_token=token)
        assert len(page) <= page_size
        items.extend(page.items)
        token = page.next_page_token
        if token is None:
            return items
    raise AssertionError("pagination never ended")


def ids(runs: Any) -> list[str]:
    return [r.info.run_id for r in runs]


class TrackingStoreContract:
    """Base class of the per-backend test classes (not collected itself)."""

    __test__ = False

    @pytest.fixture
    def store(self) -> Iterator[TrackingStore]:
        raise NotImplementedError("each backend's test class provides the store fixture")

    @pytest.fixture
    def exp(self, store: TrackingStore) -> str:
        return new_experiment(store)

    @pytest.fixture
    def run(self, store: TrackingStore, exp: str) -> Run:
        return store.create_run(exp, run_name="base", start_time=1000)

    # ------------------------------------------------------------------ experiments

    def test_default_experiment_exists(self, store: TrackingStore) -> None:
        default = store.get_experiment("0")
        assert default.name == "Default"
        assert default.lifecycle_stage == "active"
        assert default.artifact_location
        by_name = store.get_experiment_by_name("Default")
        assert by_name is not None
        assert by_name.experiment_id == "0"

    def test_create_and_get_experiment(self, store: TrackingStore) -> None:
        before = int(time.time() * 1000) - 1
        eid = store.create_experiment("fraud", tags={"team": "risk"})
        assert eid.isdigit()
        assert eid != "0"
        exp = store.get_experiment(eid)
        assert exp.experiment_id == eid
        assert exp.name == "fraud"
        assert exp.lifecycle_stage == "active"
        assert exp.tags == {"team": "risk"}
        assert exp.creation_time >= before
        assert exp.last_update_time >= exp.creation_time
        assert store.get_experiment_by_name("fraud") == exp
        assert store.get_experiment_by_name("FRAUD") is None

    def test_artifact_locations(self, store: TrackingStore) -> None:
        a = store.get_experiment(new_experiment(store))
        b = store.get_experiment(new_experiment(store))
        assert a.artifact_location
        assert a.artifact_location != b.artifact_location
        given = store.get_experiment(new_experiment(store, artifact_location="s3://bucket/x"))
        assert given.artifact_location == "s3://bucket/x"
        run = store.create_run(a.experiment_id)
        assert run.info.artifact_uri.startswith(a.artifact_location + "/")
        assert run.info.run_id in run.info.artifact_uri

    def test_experiment_names_are_unique_even_when_deleted(self, store: TrackingStore) -> None:
        eid = store.create_experiment("taken")
        with pytest.raises(errors.AlreadyExists):
            store.create_experiment("taken")
        store.delete_experiment(eid)
        with pytest.raises(errors.AlreadyExists, match="restore"):
            store.create_experiment("taken")
        other = store.create_experiment("other")
        with pytest.raises(errors.AlreadyExists):
            store.rename_experiment(other, "taken")

    def test_unknown_and_malformed_experiment_ids(self, store: TrackingStore) -> None:
        with pytest.raises(errors.NotFound):
            store.get_experiment("987654")
        with pytest.raises(errors.InvalidInput):
            store.get_experiment("not-a-number")
        for call in (
            lambda: store.delete_experiment("987654"),
            lambda: store.restore_experiment("987654"),
            lambda: store.rename_experiment("987654", "x"),
            lambda: store.set_experiment_tag("987654", "k", "v"),
            lambda: store.purge_experiment("987654"),
            lambda: store.create_run("987654"),
        ):
            with pytest.raises(errors.NotFound):
                call()
        assert store.get_experiment_by_name("no such experiment") is None

    @pytest.mark.parametrize("name", ["", "   ", "x" * 501])
    def test_invalid_experiment_names(self, store: TrackingStore, name: str) -> None:
        with pytest.raises(errors.InvalidInput):
            store.create_experiment(name)

    def test_rename_experiment(self, store: TrackingStore, exp: str) -> None:
        store.rename_experiment(exp, "renamed")
        assert store.get_experiment(exp).name == "renamed"
        assert store.get_experiment_by_name("renamed") is not None
        store.rename_experiment(exp, "renamed")  # same name: nothing to do

    def test_delete_and_restore_experiment_cascade_to_runs(
        self, store: TrackingStore, exp: str
    ) -> None:
        kept = store.create_run(exp)
        deleted_before = store.create_run(exp)
        store.delete_run(deleted_before.run_id)
        store.delete_experiment(exp)
        assert store.get_experiment(exp).lifecycle_stage == "deleted"
        assert store.get_run(kept.run_id).info.lifecycle_stage == "deleted"
        with pytest.raises(errors.InvalidState):
            store.create_run(exp)
        with pytest.raises(errors.InvalidState):
            store.log_batch(kept.run_id, params={"a": "1"})
        with pytest.raises(errors.InvalidState):
            store.restore_run(kept.run_id)
        store.restore_experiment(exp)
        assert store.get_experiment(exp).lifecycle_stage == "active"
        assert store.get_run(kept.run_id).info.lifecycle_stage == "active"
        assert store.get_run(deleted_before.run_id).info.lifecycle_stage == "deleted"

    def test_default_experiment_cannot_be_deleted(self, store: TrackingStore) -> None:
        with pytest.raises(errors.InvalidInput):
            store.delete_experiment("0")
        with pytest.raises(errors.InvalidInput):
            store.purge_experiment("0")
        assert store.get_experiment("0").lifecycle_stage == "active"

    def test_experiment_tags(self, store: TrackingStore, exp: str) -> None:
        store.set_experiment_tag(exp, "owner", "ann")
        store.set_experiment_tag(exp, "owner", "bob")
        store.set_experiment_tag(exp, "note", "x" * 20000)
        assert store.get_experiment(exp).tags == {"owner": "bob", "note": "x" * 20000}
        store.delete_experiment_tag(exp, "owner")
        assert store.get_experiment(exp).tags == {"note": "x" * 20000}
        with pytest.raises(errors.NotFound):
            store.delete_experiment_tag(exp, "owner")
        with pytest.raises(errors.InvalidInput):
            store.set_experiment_tag(exp, "big", "x" * 20001)
        with pytest.raises(errors.InvalidInput):
            store.set_experiment_tag(exp, "k" * 251, "v")
        store.delete_experiment(exp)
        with pytest.raises(errors.InvalidState):
            store.set_experiment_tag(exp, "owner", "cy")

    def test_purge_experiment_frees_the_name_and_returns_digests(
        self, store: TrackingStore
    ) -> None:
        eid = store.create_experiment("doomed", tags={"a": "b"})
        run = store.create_run(eid)
        store.log_batch(run.run_id, [metric("m", 1.0)], {"p": "1"}, {"t": "1"})
        store.log_inputs(run.run_id, [DatasetInput(Dataset("train", "d1"))])
        store.record_artifact(run.run_id, "model/model.pkl", "digest-a", 10)
        store.record_artifact(run.run_id, "plot.png", "digest-b", 20)
        other = store.create_run(new_experiment(store))
        store.record_artifact(other.run_id, "same.bin", "digest-a", 10)
        store.delete_experiment(eid)
        assert eid in store.deleted_experiment_ids()

        assert store.purge_experiment(eid) == {"digest-a", "digest-b"}
        with pytest.raises(errors.NotFound):
            store.get_experiment(eid)
        with pytest.raises(errors.NotFound):
            store.get_run(run.run_id)
        assert store.list_artifacts(run.run_id) == []
        assert store.unreferenced_digests({"digest-a", "digest-b"}) == {"digest-b"}
        assert eid not in store.deleted_experiment_ids()
        again = store.create_experiment("doomed")
        assert store.get_experiment(again).tags == {}

    def test_search_experiments(self, store: TrackingStore) -> None:
        a = store.create_experiment("alpha-one", tags={"team": "x"})
        b = store.create_experiment("Alpha-two", tags={"team": "y"})
        c = store.create_experiment("beta")
        store.delete_experiment(c)

        def names(**kwargs: Any) -> list[str]:
            return [e.name for e in store.search_experiments(**kwargs)]

        assert set(names()) == {"Default", "alpha-one", "Alpha-two"}
        assert names(view_type=ViewType.DELETED_ONLY) == ["beta"]
        assert set(names(view_type=ViewType.ALL)) == {"Default", "alpha-one", "Alpha-two", "beta"}
        assert names(filter_string="name LIKE 'alpha%'") == ["alpha-one"]
        assert set(names(filter_string="name ILIKE 'alpha%'")) == {"alpha-one", "Alpha-two"}
        assert names(filter_string="tags.team = 'y'") == ["Alpha-two"]
        assert names(filter_string="tags.team IS NULL", order_by=["name"]) == ["Default"]
        in_ab = f"experiment_id IN ('{a}', '{b}')"
        assert names(filter_string=in_ab, order_by=["experiment_id DESC"]) == [
            "Alpha-two",
            "alpha-one",
        ]
        assert names(filter_string=f"experiment_id = '{a}'") == ["alpha-one"]
        assert names(filter_string="creation_time > 0 AND name != 'Default'", order_by=[
            "experiment_id"
        ]) == ["alpha-one", "Alpha-two"]  # fmt: skip

    def test_search_experiments_default_order_and_paging(self, store: TrackingStore) -> None:
        for i in range(7):
            store.create_experiment(f"page-{i}")
        full = list(store.search_experiments(max_results=100))
        assert len(full) == 8
        keys = [(-e.creation_time, int(e.experiment_id)) for e in full]
        assert keys == sorted(keys)  # newest first, then by id
        for size in (1, 3, 8):
            paged = all_pages(lambda **kw: store.search_experiments(**kw), size)
            assert [e.experiment_id for e in paged] == [e.experiment_id for e in full]
        by_name = all_pages(lambda **kw: store.search_experiments(order_by=["name"], **kw), 3)
        assert [e.name for e in by_name] == sorted(e.name for e in full)

    # ------------------------------------------------------------------ runs

    def test_create_and_get_run(self, store: TrackingStore, exp: str) -> None:
        run = store.create_run(
            exp, run_name="first", user_id="ann", start_time=1234, tags={"k": "v"}
        )
        info = run.info
        assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
        assert info.experiment_id == exp
        assert info.run_name == "first"
        assert info.user_id == "ann"
        assert info.status == "RUNNING"
        assert info.start_time == 1234
        assert info.end_time is None
        assert info.lifecycle_stage == "active"
        assert info.parent_run_id is None
        assert run.data.tags == {"k": "v", "mlflow.runName": "first"}
        fetched = store.get_run(info.run_id)
        assert fetched.info == info
        assert fetched.data.tags == run.data.tags
        assert fetched.data.params == {}
        assert fetched.data.metrics == {}
        assert fetched.inputs == ()

    def test_runs_get_readable_names_and_unique_ids(self, store: TrackingStore, exp: str) -> None:
        runs = [store.create_run(exp) for _ in range(5)]
        assert len({r.run_id for r in runs}) == 5
        for r in runs:
            assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", r.info.run_name)
            assert r.data.tags["mlflow.runName"] == r.info.run_name
        tagged = store.create_run(exp, tags={"mlflow.runName": "from-tag"})
        assert tagged.info.run_name == "from-tag"
        with pytest.raises(errors.InvalidInput):
            store.create_run(exp, run_name="a", tags={"mlflow.runName": "b"})

    def test_run_start_time_defaults_to_now(self, store: TrackingStore, exp: str) -> None:
        before = int(time.time() * 1000) - 1
        run = store.create_run(exp)
        assert before <= run.info.start_time <= int(time.time() * 1000) + 1

    def test_unknown_runs(self, store: TrackingStore) -> None:
        for call in (
            lambda: store.get_run(MISSING_RUN),
            lambda: store.update_run(MISSING_RUN, status="FINISHED"),
            lambda: store.delete_run(MISSING_RUN),
            lambda: store.restore_run(MISSING_RUN),
            lambda: store.purge_run(MISSING_RUN),
            lambda: store.log_batch(MISSING_RUN, params={"a": "1"}),
            lambda: store.log_batch(MISSING_RUN),
            lambda: store.delete_tag(MISSING_RUN, "k"),
            lambda: store.log_inputs(MISSING_RUN, [DatasetInput(Dataset("d", "1"))]),
            lambda: store.get_metric_history(MISSING_RUN, "m"),
        ):
            with pytest.raises(errors.NotFound):
                call()
        with pytest.raises(errors.InvalidInput):
            store.get_run("not a run id!")

    def test_update_run(self, store: TrackingStore, run: Run) -> None:
        info = store.update_run(run.run_id, status="FINISHED", end_time=5000)
        assert info.status == "FINISHED"
        assert info.end_time == 5000
        info = store.update_run(run.run_id, run_name="renamed")
        assert info.run_name == "renamed"
        assert info.status == "FINISHED"
        fetched = store.get_run(run.run_id)
        assert fetched.info == info
        assert fetched.data.tags["mlflow.runName"] == "renamed"
        with pytest.raises(errors.InvalidInput):
            store.update_run(run.run_id, status="DONE")
        with pytest.raises(errors.InvalidInput):
            store.update_run(run.run_id, end_time=-1)

    def test_delete_restore_and_writes_to_deleted_runs(
        self, store: TrackingStore, run: Run
    ) -> None:
        store.delete_run(run.run_id)
        assert store.get_run(run.run_id).info.lifecycle_stage == "deleted"
        assert run.run_id in store.deleted_run_ids()
        for call in (
            lambda: store.log_batch(run.run_id, [metric("m", 1.0)]),
            lambda: store.log_batch(run.run_id, params={"p": "1"}),
            lambda: store.log_batch(run.run_id, tags={"t": "1"}),
            lambda: store.update_run(run.run_id, status="FINISHED"),
            lambda: store.delete_tag(run.run_id, "mlflow.runName"),
            lambda: store.log_inputs(run.run_id, [DatasetInput(Dataset("d", "1"))]),
        ):
            with pytest.raises(errors.InvalidState):
                call()
        assert store.get_run(run.run_id).data.metrics == {}
        store.restore_run(run.run_id)
        assert store.get_run(run.run_id).info.lifecycle_stage == "active"
        assert run.run_id not in store.deleted_run_ids()
        store.log_batch(run.run_id, [metric("m", 1.0)])

    def test_deleted_ids_respect_older_than(self, store: TrackingStore, exp: str) -> None:
        run = store.create_run(exp)
        store.delete_run(run.run_id)
        assert run.run_id in store.deleted_run_ids(older_than=int(time.time() * 1000) + 60_000)
        assert run.run_id not in store.deleted_run_ids(older_than=1)
        store.delete_experiment(exp)
        assert exp in store.deleted_experiment_ids(older_than=int(time.time() * 1000) + 60_000)
        assert exp not in store.deleted_experiment_ids(older_than=1)
        # Runs of a deleted experiment go with the experiment, not one by one.
        assert run.run_id not in store.deleted_run_ids()

    def test_purge_run(self, store: TrackingStore, exp: str) -> None:
        run = store.create_run(exp)
        keep = store.create_run(exp)
        store.log_batch(run.run_id, [metric("m", 1.0)], {"p": "1"}, {"t": "x"})
        store.record_artifact(run.run_id, "a.txt", "d-a", 1)
        store.record_artifact(run.run_id, "dir/b.txt", "d-b", 2)
        store.record_artifact(keep.run_id, "a.txt", "d-a", 1)
        assert store.purge_run(run.run_id) == {"d-a", "d-b"}
        with pytest.raises(errors.NotFound):
            store.get_run(run.run_id)
        assert store.list_artifacts(run.run_id) == []
        assert store.unreferenced_digests({"d-a", "d-b"}) == {"d-b"}
        assert ids(store.search_runs([exp])) == [keep.run_id]

    def test_nested_runs(self, store: TrackingStore, exp: str) -> None:
        parent = store.create_run(exp, run_name="parent")
        child = store.create_run(exp, parent_run_id=parent.run_id)
        assert child.info.parent_run_id == parent.run_id
        assert child.data.tags["mlflow.parentRunId"] == parent.run_id
        by_tag = store.create_run(exp, tags={"mlflow.parentRunId": parent.run_id})
        assert store.get_run(by_tag.run_id).info.parent_run_id == parent.run_id
        with pytest.raises(errors.NotFound):
            store.create_run(exp, parent_run_id=MISSING_RUN)
        found = store.search_runs([exp], f"tags.mlflow.parentRunId = '{parent.run_id}'")
        assert set(ids(found)) == {child.run_id, by_tag.run_id}
        store.delete_tag(by_tag.run_id, "mlflow.parentRunId")
        assert store.get_run(by_tag.run_id).info.parent_run_id is None

    # ------------------------------------------------------------------ logging

    def test_log_batch_round_trip(self, store: TrackingStore, run: Run) -> None:
        store.log_batch(
            run.run_id,
            metrics=[metric("acc", 0.5, step=0), metric("acc", 0.7, step=1), metric("loss", 2.0)],
            params={"lr": "0.1", "depth": "3"},
            tags={"team": "risk"},
        )
        data = store.get_run(run.run_id).data
        assert data.params == {"lr": "0.1", "depth": "3"}
        assert data.tags == {"team": "risk", "mlflow.runName": "base"}
        assert data.metrics["acc"].value == 0.7
        assert data.metrics["acc"].step == 1
        assert data.metrics["loss"] == Metric("loss", 2.0, 1, 0)

    def test_params_are_write_once(self, store: TrackingStore, run: Run) -> None:
        store.log_batch(run.run_id, params={"lr": "0.1"})
        store.log_batch(run.run_id, params={"lr": "0.1"})  # same value: fine
        with pytest.raises(errors.Conflict, match=r"already '0\.1'.*params can't change"):
            store.log_batch(
                run.run_id,
                metrics=[metric("m", 1.0)],
                params={"lr": "0.2", "new": "x"},
                tags={"t": "v"},
            )
        data = store.get_run(run.run_id).data  # the failed batch wrote nothing
        assert data.params == {"lr": "0.1"}
        assert "t" not in data.tags
        assert data.metrics == {}

    def test_tags_overwrite_and_delete(self, store: TrackingStore, run: Run) -> None:
        store.log_batch(run.run_id, tags={"a": "1", "b": "2"})
        store.log_batch(run.run_id, tags={"a": "3"})
        store.delete_tag(run.run_id, "b")
        assert store.get_run(run.run_id).data.tags == {"a": "3", "mlflow.runName": "base"}
        with pytest.raises(errors.NotFound):
            store.delete_tag(run.run_id, "b")
        store.log_batch(run.run_id, tags={"mlflow.runName": "via-tag"})
        assert store.get_run(run.run_id).info.run_name == "via-tag"

    @pytest.mark.parametrize(
        "batch",
        [
            {"params": {"k" * 251: "v"}},
            {"params": {"ok": "v" * 6001}},
            {"params": {"bad/../key": "v"}},
            {"params": {"bad\nkey": "v"}},
            {"tags": {"ok": "v" * 8001}},
            {"tags": {"": "v"}},
            {"metrics": [Metric("k" * 251, 1.0, 1)]},
            {"metrics": [Metric("m", True, 1)]},  # type: ignore[arg-type]
            {"metrics": [Metric("m", 1.0, -1)]},
            {"metrics": [Metric("m", 1.0, 1, step=1.5)]},  # type: ignore[arg-type]
        ],
    )
    def test_invalid_values_are_refused(
        self, store: TrackingStore, run: Run, batch: dict[str, Any]
    ) -> None:
        with pytest.raises(errors.InvalidInput):
            store.log_batch(run.run_id, **batch)
        data = store.get_run(run.run_id).data
        assert data.params == {}
        assert data.metrics == {}

    def test_long_values_within_limits(self, store: TrackingStore, run: Run) -> None:
        store.log_batch(run.run_id, params={"k" * 250: "v" * 6000}, tags={"t": "x" * 8000})
        data = store.get_run(run.run_id).data
        assert data.params["k" * 250] == "v" * 6000
        assert data.tags["t"] == "x" * 8000

    @pytest.mark.parametrize(
        ("n_metrics", "n_params", "n_tags"), [(1001, 0, 0), (0, 101, 0), (0, 0, 101), (950, 51, 0)]
    )
    def test_batch_limits(
        self, store: TrackingStore, run: Run, n_metrics: int, n_params: int, n_tags: int
    ) -> None:
        with pytest.raises(errors.InvalidInput):
            store.log_batch(
                run.run_id,
                [metric(f"m{i}", i) for i in range(n_metrics)],
                {f"p{i}": "v" for i in range(n_params)},
                {f"t{i}": "v" for i in range(n_tags)},
            )

    def test_full_batch_is_accepted(self, store: TrackingStore, run: Run) -> None:
        store.log_batch(run.run_id, [metric("m", float(i), step=i) for i in range(1000)])
        store.log_batch(run.run_id, params={f"p{i}": str(i) for i in range(100)})
        assert len(store.get_metric_history(run.run_id, "m")) == 1000
        assert len(store.get_run(run.run_id).data.params) == 100

    def test_nan_and_infinity_round_trip(self, store: TrackingStore, run: Run) -> None:
        store.log_batch(
            run.run_id,
            [
                metric("nan", math.nan),
                metric("pinf", math.inf),
                metric("ninf", -math.inf),
                metric("tiny", 5e-324),
            ],
        )
        latest = store.get_run(run.run_id).data.metrics
        assert math.isnan(latest["nan"].value)
        assert latest["pinf"].value == math.inf
        assert latest["ninf"].value == -math.inf
        assert latest["tiny"].value == 5e-324
        (point,) = store.get_metric_history(run.run_id, "nan")
        assert math.isnan(point.value)

    def test_latest_metric_semantics(self, store: TrackingStore, run: Run) -> None:
        rid = run.run_id

        def latest(key: str) -> Metric:
            return store.get_run(rid).data.metrics[key]

        store.log_batch(rid, [metric("a", 1.0, step=5, timestamp=10)])
        store.log_batch(rid, [metric("a", 9.0, step=3, timestamp=99)])  # older step: ignored
        assert (latest("a").value, latest("a").step) == (1.0, 5)
        store.log_batch(rid, [metric("a", 2.0, step=5, timestamp=11)])  # later timestamp wins
        assert latest("a").value == 2.0
        store.log_batch(rid, [metric("a", 1.5, step=5, timestamp=11)])  # smaller value: ignored
        assert latest("a").value == 2.0
        store.log_batch(rid, [metric("a", 3.0, step=5, timestamp=11)])  # larger value wins
        assert latest("a").value == 3.0
        store.log_batch(rid, [metric("a", math.nan, step=5, timestamp=11)])  # NaN loses a tie
        assert latest("a").value == 3.0
        store.log_batch(rid, [metric("a", math.nan, step=6, timestamp=1)])  # higher step wins
        assert math.isnan(latest("a").value)
        store.log_batch(rid, [metric("a", -1.0, step=6, timestamp=1)])  # a value beats NaN
        assert latest("a").value == -1.0
        # Within one batch the same rules pick the winner, whatever the order.
        store.log_batch(
            rid,
            [metric("b", 4.0, 2, 5), metric("b", 7.0, 2, 6), metric("b", 8.0, 2, 4), metric("b", 1.0, 1, 9)],
        )  # fmt: skip
        assert (latest("b").value, latest("b").timestamp) == (7.0, 6)

    def test_metric_history(self, store: TrackingStore, run: Run) -> None:
        rid = run.run_id
        points = [metric("h", float(v), step=s, timestamp=t) for v, s, t in
                  [(3, 2, 1), (1, 0, 5), (2, 1, 1), (4, 2, 0), (5, 2, 1), (5, 2, 1)]]  # fmt: skip
        store.log_batch(rid, points[:3])
        store.log_batch(rid, points[3:])
        history = store.get_metric_history(rid, "h")
        assert history.next_page_token is None
        assert [(m.step, m.timestamp, m.value) for m in history] == [
            (0, 5, 1.0), (1, 1, 2.0), (2, 0, 4.0), (2, 1, 3.0), (2, 1, 5.0), (2, 1, 5.0),
        ]  # fmt: skip
        assert all(m.key == "h" for m in history)
        for size in (1, 2, 4):
            paged = all_pages(lambda **kw: store.get_metric_history(rid, "h", **kw), size)
            assert paged == history.items
        assert list(store.get_metric_history(rid, "unknown")) == []
        with pytest.raises(errors.InvalidInput):
            store.get_metric_history(rid, "h", max_results=0)
        with pytest.raises(errors.InvalidInput):
            store.get_metric_history(rid, "h", max_results=2, page_token="garbage!")

    def test_metric_dataset_and_model_links(self, store: TrackingStore, run: Run) -> None:
        linked = Metric("acc", 0.9, 5, 1, dataset_name="eval", dataset_digest="abc", model_id="m-1")
        store.log_batch(run.run_id, [linked])
        assert list(store.get_metric_history(run.run_id, "acc")) == [linked]

    def test_metric_history_rows(self, store: TrackingStore, run: Run) -> None:
        rid = run.run_id
        points = [
            Metric("m", 1.5, 10, 0),
            Metric("m", math.nan, 11, 1),
            Metric("m", 2.5, 12, 2, dataset_name="eval", dataset_digest="d1"),
            Metric("m", -0.0, 13, 3),
            Metric("m", math.nan, 14, 4, model_id="m-7"),
            Metric("m", 4.0, 15, 5),
        ]
        store.log_batch(rid, points)
        expected = [
            (0, 10, 1.5, None),
            (1, 11, None, None),
            (2, 12, 2.5, ("eval", "d1", None)),
            (3, 13, -0.0, None),
            (4, 14, None, (None, None, "m-7")),
            (5, 15, 4.0, None),
        ]

        def plain(rows: list[Any]) -> list[Any]:  # links: any falsy value means "none"
            return [(s, t, v, tuple(links) if links else None) for s, t, v, links in rows]

        page = store.get_metric_history_rows(rid, "m")
        assert page.next_page_token is None
        assert plain(page.items) == expected
        # Pages with and without linked points, and the entities built from the same rows.
        for size in (1, 2, 4):
            rows: list[Any] = []
            token = None
            while True:
                page = store.get_metric_history_rows(rid, "m", max_results=size, page_token=token)
                rows += page.items
                if not (token := page.next_page_token):
                    break
            assert plain(rows) == expected
        history = store.get_metric_history(rid, "m").items
        assert [(m.step, m.model_id, m.dataset_name) for m in history] == [
            (0, None, None), (1, None, None), (2, None, "eval"),
            (3, None, None), (4, "m-7", None), (5, None, None),
        ]  # fmt: skip
        assert math.isnan(history[1].value)
        assert math.isnan(history[4].value)
        assert history[3].value == 0.0

    def test_log_inputs(self, store: TrackingStore, exp: str) -> None:
        a = store.create_run(exp)
        b = store.create_run(exp)
        train = Dataset("train", "d1", "local", '{"uri": "x"}', '{"cols": []}', '{"rows": 3}')
        evals = Dataset("eval", "d2")
        store.log_inputs(a.run_id, [
            DatasetInput(train, {"mlflow.data.context": "training"}),
            DatasetInput(evals, {"mlflow.data.context": "eval"}),
            DatasetInput(train, {"mlflow.data.context": "training"}),
        ])  # fmt: skip
        store.log_inputs(a.run_id, [DatasetInput(train, {"mlflow.data.context": "training"})])
        store.log_inputs(b.run_id, [DatasetInput(train, {"mlflow.data.context": "training"})])
        inputs = store.get_run(a.run_id).inputs
        by_name = {i.dataset.name: i for i in inputs}
        assert len(inputs) == 2
        assert by_name["train"] == DatasetInput(train, {"mlflow.data.context": "training"})
        assert by_name["eval"] == DatasetInput(evals, {"mlflow.data.context": "eval"})
        assert store.get_run(b.run_id).inputs == (
            DatasetInput(train, {"mlflow.data.context": "training"}),
        )
        with pytest.raises(errors.InvalidInput):
            store.log_inputs(a.run_id, [DatasetInput(Dataset("x" * 501, "d"))])
        with pytest.raises(errors.InvalidInput):
            store.log_inputs(a.run_id, [DatasetInput(Dataset("n", "d" * 37))])
        with pytest.raises(errors.InvalidInput):
            store.log_inputs(a.run_id, [DatasetInput(Dataset("n", "d"), {"k": "v" * 501})])

    # ------------------------------------------------------------------ search: filters

    @pytest.fixture
    def population(self, store: TrackingStore, exp: str) -> dict[str, str]:
        """Five runs with varied values; returns name -> run id."""
        spec: list[tuple[str, dict[str, float], dict[str, str], dict[str, str]]] = [
            ("r-alpha", {"acc": 0.9, "loss": 0.1}, {"model": "Forest", "depth": "10"}, {"env": "prod"}),
            ("r-beta", {"acc": 0.7}, {"model": "forest", "depth": "9"}, {"env": "dev"}),
            ("r-gamma", {"acc": math.nan}, {"model": "linear"}, {}),
            ("r-delta", {}, {}, {"env": "Prod"}),
            ("R-Epsilon", {"acc": 0.7, "loss": 0.5}, {"model": "for_est"}, {"env": "prod"}),
        ]  # fmt: skip
        out = {}
        for i, (name, ms, ps, ts) in enumerate(spec):
            run = store.create_run(exp, run_name=name, start_time=1000 * (i + 1), user_id="ann")
            store.log_batch(run.run_id, [metric(k, v) for k, v in ms.items()], ps, ts)
            out[name] = run.run_id
        store.update_run(out["r-alpha"], status="FINISHED", end_time=9000)
        store.log_inputs(out["r-beta"], [
            DatasetInput(Dataset("train", "d-1"), {"mlflow.data.context": "training"}),
        ])  # fmt: skip
        store.log_inputs(out["r-gamma"], [
            DatasetInput(Dataset("holdout", "d-2"), {"mlflow.data.context": "eval"}),
        ])  # fmt: skip
        return out

    @pytest.mark.parametrize(
        ("filter_string", "expected"),
        [
            ("", ["R-Epsilon", "r-delta", "r-gamma", "r-beta", "r-alpha"]),
            ("metrics.acc > 0.8", ["r-alpha"]),
            ("metrics.acc >= 0.7", ["R-Epsilon", "r-beta", "r-alpha"]),
            ("metrics.acc = 0.7", ["R-Epsilon", "r-beta"]),
            ("metrics.acc < 1", ["R-Epsilon", "r-beta", "r-alpha"]),
            ("metrics.acc <= 0.7 AND metrics.loss > 0.2", ["R-Epsilon"]),
            ("metrics.acc != 0.7", ["r-gamma", "r-alpha"]),
            ("params.model = 'forest'", ["r-beta"]),
            ("params.model != 'forest'", ["R-Epsilon", "r-gamma", "r-alpha"]),
            ("params.model LIKE 'for%'", ["R-Epsilon", "r-beta"]),
            ("params.model LIKE 'for_est'", ["R-Epsilon"]),
            ("params.model LIKE 'fo_est'", ["r-beta"]),
            ("params.model ILIKE 'FOR%'", ["R-Epsilon", "r-beta", "r-alpha"]),
            ("params.model LIKE '%est'", ["R-Epsilon", "r-beta", "r-alpha"]),
            ("params.depth IS NULL", ["R-Epsilon", "r-delta", "r-gamma"]),
            ("params.depth IS NOT NULL", ["r-beta", "r-alpha"]),
            ("tags.env = 'prod'", ["R-Epsilon", "r-alpha"]),
            ("tags.env ILIKE 'prod'", ["R-Epsilon", "r-delta", "r-alpha"]),
            ("tags.env IS NULL", ["r-gamma"]),
            ("tags.env != 'prod' AND params.model IS NULL", ["r-delta"]),
            ("attributes.run_name LIKE 'r-%'", ["r-delta", "r-gamma", "r-beta", "r-alpha"]),
            ("run_name ILIKE 'r-e%'", ["R-Epsilon"]),
            ("attributes.status = 'FINISHED'", ["r-alpha"]),
            ("status != 'FINISHED'", ["R-Epsilon", "r-delta", "r-gamma", "r-beta"]),
            ("attributes.start_time > 3000", ["R-Epsilon", "r-delta"]),
            ("attributes.start_time <= 1000", ["r-alpha"]),
            ("attributes.end_time > 0", ["r-alpha"]),
            (
                "attributes.user_id = 'ann'",
                ["R-Epsilon", "r-delta", "r-gamma", "r-beta", "r-alpha"],
            ),
            ("datasets.name = 'train'", ["r-beta"]),
            ("datasets.name IN ('train', 'holdout')", ["r-gamma", "r-beta"]),
            ("datasets.context = 'eval'", ["r-gamma"]),
            ("datasets.digest LIKE 'd-%'", ["r-gamma", "r-beta"]),
            ("metrics.nope > 0", []),
            # Whole numbers beyond int64 compare as floats instead of failing to bind.
            ("metrics.acc < 1e30", ["R-Epsilon", "r-beta", "r-alpha"]),
            ("metrics.acc > -99999999999999999999999", ["R-Epsilon", "r-beta", "r-alpha"]),
            ("attributes.start_time > 99999999999999999999999", []),
            ("attributes.end_time < 1e30", ["r-alpha"]),
        ],
    )
    def test_filters(
        self,
        store: TrackingStore,
        exp: str,
        population: dict[str, str],
        filter_string: str,
        expected: list[str],
    ) -> None:
        found = store.search_runs([exp], filter_string)
        assert [r.info.run_name for r in found] == expected
        assert found.next_page_token is None

    def test_filter_by_run_id(
        self, store: TrackingStore, exp: str, population: dict[str, str]
    ) -> None:
        wanted = [population["r-beta"], population["r-delta"]]
        found = store.search_runs([exp], f"attributes.run_id IN ('{wanted[0]}', '{wanted[1]}')")
        assert set(ids(found)) == set(wanted)
        found = store.search_runs([exp], f"run_id = '{wanted[0]}'")
        assert ids(found) == [wanted[0]]

    def test_invalid_filters(self, store: TrackingStore, exp: str) -> None:
        for bad in (
            "metrics.acc > 'high'",
            "params.x > 1",
            "foo.bar = 1",
            "metrics.acc >",
            "a OR b",
        ):
            with pytest.raises(errors.InvalidFilter):
                store.search_runs([exp], bad)
        with pytest.raises(errors.InvalidFilter):
            store.search_runs([exp], order_by=["datasets.name"])

    def test_search_returns_whole_runs(
        self, store: TrackingStore, exp: str, population: dict[str, str]
    ) -> None:
        (found,) = store.search_runs([exp], "params.model = 'forest'")
        assert found == store.get_run(population["r-beta"])
        assert found.data.metrics["acc"].value == 0.7
        assert found.data.tags["env"] == "dev"
        assert found.inputs[0].dataset.name == "train"

    def test_view_types_and_experiments(self, store: TrackingStore, exp: str) -> None:
        other = new_experiment(store)
        a = store.create_run(exp, start_time=1)
        b = store.create_run(exp, start_time=2)
        c = store.create_run(other, start_time=3)
        store.delete_run(b.run_id)
        assert ids(store.search_runs([exp])) == [a.run_id]
        assert ids(store.search_runs([exp], view_type=ViewType.DELETED_ONLY)) == [b.run_id]
        assert ids(store.search_runs([exp], view_type=ViewType.ALL)) == [b.run_id, a.run_id]
        assert ids(store.search_runs([exp, other])) == [c.run_id, a.run_id]
        assert ids(store.search_runs([])) == []
        assert ids(store.search_runs(["987654"])) == []

    def test_search_limits(self, store: TrackingStore, exp: str) -> None:
        for bad in (0, -1, 50001):
            with pytest.raises(errors.InvalidInput):
                store.search_runs([exp], max_results=bad)
        with pytest.raises(errors.InvalidInput):
            store.search_runs([exp], page_token="not-a-token")

    # ------------------------------------------------------------------ search: order and pages

    def test_metric_order_puts_nan_then_missing_last(self, store: TrackingStore, exp: str) -> None:
        values: dict[str, float | None] = {
            "r1": 0.5, "r2": 0.9, "r3": math.nan, "r4": None, "r5": 0.5, "r6": -math.inf,
            "r7": math.inf,
        }  # fmt: skip
        names = {}
        for i, (name, value) in enumerate(values.items()):
            run = store.create_run(exp, run_name=name, start_time=1000 * (i + 1))
            if value is not None:
                store.log_batch(run.run_id, [metric("acc", value)])
            names[run.run_id] = name

        def order(*keys: str) -> list[str]:
            return [names[r.run_id] for r in store.search_runs([exp], order_by=list(keys))]

        # Ties (r1 and r5) fall back to start_time DESC.
        assert order("metrics.acc ASC") == ["r6", "r5", "r1", "r2", "r7", "r3", "r4"]
        assert order("metrics.acc DESC") == ["r7", "r2", "r5", "r1", "r6", "r3", "r4"]
        assert order("metrics.acc") == order("metrics.acc ASC")
        assert order() == ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]
        assert order("start_time ASC") == ["r1", "r2", "r3", "r4", "r5", "r6", "r7"]
        assert order("attributes.run_name DESC") == ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]

    def test_param_and_tag_order(self, store: TrackingStore, exp: str) -> None:
        names = {}
        for i, (name, depth) in enumerate([("a", "10"), ("b", "9"), ("c", None), ("d", "10")]):
            run = store.create_run(exp, run_name=name, start_time=i)
            if depth is not None:
                store.log_batch(run.run_id, params={"depth": depth}, tags={"depth": depth})
            names[run.run_id] = name
        for kind in ("params", "tags"):
            asc = store.search_runs([exp], order_by=[f"{kind}.depth ASC"])
            desc = store.search_runs([exp], order_by=[f"{kind}.depth DESC", "run_name ASC"])
            assert [names[r.run_id] for r in asc] == ["d", "a", "b", "c"]  # strings, missing last
            assert [names[r.run_id] for r in desc] == ["b", "a", "d", "c"]

    def test_default_order_breaks_ties_by_run_id(self, store: TrackingStore, exp: str) -> None:
        runs = [store.create_run(exp, start_time=777) for _ in range(5)]
        assert ids(store.search_runs([exp])) == sorted(r.run_id for r in runs)

    def test_pages_return_every_run_once(self, store: TrackingStore, exp: str) -> None:
        for i in range(23):
            run = store.create_run(exp, run_name=f"run-{i % 7}", start_time=1000 + i % 4)
            score = [0.5, math.nan, 0.25, 1.0, None][i % 5]
            group = str(i % 2) if i % 3 else None
            store.log_batch(
                run.run_id,
                [metric("score", score)] if score is not None else [],
                {"group": group} if group else {},
                {"group": group} if group else {},
            )
            if i % 4 == 0:
                store.update_run(run.run_id, status="FINISHED", end_time=5000 + i % 3)
        for order_by in (
            [],
            ["metrics.score DESC"],
            ["metrics.score ASC", "params.group DESC"],
            ["params.group", "start_time ASC"],
            ["tags.group DESC"],
            ["attributes.run_name"],
            ["attributes.end_time DESC"],
        ):
            full = ids(store.search_runs([exp], order_by=order_by, max_results=1000))
            assert len(full) == len(set(full)) == 23, order_by
            for size in (1, 4, 10, 23):
                paged = all_pages(
                    lambda order=order_by, **kw: store.search_runs([exp], order_by=order, **kw),
                    size,
                )
                assert ids(paged) == full, (order_by, size)

    def test_filtered_metric_order_pages(self, store: TrackingStore, exp: str) -> None:
        rng = random.Random(7)
        expected: list[tuple[int, float, int, str]] = []  # (rank, -score, -start, run id)
        for i in range(60):
            run = store.create_run(exp, start_time=1000 + i % 9)
            score = rng.choice([rng.random(), rng.random(), math.nan, None])
            loss, kind = rng.random(), rng.choice("ab")
            store.log_batch(
                run.run_id,
                [metric("loss", loss), *([metric("score", score)] if score is not None else [])],
                {"kind": kind},
                {"t": "on"} if i % 3 else {},
            )
            if loss > 0.3 and kind == "a" and i % 3:
                rank = 2 if score is None else 1 if math.isnan(score) else 0
                value = 0.0 if rank else -score  # type: ignore[operator]
                expected.append((rank, value, -(1000 + i % 9), run.run_id))
        want = [e[3] for e in sorted(expected)]
        assert len(want) >= 8

        flt = "metrics.loss > 0.3 and params.kind = 'a' and tags.t = 'on'"
        for size in (1, 3, len(want)):
            paged = all_pages(
                lambda **kw: store.search_runs([exp], flt, order_by=["metrics.score DESC"], **kw),
                size,
            )
            assert ids(paged) == want, size
        first = store.search_runs([exp], flt, order_by=["metrics.score DESC"], max_results=2)
        with pytest.raises(errors.InvalidInput, match="different order_by"):
            store.search_runs([exp], flt, max_results=2, page_token=first.next_page_token)

    def test_pages_stay_stable_while_runs_are_added(self, store: TrackingStore, exp: str) -> None:
        first = [store.create_run(exp, start_time=100 + i).run_id for i in range(6)]
        page = store.search_runs([exp], max_results=3)
        assert ids(page) == first[::-1][:3]
        store.create_run(exp, start_time=999)  # newer than everything: belongs before page 1
        rest = store.search_runs([exp], max_results=10, page_token=page.next_page_token)
        assert ids(rest) == first[::-1][3:]

    # ------------------------------------------------------------------ artifact index

    def test_artifact_listing(self, store: TrackingStore, run: Run) -> None:
        rid = run.run_id
        for path, digest, size in [
            ("MLmodel", "d1", 10), ("model/model.pkl", "d2", 20), ("model/conda.yaml", "d3", 30),
            ("model/sub/x.bin", "d4", 40), ("dir/x", "d5", 1), ("dir0", "d6", 1),
            ("dir-a/y", "d7", 1), ("dir.txt", "d8", 1),
        ]:  # fmt: skip
            info = store.record_artifact(rid, path, digest, size)
            assert (info.path, info.is_dir, info.file_size, info.digest) == (
                path,
                False,
                size,
                digest,
            )
        root = store.list_artifacts(rid)
        assert [(a.path, a.is_dir) for a in root] == [
            ("MLmodel", False), ("dir.txt", False), ("dir0", False),
            ("dir", True), ("dir-a", True), ("model", True),
        ]  # fmt: skip
        assert root[0].file_size == 10
        assert root[0].digest == "d1"
        model = store.list_artifacts(rid, "model")
        assert [(a.path, a.is_dir, a.file_size) for a in model] == [
            ("model/conda.yaml", False, 30), ("model/model.pkl", False, 20),
            ("model/sub", True, None),
        ]  # fmt: skip
        assert store.list_artifacts(rid, "model/") == model
        assert [a.path for a in store.list_artifacts(rid, "dir")] == ["dir/x"]
        assert store.list_artifacts(rid, "MLmodel") == []
        assert store.list_artifacts(rid, "missing") == []
        assert store.get_artifact(rid, "model/model.pkl").digest == "d2"
        with pytest.raises(errors.NotFound):
            store.get_artifact(rid, "model")

    def test_artifact_overwrite_and_conflicts(self, store: TrackingStore, run: Run) -> None:
        rid = run.run_id
        store.record_artifact(rid, "a/b.txt", "old", 1)
        store.record_artifact(rid, "a/b.txt", "new", 2)
        info = store.get_artifact(rid, "a/b.txt")
        assert (info.digest, info.file_size) == ("new", 2)
        with pytest.raises(errors.Conflict):
            store.record_artifact(rid, "a", "x", 1)  # a folder already
        with pytest.raises(errors.Conflict):
            store.record_artifact(rid, "a/b.txt/c", "x", 1)  # below a file
        for bad in ("../escape", "/abs", "a/../b", "a//b", "", "a\\b"):
            with pytest.raises(errors.InvalidArtifactPath):
                store.record_artifact(rid, bad, "x", 1)
        with pytest.raises(errors.InvalidInput):
            store.record_artifact(rid, "ok", "x", -1)

    def test_delete_artifacts(self, store: TrackingStore, run: Run) -> None:
        rid = run.run_id
        for path, digest in [("a/1", "x"), ("a/b/2", "y"), ("a0", "z"), ("a-b/3", "w"), ("c", "x")]:
            store.record_artifact(rid, path, digest, 1)
        assert store.delete_artifacts(rid, "a") == {"x", "y"}
        assert [a.path for a in store.list_artifacts(rid)] == ["a0", "c", "a-b"]
        assert store.delete_artifacts(rid, "c") == {"x"}
        assert store.delete_artifacts(rid, "nothing") == set()
        assert store.delete_artifacts(rid) == {"z", "w"}
        assert store.list_artifacts(rid) == []

    def test_digest_references(self, store: TrackingStore, exp: str) -> None:
        a = store.create_run(exp)
        b = store.create_run(exp)
        store.record_artifact(a.run_id, "f", "shared", 1)
        store.record_artifact(b.run_id, "g", "shared", 1)
        store.record_artifact(b.run_id, "h", "only-b", 1)
        assert store.unreferenced_digests({"shared", "only-b", "gone"}) == {"gone"}
        assert store.unreferenced_digests(set()) == set()
        assert sorted(store.iter_referenced_digests()) == ["only-b", "shared"]
        store.delete_artifacts(b.run_id)
        assert store.unreferenced_digests({"shared", "only-b"}) == {"only-b"}
        assert list(store.iter_referenced_digests()) == ["shared"]
