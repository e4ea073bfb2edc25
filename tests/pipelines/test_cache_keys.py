"""Cache keys that must miss: a parameter whose text form hides a change, a config table the
step reads, and a resumed run whose upstream step ran again with another output."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shipyard.pipelines import resume, run
from shipyard.workspace import Workspace

PIPELINE = """
import numpy as np
from shipyard.pipelines import pipeline, step

CONFIG = {"scale": 2}

@step
def total(values) -> float:
    return float(values.sum())

@step
def scaled(x: int) -> int:
    return x * CONFIG["scale"]

@step
def plus_one(n: int) -> int:
    return n + 1

@step
def double(x: int) -> int:
    return x * 2

@pipeline
def arrays(k: int = 0):
    values = np.zeros(5000)
    values[2500] = k  # the middle of the array: not in its repr
    total(values)

@pipeline
def config():
    scaled(3)

@pipeline
def chain(n: int = 1):
    double(plus_one(n))
"""


def _write(tmp_path: Path, text: str = PIPELINE) -> Path:
    path = tmp_path / "keys_pipeline.py"
    path.write_text(textwrap.dedent(text))
    return path


def _json_output(workspace: Workspace, step) -> bytes:
    with workspace.artifacts.open(step.output["owner"], "output/data.json") as src:
        return src.read()


def test_a_changed_array_parameter_misses_the_cache(workspace: Workspace, tmp_path: Path) -> None:
    path = _write(tmp_path)
    run(f"{path}:arrays", {"k": 0}, workspace=workspace)
    changed = run(f"{path}:arrays", {"k": 7}, workspace=workspace)
    assert not changed.step("total").cached
    assert _json_output(workspace, changed.step("total")) == b"7.0"
    again = run(f"{path}:arrays", {"k": 7}, workspace=workspace)
    assert again.step("total").cached


def test_a_changed_config_dict_the_step_reads_misses_the_cache(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = _write(tmp_path)
    first = run(f"{path}:config", workspace=workspace)
    assert _json_output(workspace, first.step("scaled")) == b"6"
    _write(tmp_path, PIPELINE.replace('{"scale": 2}', '{"scale": 5}'))
    changed = run(f"{path}:config", workspace=workspace)
    assert not changed.step("scaled").cached
    assert _json_output(workspace, changed.step("scaled")) == b"15"


def test_resume_with_new_params_reruns_the_steps_whose_inputs_changed(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = _write(tmp_path)
    first = run(f"{path}:chain", {"n": 1}, workspace=workspace)
    assert _json_output(workspace, first.step("double")) == b"4"
    resumed = resume(first.run_id, params={"n": 5}, workspace=workspace)
    assert not resumed.step("plus_one").cached
    assert not resumed.step("double").cached
    assert _json_output(workspace, resumed.step("double")) == b"12"


def test_a_notebook_helper_or_constant_redefined_changes_the_code_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import types

    from shipyard.pipelines import fingerprint

    notebook = types.ModuleType("__main__")  # a kernel's __main__: no __file__
    monkeypatch.setitem(sys.modules, "__main__", notebook)

    def cell(source: str, name: str) -> None:
        exec(compile(textwrap.dedent(source), name, "exec"), notebook.__dict__)

    cell(
        """
        SCALE = 2
        def helper(x):
            return x * 2
        def train(x):
            return helper(x) * SCALE
        """,
        "<cell-1>",
    )
    train = notebook.train
    first, parts, _ = fingerprint.code_fingerprint(train)
    assert {"__main__.helper", "constant SCALE"} <= set(parts)
    cell("def helper(x):\n    return x * 3\n", "<cell-2>")  # same bytecode, another constant
    second = fingerprint.code_fingerprint(train)[0]
    assert second != first
    notebook.SCALE = 5
    third = fingerprint.code_fingerprint(train)[0]
    assert third not in (first, second)
    assert fingerprint.code_fingerprint(train)[0] == third
