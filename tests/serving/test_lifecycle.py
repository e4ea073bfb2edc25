"""Lifecycle: ready only after load and warm-up; an alias move or a weight change switches
atomically under load with zero failed requests."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from shipyard.errors import InvalidInput, ModelNotReady
from shipyard.registry import Registry
from shipyard.serving import Arm, DeploymentSpec
from shipyard.serving.app import create_app
from shipyard.serving.endpoint import Endpoint
from shipyard.workspace import Workspace
from tests.server.conftest import serve_in_thread
from tests.serving.conftest import Data, serving


@contextmanager
def under_load(url: str, body: dict[str, object], clients: int) -> Iterator[list[object]]:
    """``clients`` threads posting ``body`` to /predict until the block ends; yields the
    answers (the version, or what went wrong) in the order they arrived."""
    stop = threading.Event()
    results: list[object] = []
    threads = [
        threading.Thread(target=_load, args=(url, body, stop, results)) for _ in range(clients)
    ]
    for t in threads:
        t.start()
    try:
        yield results
    finally:
        stop.set()
        for t in threads:
            t.join()


def _load(url: str, body: dict[str, object], stop: threading.Event, out: list[object]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            try:
                r = client.post("/predict", json=body)
                out.append(r.json()["model_version"] if r.status_code == 200 else r.status_code)
            except httpx.HTTPError as exc:  # a dropped request counts as a failure
                out.append(repr(exc))


@pytest.fixture
def one_row(cancer: Data) -> dict[str, object]:
    return {"dataframe_records": cancer.X.iloc[[0]].to_dict("records")}


def test_alias_move_under_load_drops_nothing(
    workspace: Workspace, models: Registry, one_row: dict[str, object]
) -> None:
    spec = DeploymentSpec.single("models:/cancer@champion", poll_interval_s=0.1)
    with serving(workspace, spec) as s, under_load(s.url, one_row, 4) as results:
        time.sleep(0.4)
        models.set_alias("cancer", "champion", 2)
        deadline = time.monotonic() + 10
        while s.endpoint.state().versions["main"].version != "2" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    seen = Counter(results)
    assert set(seen) == {"1", "2"}, seen  # every answer a success, from one version or the other
    assert seen["1"] > 0
    assert seen["2"] > 0
    # once switched, it stays switched: no answer from version 1 after the first from version 2
    first_2 = results.index("2")
    assert "1" not in results[first_2 + 20 :]


def test_weight_change_is_one_atomic_switch(
    workspace: Workspace, models: Registry, one_row: dict[str, object]
) -> None:
    with (
        serving(workspace, DeploymentSpec.single("models:/cancer@champion")) as s,
        under_load(s.url, one_row, 3) as results,
    ):
        time.sleep(0.3)
        s.endpoint.set_spec(
            DeploymentSpec(
                name="cancer",
                arms=(Arm("main", "models:/cancer@champion", 0), Arm("new", "models:/cancer/2", 1)),
            )
        )
        time.sleep(0.3)
    assert set(results) == {"1", "2"}, Counter(results)
    assert "1" not in results[results.index("2") + 10 :]


def test_not_ready_until_loaded_and_warmed_up(
    workspace: Workspace, models: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shipyard.serving.endpoint as endpoint_module

    gate = threading.Event()
    real = endpoint_module.warm_up

    def slow_warm_up(model: object) -> None:
        gate.wait(10)
        real(model)  # type: ignore[arg-type]

    monkeypatch.setattr(endpoint_module, "warm_up", slow_warm_up)
    endpoint = Endpoint(workspace, DeploymentSpec.single("models:/cancer@champion"))
    with serve_in_thread(create_app(endpoint)) as url, httpx.Client(base_url=url) as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        r = client.get("/ping")
        assert r.status_code == 503
        assert r.json()["error_code"] == "MODEL_NOT_READY"
        assert client.get("/v2/health/ready").status_code == 503
        assert client.post("/invocations", json={"inputs": [[0.0] * 30]}).status_code == 503
        gate.set()
        deadline = time.monotonic() + 10
        while client.get("/ping").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.get("/v2/health/ready").json() == {"ready": True}


def test_a_failing_warm_up_never_becomes_ready(workspace: Workspace, cancer: Data) -> None:
    from sklearn.dummy import DummyClassifier

    import shipyard

    folder = workspace.settings.home / "m"
    model = DummyClassifier().fit(cancer.X, cancer.y)
    shipyard.save_model(model, folder, input_example=cancer.X[:2])
    (folder / "input_example.json").write_text(
        '{"type": "dataframe", "columns": ["nope"], "data": [[1]]}'
    )
    endpoint = Endpoint(workspace, DeploymentSpec.single(str(folder)))
    with pytest.raises(InvalidInput, match="warm-up prediction"):
        endpoint.load()
    with pytest.raises(ModelNotReady, match="warm-up"):
        endpoint.state()


def test_close_waits_for_a_registry_check_under_way(
    workspace: Workspace, models: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = Endpoint(
        workspace, DeploymentSpec.single("models:/cancer@champion", poll_interval_s=0.02)
    )
    endpoint.start(background=False)
    in_refresh = threading.Event()
    seen: list[str] = []

    def slow_refresh() -> bool:
        in_refresh.set()
        time.sleep(0.3)
        # Still usable: close() has not torn anything down under the check.
        seen.append(str(models.resolve("models:/cancer@champion").version))
        return False

    monkeypatch.setattr(endpoint, "refresh", slow_refresh)
    assert in_refresh.wait(10)
    endpoint.close()
    poller = endpoint._poller
    assert poller is not None
    assert not poller.is_alive()  # nothing of the endpoint runs once close() returns
    assert seen
    count = len(seen)
    time.sleep(0.1)
    assert len(seen) == count  # and no check starts after it
