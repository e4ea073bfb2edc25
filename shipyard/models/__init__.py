"""Models: the package format, flavors, signatures and the model SDK.

* :mod:`.manifest`: the package folder and its ``shipyard-model.json``;
* :mod:`.flavors`: the flavor plugin interface and the built-in flavors;
* :mod:`.signature`: signatures, inferred from examples and enforced on ``predict``;
* :mod:`.package`: ``save_model`` and loading a package folder;
* :mod:`.sdk`: ``log_model`` into a run and ``load_model`` from a path, a run or the registry;
* :mod:`.mlflow_import`: MLflow model folders converted to packages and registered.
"""

from shipyard.models.flavors.base import Flavor, FlavorRegistry, get_flavor, register_flavor
from shipyard.models.flavors.onnx import to_onnx
from shipyard.models.manifest import MANIFEST, Manifest
from shipyard.models.mlflow_import import convert_mlflow_model, import_mlflow_model
from shipyard.models.package import LoadedModel, load_package, save_model
from shipyard.models.sdk import ModelInfo, load_model, log_model
from shipyard.models.signature import (
    ColSpec,
    Schema,
    Signature,
    TensorSpec,
    infer_signature,
)

__all__ = [
    "MANIFEST",
    "ColSpec",
    "Flavor",
    "FlavorRegistry",
    "LoadedModel",
    "Manifest",
    "ModelInfo",
    "Schema",
    "Signature",
    "TensorSpec",
    "convert_mlflow_model",
    "get_flavor",
    "import_mlflow_model",
    "infer_signature",
    "load_model",
    "load_package",
    "log_model",
    "register_flavor",
    "save_model",
    "to_onnx",
]
