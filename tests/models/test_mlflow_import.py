"""Importing MLflow model folders written by the real ``mlflow`` (3.18): sklearn models in
pickle and cloudpickle form, an MLflow Python model with an artifact, and the failures
(malformed MLmodel, unsupported flavors, missing skops, unsafe paths)."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import shipyard
from shipyard import errors
from shipyard.cli.main import cli
from shipyard.models import load_model, load_package
from shipyard.models.mlflow_import import convert_mlflow_model, import_mlflow_model
from shipyard.models.signature import ColSpec, Schema, Signature
from shipyard.registry import Registry
from shipyard.workspace import Workspace

Data = tuple[pd.DataFrame, pd.Series]


@dataclass(frozen=True)
class Saved:
    """MLflow model folders and the in-memory models they were saved from."""

    cloudpickle_dir: Path
    pickle_dir: Path
    python_model_dir: Path
    pipeline: Any
    forest: Any


@pytest.fixture(scope="session")
def saved(tmp_path_factory: pytest.TempPathFactory, cancer: Data) -> Saved:
    import mlflow.pyfunc
    import mlflow.sklearn
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("mlflow")
    X, y = cancer
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    mlflow.sklearn.save_model(
        pipeline, root / "cloudpickle", input_example=X[:5], serialization_format="cloudpickle"
    )
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X.to_numpy(), y)
    mlflow.sklearn.save_model(
        forest, root / "pickle", input_example=X.to_numpy()[:3], serialization_format="pickle"
    )
    (root / "factor.txt").write_text("2.5")
    mlflow.pyfunc.save_model(
        root / "python_model",
        python_model=_python_model_class()(),
        artifacts={"factor": str(root / "factor.txt")},
        input_example=pd.DataFrame({"x": [1.0, 2.0]}),
    )
    return Saved(root / "cloudpickle", root / "pickle", root / "python_model", pipeline, forest)


def _python_model_class() -> type:
    import mlflow.pyfunc

    class Multiply(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def load_context(self, context: Any) -> None:
            self.factor = float(Path(context.artifacts["factor"]).read_text())

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return model_input["x"] * self.factor

    return Multiply


def _copy(src: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "mlflow-model"
    shutil.copytree(src, dest)
    return dest


def _edit_mlmodel(folder: Path, edit: Any) -> None:
    import yaml

    path = folder / "MLmodel"
    raw = yaml.safe_load(path.read_text())
    edit(raw)
    path.write_text(yaml.safe_dump(raw))


# ---------------------------------------------------------------------------- what works


def test_sklearn_cloudpickle_predicts_like_the_original(
    saved: Saved, cancer: Data, workspace: Workspace
) -> None:
    X, _ = cancer
    version = import_mlflow_model(
        saved.cloudpickle_dir, "cancer", description="from mlflow", workspace=workspace
    )
    assert (version.name, version.version, version.description) == ("cancer", 1, "from mlflow")
    run = workspace.store.get_run(version.run_id or "")
    assert run.data.tags["shipyard.model.imported_from"] == "mlflow"
    assert run.info.status == "FINISHED"

    model = load_model("models:/cancer/1", workspace=workspace)
    np.testing.assert_array_equal(model.predict(X), saved.pipeline.predict(X))
    manifest = model.manifest
    assert manifest.predict_flavor == "sklearn"
    assert manifest.flavors["sklearn"]["serialization"] == "cloudpickle"
    assert manifest.runs_code_on_load is True
    assert manifest.signature is not None
    columns = manifest.signature.inputs.columns
    assert len(columns) == 30
    assert columns[0] == ColSpec("mean radius", "double")
    assert manifest.signature.outputs == Schema(columns=(ColSpec("prediction", "long"),))
    assert not any(r.lower().startswith("mlflow") for r in manifest.requirements)
    assert any(r.startswith("scikit-learn==") for r in manifest.requirements)
    meta = manifest.metadata
    assert meta["imported_from"] == "mlflow"
    assert meta["mlflow"]["mlflow_version"] == "3.18.0"
    assert meta["mlflow"]["flavors"] == ["python_function", "sklearn"]
    example = model.input_example()
    pd.testing.assert_frame_equal(example, X[:5].reset_index(drop=True))
    # The signature is enforced: a missing column is refused by name.
    with pytest.raises(errors.InvalidInput, match="missing column 'worst area'"):
        model.predict(X.drop(columns=["worst area"]))


def test_sklearn_pickle_with_a_tensor_signature(saved: Saved, cancer: Data, tmp_path: Path) -> None:
    X, _ = cancer
    manifest = convert_mlflow_model(saved.pickle_dir, tmp_path / "pkg")
    assert manifest.signature is not None
    (tensor,) = manifest.signature.inputs.tensors
    assert (tensor.dtype, tensor.shape) == ("float64", (-1, 30))
    model = load_package(tmp_path / "pkg", check_content=True)
    np.testing.assert_array_equal(model.predict(X.to_numpy()), saved.forest.predict(X.to_numpy()))
    example = model.input_example()
    assert example.dtype == np.float64
    np.testing.assert_array_equal(example, X.to_numpy()[:3])
    with pytest.raises(errors.InvalidInput, match="shape"):
        model.predict(X.to_numpy()[:, :5])


def test_mlflow_python_model_with_an_artifact(saved: Saved, tmp_path: Path) -> None:
    manifest = convert_mlflow_model(saved.python_model_dir / "MLmodel", tmp_path / "pkg")
    assert manifest.predict_flavor == "python_function"
    assert manifest.flavors["python_function"]["artifacts"] == {"factor": "artifacts/factor.txt"}
    model = load_package(tmp_path / "pkg")
    out = model.predict(pd.DataFrame({"x": [1.0, 4.0]}))
    assert list(out) == [2.5, 10.0]


def test_cli_registers_an_mlflow_folder(saved: Saved, tmp_path: Path, cancer: Data) -> None:
    home = tmp_path / "home"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--home", str(home), "models", "register", str(saved.cloudpickle_dir), "cancer", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == 1
    assert "runs code when it is loaded" in result.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "MLmodel").write_text("flavors: [unclosed\n")
    result = runner.invoke(cli, ["--home", str(home), "models", "register", str(bad), "cancer"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "is not valid YAML" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_explicit_signature_replaces_one_shipyard_cannot_enforce(
    saved: Saved, tmp_path: Path
) -> None:
    folder = _copy(saved.python_model_dir, tmp_path)

    def arrays(raw: dict[str, Any]) -> None:
        raw["signature"]["inputs"] = json.dumps(
            [{"type": "array", "items": {"type": "double"}, "name": "x", "required": True}]
        )

    _edit_mlmodel(folder, arrays)
    with pytest.raises(errors.InvalidInput, match=r"column 'x' has type \"array\""):
        convert_mlflow_model(folder, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()
    own = Signature(Schema(columns=(ColSpec("x", "double"),)))
    assert convert_mlflow_model(folder, tmp_path / "pkg", signature=own).signature == own


def test_optional_and_unnamed_columns(saved: Saved, tmp_path: Path) -> None:
    folder = _copy(saved.python_model_dir, tmp_path)

    def optional(raw: dict[str, Any]) -> None:
        raw["signature"]["inputs"] = json.dumps(
            [{"type": "double", "name": "x", "required": True},
             {"type": "string", "name": "note", "required": False}]
        )  # fmt: skip
        raw["signature"]["outputs"] = json.dumps([{"type": "double"}, {"type": "double"}])

    _edit_mlmodel(folder, optional)
    sig = convert_mlflow_model(folder, tmp_path / "pkg").signature
    assert sig is not None
    assert sig.inputs.columns == (ColSpec("x", "double"), ColSpec("note", "string", True))
    assert sig.outputs is not None
    assert [c.name for c in sig.outputs.columns] == ["0", "1"]
    assert list(load_package(tmp_path / "pkg").predict({"x": [2.0]})) == [5.0]


# ---------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flavors: [unclosed\n", "is not valid YAML"),
        ("- just\n- a list\n", "has no 'flavors' mapping"),
        ("flavors: {}\n", "has no 'flavors' mapping"),
        ("artifact_path: model\n", "has no 'flavors' mapping"),
    ],
)
def test_malformed_mlmodel(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text(text)
    with pytest.raises(errors.InvalidInput, match=message):
        convert_mlflow_model(tmp_path / "m", tmp_path / "pkg")


def test_what_is_not_an_mlflow_model(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound, match="has no MLmodel file"):
        convert_mlflow_model(tmp_path, tmp_path / "pkg")
    with pytest.raises(errors.NotFound, match="does not exist"):
        convert_mlflow_model(tmp_path / "nowhere", tmp_path / "pkg")


def test_damaged_signature_and_missing_files(saved: Saved, tmp_path: Path) -> None:
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    _edit_mlmodel(folder, lambda raw: raw["signature"].update(inputs="[{not json"))
    with pytest.raises(errors.InvalidInput, match="signature inputs is not valid JSON"):
        convert_mlflow_model(folder, tmp_path / "pkg")
    shutil.rmtree(folder)
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    (folder / "model.pkl").unlink()
    with pytest.raises(errors.InvalidInput, match="has no such file; copy the whole"):
        convert_mlflow_model(folder, tmp_path / "pkg")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "/etc/passwd"])
def test_paths_outside_the_folder_are_refused(saved: Saved, tmp_path: Path, bad: str) -> None:
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    _edit_mlmodel(folder, lambda raw: raw["flavors"]["sklearn"].update(pickled_model=bad))
    with pytest.raises(errors.InvalidInput, match="not a path inside the model folder"):
        convert_mlflow_model(folder, tmp_path / "pkg")


def test_symbolic_links_are_refused(saved: Saved, tmp_path: Path) -> None:
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    (tmp_path / "elsewhere.pkl").write_bytes((folder / "model.pkl").read_bytes())
    (folder / "model.pkl").unlink()
    (folder / "model.pkl").symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(errors.InvalidInput, match="is a symbolic link"):
        convert_mlflow_model(folder, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()
    assert not list(tmp_path.glob(".pkg.*"))


def test_unsupported_flavors_are_named(tmp_path: Path, workspace: Workspace) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text(
        "flavors:\n"
        "  python_function: {loader_module: mlflow.xgboost, data: model.xgb}\n"
        "  xgboost: {data: model.xgb, model_class: xgboost.sklearn.XGBClassifier}\n"
    )
    with pytest.raises(errors.InvalidInput, match=r"python_function, xgboost \(python_function"):
        import_mlflow_model(tmp_path / "m", "boosted", workspace=workspace)
    # Nothing was stored: no run, no model.
    assert workspace.store.search_runs(["0"]).items == []
    with pytest.raises(errors.NotFound):
        Registry(workspace).get_model("boosted")


def test_code_folders_and_models_from_code_are_refused(saved: Saved, tmp_path: Path) -> None:
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    _edit_mlmodel(folder, lambda raw: raw["flavors"]["sklearn"].update(code="code"))
    with pytest.raises(errors.InvalidInput, match="brings its own code folder"):
        convert_mlflow_model(folder, tmp_path / "pkg")
    shutil.rmtree(folder)
    folder = _copy(saved.python_model_dir, tmp_path)
    _edit_mlmodel(folder, lambda raw: raw["flavors"]["python_function"].update(python_model="m.py"))
    with pytest.raises(errors.InvalidInput, match="model from code"):
        convert_mlflow_model(folder, tmp_path / "pkg")


def test_unknown_serialization_format(saved: Saved, tmp_path: Path) -> None:
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    _edit_mlmodel(
        folder, lambda raw: raw["flavors"]["sklearn"].update(serialization_format="joblib")
    )
    with pytest.raises(errors.InvalidInput, match="serialization_format 'joblib'"):
        convert_mlflow_model(folder, tmp_path / "pkg")


def _as_skops(raw: dict[str, Any]) -> None:
    raw["flavors"]["sklearn"].update(serialization_format="skops", skops_trusted_types=[])


def test_skops_without_the_package_names_it(
    saved: Saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "skops", None)  # import skops fails, installed or not
    monkeypatch.setitem(sys.modules, "skops.io", None)
    folder = _copy(saved.cloudpickle_dir, tmp_path)
    _edit_mlmodel(folder, _as_skops)
    with pytest.raises(errors.MissingDependency, match="pip install skops"):
        convert_mlflow_model(folder, tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


def test_skops_models_load_through_skops(tmp_path: Path, cancer: Data) -> None:
    pytest.importorskip("skops")
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    X, y = cancer
    model = LogisticRegression(max_iter=5000).fit(X.to_numpy(), y)
    mlflow.sklearn.save_model(model, tmp_path / "m", serialization_format="skops")
    manifest = convert_mlflow_model(tmp_path / "m", tmp_path / "pkg")
    assert manifest.flavors["sklearn"]["serialization"] == "skops"
    assert manifest.runs_code_on_load is False
    loaded = load_package(tmp_path / "pkg")
    np.testing.assert_array_equal(loaded.predict(X.to_numpy()), model.predict(X.to_numpy()))


def test_import_mlflow_model_is_public_api() -> None:
    assert shipyard.import_mlflow_model is import_mlflow_model
    assert "run code when loaded" in " ".join((import_mlflow_model.__doc__ or "").split())
