"""The behaviour every :class:`~shipyard.store.registry.RegistryStore` must have.

Subclass :class:`RegistryStoreContract` once per backend, set ``__test__ = True`` and override the
``stores`` fixture (a tracking store and a registry store on the same metadata). The tests use
only the two interfaces, so the suite can run against SQLite, PostgreSQL and a server.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard import errors
from shipyard.entities import Dataset, DatasetInput, ModelVersion
from shipyard.store.base import TrackingStore
from shipyard.store.registry import RegistryStore
from tests.store.contract import all_pages


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def model_name(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def versions(items: Any) -> list[tuple[str, int]]:
    return [(v.name, v.version) for v in items]


class RegistryStoreContract:
    """Base class of the per-backend test classes (not collected itself)."""

    __test__ = False

    @pytest.fixture
    def stores(self) -> Iterator[tuple[TrackingStore, RegistryStore]]:
        raise NotImplementedError("each backend's test class provides the stores fixture")

    @pytest.fixture
    def tracking(self, stores: tuple[TrackingStore, RegistryStore]) -> TrackingStore:
        return stores[0]

    @pytest.fixture
    def registry(self, stores: tuple[TrackingStore, RegistryStore]) -> RegistryStore:
        return stores[1]

    @staticmethod
    def logged_run(
        tracking: TrackingStore, files: dict[str, str] | None = None, prefix: str = "model"
    ) -> str:
        """A run whose artifact index holds ``files`` (path below ``prefix`` -> content)."""
        run_id = tracking.create_run("0").info.run_id
        for path, content in (files or {"MLmodel": "flavor: x", "data/model.pkl": "bytes"}).items():
            full = f"{prefix}/{path}" if prefix else path
            tracking.record_artifact(run_id, full, digest_of(content), len(content))
        return run_id

    def register(
        self,
        tracking: TrackingStore,
        registry: RegistryStore,
        name: str,
        run_id: str | None = None,
        **kwargs: Any,
    ) -> ModelVersion:
        run_id = run_id or self.logged_run(tracking)
        return registry.create_model_version(
            name,
            f"runs:/{run_id}/model",
            artifact_owner=run_id,
            artifact_path="model",
            run_id=run_id,
            **kwargs,
        )

    # ------------------------------------------------------------------ registered models

    def test_create_and_get_model(self, registry: RegistryStore) -> None:
        name = model_name()
        created = registry.create_registered_model(
            name, description="churn", tags={"team": "risk"}, user_id="ana"
        )
        assert (created.name, created.description, created.tags) == (
            name,
            "churn",
            {"team": "risk"},
        )
        assert created.user_id == "ana"
        assert created.creation_timestamp > 0
        assert created.aliases == ()
        assert created.latest_versions == ()
        assert registry.get_registered_model(name) == created

    def test_model_names_are_unique(self, registry: RegistryStore) -> None:
        name = model_name()
        registry.create_registered_model(name)
        with pytest.raises(errors.AlreadyExists, match="already exists"):
            registry.create_registered_model(name)

    def test_unknown_model_is_not_found(self, registry: RegistryStore) -> None:
        with pytest.raises(errors.NotFound, match="shipyard models list"):
            registry.get_registered_model("no-such-model")

    @pytest.mark.parametrize("bad", ["", "  ", "a/b", "a@b", " lead", "x" * 257])
    def test_invalid_model_names_are_refused(self, registry: RegistryStore, bad: str) -> None:
        with pytest.raises(errors.InvalidInput):
            registry.create_registered_model(bad)

    def test_update_and_tags_of_a_model(self, registry: RegistryStore) -> None:
        name = model_name()
        registry.create_registered_model(name)
        assert registry.update_registered_model(name, description="new").description == "new"
        registry.set_registered_model_tag(name, "k", "v1")
        registry.set_registered_model_tag(name, "k", "v2")
        assert registry.get_registered_model(name).tags == {"k": "v2"}
        registry.delete_registered_model_tag(name, "k")
        assert registry.get_registered_model(name).tags == {}
        with pytest.raises(errors.NotFound, match="no tag 'k'"):
            registry.delete_registered_model_tag(name, "k")

    def test_rename_keeps_versions_and_history(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        old, new = model_name("old"), model_name("new")
        self.register(tracking, registry, old)
        renamed = registry.rename_registered_model(old, new, user_id="ana", reason="clearer")
        assert renamed.name == new
        assert registry.get_model_version(new, 1).name == new
        with pytest.raises(errors.NotFound):
            registry.get_registered_model(old)
        actions = [e.action for e in registry.history(new)]
        assert actions == ["model_created", "version_created", "model_renamed"]
        last = registry.history(new).items[-1]
        assert (last.from_value, last.to_value, last.reason) == (old, new, "clearer")
        other = model_name()
        registry.create_registered_model(other)
        with pytest.raises(errors.AlreadyExists):
            registry.rename_registered_model(new, other)

    # ------------------------------------------------------------------ versions

    def test_registering_creates_the_model_and_numbers_versions(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        run_id = self.logged_run(tracking)
        first = self.register(tracking, registry, name, run_id, description="d", user_id="ana",
                              tags={"stage": "dev"})  # fmt: skip
        second = self.register(tracking, registry, name)
        assert (first.version, second.version) == (1, 2)
        assert first.source == f"runs:/{run_id}/model"
        assert (first.run_id, first.status, first.current_stage) == (run_id, "READY", "None")
        assert (first.description, first.user_id, first.tags) == ("d", "ana", {"stage": "dev"})
        assert first.storage_owner.startswith("mv-")
        assert len(first.storage_owner) == 35
        assert first.storage_owner != second.storage_owner
        assert first.storage_path == "model"
        assert registry.get_model_version(name, 1) == first
        assert registry.get_model_version(name, "2") == second  # type: ignore[arg-type]

    def test_a_version_owns_a_copy_of_the_index_entries(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        run_id = self.logged_run(tracking)
        tracking.record_artifact(run_id, "other.txt", digest_of("other"), 5)
        mv = self.register(tracking, registry, model_name(), run_id)
        listing = tracking.list_artifacts(mv.storage_owner, "model")
        assert [(a.path, a.is_dir) for a in listing] == [
            ("model/MLmodel", False),
            ("model/data", True),
        ]
        assert listing[0].digest == digest_of("flavor: x")
        assert tracking.list_artifacts(mv.storage_owner) == [
            tracking.list_artifacts(mv.storage_owner)[0]
        ]  # only the model folder, not other.txt
        # The version outlives its run: purging the run keeps the version's entries.
        purged = tracking.purge_run(run_id)
        assert digest_of("flavor: x") in purged
        assert tracking.unreferenced_digests(purged) == {digest_of("other")}
        assert tracking.get_artifact(mv.storage_owner, "model/data/model.pkl").file_size == 5

    def test_a_created_version_reads_back_exactly_as_returned(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        run_id = self.logged_run(tracking)
        first = self.register(tracking, registry, name, run_id)
        second = registry.create_model_version(
            name, f"runs:/{run_id}/model", artifact_owner=run_id, artifact_path="model",
            run_id=run_id, description="second", tags={"z": "1", "a": "2"}, user_id="ana",
        )  # fmt: skip
        assert second.version == first.version + 1
        assert second == registry.get_model_version(name, second.version)
        assert list(second.tags) == ["a", "z"]
        assert registry.get_registered_model(name).last_updated_timestamp >= (
            second.creation_timestamp
        )

    def test_a_single_file_can_be_registered(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        run_id = self.logged_run(tracking, {"model.onnx": "onnx"}, prefix="")
        mv = registry.create_model_version(
            model_name(), f"runs:/{run_id}/model.onnx", artifact_owner=run_id,
            artifact_path="model.onnx", run_id=run_id,
        )  # fmt: skip
        assert mv.storage_path == "model.onnx"
        assert tracking.get_artifact(mv.storage_owner, "model.onnx").digest == digest_of("onnx")

    def test_equal_packages_have_equal_content_digests(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        files = {"MLmodel": "m", "w.bin": "w"}
        a = self.register(tracking, registry, name, self.logged_run(tracking, files))
        run_b = self.logged_run(tracking, files, prefix="elsewhere")
        b = registry.create_model_version(
            name, f"runs:/{run_b}/elsewhere", artifact_owner=run_b, artifact_path="elsewhere"
        )
        c = self.register(tracking, registry, name, self.logged_run(tracking, {"MLmodel": "x"}))
        assert a.content_digest is not None
        assert len(a.content_digest) == 64
        assert a.content_digest == b.content_digest != c.content_digest

    def test_registering_nothing_is_refused(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        run_id = self.logged_run(tracking)
        name = model_name()
        with pytest.raises(errors.NotFound, match="nothing to register"):
            registry.create_model_version(
                name, f"runs:/{run_id}/missing", artifact_owner=run_id, artifact_path="missing"
            )
        with pytest.raises(errors.NotFound):  # and no model was left behind
            registry.get_registered_model(name)
        with pytest.raises(errors.InvalidArtifactPath):
            registry.create_model_version(
                name, "runs:/x/../y", artifact_owner=run_id, artifact_path="../y"
            )

    def test_version_numbers_are_never_reused(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        self.register(tracking, registry, name)
        registry.delete_model_version(name, 2)
        assert self.register(tracking, registry, name).version == 3

    def test_unknown_versions(self, tracking: TrackingStore, registry: RegistryStore) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        with pytest.raises(errors.NotFound, match="has no version 9"):
            registry.get_model_version(name, 9)
        for bad in (0, -1, "x", True, 1.5):
            with pytest.raises(errors.InvalidInput):
                registry.get_model_version(name, bad)  # type: ignore[arg-type]

    def test_version_tags_and_description(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        registry.set_model_version_tag(name, 1, "k", "v")
        assert registry.get_model_version(name, 1).tags == {"k": "v"}
        registry.delete_model_version_tag(name, 1, "k")
        with pytest.raises(errors.NotFound):
            registry.delete_model_version_tag(name, 1, "k")
        assert registry.update_model_version(name, 1, description="x").description == "x"

    def test_registry_tag_values_take_mlflows_registry_limit(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        # MLflow accepts registry tag values up to 100,000 characters (run tags: 8,000).
        name, long_value = model_name(), "é" * 100_000
        registry.create_registered_model(name, tags={"card": long_value})
        self.register(tracking, registry, name)
        registry.set_registered_model_tag(name, "k", long_value)
        registry.set_model_version_tag(name, 1, "k", long_value)
        assert registry.get_registered_model(name).tags == {"card": long_value, "k": long_value}
        assert registry.get_model_version(name, 1).tags == {"k": long_value}
        with pytest.raises(errors.InvalidInput, match="limit is 100000"):
            registry.set_registered_model_tag(name, "k", "x" * 100_001)
        with pytest.raises(errors.InvalidInput, match="limit is 100000"):
            registry.set_model_version_tag(name, 1, "k", "x" * 100_001)

    def test_registrations_from_many_threads_get_distinct_numbers(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        run_id = self.logged_run(tracking)
        got: list[int] = []
        failures: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(3):
                    got.append(self.register(tracking, registry, name, run_id).version)
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        assert sorted(got) == list(range(1, 13))

    # ------------------------------------------------------------------ stages and status

    def test_stages_and_latest_versions(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        for _ in range(3):
            self.register(tracking, registry, name)
        registry.transition_model_version_stage(name, 1, "production")
        moved = registry.transition_model_version_stage(
            name, 2, "Production", archive_existing_versions=True, user_id="ana"
        )
        assert moved.current_stage == "Production"
        assert registry.get_model_version(name, 1).current_stage == "Archived"
        latest = registry.get_latest_versions(name)
        assert {(v.current_stage, v.version) for v in latest} == {
            ("Archived", 1), ("Production", 2), ("None", 3)
        }  # fmt: skip
        assert versions(registry.get_latest_versions(name, ["Production"])) == [(name, 2)]
        stages = {v.current_stage for v in registry.get_registered_model(name).latest_versions}
        assert stages == {"Archived", "Production", "None"}
        with pytest.raises(errors.InvalidInput, match="Staging"):
            registry.transition_model_version_stage(name, 1, "Live")
        with pytest.raises(errors.InvalidInput, match="archive_existing_versions"):
            registry.transition_model_version_stage(
                name, 1, "Archived", archive_existing_versions=True
            )
        events = [(e.version, e.from_value, e.to_value) for e in registry.history(name)
                  if e.action == "stage_changed"]  # fmt: skip
        assert events == [
            (1, "None", "Production"),
            (2, "None", "Production"),
            (1, "Production", "Archived"),
        ]

    def test_status_changes_are_recorded(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        mv = registry.set_model_version_status(
            name, 1, "FAILED_REGISTRATION", status_message="bad", user_id="bot", reason="check"
        )
        assert (mv.status, mv.status_message) == ("FAILED_REGISTRATION", "bad")
        event = registry.history(name).items[-1]
        assert (event.action, event.from_value, event.to_value, event.user_id) == (
            "status_changed", "READY", "FAILED_REGISTRATION", "bot"
        )  # fmt: skip
        with pytest.raises(errors.InvalidInput):
            registry.set_model_version_status(name, 1, "DONE")

    # ------------------------------------------------------------------ aliases and approvals

    def test_aliases(self, tracking: TrackingStore, registry: RegistryStore) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        self.register(tracking, registry, name)
        registry.set_alias(name, "champion", 1)
        registry.set_alias(name, "challenger", 2)
        assert registry.get_model_version_by_alias(name, "champion").version == 1
        registry.set_alias(name, "champion", 2, user_id="ana", reason="better auc")
        assert registry.get_model_version_by_alias(name, "champion").version == 2
        assert registry.get_model_version(name, 2).aliases == ("challenger", "champion")
        assert registry.get_model_version(name, 1).aliases == ()
        model = registry.get_registered_model(name)
        assert [(a.alias, a.version) for a in model.aliases] == [
            ("challenger", 2), ("champion", 2)
        ]  # fmt: skip
        registry.delete_alias(name, "challenger")
        with pytest.raises(errors.NotFound, match="its aliases are champion"):
            registry.get_model_version_by_alias(name, "challenger")
        with pytest.raises(errors.NotFound):
            registry.delete_alias(name, "challenger")
        with pytest.raises(errors.NotFound, match="no version 7"):
            registry.set_alias(name, "champion", 7)

    @pytest.mark.parametrize("alias", ["latest", "LATEST", "v3", "has space", "a/b", ""])
    def test_invalid_aliases_are_refused(
        self, tracking: TrackingStore, registry: RegistryStore, alias: str
    ) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        with pytest.raises(errors.InvalidInput):
            registry.set_alias(name, alias, 1)

    def test_approvals_gate_alias_moves(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        self.register(tracking, registry, name)
        model = registry.set_approval_policy(name, 2, alias="champion", user_id="lead")
        assert model.approval_policy == {"champion": 2}
        registry.set_alias(name, "challenger", 1)  # no policy for this alias
        with pytest.raises(errors.ApprovalRequired) as caught:
            registry.set_alias(name, "champion", 1)
        assert caught.value.details == {"required": 2, "approvals": 0, "approvers": []}
        assert "shipyard models approve" in caught.value.message
        registry.approve_model_version(name, 1, "alice", comment="looks good")
        again = registry.approve_model_version(name, 1, "alice", comment="twice")
        assert again.comment == "looks good"  # the first approval stands
        with pytest.raises(errors.ApprovalRequired) as caught:
            registry.set_alias(name, "champion", 1)
        assert caught.value.details["approvers"] == ["alice"]
        registry.approve_model_version(name, 1, "bob")
        registry.set_alias(name, "champion", 1)
        assert [a.approver for a in registry.list_approvals(name, 1)] == ["alice", "bob"]
        # A policy for every alias applies where no alias-specific one exists.
        registry.set_approval_policy(name, 1)
        with pytest.raises(errors.ApprovalRequired, match="every alias"):
            registry.set_alias(name, "challenger", 2)
        registry.set_approval_policy(name, 0)
        registry.set_alias(name, "challenger", 2)
        assert registry.get_registered_model(name).approval_policy == {"champion": 2}
        with pytest.raises(errors.InvalidInput):
            registry.set_approval_policy(name, -1)
        with pytest.raises(errors.InvalidInput):
            registry.approve_model_version(name, 1, " ")

    def test_alias_history_answers_which_version_held_it(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        for _ in range(3):
            self.register(tracking, registry, name)
        for version in (1, 2, 3, 1):
            registry.set_alias(name, "champion", version, user_id="ana", reason=f"to {version}")
        registry.delete_alias(name, "champion", user_id="ana", reason="retire")
        moves = [e for e in registry.history(name) if e.alias == "champion"]
        assert [(e.action, e.from_value, e.to_value) for e in moves] == [
            ("alias_set", None, "1"),
            ("alias_set", "1", "2"),
            ("alias_set", "2", "3"),
            ("alias_set", "3", "1"),
            ("alias_deleted", "1", None),
        ]
        assert [e.reason for e in moves] == ["to 1", "to 2", "to 3", "to 1", "retire"]
        times = [e.timestamp for e in moves]
        assert times == sorted(times)
        assert registry.alias_at(name, "champion", times[0] - 1) is None
        # Where two moves share a millisecond, the later one is the state at that moment.
        expected = {}
        for event in moves:
            expected[event.timestamp] = int(event.to_value) if event.to_value else None
        for when, version in expected.items():
            assert registry.alias_at(name, "champion", when) == version
        assert registry.alias_at(name, "never-set", times[-1]) is None
        with pytest.raises(errors.NotFound):
            registry.alias_at("no-such-model", "champion", times[-1])

    # ------------------------------------------------------------------ deletion

    def test_deleting_an_aliased_version_is_refused(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        mv = self.register(tracking, registry, name)
        registry.set_alias(name, "champion", 1)
        assert registry.version_references(name, 1) == ["alias 'champion'"]
        with pytest.raises(errors.InvalidState, match="alias 'champion' points at it") as caught:
            registry.delete_model_version(name, 1)
        assert "shipyard models alias delete" in caught.value.message
        assert registry.get_model_version(name, 1) == registry.get_model_version(name, 1)
        registry.delete_alias(name, "champion")
        assert registry.version_references(name, 1) == []
        digests = registry.delete_model_version(name, 1, user_id="ana", reason="bad")
        assert digests == {digest_of("flavor: x"), digest_of("bytes")}
        assert tracking.list_artifacts(mv.storage_owner) == []
        with pytest.raises(errors.NotFound):
            registry.get_model_version(name, 1)
        last = registry.history(name).items[-1]
        assert (last.action, last.version, last.reason) == ("version_deleted", 1, "bad")

    def test_deleting_a_model(self, tracking: TrackingStore, registry: RegistryStore) -> None:
        name = model_name()
        a = self.register(tracking, registry, name, self.logged_run(tracking, {"f": "one"}))
        b = self.register(tracking, registry, name, self.logged_run(tracking, {"f": "two"}))
        registry.set_alias(name, "champion", 2)
        with pytest.raises(errors.InvalidState, match="'champion' -> version 2"):
            registry.delete_registered_model(name)
        registry.delete_alias(name, "champion")
        registry.set_model_version_tag(name, 1, "k", "v")
        registry.approve_model_version(name, 1, "alice")
        assert registry.delete_registered_model(name) == {digest_of("one"), digest_of("two")}
        for mv in (a, b):
            assert tracking.list_artifacts(mv.storage_owner) == []
        with pytest.raises(errors.NotFound):
            registry.get_registered_model(name)
        # The audit trail outlives the model, and the name can be used again.
        assert registry.history(name).items[-1].action == "model_deleted"
        assert self.register(tracking, registry, name).version == 1

    # ------------------------------------------------------------------ search

    def test_search_registered_models(self, registry: RegistryStore) -> None:
        prefix = f"s{uuid.uuid4().hex[:6]}"
        for i, team in enumerate(["risk", "growth", None]):
            registry.create_registered_model(f"{prefix}-{i}", tags={"team": team} if team else None)
        registry.create_registered_model(f"{prefix.upper()}-x")

        def names(filter_string: str, **kwargs: Any) -> list[str]:
            return [m.name for m in registry.search_registered_models(filter_string, **kwargs)]

        assert names(f"name LIKE '{prefix}-%'") == [f"{prefix}-{i}" for i in range(3)]
        assert names(f"name ILIKE '{prefix}-%'") == [f"{prefix.upper()}-x"] + [
            f"{prefix}-{i}" for i in range(3)
        ]
        assert names(f"name LIKE '{prefix}-%' AND tags.team = 'risk'") == [f"{prefix}-0"]
        # != also matches models without the tag (MLflow's prompt filter relies on it).
        assert names(f"name LIKE '{prefix}-%' AND tags.team != 'risk'") == [
            f"{prefix}-1", f"{prefix}-2"
        ]  # fmt: skip
        assert names(f"name IN ('{prefix}-1', '{prefix}-2')") == [f"{prefix}-1", f"{prefix}-2"]
        assert names(f"name LIKE '{prefix}-%'", order_by=["name DESC"])[0] == f"{prefix}-2"
        assert names(f"name LIKE '{prefix}-%' AND tags.team IS NULL") == [f"{prefix}-2"]
        paged = all_pages(
            lambda **kw: registry.search_registered_models(f"name LIKE '{prefix}-%'", **kw), 2
        )
        assert [m.name for m in paged] == [f"{prefix}-{i}" for i in range(3)]
        with pytest.raises(errors.InvalidFilter, match="did you mean 'name'"):
            registry.search_registered_models("nam = 'x'")
        with pytest.raises(errors.InvalidInput):
            registry.search_registered_models(max_results=1001)

    def test_search_model_versions(self, tracking: TrackingStore, registry: RegistryStore) -> None:
        name = model_name()
        run_id = self.logged_run(tracking)
        registered = [
            self.register(tracking, registry, name, run_id if i < 2 else None,
                          tags={"parity": "even" if i % 2 else "odd"})
            for i in range(5)
        ]  # fmt: skip

        def found(filter_string: str, **kwargs: Any) -> list[int]:
            page = registry.search_model_versions(filter_string, **kwargs)
            return [v.version for v in page]

        assert found(f"name = '{name}'") == [5, 4, 3, 2, 1]
        assert found(f"name = '{name}' AND run_id = '{run_id}'") == [2, 1]
        assert found(f"name = '{name}' AND version_number > 3") == [5, 4]
        assert found(f"name = '{name}' AND tags.parity = 'even'") == [4, 2]
        assert found(f"name = '{name}' AND source_path LIKE 'runs:/{run_id}/%'") == [2, 1]
        assert found(f"name = '{name}'", order_by=["version_number ASC"]) == [1, 2, 3, 4, 5]
        # Which version owns these index entries (how a server authorizes reading them).
        owner = registered[2].storage_owner
        assert found(f"storage_owner = '{owner}'") == [3]
        assert found(f"storage_owner IN ('{owner}', '{registered[0].storage_owner}')") == [3, 1]
        assert found("storage_owner = 'mv-00000000000000000000000000000000'") == []
        paged = all_pages(
            lambda **kw: registry.search_model_versions(
                f"name = '{name}'", order_by=["creation_timestamp"], **kw
            ),
            2,
        )
        assert sorted(v.version for v in paged) == [1, 2, 3, 4, 5]
        with pytest.raises(errors.InvalidFilter):
            registry.search_model_versions("metrics.acc > 1")
        with pytest.raises(errors.InvalidFilter):
            registry.search_model_versions(order_by=["tags.x"])

    # ------------------------------------------------------------------ lineage and history

    def test_versions_trained_on_a_dataset(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name, dataset = model_name(), f"customers-{uuid.uuid4().hex[:6]}"
        run_a, run_b = self.logged_run(tracking), self.logged_run(tracking)
        tracking.log_inputs(run_a, [DatasetInput(Dataset(dataset, "d1"))])
        tracking.log_inputs(run_b, [DatasetInput(Dataset(dataset, "d2"))])
        self.register(tracking, registry, name, run_a)
        self.register(tracking, registry, name, run_b)
        self.register(tracking, registry, name)
        assert versions(registry.versions_trained_on(dataset)) == [(name, 1), (name, 2)]
        assert versions(registry.versions_trained_on(dataset, "d2")) == [(name, 2)]
        assert registry.versions_trained_on("unknown-dataset") == []

    def test_history_pages_and_unknown_models(
        self, tracking: TrackingStore, registry: RegistryStore
    ) -> None:
        name = model_name()
        for _ in range(4):
            self.register(tracking, registry, name)
        events = all_pages(lambda **kw: registry.history(name, **kw), 2)
        assert [e.action for e in events] == ["model_created"] + ["version_created"] * 4
        assert [e.event_id for e in events] == sorted(e.event_id for e in events)
        with pytest.raises(errors.NotFound):
            registry.history("no-such-model")
        with pytest.raises(errors.InvalidInput):
            registry.history(name, page_token="garbage")
