"""The registry service over an embedded workspace: registering run outputs, resolving model URIs,
aliases gated by approvals with an audit trail, deletion that refuses referenced versions and
frees bytes, and lineage both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard import errors
from shipyard.config import Settings
from shipyard.entities import Dataset, DatasetInput, ModelVersion
from shipyard.registry import (
    Registry,
    lineage_of,
    resolve_model_uri,
    training_dataset,
    versions_trained_on,
)
from shipyard.tracking import gc
from shipyard.tracking.context import current_user
from shipyard.workspace import Workspace
from tests.registry.conftest import PACKAGE, blobs, log_package


def read(ws: Workspace, owner: str, path: str) -> bytes:
    with ws.artifacts.open(owner, path) as f:
        return f.read()


# ---------------------------------------------------------------------------- registering


def test_register_and_resolve_every_uri_form(workspace: Workspace, registry: Registry) -> None:
    run_id = log_package(workspace)
    v1 = registry.register_model_version("churn", f"runs:/{run_id}/model", user="ana")
    v2 = registry.register_model_version(
        "churn", f"runs:/{run_id}/model", run_id=run_id, description="retrained", tags={"k": "v"}
    )
    assert (v1.version, v2.version, v2.run_id, v2.tags) == (1, 2, run_id, {"k": "v"})
    registry.set_alias("churn", "champion", 1)
    registry.transition_stage("churn", 2, "Staging")
    expected = {
        "models:/churn/1": v1,
        "models:/churn@champion": v1,
        "models:/churn/latest": v2,
        "models:/churn/Staging": v2,
    }
    for uri, version in expected.items():
        owner, path = resolve_model_uri(workspace, uri)
        assert (owner, path) == (version.storage_owner, "model")
        assert read(workspace, owner, f"{path}/MLmodel") == PACKAGE["MLmodel"]


def test_resolving_what_is_not_there(workspace: Workspace, registry: Registry) -> None:
    with pytest.raises(errors.NotFound, match="'ghost' does not exist"):
        resolve_model_uri(workspace, "models:/ghost/latest")
    registry.create_model("empty")
    with pytest.raises(errors.NotFound, match="has no versions yet"):
        resolve_model_uri(workspace, "models:/empty/latest")
    registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")
    with pytest.raises(errors.NotFound, match="no version 4"):
        resolve_model_uri(workspace, "models:/churn/4")
    with pytest.raises(errors.NotFound, match="no alias 'champion'"):
        resolve_model_uri(workspace, "models:/churn@champion")
    with pytest.raises(errors.NotFound, match="no version in stage 'Production'"):
        resolve_model_uri(workspace, "models:/churn/Production")
    with pytest.raises(errors.InvalidInput, match="models:/"):
        resolve_model_uri(workspace, "runs:/abc/model")


def test_register_refuses_bad_sources(workspace: Workspace, registry: Registry) -> None:
    run_id = log_package(workspace)
    with pytest.raises(errors.InvalidInput, match="does not match the run of source"):
        registry.register_model_version("churn", f"runs:/{run_id}/model", run_id="f" * 32)
    with pytest.raises(errors.InvalidInput, match="runs:/<run_id>"):
        registry.register_model_version("churn", "/tmp/model")
    with pytest.raises(errors.NotFound, match="Log the model first"):
        registry.register_model_version("churn", f"runs:/{run_id}/no-model-here")


def test_the_user_defaults_to_the_process_user(workspace: Workspace, registry: Registry) -> None:
    mv = registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")
    assert mv.user_id == current_user()
    assert registry.approve("churn", 1).approver == current_user()


# ---------------------------------------------------------------------------- approvals, audit


def test_alias_moves_with_approvals_and_the_audit_trail_answers_every_moment(
    workspace: Workspace, registry: Registry
) -> None:
    for _ in range(3):
        registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")
    registry.require_approvals("churn", 2, alias="champion", user="lead", reason="prod gate")

    moves: list[tuple[int, int]] = []  # (version, event time)
    for version in (1, 2, 3, 2):
        if not registry.approvals("churn", version):  # moving back to 2 needs no new approvals
            with pytest.raises(errors.ApprovalRequired, match="has none"):
                registry.set_alias("churn", "champion", version, user="ana")
            registry.approve("churn", version, "alice", comment=f"ok v{version}")
            with pytest.raises(errors.ApprovalRequired, match=r"has 1 \(alice\)"):
                registry.set_alias("churn", "champion", version, user="ana")
            registry.approve("churn", version, "bob")
        registry.set_alias("churn", "champion", version, user="ana", reason=f"promote {version}")
        moves.append((version, registry.history("churn")[-1].timestamp))

    history = registry.history("churn")
    alias_events = [e for e in history if e.action == "alias_set"]
    assert [(e.from_value, e.to_value, e.user_id) for e in alias_events] == [
        (None, "1", "ana"), ("1", "2", "ana"), ("2", "3", "ana"), ("3", "2", "ana"),
    ]  # fmt: skip
    approvals = [(e.version, e.user_id) for e in history if e.action == "approved"]
    assert approvals == [(1, "alice"), (1, "bob"), (2, "alice"), (2, "bob"),
                         (3, "alice"), (3, "bob")]  # fmt: skip
    policy = next(e for e in history if e.action == "policy_changed")
    assert (policy.user_id, policy.reason, policy.to_value) == ("lead", "prod gate", "2")

    # Which version held the alias at each moment (the last move of a millisecond wins).
    assert registry.alias_at("churn", "champion", moves[0][1] - 1) is None
    holder_at: dict[int, int] = {}
    for version, when in moves:
        holder_at[when] = version
    for when, version in holder_at.items():
        assert registry.alias_at("churn", "champion", when) == version
    assert registry.get_version_by_alias("churn", "champion").version == 2


# ---------------------------------------------------------------------------- deletion


def test_deleting_a_referenced_version_is_refused(workspace: Workspace) -> None:
    deployed: set[tuple[str, int]] = {("churn", 1)}

    def deployments(mv: ModelVersion) -> list[str]:
        return ["deployment 'production'"] if (mv.name, mv.version) in deployed else []

    registry = Registry(workspace, reference_checks=[deployments])
    registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")
    registry.set_alias("churn", "champion", 1)
    assert registry.references("churn", 1) == ["alias 'champion'", "deployment 'production'"]

    with pytest.raises(errors.InvalidState, match="deployment 'production'") as caught:
        registry.delete_version("churn", 1)
    assert caught.value.details == {"references": ["deployment 'production'"]}
    deployed.clear()
    with pytest.raises(errors.InvalidState, match="alias 'champion' points at it"):
        registry.delete_version("churn", 1)
    with pytest.raises(errors.InvalidState, match="aliases still point"):
        registry.delete_model("churn")
    assert registry.get_version("churn", 1).version == 1

    registry.delete_alias("churn", "champion")
    registry.add_reference_check(lambda mv: ["pinned run"])
    with pytest.raises(errors.InvalidState, match="pinned run"):
        registry.delete_model("churn")


def test_deleting_a_version_frees_only_bytes_nothing_else_references(
    workspace: Workspace, registry: Registry
) -> None:
    shared = log_package(workspace)
    own = log_package(workspace, {"MLmodel": b"own", "w.bin": b"only this version"})
    registry.register_model_version("churn", f"runs:/{shared}/model")
    registry.register_model_version("churn", f"runs:/{shared}/model")
    registry.register_model_version("churn", f"runs:/{own}/model")
    before = blobs(workspace)

    # Version 1's bytes are still held by version 2 and by the run.
    assert registry.delete_version("churn", 1, user="ana", reason="superseded") == 0
    assert blobs(workspace) == before
    # The run goes for good; version 3 keeps its bytes and stays loadable.
    gc.delete_run_permanently(workspace.store, workspace.artifacts, own)  # type: ignore[arg-type]
    owner, path = resolve_model_uri(workspace, "models:/churn/3")
    assert read(workspace, owner, f"{path}/w.bin") == b"only this version"
    # Deleting version 3 now frees its bytes.
    freed = registry.delete_version("churn", 3)
    assert freed == len(b"own") + len(b"only this version")
    assert len(blobs(workspace)) == len(before) - 2
    assert [e.action for e in registry.history("churn")][-2:] == [
        "version_deleted", "version_deleted"
    ]  # fmt: skip


def test_deleting_a_model_frees_its_bytes(workspace: Workspace, registry: Registry) -> None:
    run_id = log_package(workspace, {"MLmodel": b"m", "w.bin": b"weights"})
    registry.register_model_version("churn", f"runs:/{run_id}/model")
    registry.register_model_version("churn", f"runs:/{run_id}/model")
    gc.delete_run_permanently(workspace.store, workspace.artifacts, run_id)  # type: ignore[arg-type]
    assert len(blobs(workspace)) == 2
    assert registry.delete_model("churn", reason="retired") == len(b"m") + len(b"weights")
    assert blobs(workspace) == set()
    assert registry.history("churn")[-1].reason == "retired"


def test_garbage_collection_keeps_the_bytes_of_versions(
    workspace: Workspace, registry: Registry
) -> None:
    run_id = log_package(workspace)
    registry.register_model_version("churn", f"runs:/{run_id}/model")
    workspace.store.delete_run(run_id)
    report = gc.collect_garbage(
        workspace.store,
        workspace.artifacts,  # type: ignore[arg-type]
        older_than_ms=None,
        grace_seconds=0,
    )
    assert report.runs_purged == 1
    assert report.blobs_deleted == 0
    owner, path = resolve_model_uri(workspace, "models:/churn/1")
    assert read(workspace, owner, f"{path}/model.pkl") == PACKAGE["model.pkl"]


# ---------------------------------------------------------------------------- lineage


def test_lineage_both_ways(workspace: Workspace, registry: Registry) -> None:
    experiment_id = workspace.store.create_experiment("churn-training")
    run_id = workspace.store.create_run(experiment_id).info.run_id
    log_package(workspace, run_id=run_id)
    workspace.store.log_inputs(
        run_id,
        [DatasetInput(Dataset("customers", "abc123"), {"mlflow.data.context": "training"})],
    )
    registry.register_model_version("churn", f"runs:/{run_id}/model")
    registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")

    lineage = lineage_of(workspace, "models:/churn/1")
    assert lineage.model_version.version == 1
    assert lineage.run is not None
    assert lineage.run.run_id == run_id
    assert lineage.experiment is not None
    assert lineage.experiment.name == "churn-training"
    assert [(d.dataset.name, d.dataset.digest) for d in lineage.datasets] == [
        ("customers", "abc123")
    ]
    assert lineage_of(workspace, "models:/churn/2").datasets == ()

    found = versions_trained_on(workspace, "customers")
    assert [(v.name, v.version) for v in found] == [("churn", 1)]
    assert versions_trained_on(workspace, "customers", "other-digest") == []

    # The version outlives its run; lineage then says the run is gone.
    gc.delete_run_permanently(workspace.store, workspace.artifacts, run_id)  # type: ignore[arg-type]
    gone = lineage_of(workspace, registry.get_version("churn", 1))
    assert (gone.run, gone.experiment, gone.datasets) == (None, None, ())
    assert gone.model_version.run_id == run_id


def _dataset_input(name: str, version: int, context: str | None) -> DatasetInput:
    tags = {"mlflow.data.context": context} if context else {}
    return DatasetInput(
        Dataset(name, f"d{version}", "shipyard", f"datasets:/{name}/{version}"), tags
    )


def test_training_dataset_of_a_version(workspace: Workspace, registry: Registry) -> None:
    """The dataset version a model version was trained on, from its run's inputs: the one with
    context ``training`` among several, the only one otherwise; a clear error when unknown."""
    runs = [log_package(workspace) for _ in range(5)]
    workspace.store.log_inputs(runs[0], [_dataset_input("flights", 3, "evaluation"),
                                         _dataset_input("flights", 2, "training"),
                                         DatasetInput(Dataset("csv", "x", "local", "/tmp/a.csv"))])  # fmt: skip
    workspace.store.log_inputs(runs[1], [_dataset_input("flights", 4, None)])
    workspace.store.log_inputs(
        runs[2], [_dataset_input("a", 1, None), _dataset_input("b", 1, None)]
    )
    workspace.store.log_inputs(runs[3], [DatasetInput(Dataset("csv", "x", "local", "/tmp/a.csv"))])
    for run_id in runs:
        registry.register_model_version("m", f"runs:/{run_id}/model", run_id=run_id)
    registry.set_alias("m", "champion", 1)

    assert training_dataset(workspace, "models:/m@champion") == ("flights", 2)
    assert training_dataset(workspace, "models:/m/2") == ("flights", 4)
    with pytest.raises(errors.InvalidInput, match=r"several dataset versions \(a:1, b:1\)"):
        training_dataset(workspace, "models:/m/3")
    with pytest.raises(errors.InvalidInput, match="recorded no Shipyard dataset version"):
        training_dataset(workspace, "models:/m/4")
    with pytest.raises(errors.InvalidInput, match="--reference-dataset NAME:VERSION"):
        training_dataset(workspace, "models:/m/5")
    gc.delete_run_permanently(workspace.store, workspace.artifacts, runs[1])  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInput, match="has no run"):
        training_dataset(workspace, "models:/m/2")


# ---------------------------------------------------------------------------- wiring


def test_the_registry_shares_the_tracking_database(workspace: Workspace) -> None:
    assert workspace.registry is workspace.registry_store
    assert workspace.registry.url == workspace.store.url  # type: ignore[attr-defined]


def test_a_remote_workspace_reaches_the_registry_through_the_server(tmp_path: Path) -> None:
    from shipyard.store.rest_registry import RestRegistryStore

    settings = Settings.from_env({}, home=tmp_path / "h", tracking_uri="http://127.0.0.1:9")
    with Workspace.open(settings) as ws:
        store = ws.registry
        assert isinstance(store, RestRegistryStore)
        store.http.retries = 0
        with pytest.raises(errors.StoreUnavailable, match=r"http://127\.0\.0\.1:9"):
            Registry(ws).get_model("churn")


def test_a_version_a_deployment_serves_cannot_be_deleted(workspace: Workspace) -> None:
    """Every Registry asks the workspace's deployments, with no reference check passed in: the
    stable version always, the candidate only while its rollout is under way."""
    from shipyard.store.deployments import DeploymentRecord

    registry = Registry(workspace)
    for _ in range(3):
        registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")
    workspace.deployments.create(
        DeploymentRecord(
            name="prod", model="churn", policy={}, state="canary", stable_version=1,
            candidate_version=2,
        )
    )  # fmt: skip
    for version in (1, 2):
        with pytest.raises(errors.InvalidState, match="deployment 'prod' still refer") as caught:
            registry.delete_version("churn", version)
        assert caught.value.details == {"references": ["deployment 'prod'"]}
    registry.delete_version("churn", 3)  # not served: deleted

    rec = workspace.deployments.get("prod")
    workspace.deployments.update("prod", rec.revision, {"state": "rolled_back"})
    registry.delete_version("churn", 2)  # the rolled-back candidate is free again
    with pytest.raises(errors.InvalidState, match="deployment 'prod'"):
        registry.delete_version("churn", 1)


@pytest.mark.parametrize(
    ("paused_state", "held"),
    [("canary", True), ("shadow", True), ("gating", True), ("promoted", False), (None, False)],
)
def test_a_paused_deployment_holds_its_candidate_only_if_paused_in_a_rollout(
    paused_state: str | None, held: bool
) -> None:
    """Paused after a rollback or a promotion, the candidate field is history, not in use."""
    from shipyard.store.deployments import DeploymentRecord

    rec = DeploymentRecord(
        name="prod", model="churn", policy={}, state="paused", stable_version=1,
        candidate_version=2, paused_state=paused_state,
    )  # fmt: skip
    assert rec.holds(1)
    assert rec.holds(2) is held
    assert not rec.holds(3)


def test_a_bad_version_filter_is_reported_in_the_callers_own_text(workspace: Workspace) -> None:
    registry = Registry(workspace)
    registry.register_model_version("churn", f"runs:/{log_package(workspace)}/model")
    with pytest.raises(errors.InvalidFilter) as caught:
        registry.list_versions("churn", "version_number >> 2")
    assert caught.value.details["filter"] == "version_number >> 2"
    assert caught.value.details["position"] == 16  # not counted from a prefixed name clause
    assert "name = " not in caught.value.message
