"""ONNX models, run by onnxruntime on CPU (no pickle: loading runs no code from the package).

:func:`to_onnx` converts a scikit-learn model with skl2onnx, so a model can be served fast and
safely through this flavor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors.base import Flavor, loaded, require

DATA = "model.onnx"
PREDICT_OUTPUT_KEY = "shipyard.predict_output"

_ORT_NUMPY = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor(Flavor):
    name = "onnx"
    modules = ("onnx", "onnxruntime")

    def handles(self, model: Any) -> bool:
        onnx = loaded("onnx")
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: Any, path: Path) -> dict[str, Any]:
        onnx = require("onnx", "onnx")
        onnx.checker.check_model(model)
        (path / DATA).write_bytes(model.SerializeToString())
        outputs = [o.name for o in model.graph.output]
        props = {p.key: p.value for p in model.metadata_props}
        return {
            "data": DATA,
            "inputs": [i.name for i in model.graph.input],
            "outputs": outputs,
            "predict_output": props.get(PREDICT_OUTPUT_KEY)
            or (outputs[0] if len(outputs) == 1 else None),
            "opset": max((o.version for o in model.opset_import), default=None),
        }

    def load(self, path: Path, config: dict[str, Any]) -> Any:
        ort = require("onnxruntime", "onnx")
        return ort.InferenceSession(
            str(path / config.get("data", DATA)), providers=["CPUExecutionProvider"]
        )

    def predict(self, model: Any, data: Any, config: dict[str, Any]) -> Any:
        import numpy as np

        inputs = model.get_inputs()
        if isinstance(data, dict):
            feed = {
                i.name: _cast(np.asarray(data[i.name]), i.type) for i in inputs if i.name in data
            }
        elif hasattr(data, "columns") and len(inputs) > 1:
            feed = {i.name: _cast(data[i.name].to_numpy().reshape(-1, 1), i.type) for i in inputs}
        else:
            if len(inputs) != 1:
                raise InvalidInput(
                    f"This ONNX model takes inputs {[i.name for i in inputs]}; send a dict or a "
                    "table with those names."
                )
            arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            feed = {inputs[0].name: _cast(arr, inputs[0].type)}
        names = [o.name for o in model.get_outputs()]
        wanted = config.get("predict_output")
        if wanted:
            return model.run([wanted], feed)[0]
        return dict(zip(names, model.run(names, feed), strict=True))


def _cast(arr: Any, ort_type: str) -> Any:
    dtype = _ORT_NUMPY.get(ort_type)
    return arr.astype(dtype) if dtype and arr.dtype != dtype else arr


def to_onnx(model: Any, example: Any, *, target_opset: int | None = None) -> Any:
    """Convert a fitted scikit-learn model (or pipeline) to an ONNX ``ModelProto`` with skl2onnx.

    ``example`` (a DataFrame or 2-D array of numbers, a few rows are enough) gives the input
    width; the ONNX model takes one float32 tensor ``X``. Classifiers return plain arrays (no
    ZipMap), and the converted model's ``predict`` returns the labels, like scikit-learn's:

        onnx_model = shipyard.models.to_onnx(pipeline, X_train[:5])
        shipyard.save_model(onnx_model, "model-onnx", input_example=X_train[:5])
    """
    import numpy as np

    require("onnx", "onnx")
    skl2onnx = require("skl2onnx", "onnx")
    arr = example.to_numpy() if hasattr(example, "to_numpy") else np.asarray(example)
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise InvalidInput(
            f"to_onnx needs a 2-D numeric example; got shape {arr.shape} and dtype {arr.dtype}."
        )
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    try:
        onx = skl2onnx.to_onnx(
            model, arr[:1].astype(np.float32), options=options, target_opset=target_opset
        )
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        raise InvalidInput(
            f"skl2onnx cannot convert {type(model).__qualname__}: {exc}. Save it with the "
            "sklearn flavor instead."
        ) from exc
    outputs = [o.name for o in onx.graph.output]
    if outputs:
        prop = onx.metadata_props.add()
        prop.key, prop.value = PREDICT_OUTPUT_KEY, outputs[0]
    return onx
