"""Validation of a corrupted copy of a real dataset, schemas as YAML, and bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard import errors
from shipyard.data import Datasets
from shipyard.data.schema import load_schema


def test_corrupted_copy_reports_exactly_the_corruptions(datasets: Datasets, wine: Any) -> None:
    datasets.register("wine", wine)
    assert datasets.validate("wine", wine).anomalies == []
    bad = wine.drop(columns=["ash"])
    bad["magnesium"] = bad["magnesium"].astype(str)  # a type change
    bad.loc[[0, 1, 2], "alcohol"] = 99.0  # out of range
    bad.loc[5, "target"] = "class_9"  # an unseen category
    bad.loc[[7, 8], "proline"] = np.nan  # nulls in a column that had none
    report = datasets.validate("wine", bad)
    found = {(a.column, a.kind): a for a in report.anomalies}
    assert set(found) == {
        ("ash", "missing_column"),
        ("magnesium", "type_mismatch"),
        ("alcohol", "out_of_range"),
        ("target", "unseen_category"),
        ("proline", "null_values"),
    }
    assert all(a.severity == "error" for a in report.anomalies)
    assert not report.ok
    assert found[("alcohol", "out_of_range")].count == 3
    assert [e["row"] for e in found[("alcohol", "out_of_range")].examples] == [0, 1, 2]
    assert found[("target", "unseen_category")].examples == [{"row": 5, "value": "class_9"}]
    assert found[("proline", "null_values")].fraction == pytest.approx(2 / 178)
    with pytest.raises(errors.DataValidationFailed) as info:
        report.check()
    assert len(info.value.details["anomalies"]) == 5


def test_user_schema_with_environments_and_keys(datasets: Datasets, wine: Any) -> None:
    datasets.register("wine", wine)
    text = datasets.schema("wine").to_yaml()
    schema = load_schema(text)
    schema.environments = ["training", "serving"]
    schema.columns["target"].environments = ["training"]
    schema.columns["proline"].unique = True
    schema.max_rows = 100
    datasets.set_schema("wine", schema)
    serving = wine.drop(columns=["target"])
    report = datasets.validate("wine", serving, environment="serving")
    kinds = sorted(((a.column or ""), a.kind) for a in report.anomalies)
    assert kinds == [("", "row_count"), ("proline", "duplicate_values")]
    training = datasets.validate("wine", serving, environment="training").anomalies
    assert ("target", "missing_column") in [(a.column, a.kind) for a in training]
    with pytest.raises(errors.InvalidInput, match="no environment 'prod'"):
        datasets.validate("wine", serving, environment="prod")
    with pytest.raises(errors.InvalidInput, match="type 'decimal'"):
        load_schema("columns: {a: {type: decimal}}")


def test_extra_columns_are_warnings(datasets: Datasets, wine: Any) -> None:
    datasets.register("wine", wine)
    extra = wine.assign(note="x")
    [a] = datasets.validate("wine", extra).anomalies
    assert (a.column, a.kind, a.severity) == ("note", "extra_column", "warning")
    assert datasets.validate("wine", extra).ok


def _bad_files(tmp: Path, wine: Any) -> dict[str, tuple[Path, str]]:
    good = tmp / "good.parquet"
    wine.to_parquet(good)
    truncated = tmp / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    ragged = tmp / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n", encoding="utf-8")
    latin = tmp / "latin.csv"
    latin.write_bytes("name,city\nJos\xe9,K\xf6ln\n".encode("latin-1"))
    empty = tmp / "empty.csv"
    empty.write_bytes(b"")
    return {
        "truncated": (truncated, "can't be read as PARQUET"),
        "ragged": (ragged, "different number of fields"),
        "latin": (latin, "not UTF-8"),
        "empty": (empty, "is empty"),
    }


@pytest.mark.parametrize("case", ["truncated", "ragged", "latin", "empty"])
def test_bad_files_give_clear_errors(
    datasets: Datasets, wine: Any, tmp_path: Path, case: str
) -> None:
    path, message = _bad_files(tmp_path, wine)[case]
    with pytest.raises(errors.InvalidData, match=message):
        datasets.register("bad", path)
    datasets.register("wine", wine)
    with pytest.raises(errors.InvalidData, match=message):
        datasets.validate("wine", path)


def test_a_column_with_no_values_is_checked_for_nulls_not_reported_as_another_type(
    datasets: Datasets, tmp_path: Path
) -> None:
    (tmp_path / "train.csv").write_text("a,c\n1,5\n2,\n3,7\n")
    datasets.register("sparse", tmp_path / "train.csv")
    (tmp_path / "window.csv").write_text("a,c\n1,\n2,\n")  # c (nullable) is all empty here
    assert datasets.validate("sparse", tmp_path / "window.csv").anomalies == []
    (tmp_path / "empty_ids.csv").write_text("a,c\n,5\n,7\n")  # a (not nullable) is all empty
    report = datasets.validate("sparse", tmp_path / "empty_ids.csv")
    assert {(a.column, a.kind) for a in report.anomalies} == {("a", "null_values")}


def test_a_unique_nullable_column_may_hold_several_nulls(datasets: Datasets) -> None:
    import pandas as pd

    schema = load_schema("columns: {code: {type: string, nullable: true, unique: true}}")
    report = datasets.validate(
        "unused", pd.DataFrame({"code": ["x", None, None, "y"]}), schema=schema
    )
    assert report.anomalies == []
    report = datasets.validate("unused", pd.DataFrame({"code": ["x", None, "x"]}), schema=schema)
    assert [(a.kind, a.count) for a in report.anomalies] == [("duplicate_values", 1)]
