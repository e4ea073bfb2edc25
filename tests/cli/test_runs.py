"""``shipyard runs``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipyard.workspace import Workspace
from tests.cli.conftest import Seeded, Shipyard


def test_list_every_experiment(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "list").stdout
    for run_id in (seeded.run_a, seeded.run_b, seeded.run_c):
        assert run_id in out
    assert "rf-small" in out
    assert "churn" in out
    assert "vision" in out
    assert "FINISHED" in out
    assert "RUNNING" in out
    assert "2m 05s" in out  # run A's duration
    data = shipyard.json("runs", "list")
    assert {r["info"]["run_id"] for r in data["runs"]} == {
        seeded.run_a,
        seeded.run_b,
        seeded.run_c,
    }
    assert data["next_page_token"] is None


def test_list_long_values_are_truncated_in_tables_only(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "list", "-e", "churn").stdout
    assert "x" * 300 not in out
    assert "…" in out
    data = shipyard.json("runs", "list", "-e", "churn")
    run_a = next(r for r in data["runs"] if r["info"]["run_id"] == seeded.run_a)
    assert run_a["data"]["params"]["notes"] == "x" * 300


def test_list_by_experiment_filter_and_order(shipyard: Shipyard, seeded: Seeded) -> None:
    by_name = shipyard.json("runs", "list", "--experiment", "churn")["runs"]
    by_id = shipyard.json("runs", "list", "--experiment", seeded.experiment_id)["runs"]
    assert {r["info"]["run_id"] for r in by_name} == {seeded.run_a, seeded.run_b}
    assert by_name == by_id
    best = shipyard.json("runs", "list", "-e", "churn", "--filter", "metrics.acc > 0.94")["runs"]
    assert [r["info"]["run_id"] for r in best] == [seeded.run_b]
    ordered = shipyard.json("runs", "list", "-e", "churn", "--order-by", "metrics.acc ASC")
    assert [r["info"]["run_id"] for r in ordered["runs"]] == [seeded.run_a, seeded.run_b]


def test_list_pages(shipyard: Shipyard, seeded: Seeded) -> None:
    first = shipyard.json("runs", "list", "--max-results", "2")
    assert len(first["runs"]) == 2
    assert first["next_page_token"]
    rest = shipyard.json(
        "runs", "list", "--max-results", "2", "--page-token", first["next_page_token"]
    )
    assert len(rest["runs"]) == 1
    everything = shipyard.json("runs", "list", "--max-results", "1", "--all-pages")
    assert len(everything["runs"]) == 3
    assert everything["next_page_token"] is None
    result = shipyard("runs", "list", "--max-results", "2")
    assert "more exist" in result.stderr
    assert "--all-pages" in result.stderr


def test_list_unknown_experiment_and_bad_filter(shipyard: Shipyard, seeded: Seeded) -> None:
    assert shipyard.fails("runs", "list", "-e", "nope").startswith("Error: No experiment")
    assert shipyard.fails("runs", "list", "--filter", "metrics.acc >> 1").startswith("Error: ")


def test_list_nothing(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "list", "--filter", "params.model = 'svm'").stdout
    assert out.strip() == "No runs found."


def test_show(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "show", seeded.run_a).stdout
    for expected in (
        seeded.run_a,
        "rf-small",
        "churn",
        "FINISHED",
        "ana",
        "2m 05s",
        "depth",
        "acc",
        "0.93",
        "owner",
        "train",
        "d1g35t",
        "training",
        "notes.txt",
        "model/",
    ):
        assert expected in out, expected


def test_show_json(shipyard: Shipyard, seeded: Seeded) -> None:
    data = shipyard.json("runs", "show", seeded.run_a)
    run = data["run"]
    assert run["info"]["run_id"] == seeded.run_a
    assert run["data"]["params"]["depth"] == "4"
    assert run["data"]["metrics"]["acc"]["value"] == pytest.approx(0.93)
    assert run["inputs"][0]["dataset"]["digest"] == "d1g35t"
    assert data["experiment"] == {"experiment_id": seeded.experiment_id, "name": "churn"}
    paths = {a["path"]: a for a in data["artifacts"]}
    assert paths["notes.txt"]["file_size"] == 5
    assert paths["model"]["is_dir"] is True


def test_show_empty_run(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "show", seeded.run_c).stdout
    assert "No params." in out
    assert "No metrics." in out
    assert "No artifacts." in out


def test_malformed_run_id_is_one_line(shipyard: Shipyard) -> None:
    assert shipyard.fails("runs", "show", "bad id!").startswith("Error: ")


def test_unknown_run_is_one_line(shipyard: Shipyard, seeded: Seeded) -> None:
    for args in (
        ("show", "0" * 32),
        ("delete", "0" * 32),
        ("restore", "0" * 32),
        ("compare", seeded.run_a, "0" * 32),
    ):
        line = shipyard.fails("runs", *args)
        assert line.startswith("Error: ")
        assert "shipyard runs list" in line, line


def test_compare(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "compare", seeded.run_a, seeded.run_b).stdout
    assert "params.depth" in out
    assert "metrics.acc" in out
    assert "metrics.loss" in out
    assert "rf-small" in out
    assert "rf-deep" in out
    data = shipyard.json("runs", "compare", seeded.run_a, seeded.run_b)
    assert data["run_ids"] == [seeded.run_a, seeded.run_b]
    params = {p["key"]: p for p in data["params"]}
    assert params["model"] == {"key": "model", "values": ["rf", "rf"], "differs": False}
    assert params["depth"] == {"key": "depth", "values": ["4", "8"], "differs": True}
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["loss"]["values"] == [None, 0.2]
    assert metrics["loss"]["differs"] is True


def test_compare_only_diff(shipyard: Shipyard, seeded: Seeded) -> None:
    data = shipyard.json("runs", "compare", seeded.run_a, seeded.run_b, "--only-diff")
    assert "model" not in {p["key"] for p in data["params"]}
    out = shipyard("runs", "compare", seeded.run_a, seeded.run_a, "--only-diff").stdout
    assert "same params and metrics" in out


def test_compare_needs_two_runs(shipyard: Shipyard, seeded: Seeded) -> None:
    result = shipyard("runs", "compare", seeded.run_a, expect=2)
    assert "at least two" in result.stderr


def test_delete_and_restore(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("runs", "delete", seeded.run_b).stdout
    assert f"shipyard runs restore {seeded.run_b}" in out
    active = {r["info"]["run_id"] for r in shipyard.json("runs", "list")["runs"]}
    assert seeded.run_b not in active
    deleted = shipyard.json("runs", "list", "--view", "deleted")["runs"]
    assert [r["info"]["run_id"] for r in deleted] == [seeded.run_b]
    assert "(deleted)" in shipyard("runs", "show", seeded.run_b).stdout
    info = shipyard.json("runs", "restore", seeded.run_b)
    assert info["lifecycle_stage"] == "active"
    assert "not deleted; nothing to restore" in shipyard("runs", "restore", seeded.run_b).stdout
    shipyard("runs", "delete", seeded.run_b)
    assert "Restored run" in shipyard("runs", "restore", seeded.run_b).stdout


def test_permanent_delete(
    shipyard: Shipyard, seeded: Seeded, open_workspace: Callable[[], Workspace]
) -> None:
    shipyard("runs", "delete", seeded.run_a, "--permanent", input="n\n", expect=1)
    assert open_workspace().store.get_run(seeded.run_a)
    data = shipyard.json("runs", "delete", seeded.run_a, "--permanent", "--yes")
    assert data["run_id"] == seeded.run_a
    assert data["permanent"] is True
    assert data["bytes_freed"] >= 2048 + 5
    line = shipyard.fails("runs", "show", seeded.run_a)
    assert "No run" in line
    out = shipyard("runs", "delete", seeded.run_b, "--permanent", input="y\n").stdout
    assert "Permanently deleted run" in out
