"""The same pipelines on the process pool and on a real local Ray instance give identical
outputs; outputs are stored by type."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard import errors
from shipyard.errors import ShipyardWarning
from shipyard.pipelines import materialize, run
from shipyard.workspace import Workspace
from tests.pipelines import _example as ex

DEMO = str(Path(__file__).resolve().parents[2] / "examples" / "pipeline_demo.py") + ":breast_cancer"


def _digests(pl_run: Any) -> dict[str, str]:
    return {s.name: s.output["digest"] for s in pl_run.steps if s.output}


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_the_process_pool_gives_the_same_outputs(workspace: Workspace) -> None:
    local = run(ex.fan, {"items": [3, 4]}, workspace=workspace, cache=False)
    pooled = run(
        ex.fan,
        {"items": [3, 4]},
        workspace=workspace,
        cache=False,
        executor="process",
        max_workers=2,
    )
    assert pooled.status == "SUCCEEDED"
    assert pooled.executor == "process"
    assert _digests(pooled) == _digests(local)


@pytest.mark.slow
def test_the_example_runs_on_ray_with_identical_outputs(
    workspace: Workspace, ray_instance: None
) -> None:
    params = {"n_estimators": 5}
    local = run(DEMO, params, workspace=workspace, cache=False)
    on_ray = run(DEMO, params, workspace=workspace, cache=False, executor="ray")
    assert on_ray.status == "SUCCEEDED", [s.error for s in on_ray.steps]
    assert on_ray.executor == "ray"
    same = {"ingest", "validate", "evaluate"}  # the model package embeds its creation time
    assert {k: v for k, v in _digests(on_ray).items() if k in same} == {
        k: v for k, v in _digests(local).items() if k in same
    }
    fan_local = run(ex.fan, workspace=workspace, cache=False)
    fan_ray = run(ex.fan, workspace=workspace, cache=False, executor="ray")
    assert _digests(fan_ray) == _digests(fan_local)


def test_outputs_are_stored_by_type() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert materialize.dump(frame).kind == "parquet"
    assert materialize.dump(np.arange(4)).kind == "npy"
    assert materialize.dump({"k": [1, 2.5, None]}).kind == "json"
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    packaged = materialize.dump(model)
    assert (packaged.kind == "model" and "model/shipyard-model.json" in packaged.files) or any(
        p.startswith("model/") for p in packaged.files
    )
    assert type(materialize.load("model", packaged.files)).__name__ == "LogisticRegression"
    back = materialize.load("parquet", materialize.dump(frame).files)
    assert back.equals(frame)
    assert materialize.load("npy", materialize.dump(np.arange(4)).files).tolist() == [0, 1, 2, 3]
    assert materialize.dump({1, 2}).kind == "pickle"


@pytest.mark.filterwarnings("default")
def test_a_pickled_output_warns(workspace: Workspace) -> None:
    from shipyard.pipelines import pipeline, step

    @step
    def make_set() -> set[int]:
        return {1, 2}

    @pipeline
    def sets():
        make_set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(sets, workspace=workspace)
    assert result.status == "SUCCEEDED"
    assert any(
        issubclass(w.category, ShipyardWarning) and "pickled" in str(w.message) for w in caught
    )


def test_an_unknown_executor_is_refused(workspace: Workspace) -> None:
    with pytest.raises(errors.InvalidInput, match="unknown executor"):
        run(ex.fan, workspace=workspace, executor="dask")
