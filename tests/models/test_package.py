"""The package format: manifest contents, content hash, atomic save, damaged packages, version
checks, flavor plugins and missing optional libraries."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import (
    AlreadyExists,
    InvalidInput,
    MissingDependency,
    NotFound,
    ShipyardError,
    ShipyardWarning,
)
from shipyard.models import Flavor, FlavorRegistry
from shipyard.models.manifest import FORMAT_VERSION, MANIFEST, Manifest

pytest.importorskip("sklearn")


@pytest.fixture
def tree(cancer: Any) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    X, y = cancer
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)


def _edit_manifest(folder: Path, change: Any) -> None:
    raw = json.loads((folder / MANIFEST).read_text())
    change(raw)
    (folder / MANIFEST).write_text(json.dumps(raw))


def test_manifest_records_what_the_issue_asks(tmp_path: Path, tree: Any, cancer: Any) -> None:
    from importlib.metadata import version

    X, _ = cancer
    shipyard.save_model(tree, tmp_path / "m", input_example=X.head(2), metadata={"team": "risk"})
    raw = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert raw["format_version"] == FORMAT_VERSION
    assert raw["predict_flavor"] == "sklearn"
    sk = raw["flavors"]["sklearn"]
    assert sk["library_versions"] == {"sklearn": version("scikit-learn")}
    assert sk["runs_code_on_load"] is True
    assert sk["estimator"] == "sklearn.tree._classes.DecisionTreeClassifier"
    assert raw["python_version"] == platform.python_version()
    assert f"scikit-learn=={version('scikit-learn')}" in raw["requirements"]
    assert (tmp_path / "m" / "requirements.txt").read_text().splitlines() == raw["requirements"]
    assert raw["signature"]["inputs"]["columns"][0] == {"name": "mean radius", "type": "double"}
    assert raw["input_example"] == "input_example.json"
    assert raw["metadata"] == {"team": "risk"}
    files = raw["content"]["files"]
    assert set(files) == {"model.pkl", "input_example.json", "requirements.txt"}
    assert raw["content"]["size"] == sum(f["size"] for f in files.values())
    assert len(raw["content"]["sha256"]) == 64


def test_content_hash_is_stable_and_tracks_the_bytes(tmp_path: Path, tree: Any) -> None:
    a = shipyard.save_model(tree, tmp_path / "a")
    b = shipyard.save_model(tree, tmp_path / "b")
    assert a.content_hash == b.content_hash  # same files, other folder and time
    c = shipyard.save_model(tree, tmp_path / "c", extra_requirements=["requests>=2"])
    assert c.content_hash != a.content_hash
    assert "requests>=2" in c.requirements


def test_tampered_file_fails_the_content_check(tmp_path: Path, tree: Any) -> None:
    shipyard.save_model(tree, tmp_path / "m")
    shipyard.models.load_package(tmp_path / "m", check_content=True)
    with open(tmp_path / "m" / "model.pkl", "ab") as f:
        f.write(b"\0")
    with pytest.raises(InvalidInput, match=r"'model\.pkl' differs from the manifest"):
        shipyard.models.load_package(tmp_path / "m", check_content=True)


class _Exploding(Flavor):
    name = "exploding"

    def handles(self, model: Any) -> bool:
        return False

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        (path / "half-written.bin").write_bytes(b"x" * 100)
        raise RuntimeError("disk on fire")

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        raise AssertionError("never saved")


def test_failing_save_leaves_nothing(tmp_path: Path, tree: Any) -> None:
    target = tmp_path / "new" / "deeper" / "model"
    with pytest.raises(RuntimeError, match="disk on fire"):
        shipyard.save_model(tree, target, flavor=_Exploding())
    assert list(tmp_path.iterdir()) == []


def test_failing_save_keeps_existing_parent_clean(tmp_path: Path, tree: Any) -> None:
    with pytest.raises(RuntimeError):
        shipyard.save_model(tree, tmp_path / "model", flavor=_Exploding())
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_non_empty_folder_but_fills_an_empty_one(tmp_path: Path, tree: Any) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExists, match="not empty"):
        shipyard.save_model(tree, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    shipyard.save_model(tree, tmp_path / "empty")
    assert (tmp_path / "empty" / MANIFEST).exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_text("{not json"), "is not valid JSON"),
        (lambda p: p.write_text("[1, 2]"), "not a JSON object"),
        (
            lambda p: p.write_text(json.dumps({"format_version": 1, "flavors": {}})),
            "not a valid Shipyard model manifest.*predict_flavor",
        ),
        (
            lambda p: p.write_text(
                json.dumps({"format_version": 1, "predict_flavor": "x", "flavors": {}})
            ),
            "not a valid Shipyard model manifest.*flavors.x",
        ),
        (
            lambda p: p.write_text(json.dumps({"format_version": 99})),
            "format version 99, newer than",
        ),
    ],
)
def test_corrupted_manifest_gets_a_clear_error(
    tmp_path: Path, tree: Any, damage: Any, message: str
) -> None:
    shipyard.save_model(tree, tmp_path / "m")
    damage(tmp_path / "m" / MANIFEST)
    with pytest.raises(InvalidInput, match=message):
        shipyard.load_model(tmp_path / "m")


def test_missing_package_and_manifest_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        shipyard.load_model(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotFound, match=f"has no {MANIFEST}"):
        shipyard.load_model(tmp_path / "plain")


def test_library_version_mismatch_warns(tmp_path: Path, tree: Any, cancer: Any) -> None:
    shipyard.save_model(tree, tmp_path / "m")
    _edit_manifest(
        tmp_path / "m",
        lambda raw: raw["flavors"]["sklearn"]["library_versions"].update(sklearn="0.0.1"),
    )
    with pytest.warns(ShipyardWarning, match=r"sklearn 0\.0\.1 at save, .* now"):
        loaded = shipyard.load_model(tmp_path / "m")
    assert issubclass(ShipyardWarning, UserWarning)
    np.testing.assert_array_equal(loaded.predict(cancer[0]), tree.predict(cancer[0]))


def test_python_version_mismatch_warns_for_pickles(tmp_path: Path, tree: Any) -> None:
    shipyard.save_model(tree, tmp_path / "m")
    _edit_manifest(tmp_path / "m", lambda raw: raw.update(python_version="3.99.0"))
    with pytest.warns(ShipyardWarning, match=r"Python 3\.99\.0 at save"):
        shipyard.load_model(tmp_path / "m")


def test_a_load_failure_names_the_version_mismatch(tmp_path: Path, tree: Any) -> None:
    shipyard.save_model(tree, tmp_path / "m")
    (tmp_path / "m" / "model.pkl").write_bytes(b"garbage")
    _edit_manifest(
        tmp_path / "m",
        lambda raw: raw["flavors"]["sklearn"]["library_versions"].update(sklearn="0.0.1"),
    )
    with pytest.raises(ShipyardError, match=r"Could not load the sklearn model.*sklearn 0\.0\.1"):
        shipyard.load_model(tmp_path / "m")


def test_no_flavor_for_an_object_without_predict(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no predict method"):
        shipyard.save_model(object(), tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_unknown_flavor_in_a_manifest_lists_the_known_ones(tmp_path: Path, tree: Any) -> None:
    shipyard.save_model(tree, tmp_path / "m")

    def rename(raw: dict[str, Any]) -> None:
        raw["flavors"] = {"h2o": raw["flavors"]["sklearn"]}
        raw["predict_flavor"] = "h2o"

    _edit_manifest(tmp_path / "m", rename)
    with pytest.raises(NotFound, match=r"No model flavor is called 'h2o'.*sklearn"):
        shipyard.load_model(tmp_path / "m")


class Polynomial:
    """A toy model from a 'library' Shipyard knows nothing about."""

    def __init__(self, coefs: list[float]) -> None:
        self.coefs = coefs

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        return np.polyval(self.coefs, x)


class PolynomialFlavor(Flavor):
    name = "polynomial"
    modules: ClassVar[tuple[str, ...]] = ("numpy",)

    def handles(self, model: Any) -> bool:
        return isinstance(model, Polynomial)

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        (path / "coefs.json").write_text(json.dumps(model.coefs))
        return {"data": "coefs.json"}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        return Polynomial(json.loads((path / config["data"]).read_text()))

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        return model.evaluate(np.asarray(data))


def test_custom_flavor_plugin(tmp_path: Path, fresh_flavors: FlavorRegistry) -> None:
    shipyard.register_flavor(PolynomialFlavor)
    assert fresh_flavors.names()[0] == "polynomial"
    x = np.array([0.0, 1.0, 2.0])
    manifest = shipyard.save_model(Polynomial([1.0, 0.0, -1.0]), tmp_path / "p", input_example=x)
    assert manifest.predict_flavor == "polynomial"
    assert manifest.runs_code_on_load is False
    assert manifest.flavors["polynomial"]["library_versions"] == {"numpy": np.__version__}
    loaded = shipyard.load_model(tmp_path / "p")
    np.testing.assert_array_equal(loaded.predict(x), [-1.0, 0.0, 3.0])
    assert isinstance(loaded.unwrap(), Polynomial)
    with pytest.raises(InvalidInput, match="dtype"):
        loaded.predict(np.array(["a"]))
    fresh_flavors.unregister("polynomial")
    with pytest.raises(NotFound, match="'polynomial'"):
        shipyard.load_model(tmp_path / "p")


def test_register_refuses_what_is_not_a_flavor(fresh_flavors: FlavorRegistry) -> None:
    with pytest.raises(InvalidInput, match="not a shipyard Flavor"):
        shipyard.register_flavor(Polynomial)  # type: ignore[arg-type]


def test_flavors_from_entry_points(
    tmp_path: Path, fresh_flavors: FlavorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata

    class FakeEntryPoint:
        name = "polynomial"

        def load(self) -> Any:
            return PolynomialFlavor

    def entry_points(*, group: str) -> list[Any]:
        return [FakeEntryPoint()] if group == "shipyard.flavors" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert "polynomial" not in fresh_flavors.names()
    manifest = shipyard.save_model(Polynomial([2.0]), tmp_path / "p")
    assert manifest.predict_flavor == "polynomial"


def test_missing_library_names_the_extra(
    tmp_path: Path, cancer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lgb = pytest.importorskip("lightgbm")
    X, y = cancer
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0},
        lgb.Dataset(X, label=y),
        num_boost_round=3,
    )
    shipyard.save_model(booster, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm now fails
    with pytest.raises(MissingDependency, match=r"pip install 'shipyard\[lightgbm\]'"):
        shipyard.load_model(tmp_path / "m")


def test_manifest_read_directly(tmp_path: Path, tree: Any) -> None:
    saved = shipyard.save_model(tree, tmp_path / "m")
    again = Manifest.read(tmp_path / "m")
    assert again.content == saved.content
    assert again.predict_flavor == "sklearn"
    assert shipyard.load_model(tmp_path / "m" / MANIFEST).content_hash == saved.content_hash


def test_unknown_uri_scheme_lists_the_accepted_forms() -> None:
    with pytest.raises(InvalidInput, match="runs:/<run_id>/<path>"):
        shipyard.load_model("s3://bucket/model")


def test_output_inference_failure_is_a_warning(tmp_path: Path, tree: Any) -> None:
    bad_example = pd.DataFrame({"a": [1.0]})
    with pytest.warns(ShipyardWarning, match="could not predict on its input example"):
        manifest = shipyard.save_model(tree, tmp_path / "m", input_example=bad_example)
    assert manifest.signature is not None
    assert manifest.signature.outputs is None
