"""LightGBM: a ``Booster`` in LightGBM's text format; sklearn-API models (``LGBMClassifier``
...) pickled, which keeps their classes and ``predict`` (loading runs code: trust the source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.models.flavors import _pickle
from shipyard.models.flavors.base import Flavor, loaded, require

BOOSTER = "model.txt"
PICKLE = "model.pkl"


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    modules = ("lightgbm",)
    runs_code_on_load = True

    def handles(self, model: Any) -> bool:
        lgb = loaded("lightgbm")
        return lgb is not None and isinstance(model, lgb.Booster | lgb.LGBMModel)

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        lgb = require("lightgbm", "lightgbm")
        if isinstance(model, lgb.Booster):
            model.save_model(str(path / BOOSTER))
            return {"data": BOOSTER, "serialization": "lightgbm_text", "runs_code_on_load": False}
        _pickle.dump(model, path / PICKLE)
        return {"data": PICKLE, "serialization": "pickle"}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        lgb = require("lightgbm", "lightgbm")
        if config.get("serialization") == "lightgbm_text":
            return lgb.Booster(model_file=str(path / config["data"]))
        return _pickle.load(path / config.get("data", PICKLE))

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        if hasattr(data, "columns") and getattr(model, "feature_names_in_", None) is None:
            lgb = require("lightgbm", "lightgbm")
            if not isinstance(model, lgb.Booster):
                data = data.to_numpy()
        return model.predict(data)
