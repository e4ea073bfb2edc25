"""Every built-in flavor: save -> load in a fresh process -> the same predictions as the original
model on a real dataset (breast cancer, diabetes)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard
from tests.models.conftest import load_in_fresh_process

Data = tuple[pd.DataFrame, pd.Series]


def _sklearn_pipeline(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return model, X, model.predict(X), {}


def _sklearn_numpy_regressor(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    from sklearn.ensemble import RandomForestRegressor

    X = diabetes[0].to_numpy()
    model = RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0).fit(X, diabetes[1])
    return model, X, model.predict(X), {}


def _xgboost_sklearn_api(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    import xgboost as xgb

    X, y = diabetes
    model = xgb.XGBRegressor(n_estimators=20, max_depth=3, random_state=0, n_jobs=1).fit(X, y)
    return model, X, model.predict(X), {}


def _xgboost_booster(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    import xgboost as xgb

    X, y = cancer
    params = {"objective": "binary:logistic", "max_depth": 3, "seed": 0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=10)
    return booster, X, booster.predict(xgb.DMatrix(X)), {}


def _lightgbm_classifier(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    import lightgbm as lgb

    X, y = cancer
    model = lgb.LGBMClassifier(n_estimators=20, random_state=0, n_jobs=1, verbose=-1).fit(X, y)
    return model, X, model.predict(X), {}


def _lightgbm_booster(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    import lightgbm as lgb

    X, y = diabetes
    params = {"objective": "regression", "seed": 0, "num_threads": 1, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=20)
    return booster, X, booster.predict(X), {}


def _torch_module(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    import torch

    torch.manual_seed(0)
    X = cancer[0].to_numpy(np.float32)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    net.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    return net, X, expected, {}


def _torch_state_dict(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    import torch

    from shipyard.models.flavors.torch import TorchFlavor
    from tests.models._nets import TinyNet

    torch.manual_seed(0)
    X = cancer[0].to_numpy(np.float32)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    net = TinyNet(30, hidden=6).eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    flavor = TorchFlavor(mode="state_dict", init_kwargs={"n_features": 30, "hidden": 6})
    return net, X, expected, {"flavor": flavor}


def _onnx_from_sklearn(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return shipyard.models.to_onnx(model, X.head(5)), X, model.predict(X), {}


def _python_function(cancer: Data, diabetes: Data) -> tuple[Any, Any, Any, dict[str, Any]]:
    X, y = cancer

    class NearestCentroid:  # defined locally: cloudpickle stores the class by value
        def __init__(self, X: pd.DataFrame, y: pd.Series) -> None:
            self.centroids = np.stack([X[y == c].mean().to_numpy() for c in (0, 1)])

        def predict(self, data: pd.DataFrame) -> np.ndarray:
            d = ((data.to_numpy()[:, None, :] - self.centroids[None]) ** 2).sum(axis=2)
            return d.argmin(axis=1)

    model = NearestCentroid(X, y)
    return model, X, model.predict(X), {}


CASES: dict[str, tuple[str, str, Callable[..., tuple[Any, Any, Any, dict[str, Any]]]]] = {
    # name: (library needed, expected flavor, builder)
    "sklearn_pipeline": ("sklearn", "sklearn", _sklearn_pipeline),
    "sklearn_numpy": ("sklearn", "sklearn", _sklearn_numpy_regressor),
    "xgboost_sklearn_api": ("xgboost", "xgboost", _xgboost_sklearn_api),
    "xgboost_booster": ("xgboost", "xgboost", _xgboost_booster),
    "lightgbm_classifier": ("lightgbm", "lightgbm", _lightgbm_classifier),
    "lightgbm_booster": ("lightgbm", "lightgbm", _lightgbm_booster),
    "torch_module": ("torch", "torch", _torch_module),
    "torch_state_dict": ("torch", "torch", _torch_state_dict),
    "onnx": ("skl2onnx", "onnx", _onnx_from_sklearn),
    "python_function": ("cloudpickle", "python_function", _python_function),
}


@pytest.fixture(scope="module")
def fresh_results(
    tmp_path_factory: pytest.TempPathFactory, cancer: Data, diabetes: Data
) -> dict[str, Any]:
    """Save every case, then load them all in one fresh interpreter."""
    root = tmp_path_factory.mktemp("flavors")
    jobs: dict[str, tuple[str, Any]] = {}
    out: dict[str, Any] = {}
    for name, (library, _, build) in CASES.items():
        if importlib.util.find_spec(library) is None:
            out[name] = {"skip": f"{library} is not installed"}
            continue
        model, X, expected, options = build(cancer, diabetes)
        manifest = shipyard.save_model(model, root / name, input_example=X[:5], **options)
        jobs[name] = (str(root / name), X)
        out[name] = {
            "expected": np.asarray(expected),
            "manifest": manifest,
            "manifest_path": str(root / name),
        }
    for name, result in load_in_fresh_process(jobs, root).items():
        out[name].update(result)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_fresh_process_predictions_equal_the_original(
    case: str, fresh_results: dict[str, Any]
) -> None:
    result = fresh_results[case]
    if "skip" in result:
        pytest.skip(result["skip"])
    assert result["ok"], result["error"]
    _, flavor, _ = CASES[case]
    assert result["flavor"] == flavor
    assert result["manifest"].predict_flavor == flavor
    np.testing.assert_array_equal(result["pred"], result["expected"])


@pytest.mark.slow
def test_loading_imports_only_the_flavors_library(fresh_results: dict[str, Any]) -> None:
    import subprocess
    import sys

    result = fresh_results["sklearn_pipeline"]
    if "skip" in result:
        pytest.skip(result["skip"])
    path = result["manifest_path"]
    code = (
        "import sys, shipyard; shipyard.load_model(sys.argv[1]); "
        "print(','.join(m for m in ('torch', 'xgboost', 'lightgbm', 'onnxruntime')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, path], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("case", "runs_code"),
    [
        ("sklearn_pipeline", True),
        ("xgboost_booster", False),
        ("lightgbm_booster", False),
        ("lightgbm_classifier", True),
        ("torch_module", True),
        ("torch_state_dict", False),
        ("onnx", False),
        ("python_function", True),
    ],
)
def test_manifest_says_which_packages_run_code_on_load(
    case: str, runs_code: bool, fresh_results: dict[str, Any]
) -> None:
    result = fresh_results[case]
    if "skip" in result:
        pytest.skip(result["skip"])
    assert result["manifest"].runs_code_on_load is runs_code


def test_requirements_pin_the_flavor_library(fresh_results: dict[str, Any]) -> None:
    from importlib.metadata import version

    for case, dist in [
        ("sklearn_pipeline", "scikit-learn"),
        ("lightgbm_booster", "lightgbm"),
        ("onnx", "onnxruntime"),
    ]:
        result = fresh_results[case]
        if "skip" in result:
            continue
        reqs = result["manifest"].requirements
        assert f"{dist}=={version(dist)}" in reqs
        assert f"numpy=={version('numpy')}" in reqs


def test_onnx_to_onnx_refuses_a_non_numeric_example(cancer: Data) -> None:
    pytest.importorskip("skl2onnx")
    from sklearn.tree import DecisionTreeClassifier

    X, y = cancer
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X.to_numpy(), y)
    with pytest.raises(shipyard.InvalidInput, match="2-D numeric example"):
        shipyard.models.to_onnx(model, np.array(["a", "b"]))


def test_torch_state_dict_mode_needs_an_importable_class(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from shipyard.models.flavors.torch import TorchFlavor

    class Local(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x

    with pytest.raises(shipyard.InvalidInput, match="importable"):
        shipyard.save_model(Local(), tmp_path / "m", flavor=TorchFlavor(mode="state_dict"))
    assert not (tmp_path / "m").exists()


def test_xgboost_booster_package_has_no_pickle(fresh_results: dict[str, Any]) -> None:
    result = fresh_results["xgboost_booster"]
    if "skip" in result:
        pytest.skip(result["skip"])
    files = set(result["manifest"].content["files"])
    assert "model.ubj" in files
    assert not any(f.endswith(".pkl") for f in files)
