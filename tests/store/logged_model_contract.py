"""The behaviour every :class:`~shipyard.store.logged_models.LoggedModelStore` must have.

Subclass :class:`LoggedModelStoreContract` once per backend, set ``__test__ = True`` and override
the ``stores`` fixture (a tracking store, a registry store and a logged-model store on the same
metadata). The tests use only the three interfaces.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator

import pytest

from shipyard import errors
from shipyard.entities import LifecycleStage, LoggedModelStatus, Metric
from shipyard.store.base import TrackingStore
from shipyard.store.logged_models import (
    DatasetScope,
    LoggedModelFiles,
    LoggedModelOrder,
    LoggedModelStore,
)
from shipyard.store.registry import RegistryStore
from tests.store.contract import all_pages

READY = LoggedModelStatus.READY.value
Stores = tuple[TrackingStore, RegistryStore, LoggedModelStore]


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class LoggedModelStoreContract:
    """Base class of the per-backend test classes (not collected itself)."""

    __test__ = False

    @pytest.fixture
    def stores(self) -> Iterator[Stores]:
        raise NotImplementedError("each backend's test class provides the stores fixture")

    @pytest.fixture
    def tracking(self, stores: Stores) -> TrackingStore:
        return stores[0]

    @pytest.fixture
    def registry(self, stores: Stores) -> RegistryStore:
        return stores[1]

    @pytest.fixture
    def models(self, stores: Stores) -> LoggedModelStore:
        return stores[2]

    @pytest.fixture
    def exp(self, tracking: TrackingStore) -> str:
        return tracking.create_experiment(f"lm-{uuid.uuid4().hex[:8]}")

    # ------------------------------------------------------------------ lifecycle

    def test_create_get_finalize(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> None:
        run = tracking.create_run(exp).info.run_id
        created = models.create_logged_model(
            exp,
            name="model",
            model_type="classifier",
            source_run_id=run,
            params={"lr": "0.1"},
            tags={"mlflow.user": "ada"},
            creator_id="ada",
        )
        assert created.model_id.startswith("m-")
        assert len(created.model_id) == 34
        assert created.storage_owner == created.model_id
        assert created.status == LoggedModelStatus.PENDING
        location = tracking.get_experiment(exp).artifact_location
        assert created.artifact_uri == f"{location}/models/{created.model_id}/artifacts"
        assert created.experiment_id == exp
        assert created.source_run_id == run
        assert created.creator_id == "ada"
        assert created.params == {"lr": "0.1"}
        assert created.tags == {"mlflow.user": "ada"}
        assert created.lifecycle_stage == LifecycleStage.ACTIVE
        assert created.creation_timestamp == created.last_updated_timestamp > 0

        done = models.finalize_logged_model(created.model_id, READY, status_message="ok")
        assert (done.status, done.status_message) == (READY, "ok")
        assert models.get_logged_model(created.model_id) == done
        files = models.get_logged_model_files(created.model_id)
        assert files == LoggedModelFiles(created.model_id, exp, READY, run)

    def test_a_model_without_a_name_gets_one(self, models: LoggedModelStore, exp: str) -> None:
        assert models.create_logged_model(exp).name

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"name": "a/b"}, errors.InvalidInput),
            ({"name": "a.b"}, errors.InvalidInput),
            ({"name": ""}, errors.InvalidInput),
            ({"source_run_id": "f" * 32}, errors.NotFound),
            ({"source_run_id": "not a run"}, errors.InvalidInput),
            ({"params": {"bad key!": "1"}}, errors.InvalidInput),
            ({"tags": {f"k{i}": "v" for i in range(101)}}, errors.PayloadTooLarge),
        ],
    )
    def test_create_refuses_bad_input(
        self,
        models: LoggedModelStore,
        exp: str,
        kwargs: dict[str, object],
        error: type[errors.ShipyardError],
    ) -> None:
        with pytest.raises(error):
            models.create_logged_model(exp, **kwargs)  # type: ignore[arg-type]

    def test_create_needs_an_active_experiment(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> None:
        with pytest.raises(errors.NotFound, match="987654"):
            models.create_logged_model("987654")
        tracking.delete_experiment(exp)
        with pytest.raises(errors.InvalidState, match="deleted"):
            models.create_logged_model(exp)

    def test_unknown_and_malformed_ids(self, models: LoggedModelStore) -> None:
        with pytest.raises(errors.NotFound, match="does not exist"):
            models.get_logged_model("m-" + "0" * 32)
        for bad in ("0" * 32, "m-", "m-a/b", "m-'x'", 5):
            with pytest.raises(errors.InvalidInput, match="logged model id"):
                models.get_logged_model(bad)  # type: ignore[arg-type]

    def test_finalize_refuses_unknown_statuses(self, models: LoggedModelStore, exp: str) -> None:
        mid = models.create_logged_model(exp).model_id
        with pytest.raises(errors.InvalidInput, match="LOGGED_MODEL_READY"):
            models.finalize_logged_model(mid, "DONE")

    def test_delete_is_soft(self, models: LoggedModelStore, exp: str) -> None:
        mid = models.create_logged_model(exp, name="gone").model_id
        models.delete_logged_model(mid)
        with pytest.raises(errors.NotFound, match="was deleted"):
            models.get_logged_model(mid)
        with pytest.raises(errors.NotFound, match="was deleted"):
            models.get_logged_model_files(mid)
        assert models.get_logged_model(mid, allow_deleted=True).lifecycle_stage == "deleted"
        with pytest.raises(errors.NotFound):
            models.set_logged_model_tags(mid, {"a": "b"})
        with pytest.raises(errors.NotFound):
            models.delete_logged_model(mid)
        assert models.search_logged_models([exp]).items == []

    # ------------------------------------------------------------------ tags and params

    def test_tags_overwrite_and_delete(self, models: LoggedModelStore, exp: str) -> None:
        mid = models.create_logged_model(exp, tags={"a": "1"}).model_id
        models.set_logged_model_tags(
            mid, {"a": "2", "mlflow.modelVersions": "[" + "x" * 9000 + "]"}
        )
        assert models.get_logged_model(mid).tags["a"] == "2"
        models.delete_logged_model_tag(mid, "a")
        assert set(models.get_logged_model(mid).tags) == {"mlflow.modelVersions"}
        with pytest.raises(errors.NotFound, match="no tag 'a'"):
            models.delete_logged_model_tag(mid, "a")

    def test_params_are_write_once(self, models: LoggedModelStore, exp: str) -> None:
        mid = models.create_logged_model(exp, params={"a": "1"}).model_id
        models.log_logged_model_params(mid, {"a": "1", "b": "2"})
        with pytest.raises(errors.Conflict, match="already '1'"):
            models.log_logged_model_params(mid, {"a": "3", "c": "4"})
        assert models.get_logged_model(mid).params == {"a": "1", "b": "2"}

    # ------------------------------------------------------------------ metrics and registrations

    def test_metrics_logged_with_the_model_id_belong_to_it(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> None:
        run = tracking.create_run(exp).info.run_id
        mid = models.create_logged_model(exp, source_run_id=run).model_id
        tracking.log_batch(
            run,
            metrics=[
                Metric("acc", 0.9, 10, 0, model_id=mid, dataset_name="eval", dataset_digest="d1"),
                Metric("loss", math.nan, 10, 0, model_id=mid),
                Metric("acc", 0.1, 10, 0),  # the run's own point
            ],
        )
        got = {m.key: m for m in models.get_logged_model(mid).metrics}
        assert set(got) == {"acc", "loss"}
        assert got["acc"].value == 0.9
        assert (got["acc"].dataset_name, got["acc"].dataset_digest) == ("eval", "d1")
        assert got["acc"].model_id == mid
        assert math.isnan(got["loss"].value)

    def test_registrations_are_the_versions_registered_from_it(
        self, tracking: TrackingStore, registry: RegistryStore, models: LoggedModelStore, exp: str
    ) -> None:
        mid = models.create_logged_model(exp).model_id
        tracking.record_artifact(mid, "MLmodel", digest_of("m"), 1)
        name = f"reg-{uuid.uuid4().hex[:6]}"
        for _ in range(2):
            registry.create_model_version(
                name, f"models:/{mid}", artifact_owner=mid, artifact_path=""
            )
        regs = models.get_logged_model(mid).registrations
        assert [(r.name, r.version) for r in regs] == [(name, 1), (name, 2)]

    # ------------------------------------------------------------------ search

    @pytest.fixture
    def candidates(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> dict[str, str]:
        """Five models: accuracy 0.7, 0.9, 0.8, NaN and none, on dataset ``eval``; ``test``
        holds the reverse order."""
        run = tracking.create_run(exp).info.run_id
        ids: dict[str, str] = {}
        for i, acc in enumerate([0.7, 0.9, 0.8, math.nan, None]):
            mid = models.create_logged_model(
                exp,
                name=f"cand-{i}",
                source_run_id=run,
                model_type="clf" if i % 2 else None,
                params={"depth": str(i)},
                tags={"team": "a" if i < 2 else "b"},
            ).model_id
            ids[f"cand-{i}"] = mid
            if acc is not None:
                tracking.log_batch(
                    run,
                    metrics=[
                        Metric("acc", 0.0, 1, 0, model_id=mid, dataset_name="eval"),
                        Metric("acc", acc, 2, 1, model_id=mid, dataset_name="eval"),
                        Metric("acc", 1 - acc, 2, 1, model_id=mid, dataset_name="test"),
                    ],
                )
        return ids

    @staticmethod
    def names(page: object) -> list[str]:
        return [m.name for m in page]  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("filter_string", "expected"),
        [
            ("", ["cand-4", "cand-3", "cand-2", "cand-1", "cand-0"]),
            ("name = 'cand-2'", ["cand-2"]),
            ("name LIKE 'cand-%' AND name != 'cand-0'", ["cand-4", "cand-3", "cand-2", "cand-1"]),
            ("name IN ('cand-0', 'cand-4')", ["cand-4", "cand-0"]),
            ("model_type = 'clf'", ["cand-3", "cand-1"]),
            ("params.depth = '3'", ["cand-3"]),
            ("tags.team = 'a'", ["cand-1", "cand-0"]),
            ("tags.team IS NULL", []),
            ("status = 'LOGGED_MODEL_PENDING'", ["cand-4", "cand-3", "cand-2", "cand-1", "cand-0"]),
            ("metrics.acc >= 0.8", ["cand-2", "cand-1"]),  # the latest point (step 1) counts
            ("metrics.acc < 0.75", ["cand-0"]),  # NaN and no value never match
            ("creation_timestamp > 0 AND metrics.acc > 0.85", ["cand-1"]),
        ],
    )
    def test_search_filters(
        self,
        models: LoggedModelStore,
        exp: str,
        candidates: dict[str, str],
        filter_string: str,
        expected: list[str],
    ) -> None:
        assert self.names(models.search_logged_models([exp], filter_string)) == expected

    def test_search_scopes_metrics_to_datasets(
        self, models: LoggedModelStore, exp: str, candidates: dict[str, str]
    ) -> None:
        on_test = [DatasetScope("test")]
        found = models.search_logged_models([exp], "metrics.acc > 0.25", datasets=on_test)
        assert self.names(found) == ["cand-0"]  # 1 - 0.7
        # Naming datasets alone keeps the models with a metric on them.
        found = models.search_logged_models([exp], datasets=[DatasetScope("eval", None)])
        assert self.names(found) == ["cand-3", "cand-2", "cand-1", "cand-0"]
        assert models.search_logged_models([exp], datasets=[DatasetScope("nope")]).items == []

    def test_search_orders_by_metrics_and_attributes(
        self, models: LoggedModelStore, exp: str, candidates: dict[str, str]
    ) -> None:
        def order(*terms: LoggedModelOrder | str) -> list[str]:
            return self.names(models.search_logged_models([exp], order_by=list(terms)))

        # Models without a (real) value come last either way.
        assert order("metrics.acc DESC") == ["cand-1", "cand-2", "cand-0", "cand-4", "cand-3"]
        assert order("metrics.acc") == ["cand-0", "cand-2", "cand-1", "cand-4", "cand-3"]
        test = DatasetScope("test")
        assert order(LoggedModelOrder("metrics.acc", False, test))[:3] == [
            "cand-0", "cand-2", "cand-1",
        ]  # fmt: skip
        assert order("name DESC") == ["cand-4", "cand-3", "cand-2", "cand-1", "cand-0"]
        assert order("model_type", "name")[:2] == ["cand-1", "cand-3"]
        with pytest.raises(errors.InvalidFilter, match="order_by"):
            order("params.depth")
        with pytest.raises(errors.InvalidFilter, match="dataset"):
            order(LoggedModelOrder("name", True, test))

    def test_search_pages_without_gaps_or_repeats(
        self, models: LoggedModelStore, exp: str, candidates: dict[str, str]
    ) -> None:
        for order_by in (None, ["metrics.acc DESC"], ["model_type DESC"]):
            pages = all_pages(
                lambda o=order_by, **kw: models.search_logged_models([exp], order_by=o, **kw), 2
            )
            assert sorted(m.name for m in pages) == sorted(candidates)
        first = models.search_logged_models([exp], max_results=2)
        with pytest.raises(errors.InvalidInput, match="different order_by"):
            models.search_logged_models(
                [exp], max_results=2, order_by=["name"], page_token=first.next_page_token
            )

    def test_search_scope_and_limits(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> None:
        other = tracking.create_experiment(f"other-{uuid.uuid4().hex[:8]}")
        models.create_logged_model(other, name="elsewhere")
        models.create_logged_model(exp, name="here")
        assert self.names(models.search_logged_models([exp])) == ["here"]
        assert sorted(self.names(models.search_logged_models([exp, other]))) == [
            "elsewhere", "here",
        ]  # fmt: skip
        assert models.search_logged_models([]).items == []
        with pytest.raises(errors.InvalidInput, match="max_results"):
            models.search_logged_models([exp], max_results=1001)
        with pytest.raises(errors.InvalidFilter, match="unknown logged model attribute"):
            models.search_logged_models([exp], "size > 1")
        with pytest.raises(errors.InvalidInput, match="experiment id"):
            models.search_logged_models(["abc"])

    # ------------------------------------------------------------------ runs

    def test_runs_record_inputs_and_outputs(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> None:
        run = tracking.create_run(exp).info.run_id
        other = tracking.create_run(exp).info.run_id
        a = models.create_logged_model(exp, name="a").model_id
        b = models.create_logged_model(exp, name="b").model_id
        models.log_run_models(run, outputs=[(a, 0)])
        models.log_run_models(run, outputs=[(a, 3)], inputs=[b])
        found = models.run_models([run, other])
        assert set(found) == {run}
        assert found[run].outputs == ((a, 3),)
        assert found[run].inputs == (b,)
        with pytest.raises(errors.NotFound, match="m-" + "0" * 32):
            models.log_run_models(run, outputs=[("m-" + "0" * 32, 0)])
        with pytest.raises(errors.NotFound, match="f" * 32):
            models.log_run_models("f" * 32)
        tracking.delete_run(other)
        with pytest.raises(errors.InvalidState, match="deleted"):
            models.log_run_models(other, inputs=[a])

    def test_purging_the_experiment_removes_its_models_and_frees_their_files(
        self, tracking: TrackingStore, models: LoggedModelStore, exp: str
    ) -> None:
        run = tracking.create_run(exp).info.run_id
        mid = models.create_logged_model(exp, source_run_id=run, tags={"a": "b"}).model_id
        models.log_run_models(run, outputs=[(mid, 0)])
        tracking.record_artifact(mid, "MLmodel", digest_of("only-here"), 9)
        tracking.delete_experiment(exp)
        freed = tracking.purge_experiment(exp)
        assert digest_of("only-here") in freed
        with pytest.raises(errors.NotFound):
            models.get_logged_model(mid, allow_deleted=True)
        assert tracking.list_artifacts(mid) == []
