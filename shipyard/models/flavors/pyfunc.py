"""The generic Python-function flavor: any object with ``predict`` (or a plain function),
serialized with cloudpickle. Loading runs code: load only packages you trust.

It also runs MLflow ``PythonModel`` objects imported by :mod:`shipyard.models.mlflow_import`
(``call: mlflow_python_model``): loading unpickles the object (MLflow must be installed, as its
class derives from ``mlflow.pyfunc.PythonModel``), hands its ``load_context`` a context whose
``artifacts`` map each name to the file in the package, and ``predict`` calls
``predict(context, data)`` (or ``predict(data)`` for models written without a context).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.models.flavors import _pickle
from shipyard.models.flavors.base import Flavor, require

DATA = "python_model.pkl"
MLFLOW_PYTHON_MODEL = "mlflow_python_model"


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
        model = _pickle.load(path / config.get("data", DATA))
        if config.get("call") == MLFLOW_PYTHON_MODEL:
            return _MlflowPythonModel.wrap(model, path, config)
        return model

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        if config.get("call") == "__call__":
            return model(data)
        return model.predict(data)


@dataclass
class MlflowContext:
    """What an MLflow ``PythonModel`` receives as ``context``: its artifacts' local paths and
    its model config."""

    artifacts: dict[str, str] = field(default_factory=dict)
    model_config: dict[str, Any] = field(default_factory=dict)


class _MlflowPythonModel:
    """An MLflow ``PythonModel`` with its context, answering ``predict(data)``."""

    def __init__(self, model: Any, context: MlflowContext) -> None:
        self.model = model
        self.context = context
        self._with_context = _takes_context(model.predict)

    @classmethod
    def wrap(cls, model: Any, path: Path, config: dict[str, Any]) -> _MlflowPythonModel:
        artifacts = {
            str(k): str(path / str(v)) for k, v in dict(config.get("artifacts") or {}).items()
        }
        context = MlflowContext(artifacts, dict(config.get("model_config") or {}))
        load_context = getattr(model, "load_context", None)
        if callable(load_context):
            load_context(context)
        return cls(model, context)

    def predict(self, data: Any) -> Any:
        if self._with_context:
            return self.model.predict(self.context, data)
        return self.model.predict(data)


def _takes_context(predict: Any) -> bool:
    """Whether ``predict`` is MLflow's ``predict(context, model_input, ...)`` form."""
    try:
        params = list(inspect.signature(predict).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return (bool(params) and params[0].name == "context") or len(positional) >= 2
