"""``shipyard data``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Shipyard


@pytest.fixture
def wine_files(tmp_path: Path) -> dict[str, Path]:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    frame: Any = bunch.frame.copy()
    frame["target"] = [str(bunch.target_names[t]) for t in frame["target"]]
    good = tmp_path / "wine.parquet"
    frame.to_parquet(good, index=False)
    changed = frame.copy()
    changed.loc[0, "alcohol"] = 13.0
    bad = frame.drop(columns=["ash"])
    bad.loc[0, "alcohol"] = 99.0
    paths = {"good": good, "changed": tmp_path / "changed.parquet", "bad": tmp_path / "bad.csv"}
    changed.to_parquet(paths["changed"], index=False)
    bad.to_csv(paths["bad"], index=False)
    return paths


def test_add_is_content_addressed_and_lists(
    shipyard: Shipyard, wine_files: dict[str, Path]
) -> None:
    first = shipyard.json("data", "add", "wine", str(wine_files["good"]), "--tag", "split=train")
    assert (first["name"], first["version"], first["created"]) == ("wine", 1, True)
    again = shipyard.json("data", "add", "wine", str(wine_files["good"]))
    assert (again["version"], again["created"]) == (1, False)
    assert "Unchanged" in shipyard("data", "add", "wine", str(wine_files["good"])).stdout
    assert shipyard.json("data", "add", "wine", str(wine_files["changed"]))["version"] == 2
    assert [d["name"] for d in shipyard.json("data", "list")["datasets"]] == ["wine"]
    versions = shipyard.json("data", "versions", "wine")["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["tags"] == {"split": "train"}
    shown = shipyard.json("data", "show", "wine", "--version", "1")
    assert shown["num_rows"] == 178
    assert "alcohol" in shown["inferred_schema"]["columns"]
    assert "alcohol" in shipyard("data", "show", "wine").stdout
    diff = shipyard.json("data", "diff", "wine", "1", "2")
    assert [c["column"] for c in diff["profile"]["columns"] if c["status"] != "unchanged"] == [
        "alcohol"
    ]
    assert "alcohol" in shipyard("data", "diff", "wine", "1", "2").stdout
    assert shipyard("data", "list").stdout.count("wine") == 1
    assert "178" in shipyard("data", "versions", "wine").stdout


def test_validate_gate_and_reports(
    shipyard: Shipyard, wine_files: dict[str, Path], tmp_path: Path
) -> None:
    shipyard("data", "add", "wine", str(wine_files["good"]))
    ok = shipyard.json("data", "validate", "wine", str(wine_files["good"]))
    assert ok["anomalies"] == []
    assert ok["ok"]
    html = tmp_path / "report.html"
    result = shipyard(
        "data", "validate", "wine", str(wine_files["bad"]), "--json", "--html", str(html), expect=1
    )
    import json

    anomalies = json.loads(result.stdout)["anomalies"]
    assert {(a["column"], a["kind"], a["severity"]) for a in anomalies} == {
        ("ash", "missing_column", "error"),
        ("alcohol", "out_of_range", "error"),
    }
    assert all(
        {"column", "kind", "severity", "count", "fraction", "examples"} <= set(a) for a in anomalies
    )
    assert "out_of_range" in html.read_text(encoding="utf-8")
    assert (
        "missing_column"
        in shipyard("data", "validate", "wine", str(wine_files["bad"]), expect=1).stdout
    )


def test_schema_profile_and_get(
    shipyard: Shipyard, wine_files: dict[str, Path], tmp_path: Path
) -> None:
    shipyard("data", "add", "wine", str(wine_files["good"]))
    text = shipyard("data", "schema", "wine").stdout
    assert "alcohol:" in text
    edited = tmp_path / "schema.yaml"
    edited.write_text(text.replace("rows: {min: 1}", "rows: {min: 1000}"), encoding="utf-8")
    shipyard("data", "schema", "wine", "--set", str(edited))
    assert shipyard.json("data", "schema", "wine")["rows"] == {"min": 1000}
    report = shipyard("data", "validate", "wine", str(wine_files["good"]), "--json", expect=1)
    assert '"row_count"' in report.stdout
    shipyard("data", "schema", "wine", "--unset")
    shipyard("data", "validate", "wine", str(wine_files["good"]))
    profile = shipyard.json("data", "profile", "wine")
    assert profile["num_rows"] == 178
    assert profile["columns"][0]["name"] == "alcohol"
    assert "alcohol" in shipyard("data", "profile", "wine").stdout
    skew = shipyard.json("data", "profile", "wine", "--file", str(wine_files["bad"]))
    assert "ash" in [c["column"] for c in skew["columns"] if c["status"] == "removed"]
    page = tmp_path / "skew.html"
    assert (
        "alcohol"
        in shipyard(
            "data", "profile", "wine", "--file", str(wine_files["bad"]), "--html", str(page)
        ).stdout
    )
    assert page.exists()
    got = shipyard.json("data", "get", "wine", str(tmp_path / "out"))
    assert got["uri"] == "datasets:/wine/1"
    assert (tmp_path / "out" / "wine.parquet").exists()
    assert "Downloaded" in shipyard("data", "get", "wine", str(tmp_path / "out2")).stdout


def test_errors_are_one_line(shipyard: Shipyard, tmp_path: Path) -> None:
    assert "does not exist" in shipyard.fails("data", "versions", "nope")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "is empty" in shipyard.fails("data", "add", "x", str(empty))
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    assert "different number of fields" in shipyard.fails("data", "add", "x", str(ragged))


@pytest.fixture
def small(shipyard: Shipyard, tmp_path: Path) -> Path:
    """A two-row CSV, registered as dataset ``small``."""
    table = tmp_path / "small.csv"
    table.write_text("a,b\n1,x\n2,y\n")
    shipyard("data", "add", "small", str(table))
    return table


def test_an_unwritable_report_or_unreadable_schema_is_one_error_line(
    shipyard: Shipyard, small: Path, tmp_path: Path
) -> None:
    table = small
    missing = tmp_path / "no-such-folder" / "report.html"
    line = shipyard.fails("data", "validate", "small", str(table), "--html", str(missing))
    assert line.startswith("Error: can't write ")
    line = shipyard.fails("data", "profile", "small", "--file", str(table), "--html", str(missing))
    assert line.startswith("Error: can't write ")
    schema = tmp_path / "schema.yaml"
    schema.write_bytes(b"\xff\xfe not utf-8")
    line = shipyard.fails("data", "validate", "small", str(table), "--schema", str(schema))
    assert line.startswith(f"Error: can't read {schema}")


def test_a_version_number_past_the_database_range_is_one_error_line(
    shipyard: Shipyard, small: Path
) -> None:
    huge = str(2**64)
    line = shipyard.fails("data", "show", "small", "--version", huge)
    assert line.startswith(f"Error: dataset version {huge} is not a version number")
    line = shipyard.fails("data", "diff", "small", "1", huge)
    assert line.startswith(f"Error: dataset version {huge} is not a version number")
