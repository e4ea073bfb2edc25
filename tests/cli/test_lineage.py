"""``shipyard lineage``."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from shipyard.tracking.gc import delete_run_permanently
from shipyard.workspace import Workspace
from tests.cli.conftest import Seeded, Shipyard


@pytest.fixture
def churn(shipyard: Shipyard, seeded: Seeded) -> Seeded:
    """``churn`` version 1, from run A (trained on dataset ``train``)."""
    shipyard("models", "register", f"runs:/{seeded.run_a}/model", "churn")
    return seeded


@pytest.fixture
def two_versions(
    churn: Seeded, open_workspace: Callable[[], Workspace], shipyard: Shipyard
) -> Seeded:
    """Also version 2, from run B (which recorded no dataset inputs)."""
    open_workspace().artifacts.upload(churn.run_b, "model/w.bin", io.BytesIO(b"weights"))
    shipyard("models", "register", f"runs:/{churn.run_b}/model", "churn")
    return churn


def test_lineage_of_a_version(shipyard: Shipyard, two_versions: Seeded) -> None:
    data = shipyard.json("lineage", "models:/churn/1")
    assert data["model_version"]["version"] == 1
    assert data["run"]["run_id"] == two_versions.run_a
    assert data["experiment"]["name"] == "churn"
    assert [(d["dataset"]["name"], d["dataset"]["digest"]) for d in data["datasets"]] == [
        ("train", "d1g35t")
    ]
    assert shipyard.json("lineage", "churn/1") == data
    out = shipyard("lineage", "churn/1").stdout
    for expected in ("churn version 1", two_versions.run_a, "rf-small", "FINISHED",
                     f"churn (id {two_versions.experiment_id})", "train", "d1g35t",
                     "/data/train.csv", "mlflow.data.context=training"):  # fmt: skip
        assert expected in out, expected
    latest = shipyard("lineage", "churn").stdout
    assert "churn version 2" in latest
    assert "The run recorded no dataset inputs." in latest


def test_versions_trained_on_a_dataset(shipyard: Shipyard, two_versions: Seeded) -> None:
    data = shipyard.json("lineage", "--dataset", "train")
    assert (data["dataset"], data["digest"]) == ("train", None)
    assert [(v["name"], v["version"]) for v in data["versions"]] == [("churn", 1)]
    exact = shipyard.json("lineage", "--dataset", "train", "--digest", "d1g35t")["versions"]
    assert [v["version"] for v in exact] == [1]
    assert shipyard.json("lineage", "--dataset", "train", "--digest", "other")["versions"] == []
    out = shipyard("lineage", "--dataset", "train", "--digest", "other").stdout
    assert out.strip() == "No model version was trained on dataset 'train' (digest other)."
    assert "churn" in shipyard("lineage", "--dataset", "train").stdout


def test_lineage_outlives_the_run(
    shipyard: Shipyard, churn: Seeded, open_workspace: Callable[[], Workspace]
) -> None:
    ws = open_workspace()
    delete_run_permanently(ws.store, ws.artifacts, churn.run_a)  # type: ignore[arg-type]
    data = shipyard.json("lineage", "churn/1")
    assert (data["run"], data["experiment"], data["datasets"]) == (None, None, [])
    assert data["model_version"]["run_id"] == churn.run_a
    assert "deleted; the version keeps its own copy" in shipyard("lineage", "churn/1").stdout


def test_lineage_failures(shipyard: Shipyard, churn: Seeded) -> None:
    assert "'ghost' does not exist" in shipyard.fails("lineage", "models:/ghost/1")
    assert "no version 3" in shipyard.fails("lineage", "churn/3")
    assert "is malformed" in shipyard.fails("lineage", "models:/churn@")
    for args in ((), ("churn/1", "--dataset", "train"), ("churn/1", "--digest", "x")):
        result = shipyard("lineage", *args, expect=2)
        assert "Error:" in result.stderr
        assert "Traceback" not in result.output
