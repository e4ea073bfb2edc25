"""The model registry through a real ``shipyard server`` process, end to end: log and register a
scikit-learn model with a client whose tracking URI is the server, point an alias at it, and load
``models:/churn@champion`` in a fresh Python process that knows only the server's URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shipyard
from shipyard import errors
from shipyard.registry import Registry
from shipyard.tracking import fluent
from tests.models.conftest import load_in_fresh_process
from tests.server.conftest import LiveServer

pytest.importorskip("sklearn")


@pytest.fixture
def remote(
    live_server_process: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[shipyard.Client]:
    """The SDK pointed at the live server, with a client-side home (the model cache) of its own."""
    url = live_server_process.url
    fluent._reset_for_tests()
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", url)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "client-home"))
    client = shipyard.Client(url)
    try:
        yield client
    finally:
        client.close()
        fluent._reset_for_tests()


def test_log_register_alias_and_load_in_a_fresh_process(
    remote: shipyard.Client, live_server_process: LiveServer, tmp_path: Path
) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    forest: Any = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    with shipyard.start_run(capture_environment=False) as run:
        info = shipyard.log_model(
            forest, "model", input_example=X.head(5), registered_model_name="churn", client=remote
        )
    version = info.registered_model_version
    assert (version.name, version.run_id, version.storage_path) == ("churn", run.run_id, "model")
    assert version.storage_owner.startswith("mv-")

    registry = Registry(remote.workspace)
    registry.set_alias("churn", "champion", version.version, reason="first model")
    assert registry.get_version_by_alias("churn", "champion").version == version.version
    last = registry.history("churn")[-1]
    assert (last.action, last.alias, last.reason) == ("alias_set", "champion", "first model")
    with pytest.raises(errors.InvalidState, match="alias 'champion' points at it"):
        registry.delete_version("churn", version.version)

    # The version's files come from the server, by the version's own storage owner.
    listed = {a.path for a in remote.workspace.artifacts.list(version.storage_owner, "model")}
    assert {"model/shipyard-model.json", "model/model.pkl"} <= listed

    fresh_home = tmp_path / "fresh-home"
    result = load_in_fresh_process(
        {"champion": ("models:/churn@champion", X)},
        tmp_path,
        env={"SHIPYARD_TRACKING_URI": live_server_process.url, "SHIPYARD_HOME": str(fresh_home)},
    )
    assert result["champion"]["ok"], result["champion"]
    assert result["champion"]["flavor"] == "sklearn"
    np.testing.assert_array_equal(result["champion"]["pred"], forest.predict(X))
    cached = fresh_home / "cache" / "models" / info.content_hash
    assert (cached / "model.pkl").is_file()
    assert "Traceback" not in live_server_process.log_text()
