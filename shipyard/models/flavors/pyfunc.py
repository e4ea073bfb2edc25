"""The generic Python-function flavor: any object with ``predict`` (or a plain function),
serialized with cloudpickle. Loading runs code: load only packages you trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.models.flavors import _pickle
from shipyard.models.flavors.base import Flavor, require

DATA = "python_model.pkl"


class PythonFunctionFlavor(Flavor):
    name = "python_function"
    modules = ("cloudpickle",)
    runs_code_on_load = True

    def handles(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None)) or (
            callable(model) and not isinstance(model, type)
        )

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        cloudpickle = require("cloudpickle", "pyfunc")
        _pickle.dump(model, path / DATA, module=cloudpickle)
        has_predict = callable(getattr(model, "predict", None))
        return {
            "data": DATA,
            "serialization": "cloudpickle",
            "call": "predict" if has_predict else "__call__",
        }

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        require("cloudpickle", "pyfunc")
        return _pickle.load(path / config.get("data", DATA))

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        if config.get("call") == "__call__":
            return model(data)
        return model.predict(data)
