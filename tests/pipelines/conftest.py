"""Fixtures for the pipeline tests: a pipeline file the tests edit, and a counter file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

CHAIN = """
from shipyard.pipelines import pipeline, step

@step
def a(n: int) -> int:
    return n + 1

@step
def b(x: int) -> int:
    return x * 2

@step
def c(x: int) -> int:
    return x - 3

@step(reads=["input.txt"])
def d(n: int) -> int:
    from pathlib import Path
    return n + len(Path("input.txt").read_text())

@pipeline
def chain(n: int = 1):
    c(b(a(n)))
    d(n)
"""


@pytest.fixture
def chain_file(tmp_path: Path) -> Path:
    """A four-step pipeline in a file (a -> b -> c, and d reading input.txt)."""
    path = tmp_path / "chain_pipeline.py"
    path.write_text(textwrap.dedent(CHAIN))
    (tmp_path / "input.txt").write_text("abc")
    return path


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "counter.txt"
    monkeypatch.setenv("PIPELINE_TEST_COUNTER", str(path))
    return path
