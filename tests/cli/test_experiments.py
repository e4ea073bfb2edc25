"""``shipyard experiments``."""

from __future__ import annotations

from collections.abc import Callable

from shipyard.workspace import Workspace
from tests.cli.conftest import Seeded, Shipyard


def test_list_table_and_json(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("experiments", "list").stdout
    assert "churn" in out
    assert "vision" in out
    assert "Default" in out
    assert "team=search" in out
    data = shipyard.json("experiments", "list")
    names = [e["name"] for e in data["experiments"]]
    assert {"churn", "vision", "Default"} <= set(names)
    churn = next(e for e in data["experiments"] if e["name"] == "churn")
    assert churn["experiment_id"] == seeded.experiment_id
    assert churn["tags"] == {"team": "search"}


def test_list_filter_order_and_limit(shipyard: Shipyard, seeded: Seeded) -> None:
    data = shipyard.json("experiments", "list", "--filter", "name LIKE 'ch%'")
    assert [e["name"] for e in data["experiments"]] == ["churn"]
    data = shipyard.json("experiments", "list", "--order-by", "name ASC", "--max-results", "2")
    assert [e["name"] for e in data["experiments"]] == ["Default", "churn"]


def test_list_empty_filter_says_so(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("experiments", "list", "--filter", "name = 'nothing'").stdout
    assert out.strip() == "No experiments found."


def test_bad_filter_is_one_error_line(shipyard: Shipyard) -> None:
    line = shipyard.fails("experiments", "list", "--filter", "name ~~ 'x'")
    assert line.startswith("Error: ")


def test_create(shipyard: Shipyard) -> None:
    out = shipyard("experiments", "create", "fraud", "--tag", "team=risk").stdout
    assert "Created experiment 'fraud' with id" in out
    created = shipyard.json("experiments", "create", "fraud-2")
    assert created["name"] == "fraud-2"
    assert created["lifecycle_stage"] == "active"
    listed = shipyard.json("experiments", "list", "--filter", "name = 'fraud'")["experiments"]
    assert listed[0]["tags"] == {"team": "risk"}


def test_create_duplicate_and_bad_tag(shipyard: Shipyard, seeded: Seeded) -> None:
    line = shipyard.fails("experiments", "create", "churn")
    assert line.startswith("Error: ")
    assert "churn" in line
    result = shipyard("experiments", "create", "x", "--tag", "novalue", expect=2)
    assert "KEY=VALUE" in result.stderr


def test_rename_by_name_and_id(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("experiments", "rename", "churn", "churn-v2").stdout
    assert "to 'churn-v2'" in out
    renamed = shipyard.json("experiments", "rename", seeded.experiment_id, "churn-v3")
    assert renamed["name"] == "churn-v3"
    assert renamed["experiment_id"] == seeded.experiment_id


def test_unknown_experiment(shipyard: Shipyard) -> None:
    for args in (
        ("rename", "nope", "x"),
        ("delete", "nope"),
        ("restore", "424242"),
    ):
        line = shipyard.fails("experiments", *args)
        assert line.startswith("Error: No experiment is named")
        assert "shipyard experiments list" in line


def test_ambiguous_reference_is_refused(shipyard: Shipyard, seeded: Seeded) -> None:
    # An experiment named like another experiment's id.
    shipyard("experiments", "create", seeded.other_experiment_id)
    line = shipyard.fails("experiments", "rename", seeded.other_experiment_id, "x")
    assert "name:" in line
    assert "id:" in line
    renamed = shipyard.json("experiments", "rename", f"id:{seeded.other_experiment_id}", "vis")
    assert renamed["experiment_id"] == seeded.other_experiment_id
    line = shipyard.fails("experiments", "rename", "name:nope", "x")
    assert line.startswith("Error: No experiment has the name 'nope'")


def test_soft_delete_and_restore(shipyard: Shipyard, seeded: Seeded) -> None:
    out = shipyard("experiments", "delete", "churn").stdout
    assert "shipyard experiments restore" in out
    active = shipyard.json("experiments", "list")["experiments"]
    assert "churn" not in [e["name"] for e in active]
    deleted = shipyard.json("experiments", "list", "--view", "deleted")["experiments"]
    assert [e["name"] for e in deleted] == ["churn"]
    assert "deleted" in shipyard("experiments", "list", "--view", "all").stdout
    restored = shipyard.json("experiments", "restore", "churn")
    assert restored["lifecycle_stage"] == "active"
    assert "is not deleted; nothing to do" in shipyard("experiments", "restore", "churn").stdout


def test_permanent_delete_asks_first(
    shipyard: Shipyard, seeded: Seeded, open_workspace: Callable[[], Workspace]
) -> None:
    result = shipyard("experiments", "delete", "churn", "--permanent", input="n\n", expect=1)
    assert "cannot be undone" in result.stderr
    assert "Aborted" in result.stderr
    assert open_workspace().store.get_experiment_by_name("churn") is not None

    result = shipyard("experiments", "delete", "churn", "--permanent", input="y\n")
    assert "the name 'churn' is free again" in result.stdout
    assert open_workspace().store.get_experiment_by_name("churn") is None
    # The name is free: it can be created again.
    shipyard("experiments", "create", "churn")


def test_permanent_delete_json_with_yes(shipyard: Shipyard, seeded: Seeded) -> None:
    data = shipyard.json("experiments", "delete", "vision", "--permanent", "--yes")
    assert data["permanent"] is True
    assert data["experiment_id"] == seeded.other_experiment_id
    assert isinstance(data["bytes_freed"], int)
    line = shipyard.fails("experiments", "restore", "vision")
    assert "No experiment" in line
