"""``shipyard pipelines`` and ``shipyard scheduler`` on the four-step example pipeline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import Shipyard

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path) -> str:
    path = tmp_path / "pipeline_demo.py"
    shutil.copy(ROOT / "examples" / "pipeline_demo.py", path)
    return f"{path}:breast_cancer"


@pytest.mark.slow
def test_run_the_example_then_everything_is_a_hit_and_cache_why_names_the_code_change(
    shipyard: Shipyard, demo: str, tmp_path: Path
) -> None:
    first = shipyard.json("pipelines", "run", demo, "-p", "n_estimators=10", "-p", "register_as=bc")
    assert first["status"] == "SUCCEEDED"
    assert [s["name"] for s in first["steps"]] == ["ingest", "validate", "train", "evaluate"]
    assert set(first["steps"][0]) == {"name", "status", "cached", "duration_s"}
    assert not any(s["cached"] for s in first["steps"])

    again = shipyard.json("pipelines", "run", demo, "-p", "n_estimators=10", "-p", "register_as=bc")
    assert all(s["cached"] for s in again["steps"])

    path = Path(demo.rsplit(":", 1)[0])
    path.write_text(path.read_text().replace("n_jobs=1", "n_jobs=1, max_depth=4"))
    edited = shipyard.json(
        "pipelines", "run", demo, "-p", "n_estimators=10", "-p", "register_as=bc"
    )
    rerun = {s["name"] for s in edited["steps"] if not s["cached"]}
    assert rerun == {"train", "evaluate"}
    why = shipyard("pipelines", "cache", "why", edited["run_id"], "train").output
    assert "code" in why
    assert "train changed" in why

    (tmp_path / "pipeline_demo_rules.json").write_text('{"min_rows": 10}')
    rules = shipyard.json("pipelines", "run", demo, "-p", "n_estimators=10", "-p", "register_as=bc")
    assert "validate" in {s["name"] for s in rules["steps"] if not s["cached"]}

    shown = shipyard.json("pipelines", "show", first["run_id"][:8])
    evaluate = next(s for s in shown["steps"] if s["name"] == "evaluate")
    assert {"kind": "model_version", "name": "bc", "version": "1"} in evaluate["links"]
    assert evaluate["tracking_run_id"]
    text = shipyard("pipelines", "show", first["run_id"], "--logs").output
    assert "validated 569 rows" in text
    assert "model_version" in text
    listed = shipyard.json("pipelines", "list")
    assert len(listed["runs"]) == 4


def test_a_failing_run_exits_1_and_resume_runs_from_the_failed_step(
    shipyard: Shipyard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_TEST_BROKEN", "1")
    failed = shipyard("pipelines", "run", "tests.pipelines._example:fragile", "--json", expect=1)
    import json

    body = json.loads(failed.output)
    assert body["status"] == "FAILED"
    monkeypatch.setenv("PIPELINE_TEST_BROKEN", "0")
    resumed = shipyard.json("pipelines", "resume", body["run_id"])
    assert resumed["status"] == "SUCCEEDED"
    assert {s["name"] for s in resumed["steps"] if not s["cached"]} == {"breaks", "add"}
    text = shipyard("pipelines", "resume", body["run_id"], "--from", "add").output
    assert "SUCCEEDED" in text


def test_user_errors_are_one_line(shipyard: Shipyard) -> None:
    assert "does not name a pipeline" in shipyard.fails("pipelines", "run", "nothing")
    message = shipyard.fails("pipelines", "run", "tests.pipelines._example:fan", "-p", "offset=x")
    assert "is a number" in message
    assert "Traceback" not in message
    assert "No pipeline run" in shipyard.fails("pipelines", "show", "ffffffff")
    assert "--every" in shipyard.fails(
        "pipelines", "schedule", "add", "s", "tests.pipelines._example:fan"
    )


def test_schedules_add_list_fire_and_delete(shipyard: Shipyard) -> None:
    added = shipyard.json(
        "pipelines",
        "schedule",
        "add",
        "tick",
        "tests.pipelines._example:fan",
        "--every",
        "0.1",
        "-p",
        "offset=2",
    )
    assert added["kind"] == "interval"
    assert added["params"] == {"offset": 2}
    import time

    time.sleep(0.2)
    out = shipyard("scheduler", "--once").output
    assert "Started 1 pipeline run" in out
    listing = shipyard.json("pipelines", "schedule", "list")
    assert listing["firings"][0]["status"] == "SUCCEEDED"
    assert listing["firings"][0]["cause"]["kind"] == "interval"
    runs = shipyard.json("pipelines", "list")["runs"]
    assert runs[0]["trigger"]["schedule"] == "tick"
    shipyard("pipelines", "schedule", "delete", "tick")
    assert shipyard.json("pipelines", "schedule", "list")["schedules"] == []


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
        (
            "from shipyard.pipelines import pipeline\n"
            "@pipeline\n"
            "def p():\n"
            "    raise ValueError('body bug')\n",
            "its body raised ValueError: body bug",
        ),
    ],
)
def test_a_pipeline_file_whose_own_code_fails_is_one_error_line_not_an_internal_error(
    shipyard: Shipyard, tmp_path: Path, source: str, shown: str
) -> None:
    path = tmp_path / "user_pipeline.py"
    path.write_text(source)
    line = shipyard.fails("pipelines", "run", f"{path}:p")
    assert line.startswith("Error: ")
    assert shown in line
