"""Registering versions: content addressing, stored bytes, diffs, lineage, reading back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import shipyard
from shipyard import errors
from shipyard.data import Datasets
from shipyard.workspace import Workspace


def _blobs(ws: Workspace) -> int:
    return sum(1 for _ in ws.artifacts.iter_blobs())  # type: ignore[attr-defined]


def test_same_data_twice_is_one_version_and_no_new_bytes(
    datasets: Datasets, workspace: Workspace, wine: Any
) -> None:
    v1, created = datasets.register("wine", wine, tags={"split": "train"})
    assert created
    assert (v1.version, v1.num_rows, v1.num_columns) == (1, 178, 14)
    assert v1.tags == {"split": "train"}
    assert v1.num_bytes > 0
    blobs = _blobs(workspace)
    again, created = datasets.register("wine", wine.copy())
    assert (again.version, created) == (1, False)
    assert _blobs(workspace) == blobs
    changed = wine.copy()
    changed.loc[3, "alcohol"] = 14.5
    v2, created = datasets.register("wine", changed)
    assert (v2.version, created) == (2, True)
    assert _blobs(workspace) == blobs + 1
    diff = datasets.diff("wine", 1, 2)
    assert (
        set(diff["metadata"]) == {"content_digest", "num_bytes"}
        or "content_digest" in diff["metadata"]
    )
    moved = [c for c in diff["profile"]["columns"] if c["status"] != "unchanged"]
    assert [c["column"] for c in moved] == ["alcohol"]
    assert "mean" in moved[0]["changes"]


def test_files_and_folders_stream_and_read_back(
    datasets: Datasets, wine: Any, tmp_path: Path
) -> None:
    csv = tmp_path / "wine.csv"
    wine.to_csv(csv, index=False)
    v, _ = datasets.register("wine-csv", csv)
    assert (v.format, v.num_rows, v.source_uri) == ("csv", 178, csv.resolve().as_uri())
    assert csv.read_text(encoding="utf-8").startswith("alcohol,")  # the caller's file stays
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(datasets.open("wine-csv").to_table().slice(0, 100), folder / "a.parquet")
    pq.write_table(datasets.open("wine-csv").to_table().slice(100), folder / "b.parquet")
    v, _ = datasets.register("wine-parts", folder)
    assert (v.format, v.num_rows) == ("parquet", 178)
    assert datasets.open("wine-parts").count_rows() == 178
    out = datasets.download("wine-parts", None, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["a.parquet", "b.parquet"]


def test_lineage_links_runs_both_ways(datasets: Datasets, workspace: Workspace, wine: Any) -> None:
    run = workspace.store.create_run("0", run_name="train")
    v, _ = datasets.register("wine", wine, run_id=run.info.run_id)
    assert v.run_id == run.info.run_id
    datasets.log_input(run.info.run_id, "wine", context="training")
    assert datasets.store.runs_of("wine", 1) == [run.info.run_id]
    inputs = workspace.store.get_run(run.info.run_id).inputs
    assert [(i.dataset.name, i.dataset.source) for i in inputs] == [("wine", "datasets:/wine/1")]


def test_module_level_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wine: Any) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    shipyard.set_tracking_uri(None)
    with shipyard.start_run() as run:
        v = shipyard.datasets.register("wine", wine)
        shipyard.datasets.log_input("wine", context="training")
    assert v.run_id == run.info.run_id
    assert shipyard.datasets.validate("wine", wine).ok
    with pytest.raises(errors.DataValidationFailed):
        shipyard.datasets.validate("wine", wine.drop(columns=["ash"])).check()
    shipyard.set_tracking_uri(None)


def test_remote_workspace_says_datasets_need_a_database(settings: Any) -> None:
    from shipyard.config import Settings

    remote = Workspace.open(
        Settings.from_env(home=settings.home, tracking_uri="http://127.0.0.1:9")
    )
    try:
        with pytest.raises(errors.ShipyardError, match="direct database URI"):
            Datasets(remote).register("x", Path("nope"))
    finally:
        remote.close()


def test_a_table_without_rows_keeps_its_columns(datasets: Datasets, tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "empty.parquet"
    pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=str)}).to_parquet(path)
    version, _ = datasets.register("empty", path)
    assert (version.num_rows, version.num_columns) == (0, 2)  # was: no columns at all
    schema = datasets.schema("empty")  # was: an error, the stored schema had no columns
    assert {c: (s.type, s.nullable) for c, s in schema.columns.items()} == {
        "x": ("float", True),
        "s": ("string", True),
    }


def test_infinite_values_are_counted_apart_and_the_version_validates(
    datasets: Datasets, tmp_path: Path
) -> None:
    import numpy as np
    import pandas as pd

    path = tmp_path / "inf.parquet"
    pd.DataFrame({"x": [1.0, np.inf, 2.0, -np.inf, np.nan]}).to_parquet(path)
    datasets.register("inf", path)  # was: ValueError from the profile's JSON
    x = datasets.profile("inf").columns["x"].summary()
    assert (x["nulls"], x["infinite"], x["min"], x["max"], x["mean"]) == (3, 2, 1.0, 2.0, 1.5)
    assert datasets.validate("inf", path).ok  # the observed range is open: infinities seen


def test_a_version_cannot_name_a_run_that_does_not_exist(
    datasets: Datasets, workspace: Workspace, wine: Any
) -> None:
    with pytest.raises(errors.NotFound):
        datasets.register("wine", wine, run_id="0" * 32)
    assert datasets.store.list_datasets() == []
