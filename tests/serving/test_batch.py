"""Batch inference: a Parquet file scored in chunks, equal to one predict on the whole table;
kept columns; bad inputs named; the Ray executor gives the same answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import shipyard
from shipyard.errors import InvalidData, InvalidInput
from shipyard.workspace import Workspace
from tests.serving.conftest import Data


@pytest.fixture
def model_dir(tmp_path: Path, cancer: Data) -> Path:
    from sklearn.tree import DecisionTreeClassifier

    folder = tmp_path / "model"
    model = DecisionTreeClassifier(max_depth=4, random_state=0).fit(cancer.X, cancer.y)
    shipyard.save_model(model, folder, input_example=cancer.X[:3])
    return folder


@pytest.fixture
def table(tmp_path: Path, cancer: Data) -> Path:
    frame = pd.concat([cancer.X] * 4, ignore_index=True)
    frame.insert(0, "id", np.arange(len(frame)))
    path = tmp_path / "in.parquet"
    frame.to_parquet(path, row_group_size=500)
    return path


def test_chunks_give_the_same_predictions_as_one_call(
    workspace: Workspace, model_dir: Path, table: Path, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    out = tmp_path / "out.parquet"
    n = shipyard.batch_predict(str(model_dir), table, out, chunk_rows=300, keep=["id"],
                               workspace=workspace, progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    frame = pd.read_parquet(table)
    assert n == len(frame) == 2276
    result = pd.read_parquet(out)
    whole = shipyard.load_model(str(model_dir)).predict(frame.drop(columns=["id"]))
    assert list(result.columns) == ["id", "prediction"]
    assert result["id"].tolist() == frame["id"].tolist()
    assert np.array_equal(result["prediction"].to_numpy(), whole)
    assert seen[-1] == (2276, 2276)
    assert len(seen) > 5
    assert pq.ParquetFile(out).metadata.num_rows == 2276


def test_bad_inputs_are_named(workspace: Workspace, model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="No input file"):
        shipyard.batch_predict(str(model_dir), tmp_path / "no.parquet", tmp_path / "o.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(InvalidData, match="not a readable Parquet"):
        shipyard.batch_predict(str(model_dir), junk, tmp_path / "o.parquet")
    pd.DataFrame({"a": [1.0]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(InvalidInput, match="missing column 'mean radius'"):
        shipyard.batch_predict(str(model_dir), tmp_path / "a.parquet", tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
    assert not list(tmp_path.glob(".o.parquet*"))
    with pytest.raises(InvalidInput, match="executor"):
        shipyard.batch_predict(str(model_dir), junk, tmp_path / "o.parquet", executor="dask")


@pytest.mark.slow
def test_ray_executor_matches_local(
    workspace: Workspace, model_dir: Path, table: Path, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        local, remote = tmp_path / "local.parquet", tmp_path / "ray.parquet"
        shipyard.batch_predict(str(model_dir), table, local, chunk_rows=400, workspace=workspace)
        shipyard.batch_predict(str(model_dir), table, remote, chunk_rows=400, executor="ray",
                               ray_workers=2, workspace=workspace)  # fmt: skip
        assert pd.read_parquet(local).equals(pd.read_parquet(remote))
    finally:
        ray.shutdown()


def test_kept_columns_keep_their_type_when_a_later_chunk_has_nulls(
    workspace: Workspace, model_dir: Path, tmp_path: Path, cancer: Data
) -> None:
    frame = cancer.X.copy()
    ids = [7] * 300 + [None] * (len(frame) - 300)
    frame.insert(0, "id", pd.array(ids, dtype="Int64"))
    source, out = tmp_path / "nulls.parquet", tmp_path / "out.parquet"
    frame.to_parquet(source, row_group_size=100)
    n = shipyard.batch_predict(str(model_dir), source, out, chunk_rows=100, keep=["id"],
                               workspace=workspace)  # fmt: skip
    assert n == len(frame)
    assert str(pq.read_schema(out).field("id").type) == "int64"
    result = pq.read_table(out)
    assert result.column("id").null_count == len(frame) - 300
    assert result.column("id").to_pylist()[:300] == [7] * 300


class _FailsOnNegative:
    """Predicts the first column, and raises on a chunk holding a negative value."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame["x"].to_numpy()
        if (values < 0).any():
            raise ValueError("negative x")
        return values * 2


def test_a_model_that_fails_names_the_rows_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shipyard.save_model(_FailsOnNegative(), folder, input_example=pd.DataFrame({"x": [1.0]}))
    source = tmp_path / "in.parquet"
    pd.DataFrame({"x": [1.0, 2.0, 3.0, -4.0, 5.0]}).to_parquet(source)
    out = tmp_path / "out.parquet"
    with pytest.raises(InvalidData, match=r"failed on rows 2-3 of .*in\.parquet \(ValueError: "):
        shipyard.batch_predict(str(folder), source, out, chunk_rows=2)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet*"))
