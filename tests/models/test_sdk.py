"""log_model into a run, load_model from runs:/ (and models:/ once the registry exists), the
download cache, and loading a logged model in a fresh process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, InvalidArtifactPath, InvalidInput, NotFound
from shipyard.models.sdk import CACHE_FOLDER
from tests.models.conftest import load_in_fresh_process

pytest.importorskip("sklearn")
pytestmark = pytest.mark.usefixtures("sdk")


def _has_registry() -> bool:
    try:
        from shipyard.registry import Registry, resolve_model_uri  # noqa: F401
    except ImportError:
        return False
    return True


needs_registry = pytest.mark.skipif(
    not _has_registry(),
    reason="shipyard.registry (Registry, resolve_model_uri) is built by another change; "
    "registration and models:/ URIs are tested once it lands",
)


@pytest.fixture
def forest(cancer: Any) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    X, y = cancer
    return RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)


def test_log_model_in_a_run_and_load_it_back(forest: Any, cancer: Any) -> None:
    X, y = cancer
    with shipyard.start_run(capture_environment=False) as run:
        shipyard.log_input(X.assign(target=y), context="training", name="breast_cancer")
        shipyard.log_metric("accuracy", 0.97)
        shipyard.flush()
        info = shipyard.log_model(forest, "model", input_example=X.head(5))
    assert info.model_uri == f"runs:/{run.run_id}/model"
    assert info.flavor == "sklearn"
    assert info.run_id == run.run_id
    assert info.signature is not None
    assert len(info.signature.inputs.columns) == 30
    listed = {a.path for a in shipyard.get_client().list_artifacts(run.run_id, "model")}
    assert "model/shipyard-model.json" in listed
    assert "model/model.pkl" in listed

    loaded = shipyard.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))
    meta = loaded.metadata
    assert meta["run_id"] == run.run_id
    assert meta["metrics"] == {"accuracy": 0.97}
    assert meta["datasets"][0]["name"] == "breast_cancer"
    assert meta["datasets"][0]["context"] == "training"
    assert loaded.content_hash == info.content_hash


def test_log_model_starts_a_run_or_uses_the_given_one(forest: Any, cancer: Any) -> None:
    info = shipyard.log_model(forest, "auto")  # no active run: one is started
    assert shipyard.active_run() is not None
    assert info.run_id == shipyard.active_run().run_id  # type: ignore[union-attr]
    shipyard.end_run()
    other = shipyard.get_client().create_run("0").info.run_id
    info2 = shipyard.log_model(forest, "nested/path", run_id=other)
    assert info2.model_uri == f"runs:/{other}/nested/path"
    assert shipyard.load_model(info2.model_uri).manifest.signature is None


def test_log_model_with_its_own_client_logs_into_that_clients_workspace(
    forest: Any, tmp_path: Path
) -> None:
    other = shipyard.Client(home=tmp_path / "elsewhere")
    info = shipyard.log_model(forest, "model", client=other)  # no active run anywhere
    assert shipyard.active_run() is None  # the default client started nothing
    run = other.get_run(info.run_id)
    assert run.info.status == "FINISHED"  # the run it started is ended once the model is in
    assert [a.path for a in other.list_artifacts(info.run_id)] == ["model"]
    loaded = shipyard.load_model(info.model_uri, workspace=other.workspace)
    assert loaded.manifest.metadata["run_id"] == info.run_id


def test_logging_twice_under_one_name_is_refused(forest: Any) -> None:
    with shipyard.start_run(capture_environment=False):
        shipyard.log_model(forest, "model")
        with pytest.raises(AlreadyExists, match="another name"):
            shipyard.log_model(forest, "model")


def test_bad_names_and_uris(forest: Any) -> None:
    with (
        shipyard.start_run(capture_environment=False) as run,
        pytest.raises(InvalidArtifactPath),
    ):
        shipyard.log_model(forest, "../escape")
    with pytest.raises(InvalidInput, match="incomplete"):
        shipyard.load_model(f"runs:/{run.run_id}")
    with pytest.raises(NotFound, match="holds no Shipyard model package"):
        shipyard.load_model(f"runs:/{run.run_id}/nothing-here")


def test_warm_load_reads_the_cache_not_the_artifacts(
    forest: Any, cancer: Any, sdk: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with shipyard.start_run(capture_environment=False):
        info = shipyard.log_model(forest, "model")
    shipyard.load_model(info.model_uri)
    cached = sdk.home / CACHE_FOLDER / info.content_hash
    assert (cached / "model.pkl").is_file()
    assert [p.name for p in cached.parent.iterdir()] == [info.content_hash]  # no staging left

    artifacts = shipyard.get_client().workspace.artifacts

    def no_download(*args: Any) -> Any:
        raise AssertionError("a warm load must not download the package again")

    monkeypatch.setattr(artifacts, "download", no_download)
    again = shipyard.load_model(info.model_uri)
    np.testing.assert_array_equal(again.predict(cancer[0]), forest.predict(cancer[0]))


def test_a_damaged_download_is_refused_and_not_cached(forest: Any, sdk: Settings) -> None:
    import io

    with shipyard.start_run(capture_environment=False) as run:
        info = shipyard.log_model(forest, "model")
    ws = shipyard.get_client().workspace
    ws.artifacts.upload(run.run_id, "model/model.pkl", io.BytesIO(b"not the model"))
    with pytest.raises(InvalidInput, match=r"'model\.pkl' differs from the manifest"):
        shipyard.load_model(info.model_uri)
    cache = sdk.home / CACHE_FOLDER
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.slow
def test_logged_model_loads_in_a_fresh_process(
    forest: Any, cancer: Any, sdk: Settings, tmp_path: Path
) -> None:
    X, _ = cancer
    with shipyard.start_run(capture_environment=False):
        info = shipyard.log_model(forest, "model", input_example=X.head(3))
    shipyard.get_client().flush()
    result = load_in_fresh_process(
        {"run": (info.model_uri, X)}, tmp_path, env={"SHIPYARD_HOME": str(sdk.home)}
    )["run"]
    assert result["ok"], result["error"]
    np.testing.assert_array_equal(result["pred"], forest.predict(X))


@needs_registry
def test_log_model_registers_and_loads_by_models_uri(forest: Any, cancer: Any) -> None:
    X, _ = cancer
    with shipyard.start_run(capture_environment=False) as run:
        info = shipyard.log_model(forest, "model", registered_model_name="cancer-forest")
    assert info.registered_model_name == "cancer-forest"
    version = info.registered_model_version
    assert version is not None
    number = getattr(version, "version", version)
    for uri in (f"models:/cancer-forest/{number}", "models:/cancer-forest/latest"):
        loaded = shipyard.load_model(uri)
        assert loaded.metadata["run_id"] == run.run_id
        np.testing.assert_array_equal(loaded.predict(X), forest.predict(X))


def test_registration_without_a_registry_is_a_clear_error(
    forest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "shipyard.registry", None)
    with (
        shipyard.start_run(capture_environment=False) as run,
        pytest.raises(shipyard.MissingDependency, match="logged as runs:/"),
    ):
        shipyard.log_model(forest, "model", registered_model_name="x")
    # the model itself was logged before registration was attempted
    assert shipyard.load_model(f"runs:/{run.run_id}/model").manifest.predict_flavor == "sklearn"
    with pytest.raises(shipyard.MissingDependency, match="models:/x/1"):
        shipyard.load_model("models:/x/1")


@needs_registry
@pytest.mark.slow
def test_register_then_load_by_alias_in_a_fresh_process(
    forest: Any, cancer: Any, sdk: Settings, tmp_path: Path
) -> None:
    from shipyard.registry import Registry

    X, _ = cancer
    with shipyard.start_run(capture_environment=False):
        info = shipyard.log_model(forest, "model", registered_model_name="cancer-forest")
    version = getattr(info.registered_model_version, "version", info.registered_model_version)
    Registry(shipyard.get_client().workspace).set_alias("cancer-forest", "champion", int(version))
    result = load_in_fresh_process(
        {"alias": ("models:/cancer-forest@champion", X)},
        tmp_path,
        env={"SHIPYARD_HOME": str(sdk.home)},
    )["alias"]
    assert result["ok"], result["error"]
    np.testing.assert_array_equal(result["pred"], forest.predict(X))
