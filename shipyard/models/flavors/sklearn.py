"""scikit-learn estimators and pipelines, pickled (loading runs code: trust the source).

Packages imported from MLflow (:mod:`shipyard.models.mlflow_import`) keep MLflow's file as it
was: a pickle or cloudpickle file (read by the same loader, and running code the same way), or a
skops file (``serialization: skops``), which skops loads without running pickle code, refusing
any type outside skops' defaults and the package's ``trusted_types``. skops is optional:
``pip install skops``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, MissingDependency
from shipyard.models.flavors import _pickle
from shipyard.models.flavors.base import Flavor, loaded, require

if TYPE_CHECKING:
    from collections.abc import Callable

DATA = "model.pkl"
SKOPS = "skops"


class SklearnFlavor(Flavor):
    name = "sklearn"
    modules = ("sklearn",)
    runs_code_on_load = True

    def handles(self, model: Any) -> bool:
        base = loaded("sklearn.base")
        return base is not None and isinstance(model, base.BaseEstimator)

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        _pickle.dump(model, path / DATA)
        return {
            "data": DATA,
            "serialization": "pickle",
            "estimator": f"{type(model).__module__}.{type(model).__qualname__}",
            "predict_fn": "predict",
        }

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        require("sklearn", "sklearn")
        data = path / config.get("data", DATA)
        if config.get("serialization") == SKOPS:
            return load_skops(data, config.get("trusted_types") or [])
        return _pickle.load(data)

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        fn = getattr(model, str(config.get("predict_fn") or "predict"))
        return fn(without_names_if_unfitted_with_them(model, data))

    def matrix_predictor(self, model: Any, config: dict[str, Any]) -> Callable[[Any], Any] | None:
        return forest_predictor(model, str(config.get("predict_fn") or "predict"))


def skops_io() -> Any:
    """``skops.io``, or MissingDependency naming the package to install."""
    try:
        return importlib.import_module("skops.io")
    except ImportError as exc:
        raise MissingDependency(
            "This scikit-learn model is stored in the skops format, and the 'skops' package is "
            "not installed. Install it with: pip install skops"
        ) from exc


def load_skops(path: Path, trusted_types: list[str]) -> Any:
    """Load a skops file, trusting skops' default types and ``trusted_types`` only."""
    sio = skops_io()
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted_types]
    if untrusted:
        raise InvalidInput(
            f"The skops file {path.name} contains types that are not trusted: "
            f"{', '.join(untrusted)}. Check them, then list them in the package's "
            "trusted_types (or re-import the MLflow model with skops_trusted_types set)."
        )
    return sio.load(path, trusted=list(trusted_types))


def without_names_if_unfitted_with_them(model: Any, data: Any) -> Any:
    """A DataFrame becomes an array for a model fitted on arrays (sklearn warns otherwise)."""
    if hasattr(data, "columns") and getattr(model, "feature_names_in_", None) is None:
        return data.to_numpy()
    return data


def forest_predictor(model: Any, predict_fn: str) -> Callable[[Any], Any] | None:
    """``predict`` (or a classifier's ``predict_proba``) of a single-output random forest or
    extra-trees ensemble, for a float64 matrix, without scikit-learn's per-tree input checks and
    joblib dispatch, which cost far more than the trees on a few rows (about 4 ms of a 100-tree
    forest's 5 ms for one row). The arithmetic is scikit-learn's own: each tree's
    ``tree_.predict`` on the float32 matrix, summed in estimator order in float64, divided by the
    number of trees, the class taken by ``argmax``. Matrices it was not checked for (another
    dtype or width, no rows, values not finite as float32) go to the estimator itself, so they
    fail or answer exactly as scikit-learn does. A forest fitted with ``n_jobs`` other than 1
    sums its trees in whatever order its threads finish, so its own answers vary in the last
    bits from call to call; this sums in estimator order, one of those answers."""
    ensemble = loaded("sklearn.ensemble")
    if ensemble is None:
        return None
    classifiers = (ensemble.RandomForestClassifier, ensemble.ExtraTreesClassifier)
    regressors = (ensemble.RandomForestRegressor, ensemble.ExtraTreesRegressor)
    classifier = type(model) in classifiers
    if not classifier and type(model) not in regressors:
        return None
    if getattr(model, "n_outputs_", None) != 1 or predict_fn not in ("predict", "predict_proba"):
        return None
    if predict_fn == "predict_proba" and not classifier:
        return None
    import numpy as np

    slow = getattr(model, predict_fn)
    trees = [estimator.tree_ for estimator in model.estimators_]
    width = model.n_features_in_
    n_classes = int(model.n_classes_) if classifier else 1
    classes = model.classes_ if classifier else None

    def predict(matrix: Any) -> Any:
        if (
            not isinstance(matrix, np.ndarray)
            or matrix.dtype not in (np.float64, np.float32)
            or matrix.ndim != 2
            or matrix.shape[0] == 0
            or matrix.shape[1] != width
        ):
            return slow(matrix)
        with np.errstate(over="ignore"):  # an overflow to inf is caught just below
            x = np.ascontiguousarray(matrix, dtype=np.float32)
        if not np.isfinite(x).all():  # after the cast: 1e39 is finite in float64, not float32
            return slow(matrix)
        total = np.zeros((x.shape[0], n_classes), dtype=np.float64)
        for tree in trees:
            total += tree.predict(x)[:, :n_classes]
        total /= len(trees)
        if classes is None:
            return total[:, 0]
        if predict_fn == "predict_proba":
            return total
        return classes.take(np.argmax(total, axis=1), axis=0)

    return predict
