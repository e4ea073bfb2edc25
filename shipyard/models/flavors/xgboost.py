"""XGBoost boosters and sklearn-API models, in XGBoost's own UBJSON format (no pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.models.flavors.base import Flavor, loaded, require

DATA = "model.ubj"


class XGBoostFlavor(Flavor):
    name = "xgboost"
    modules = ("xgboost",)

    def handles(self, model: Any) -> bool:
        xgb = loaded("xgboost")
        return xgb is not None and isinstance(model, xgb.Booster | xgb.XGBModel)

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        xgb = require("xgboost", "xgboost")
        model.save_model(str(path / DATA))
        if isinstance(model, xgb.Booster):
            return {"data": DATA, "model_class": "Booster"}
        cls = type(model)
        if not cls.__module__.startswith("xgboost"):
            raise _subclass_error(cls)
        return {"data": DATA, "model_class": cls.__name__}

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        xgb = require("xgboost", "xgboost")
        cls = getattr(xgb, str(config.get("model_class", "Booster")))
        model = cls()
        model.load_model(str(path / config.get("data", DATA)))
        return model

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        xgb = require("xgboost", "xgboost")
        if isinstance(model, xgb.Booster):
            if hasattr(data, "columns") and model.feature_names is None:
                data = data.to_numpy()
            return model.predict(xgb.DMatrix(data))
        if hasattr(data, "columns") and getattr(model, "feature_names_in_", None) is None:
            data = data.to_numpy()
        return model.predict(data)


def _subclass_error(cls: type) -> Exception:
    from shipyard.errors import InvalidInput

    return InvalidInput(
        f"{cls.__qualname__} subclasses an XGBoost model; the xgboost flavor restores only "
        "XGBoost's own classes. Save it with flavor='python_function' instead."
    )
