"""``shipyard models``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.workspace import Workspace
from tests.cli.conftest import Seeded, Shipyard


@pytest.fixture
def churn(shipyard: Shipyard, seeded: Seeded) -> Seeded:
    """Model ``churn`` with versions 1 (run A) and 2 (run A again, tagged)."""
    shipyard("models", "register", f"runs:/{seeded.run_a}/model", "churn")
    shipyard(
        "models",
        "register",
        f"runs:/{seeded.run_a}/model",
        "churn",
        "--description",
        "retrained",
        "--tag",
        "validated=true",
    )
    return seeded


def test_register_list_show_and_versions(shipyard: Shipyard, churn: Seeded) -> None:
    data = shipyard.json("models", "register", f"runs:/{churn.run_a}/model", "other")
    assert (data["name"], data["version"], data["run_id"]) == ("other", 1, churn.run_a)
    out = shipyard("models", "register", f"runs:/{churn.run_a}/model", "other").stdout
    assert "Registered 'other' version 2" in out
    assert "models:/other/2" in out

    listed = shipyard.json("models", "list")
    assert [m["name"] for m in listed["models"]] == ["churn", "other"]
    assert listed["next_page_token"] is None
    table = shipyard("models", "list").stdout
    assert "churn" in table
    assert "other" in table
    only = shipyard.json("models", "list", "--filter", "name LIKE 'ch%'")["models"]
    assert [m["name"] for m in only] == ["churn"]
    desc = shipyard.json("models", "list", "--order-by", "name DESC")["models"]
    assert [m["name"] for m in desc] == ["other", "churn"]
    first = shipyard.json("models", "list", "--max-results", "1")
    assert len(first["models"]) == 1
    assert first["next_page_token"]
    assert "more exist" in shipyard("models", "list", "--max-results", "1").stderr

    shown = shipyard.json("models", "show", "churn")
    assert shown["model"]["name"] == "churn"
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    text = shipyard("models", "show", "churn").stdout
    assert "retrained" in text
    assert "Versions" in text

    v2 = shipyard.json("models", "show", "churn/2")
    assert v2["version"]["tags"] == {"validated": "true"}
    assert v2["version"]["description"] == "retrained"
    assert v2["approvals"] == []
    assert v2["references"] == []
    assert shipyard.json("models", "show", "models:/churn/latest")["version"]["version"] == 2
    assert "validated" in shipyard("models", "show", "churn/2").stdout

    versions = shipyard.json("models", "versions", "churn")
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    newer = shipyard.json("models", "versions", "churn", "--filter", "version_number > 1")
    assert [v["version"] for v in newer["versions"]] == [2]
    tagged = shipyard.json("models", "versions", "churn", "--filter", "tags.validated = 'true'")
    assert [v["version"] for v in tagged["versions"]] == [2]
    asc = shipyard.json("models", "versions", "churn", "--order-by", "version_number ASC")
    assert [v["version"] for v in asc["versions"]] == [1, 2]
    paged = shipyard.json("models", "versions", "churn", "--max-results", "1", "--all-pages")
    assert [v["version"] for v in paged["versions"]] == [2, 1]
    empty = shipyard("models", "versions", "churn", "--filter", "version_number > 5").stdout
    assert "no versions matching" in empty


def test_unknown_models_versions_and_bad_references(shipyard: Shipyard, churn: Seeded) -> None:
    assert "'ghost' does not exist" in shipyard.fails("models", "show", "ghost")
    assert "'ghost' does not exist" in shipyard.fails("models", "versions", "ghost")
    assert "'ghost' does not exist" in shipyard.fails("models", "history", "ghost")
    line = shipyard.fails("models", "show", "churn/9")
    assert "no version 9" in line
    assert "shipyard models versions churn" in line
    assert "no version 9" in shipyard.fails("models", "approve", "churn", "9")
    assert "no version 9" in shipyard.fails("models", "alias", "set", "churn", "champion", "9")
    assert "no alias 'champion'" in shipyard.fails("models", "show", "churn@champion")
    assert "neither a version number" in shipyard.fails("models", "show", "churn/abc")
    assert shipyard.fails("models", "versions", "churn", "--filter", "nope >> 1").startswith(
        "Error: "
    )
    result = shipyard("models", "approve", "churn", "two", expect=2)
    assert "is not a valid integer" in result.stderr
    assert "not valid" in shipyard.fails("models", "alias", "set", "churn", "bad alias!", "1")


def test_register_refuses_what_is_not_a_source(
    shipyard: Shipyard, seeded: Seeded, tmp_path: Path
) -> None:
    result = shipyard("models", "register", "s3://bucket/model", "churn", expect=2)
    assert "not a source Shipyard registers from" in result.stderr
    result = shipyard("models", "register", str(tmp_path / "missing"), "churn", expect=2)
    assert "neither a runs:/ URI nor an existing folder" in result.stderr
    (tmp_path / "empty").mkdir()
    result = shipyard("models", "register", str(tmp_path / "empty"), "churn", expect=2)
    assert "neither a Shipyard model package" in result.stderr
    src = f"runs:/{seeded.run_a}/model"
    result = shipyard("models", "register", src, "churn", "--experiment", "churn", expect=2)
    assert "--experiment applies to local folders" in result.stderr
    assert "Log the model first" in shipyard.fails(
        "models", "register", f"runs:/{seeded.run_a}/nothing-here", "churn"
    )
    assert "does not match the run of source" in shipyard.fails(
        "models", "register", src, "churn", "--run-id", seeded.run_b
    )
    assert "contains '/' or '@'" in shipyard.fails("models", "register", src, "a@b")
    assert shipyard.json("models", "list")["models"] == []


def test_aliases_need_the_approvals_the_policy_requires(shipyard: Shipyard, churn: Seeded) -> None:
    out = shipyard("models", "require-approvals", "churn", "2", "--alias", "champion").stdout
    assert "requires 2 approvals before alias 'champion'" in out
    policy = shipyard.json("models", "require-approvals", "churn", "1", "--reason", "default gate")
    assert policy["approval_policy"] == {"champion": 2, "*": 1}

    line = shipyard.fails("models", "alias", "set", "churn", "champion", "1")
    assert "requires 2 distinct approval(s)" in line
    assert "shipyard models approve churn 1" in line
    line = shipyard.fails(
        "models", "approve", "churn", "1", "--approver", "alice", "--alias", "champion"
    )
    assert line.startswith("Error: Recorded alice's approval of 'churn' version 1, but alias")
    # The refused alias move kept the approval.
    assert [a["approver"] for a in shipyard.json("models", "show", "churn/1")["approvals"]] == [
        "alice"
    ]
    data = shipyard.json(
        "models",
        "approve",
        "churn",
        "1",
        "--approver",
        "bob",
        "--comment",
        "looks good",
        "--alias",
        "champion",
        "--reason",
        "first champion",
    )
    assert data["approval"]["approver"] == "bob"
    assert data["approval"]["comment"] == "looks good"
    assert (data["approvals"], data["alias"], data["alias_set"]) == (2, "champion", True)
    assert shipyard.json("models", "show", "churn@champion")["version"]["version"] == 1
    shown = shipyard("models", "show", "churn").stdout
    assert "champion=1" in shown
    assert "champion: 2" in shown
    assert "every other alias: 1" in shown

    # The "*" rule (1 approval) governs other aliases.
    assert "requires 1" in shipyard.fails("models", "alias", "set", "churn", "challenger", "2")
    out = shipyard("models", "approve", "churn", "2", "--approver", "carol").stdout
    assert "Recorded carol's approval of 'churn' version 2 (1 approval in all)." in out
    assert (
        "now points at version 2"
        in shipyard(
            "models", "alias", "set", "churn", "challenger", "2", "--reason", "try it"
        ).stdout
    )
    assert (
        "no longer requires approvals"
        in shipyard("models", "require-approvals", "churn", "0", "--alias", "champion").stdout
    )

    events = shipyard.json("models", "history", "churn")["events"]
    moves = [(e["alias"], e["to_value"], e["reason"]) for e in events if e["action"] == "alias_set"]
    assert moves == [("champion", "1", "first champion"), ("challenger", "2", "try it")]
    approvals = [(e["version"], e["user_id"]) for e in events if e["action"] == "approved"]
    assert approvals == [(1, "alice"), (1, "bob"), (2, "carol")]
    only = shipyard.json("models", "history", "churn", "--alias", "challenger")["events"]
    assert [e["action"] for e in only] == ["alias_set"]
    table = shipyard("models", "history", "churn").stdout
    assert "alias_set" in table
    assert "first champion" in table
    assert "- -> 1" in table

    removed = shipyard.json("models", "alias", "delete", "churn", "challenger")
    assert removed == {"name": "churn", "alias": "challenger", "deleted": True}
    assert "no alias 'challenger'" in shipyard.fails(
        "models", "alias", "delete", "churn", "challenger"
    )


def _event_times(shipyard: Shipyard, alias: str) -> list[tuple[int, str | None]]:
    events = shipyard.json("models", "history", "churn", "--alias", alias)["events"]
    return [(e["timestamp"], e["to_value"]) for e in events]


def test_history_at_answers_which_version_held_an_alias(shipyard: Shipyard, churn: Seeded) -> None:
    shipyard("models", "alias", "set", "churn", "champion", "1")
    shipyard("models", "alias", "set", "churn", "champion", "2")
    (t1, v1), (t2, v2) = _event_times(shipyard, "champion")
    assert (v1, v2) == ("1", "2")

    def at(when: str) -> object:
        return shipyard.json("models", "history", "churn", "--alias", "champion", "--at", when)[
            "version"
        ]

    assert at(str(t1 - 1)) is None
    assert at(str(t2)) == 2
    if t1 != t2:
        assert at(str(t1)) == 1
    iso_utc = datetime.fromtimestamp((t2 + 1000) / 1000, UTC).isoformat()
    assert at(iso_utc) == 2
    assert at(iso_utc.replace("+00:00", "Z")) == 2
    local = datetime.fromtimestamp((t2 + 1000) / 1000).isoformat()  # naive: local time
    assert at(local) == 2
    out = shipyard("models", "history", "churn", "--alias", "champion", "--at", str(t1 - 1))
    assert "pointed at no version" in out.stdout
    out = shipyard("models", "history", "churn", "--alias", "champion", "--at", str(t2))
    assert "pointed at version 2" in out.stdout

    bad = shipyard(
        "models", "history", "churn", "--alias", "champion", "--at", "yesterday", expect=2
    )
    assert "'yesterday' is not a time" in bad.stderr
    assert "Traceback" not in bad.output
    needs = shipyard("models", "history", "churn", "--at", str(t2), expect=2)
    assert "--at needs --alias" in needs.stderr


def test_delete_is_refused_while_referenced_then_frees_bytes(
    shipyard: Shipyard, churn: Seeded, open_workspace: Callable[[], Workspace]
) -> None:
    shipyard("models", "alias", "set", "churn", "champion", "1")
    line = shipyard.fails("models", "delete", "churn", "1", "--yes")
    assert "alias 'champion' points at it" in line
    line = shipyard.fails("models", "delete", "churn", "--yes")
    assert "aliases still point" in line
    assert "shipyard models alias delete churn" in line
    assert "no version 7" in shipyard.fails("models", "delete", "churn", "7", "--yes")
    assert "'ghost' does not exist" in shipyard.fails("models", "delete", "ghost", "--yes")

    shipyard("models", "delete", "churn", "2", input="n\n", expect=1)
    assert shipyard.json("models", "show", "churn/2")["version"]["version"] == 2
    data = shipyard.json("models", "delete", "churn", "2", "--yes", "--reason", "superseded")
    assert data == {"name": "churn", "version": 2, "deleted": True, "bytes_freed": 0}
    assert "no version 2" in shipyard.fails("models", "show", "churn/2")

    shipyard("models", "alias", "delete", "churn", "champion")
    # The run is purged; the version's own copy of the files is all that holds the bytes.
    ws = open_workspace()
    from shipyard.tracking.gc import delete_run_permanently

    delete_run_permanently(ws.store, ws.artifacts, churn.run_a)  # type: ignore[arg-type]
    out = shipyard("models", "delete", "churn", input="y\n").stdout
    assert "Deleted model 'churn' and freed 2.0 KiB of artifacts." in out
    assert "'churn' does not exist" in shipyard.fails("models", "show", "churn")
    events = shipyard.json("models", "history", "churn")["events"]
    assert [e["action"] for e in events][-3:] == [
        "version_deleted", "alias_deleted", "model_deleted"
    ]  # fmt: skip
    assert (events[-3]["version"], events[-3]["reason"]) == (2, "superseded")


def _package(tmp_path: Path) -> Path:
    """A real Shipyard package: a decision tree on a small table, with an input example."""
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    from shipyard.models import save_model

    X = pd.DataFrame({"age": [25.0, 40.0, 33.0, 51.0], "plan": [1.0, 0.0, 1.0, 0.0]})
    model = DecisionTreeClassifier(random_state=0).fit(X, [0, 1, 0, 1])
    save_model(model, tmp_path / "pkg", input_example=X[:2])
    return tmp_path / "pkg"


def test_register_a_local_package_then_render_its_card(
    shipyard: Shipyard,
    seeded: Seeded,
    tmp_path: Path,
    open_workspace: Callable[[], Workspace],
) -> None:
    folder = _package(tmp_path)
    version = shipyard.json("models", "register", str(folder), "tree", "-e", "churn")
    assert version["version"] == 1
    run = open_workspace().store.get_run(version["run_id"])
    assert run.info.experiment_id == seeded.experiment_id
    assert run.info.status == "FINISHED"
    assert run.data.tags["shipyard.model.registered_from"] == str(folder.absolute())
    again = shipyard.json(
        "models", "register", str(folder / "shipyard-model.json"), "tree", "--run-id", seeded.run_c
    )
    assert (again["version"], again["run_id"]) == (2, seeded.run_c)
    line = shipyard.fails("models", "register", str(folder), "tree", "--run-id", seeded.run_c)
    assert "already has artifacts at 'model'" in line

    card = shipyard("models", "card", "tree/1").stdout
    assert card.startswith("# Model card: tree version 1\n")
    assert "| age | double | yes |" in card
    assert "| Flavor | sklearn |" in card
    assert "runs code" in card
    assert shipyard("models", "card", "tree").stdout.startswith("# Model card: tree version 2")
    out = shipyard("models", "card", "tree/1", "--format", "html", "-o", str(tmp_path / "c.html"))
    assert "Wrote the html card of 'tree' version 1" in out.stdout
    page = (tmp_path / "c.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<td>age</td>" in page
    data = shipyard.json("models", "card", "models:/tree/1")
    assert data["version"]["version"] == 1
    assert data["signature"]["inputs"]["columns"][0] == {
        "name": "age",
        "type": "double",
        "optional": False,
    }
    assert data["package"]["flavor"] == "sklearn"
    assert "no version 5" in shipyard.fails("models", "card", "tree/5")

    # The registered version loads and predicts like the package it came from.
    from shipyard.models import load_model

    loaded = load_model("models:/tree/1", workspace=open_workspace())
    assert list(loaded.predict({"age": [30.0], "plan": [1.0]})) == [0]


def test_damaged_package_is_refused_before_anything_is_stored(
    shipyard: Shipyard, seeded: Seeded, tmp_path: Path
) -> None:
    folder = _package(tmp_path)
    (folder / "model.pkl").write_bytes(b"tampered")
    line = shipyard.fails("models", "register", str(folder), "tree")
    assert "'model.pkl' differs from the manifest" in line
    manifest = json.loads((folder / "shipyard-model.json").read_text())
    (folder / "shipyard-model.json").write_text(json.dumps({**manifest, "flavors": 3}))
    assert "not a valid Shipyard model manifest" in shipyard.fails(
        "models", "register", str(folder), "tree"
    )
    assert shipyard.json("models", "list")["models"] == []
    runs = shipyard.json("runs", "list")["runs"]
    assert {r["info"]["run_id"] for r in runs} == {seeded.run_a, seeded.run_b, seeded.run_c}


def test_a_card_written_into_a_missing_folder_is_one_error_line(
    shipyard: Shipyard, tmp_path: Path
) -> None:
    shipyard("models", "register", str(_package(tmp_path)), "tree")
    target = tmp_path / "no-such-folder" / "card.md"
    line = shipyard.fails("models", "card", "tree/1", "-o", str(target))
    assert line.startswith(f"Error: can't write {target}")
