from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard.errors import InvalidState

pytestmark = pytest.mark.usefixtures("sdk")


def test_start_run_records_context_and_ends_finished() -> None:
    exp = shipyard.set_experiment("fluent")
    with shipyard.start_run(run_name="first") as run:
        shipyard.log_params({"lr": 0.1})
        for i in range(5):
            shipyard.log_metric("loss", 1 / (i + 1), step=i)
        shipyard.set_tag("k", "v")
        assert shipyard.active_run() is run
    got = shipyard.get_run(run.run_id)
    assert got.info.experiment_id == exp.experiment_id
    assert got.info.status == "FINISHED"
    assert got.data.metrics["loss"].step == 4
    tags = got.data.tags
    assert tags["mlflow.user"]
    assert tags["shipyard.python.version"]
    assert tags["mlflow.runName"] == "first"
    names = {a.path for a in shipyard.get_client().list_artifacts(run.run_id, "environment")}
    assert names == {"environment/requirements.txt"}
    assert shipyard.active_run() is None


def test_exception_marks_run_failed() -> None:
    with pytest.raises(RuntimeError), shipyard.start_run() as run:
        raise RuntimeError("boom")
    assert shipyard.get_run(run.run_id).info.status == "FAILED"


def test_nested_runs_and_the_active_run_guard() -> None:
    with shipyard.start_run(capture_environment=False) as parent:
        with pytest.raises(InvalidState, match="nested=True"):
            shipyard.start_run()
        with shipyard.start_run(nested=True, capture_environment=False) as child:
            shipyard.log_metric("x", 1)
    got = shipyard.get_run(child.run_id)
    assert got.info.parent_run_id == parent.run_id
    assert got.data.tags["mlflow.parentRunId"] == parent.run_id


def test_logging_without_a_run_starts_one_and_resume_works() -> None:
    shipyard.log_param("auto", 1)
    run = shipyard.active_run()
    assert run is not None
    shipyard.end_run()
    with shipyard.start_run(run_id=run.run_id):
        shipyard.log_metric("later", 2.0)
    got = shipyard.get_run(run.run_id)
    assert got.data.params == {"auto": "1"}
    assert got.data.metrics["later"].value == 2.0


def test_search_runs_defaults_to_active_experiment() -> None:
    shipyard.set_experiment("a")
    with shipyard.start_run(capture_environment=False):
        shipyard.log_metric("m", 1)
    shipyard.set_experiment("b")
    assert len(shipyard.search_runs()) == 0
    assert len(shipyard.search_runs(experiment_names=["a"])) == 1


def test_deleted_experiment_cannot_be_activated() -> None:
    exp = shipyard.set_experiment("gone")
    shipyard.delete_experiment(exp.experiment_id)
    with pytest.raises(InvalidState, match="restore"):
        shipyard.set_experiment("gone")


def test_an_invalid_status_leaves_the_run_active_and_running() -> None:
    from shipyard.errors import InvalidInput

    run = shipyard.start_run(capture_environment=False)
    with pytest.raises(InvalidInput, match="not valid"):
        shipyard.end_run("bogus")
    assert shipyard.active_run() is run
    assert shipyard.get_run(run.run_id).info.status == "RUNNING"
    shipyard.end_run("failed")
    assert shipyard.active_run() is None
    assert shipyard.get_run(run.run_id).info.status == "FAILED"


def test_resuming_a_run_while_another_is_active_is_refused() -> None:
    first = shipyard.start_run(capture_environment=False)
    with pytest.raises(InvalidState, match="already active"):
        shipyard.start_run(run_id=first.run_id)
    with pytest.raises(InvalidState, match="already active in this process"):
        shipyard.start_run(run_id=first.run_id, nested=True)
    assert shipyard.active_run() is first
    shipyard.end_run()
    assert shipyard.active_run() is None


_LEAVE_A_RUN_OPEN = """
import sys
import shipyard
run = shipyard.start_run()
shipyard.log_metric("m", 1.0)
print(run.run_id, flush=True)
if sys.argv[1] == "raise":
    raise ValueError("training diverged")
if sys.argv[1] == "interrupt":
    raise KeyboardInterrupt
"""


@pytest.mark.parametrize(
    ("how", "status"),
    [("raise", "FAILED"), ("interrupt", "KILLED"), ("return", "FINISHED")],
)
def test_runs_left_open_end_with_how_the_script_ended(
    tmp_path: Path, how: str, status: str
) -> None:
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path / "home")}
    env.pop("SHIPYARD_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-c", _LEAVE_A_RUN_OPEN, how],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode == 0) == (how == "return"), proc.stderr
    run_id = proc.stdout.split()[0]
    client = shipyard.Client(home=tmp_path / "home")
    try:
        run = client.get_run(run_id)
        assert run.info.status == status
        assert run.info.end_time is not None
        assert run.data.metrics["m"].value == 1.0  # flushed before the run ended
    finally:
        client.close()
