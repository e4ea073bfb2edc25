"""Fixtures for the ``shipyard`` command: a runner bound to a temp workspace, and seeded data.

Data is written through the store and artifact interfaces (not the SDK), so these tests depend
only on the layers the CLI itself uses.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from shipyard.cli.main import cli
from shipyard.config import Settings
from shipyard.entities import Dataset, DatasetInput, Metric
from shipyard.workspace import Workspace

START = 1_700_000_000_000
"""Start time of the seeded runs (ms since the epoch)."""


class Shipyard:
    """Runs ``shipyard --home HOME ...`` in-process and parses ``--json`` output."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, expect: int | None = 0) -> Result:
        result = self.runner.invoke(
            cli, ["--home", str(self.home), *args], input=input, catch_exceptions=False
        )
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def json(self, *args: str, input: str | None = None) -> Any:
        """Run with ``--json`` and return the parsed stdout (which must be only JSON)."""
        result = self(*args, "--json", input=input)
        return json.loads(result.stdout)

    def fails(self, *args: str, code: int = 1) -> str:
        """Run a command that must fail with one ``Error: ...`` line; return that line."""
        result = self(*args, expect=code)
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert result.stdout == ""
        return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / ".shipyard"


@pytest.fixture
def shipyard(home: Path) -> Shipyard:
    return Shipyard(home)


@pytest.fixture
def open_workspace(home: Path) -> Iterator[Callable[[], Workspace]]:
    """Opens the workspace the CLI uses (closed at the end of the test)."""
    opened: list[Workspace] = []

    def _open() -> Workspace:
        ws = Workspace.open(Settings.from_env({}, home=home))
        opened.append(ws)
        return ws

    yield _open
    for ws in opened:
        ws.close()


@dataclass(frozen=True)
class Seeded:
    experiment_id: str
    other_experiment_id: str
    run_a: str
    run_b: str
    run_c: str


@pytest.fixture
def seeded(open_workspace: Callable[[], Workspace]) -> Seeded:
    """Experiment ``churn`` with two finished runs (same ``model``, different ``depth`` and
    metrics; run A has a dataset input and artifacts) and experiment ``vision`` with one
    running run."""
    ws = open_workspace()
    store = ws.store
    exp = store.create_experiment("churn", tags={"team": "search"})
    other = store.create_experiment("vision")
    a = store.create_run(exp, run_name="rf-small", user_id="ana", start_time=START).info.run_id
    store.log_batch(
        a,
        metrics=[Metric("acc", 0.90, START + 1000, 0), Metric("acc", 0.93, START + 2000, 1)],
        params={"model": "rf", "depth": "4", "notes": "x" * 300},
        tags={"owner": "ana"},
    )
    store.log_inputs(
        a,
        [
            DatasetInput(
                Dataset("train", "d1g35t", "local", "/data/train.csv"),
                {"mlflow.data.context": "training"},
            )
        ],
    )
    ws.artifacts.upload(a, "model/weights.bin", io.BytesIO(b"\x00" * 2048))
    ws.artifacts.upload(a, "notes.txt", io.BytesIO(b"hello"))
    store.update_run(a, status="FINISHED", end_time=START + 125_000)
    b = store.create_run(exp, run_name="rf-deep", start_time=START + 200_000).info.run_id
    store.log_batch(
        b,
        metrics=[Metric("acc", 0.95, START + 201_000, 0), Metric("loss", 0.2, START + 201_000, 0)],
        params={"model": "rf", "depth": "8"},
    )
    store.update_run(b, status="FINISHED", end_time=START + 260_000)
    c = store.create_run(other, run_name="cnn", start_time=START + 300_000).info.run_id
    return Seeded(exp, other, a, b, c)
