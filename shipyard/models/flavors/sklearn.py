"""scikit-learn estimators and pipelines, pickled (loading runs code: trust the source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.models.flavors import _pickle
from shipyard.models.flavors.base import Flavor, loaded, require

DATA = "model.pkl"


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
        return _pickle.load(path / config.get("data", DATA))

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        return model.predict(without_names_if_unfitted_with_them(model, data))


def without_names_if_unfitted_with_them(model: Any, data: Any) -> Any:
    """A DataFrame becomes an array for a model fitted on arrays (sklearn warns otherwise)."""
    if hasattr(data, "columns") and getattr(model, "feature_names_in_", None) is None:
        return data.to_numpy()
    return data
