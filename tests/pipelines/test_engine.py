"""Running pipelines: caching and its keys, fan-out/in, conditions, retries, failures, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard import errors
from shipyard.pipelines import cache_why, load_pipeline, resume, run
from shipyard.store.pipelines import PipelineStatus, StepStatus
from shipyard.workspace import Workspace
from tests.pipelines import _example as ex


def _statuses(pl_run):
    return {s.name: (s.status, s.cached) for s in pl_run.steps}


def test_fan_out_and_in_compute_and_a_second_run_is_all_cache_hits(workspace: Workspace) -> None:
    first = run(ex.fan, {"items": [1, 2, 3, 4]}, workspace=workspace)
    assert first.status == PipelineStatus.SUCCEEDED
    assert set(_statuses(first)) == {
        "square[0]",
        "square[1]",
        "square[2]",
        "square[3]",
        "total",
        "add",
    }
    assert all(not s.cached for s in first.steps)
    again = run(ex.fan, {"items": [1, 2, 3, 4]}, workspace=workspace)
    assert all(s.cached and s.status == StepStatus.SUCCEEDED for s in again.steps)
    assert again.step("add").output == first.step("add").output  # same bytes, same owner
    assert again.step("add").cache_source == first.step("add").step_run_id


def test_values_flow_between_steps(workspace: Workspace) -> None:
    result = run(ex.fan, {"items": [1, 2, 3], "offset": 10}, workspace=workspace)
    out = result.step("add").output
    assert out is not None
    assert out["kind"] == "json"
    with workspace.artifacts.open(out["owner"], "output/data.json") as src:
        assert src.read() == b"24"  # 1 + 4 + 9 + 10


def test_a_parameter_change_reruns_only_the_steps_it_reaches(workspace: Workspace) -> None:
    run(ex.fan, workspace=workspace)
    changed = run(ex.fan, {"offset": 5}, workspace=workspace)
    assert {n for n, (_, cached) in _statuses(changed).items() if not cached} == {"add"}
    why = cache_why(changed.run_id, "add", workspace=workspace)
    assert [c["component"] for c in why["changes"]] == ["params"]
    assert why["changes"][0]["item"] == "b"


def test_no_cache_runs_every_step(workspace: Workspace) -> None:
    run(ex.fan, workspace=workspace)
    again = run(ex.fan, workspace=workspace, cache=False)
    assert not any(s.cached for s in again.steps)
    assert not again.cache_enabled


def test_editing_one_steps_code_reruns_it_and_its_downstream_only(
    workspace: Workspace, chain_file: Path
) -> None:
    ref = f"{chain_file}:chain"
    run(ref, workspace=workspace)
    assert all(s.cached for s in run(ref, workspace=workspace).steps)
    chain_file.write_text(chain_file.read_text().replace("return x * 2", "return x * 3"))
    edited = run(ref, workspace=workspace)
    assert {n for n, (_, cached) in _statuses(edited).items() if not cached} == {"b", "c"}
    why = cache_why(edited.run_id, "b", workspace=workspace)
    assert {c["component"] for c in why["changes"]} == {"code"}
    assert "code" in why["summary"]
    assert ".b" in why["summary"]
    assert cache_why(edited.run_id, "a", workspace=workspace)["cached"] is True
    # c re-ran because its input's content changed, not its code
    assert {
        c["component"] for c in cache_why(edited.run_id, "c", workspace=workspace)["changes"]
    } == {"inputs"}


def test_changing_a_declared_input_file_reruns_that_step(
    workspace: Workspace, chain_file: Path
) -> None:
    ref = f"{chain_file}:chain"
    run(ref, workspace=workspace)
    (chain_file.parent / "input.txt").write_text("abcdef")
    changed = run(ref, workspace=workspace)
    assert {n for n, (_, cached) in _statuses(changed).items() if not cached} == {"d"}
    why = cache_why(changed.run_id, "d", workspace=workspace)
    assert [(c["component"], c["item"]) for c in why["changes"]] == [("external", "input.txt")]


def test_a_false_condition_skips_the_step(workspace: Workspace) -> None:
    skipped = run(ex.branches, {"x": -2}, workspace=workspace)
    assert skipped.status == PipelineStatus.SUCCEEDED
    assert skipped.step("only_if_positive").status == StepStatus.SKIPPED
    taken = run(ex.branches, {"x": 2}, workspace=workspace)
    assert taken.step("only_if_positive").status == StepStatus.SUCCEEDED


def test_a_step_that_fails_twice_then_succeeds_with_two_retries_finishes(
    workspace: Workspace, counter: Path
) -> None:
    result = run(ex.flaky_pipeline, workspace=workspace)
    assert result.status == PipelineStatus.SUCCEEDED
    flaky = result.step("flaky")
    assert flaky.attempts == 3
    assert counter.read_text() == "3"
    assert "succeeded on attempt 3" in (flaky.logs or "")


def test_a_step_that_keeps_failing_fails_the_run_and_other_branches_finish(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_TEST_BROKEN", "1")
    result = run(ex.fragile, workspace=workspace)
    assert result.status == PipelineStatus.FAILED
    broken = result.step("breaks")
    assert broken.status == StepStatus.FAILED
    assert broken.error == "ValueError: broken on purpose"
    assert "Traceback" in (broken.traceback or "")
    assert "broken on purpose" in (broken.traceback or "")
    assert result.step("add").status == StepStatus.SKIPPED
    assert result.step("independent").status == StepStatus.SUCCEEDED
    assert "breaks" in (result.error or "")


def test_the_error_boundary_raises_step_failed_chaining_the_original(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_TEST_BROKEN", "1")
    with pytest.raises(errors.StepFailed, match="breaks") as caught:
        run(ex.fragile, workspace=workspace, raise_on_failure=True)
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.details["step"] == "breaks"
    assert caught.value.code == "STEP_FAILED"


def test_cancel_on_failure_cancels_the_other_branches(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_TEST_BROKEN", "1")
    result = run(ex.fragile_cancel, workspace=workspace)
    assert result.status == PipelineStatus.FAILED
    assert result.step("slow").status == StepStatus.CANCELLED


def test_a_step_past_its_timeout_fails(workspace: Workspace) -> None:
    result = run(ex.timing_out, workspace=workspace)
    step = result.step("too_slow")
    assert step.status == StepStatus.FAILED
    assert step.error is not None
    assert step.error.startswith("StepTimeout")


def test_resume_after_fixing_the_code_reruns_only_from_the_failed_step(
    workspace: Workspace, chain_file: Path
) -> None:
    chain_file.write_text(
        chain_file.read_text().replace("return x * 2", "raise RuntimeError('bug')")
    )
    failed = run(f"{chain_file}:chain", workspace=workspace)
    assert failed.status == PipelineStatus.FAILED
    assert failed.step("c").status == StepStatus.SKIPPED
    chain_file.write_text(
        chain_file.read_text().replace("raise RuntimeError('bug')", "return x * 2")
    )
    # an edit upstream of the failure does not stop the reuse of what succeeded
    chain_file.write_text(chain_file.read_text().replace("return n + 1", "return n + 1  # edited"))
    resumed = resume(failed.run_id, workspace=workspace)
    assert resumed.status == PipelineStatus.SUCCEEDED
    assert resumed.resumed_from == failed.run_id
    reused = {s.name for s in resumed.steps if s.cached}
    assert reused == {"a", "d"}
    assert resumed.step("a").cache_source == failed.step("a").step_run_id


def test_resume_from_a_step_reruns_it_and_its_downstream(
    workspace: Workspace, chain_file: Path
) -> None:
    first = run(f"{chain_file}:chain", workspace=workspace)
    resumed = resume(first.run_id, from_step="b", workspace=workspace)
    assert {s.name for s in resumed.steps if not s.cached} == {"b", "c"}
    with pytest.raises(errors.InvalidInput, match="no step 'zz'"):
        resume(first.run_id, from_step="zz", workspace=workspace)


def test_records_have_timings_inputs_outputs_and_executor(workspace: Workspace) -> None:
    result = run(ex.fan, {"items": [2]}, workspace=workspace)
    stored = workspace.pipelines.get_run(result.run_id[:8])
    assert stored.run_id == result.run_id
    total = stored.step("total")
    assert total.executor == "inprocess"
    assert total.duration_s is not None
    assert total.duration_s >= 0
    assert total.inputs["values"][0]["step"] == "square[0]"
    assert total.output is not None
    assert total.output["digest"]
    assert stored.params == {"items": [2], "offset": 0}


def test_unknown_and_missing_parameters_are_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="no parameter 'nope'"):
        ex.fan.build({"nope": 1})
    with pytest.raises(errors.InvalidInput, match="does not name a pipeline"):
        load_pipeline("no-colon")
    with pytest.raises(errors.InvalidInput, match="not a @pipeline"):
        load_pipeline("tests.pipelines._example:square")


def test_step_outputs_are_not_truthy_at_build_time() -> None:
    from shipyard.pipelines import pipeline

    @pipeline
    def bad():
        if ex.positive(1):
            ex.square(1)

    with pytest.raises(errors.InvalidInput, match="when"):
        bad.build()
