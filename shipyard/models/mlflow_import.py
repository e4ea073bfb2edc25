"""Importing MLflow models: an MLflow model folder becomes a Shipyard package and a version.

An MLflow model folder holds an ``MLmodel`` YAML file (flavors, signature, input example) next
to the model's files, as ``mlflow.sklearn.save_model`` or ``mlflow.pyfunc.save_model`` write it
(or as ``mlflow artifacts download`` fetches a logged model). Two kinds are supported:

* **scikit-learn** (an ``sklearn`` flavor, or a ``python_function`` flavor whose loader module is
  ``mlflow.sklearn``): the ``pickled_model`` file is kept as it is and loaded by Shipyard's
  ``sklearn`` flavor. Its ``serialization_format`` may be ``pickle`` or ``cloudpickle`` (loading
  **runs code** from the file: import only models you trust) or ``skops`` (loaded by skops, which
  refuses types it does not trust; needs ``pip install skops``).
* **MLflow Python models** (``python_function`` with loader ``mlflow.pyfunc.model``: a
  cloudpickled ``mlflow.pyfunc.PythonModel`` and its artifacts): run by the ``python_function``
  flavor, which calls ``load_context`` and ``predict(context, data)``. Loading runs code and needs
  MLflow installed.

The MLflow signature (column- or tensor-based JSON) becomes a Shipyard
:class:`~shipyard.models.Signature` (``required: false`` columns are optional), and the input
example is converted to Shipyard's form. Importing copies files and runs nothing from them; the
pickle runs when the model is loaded. Models that bring a ``code`` folder, models-from-code
(``python_model: model.py``) and other flavors are refused with the reason.

    version = shipyard.import_mlflow_model("./mlflow-model", registered_model_name="churn")
    model = shipyard.load_model(f"models:/churn/{version.version}")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import validation
from shipyard._version import __version__
from shipyard.errors import (
    AlreadyExists,
    InvalidArtifactPath,
    InvalidInput,
    MissingDependency,
    NotFound,
    ShipyardError,
)
from shipyard.models.flavors.pyfunc import MLFLOW_PYTHON_MODEL
from shipyard.models.flavors.sklearn import SKOPS, skops_io
from shipyard.models.manifest import Manifest, content_of
from shipyard.models.package import INPUT_EXAMPLE, REQUIREMENTS
from shipyard.models.signature import COLUMN_TYPES, ColSpec, Schema, Signature, TensorSpec

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion
    from shipyard.workspace import Workspace

MLMODEL = "MLmodel"
SERIALIZATIONS = ("pickle", "cloudpickle", SKOPS)
_SKLEARN_LOADER = "mlflow.sklearn"
_PYFUNC_LOADER = "mlflow.pyfunc.model"
_MLFLOW_DISTRIBUTIONS = ("mlflow", "mlflow-skinny")


def is_mlflow_model(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an MLflow model folder (it holds an ``MLmodel`` file)."""
    return (Path(path) / MLMODEL).is_file()


def read_mlmodel(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``MLmodel`` file of an MLflow model folder.

    ``NotFound`` when there is none; ``InvalidInput`` when it is not YAML or has no flavors;
    ``MissingDependency`` when PyYAML is not installed."""
    path = Path(folder) / MLMODEL
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            f"{folder} is not an MLflow model folder: it has no {MLMODEL} file. Pass the folder "
            "mlflow.<flavor>.save_model wrote (or that `mlflow artifacts download` fetched)."
        ) from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise InvalidInput(f"{path} is not a readable text file ({exc}).") from None
    try:
        import yaml
    except ImportError as exc:
        raise MissingDependency(
            "Reading an MLflow MLmodel file needs PyYAML, which is not installed. Install it "
            "with: pip install pyyaml"
        ) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"{path} is not valid YAML ({' '.join(str(exc).split())}); the MLflow model is "
            "damaged. Save or download it again."
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("flavors"), dict) or not raw["flavors"]:
        raise InvalidInput(
            f"{path} is not an MLflow MLmodel file: it has no 'flavors' mapping. Save or "
            "download the model again."
        )
    return raw


# ---------------------------------------------------------------------------- the conversion


@dataclass
class _Plan:
    """What the Shipyard package of an MLflow model will hold."""

    flavor: str
    config: dict[str, Any]
    files: list[str]
    """Paths (files or folders) relative to the MLflow folder, copied as they are."""
    drop_requirements: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


def convert_mlflow_model(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    signature: Signature | None = None,
) -> Manifest:
    """Write the MLflow model folder ``path`` as a Shipyard package in the new folder ``dest``.

    ``signature`` replaces the one converted from ``MLmodel`` (use it when MLflow's has types
    Shipyard cannot enforce, such as arrays or objects). Raises ``AlreadyExists`` if ``dest``
    holds files; a failure leaves no folder behind. Runs nothing from the model's files."""
    src = Path(path)
    if src.is_file() and src.name == MLMODEL:
        src = src.parent
    if not src.is_dir():
        raise NotFound(f"No MLflow model at {src}: the folder does not exist.")
    mlmodel = read_mlmodel(src)
    plan = _plan(src, mlmodel)
    sig = signature if signature is not None else _signature(src, mlmodel)
    example, example_note = _input_example(src, mlmodel, sig)
    if sig is None and example is not None:
        sig = _signature_from_example(example)

    target = Path(dest).absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExists(f"{target} already exists and is not empty; pass a new folder.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        for rel in plan.files:
            _copy(src / rel, tmp / rel)
        if example is not None:
            (tmp / INPUT_EXAMPLE).write_text(json.dumps(example))
        requirements = _requirements(src, plan.drop_requirements)
        (tmp / REQUIREMENTS).write_text("".join(f"{r}\n" for r in requirements))
        notes = [*plan.notes, *([example_note] if example_note else [])]
        manifest = Manifest(
            predict_flavor=plan.flavor,
            flavors={plan.flavor: plan.config},
            signature=sig,
            input_example=INPUT_EXAMPLE if example is not None else None,
            python_version=str(_pyfunc(mlmodel).get("python_version") or ""),
            requirements=tuple(requirements),
            metadata={"imported_from": "mlflow", "mlflow": _provenance(src, mlmodel, notes)},
            content=content_of(tmp),
            shipyard_version=__version__,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        manifest.write(tmp)
        try:
            os.rename(tmp, target)
        except OSError as exc:
            raise AlreadyExists(
                f"{target} was filled by someone else during the conversion; pass a new folder."
            ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def import_mlflow_model(
    path: str | os.PathLike[str],
    registered_model_name: str,
    *,
    run_id: str | None = None,
    experiment_id: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    signature: Signature | None = None,
    workspace: Workspace | None = None,
) -> ModelVersion:
    """Convert the MLflow model folder ``path`` and register it as the next version of
    ``registered_model_name`` (created if needed). Returns the new version.

    The package is logged to run ``run_id`` (under ``model``), or to a new run in
    ``experiment_id`` (default: the Default experiment). Pickle and cloudpickle models **run
    code when loaded**: import only models you trust. ``workspace`` defaults to the SDK's.

        version = shipyard.import_mlflow_model("./mlflow-model", "churn")
    """
    from shipyard.models.sdk import _workspace
    from shipyard.registry.registry import Registry

    ws = _workspace(workspace)
    with tempfile.TemporaryDirectory(prefix="shipyard-mlflow-") as tmp:
        folder = Path(tmp) / "model"
        convert_mlflow_model(path, folder, signature=signature)
        return Registry(ws).register_package(
            registered_model_name,
            folder,
            run_id=run_id,
            experiment_id=experiment_id,
            description=description,
            tags=tags,
            run_tags={"shipyard.model.imported_from": "mlflow"},
        )


def _pyfunc(mlmodel: Mapping[str, Any]) -> dict[str, Any]:
    found = mlmodel["flavors"].get("python_function")
    return dict(found) if isinstance(found, dict) else {}


def _plan(folder: Path, mlmodel: Mapping[str, Any]) -> _Plan:
    flavors: Mapping[str, Any] = mlmodel["flavors"]
    pyfunc = _pyfunc(mlmodel)
    loader = pyfunc.get("loader_module")
    sklearn = flavors.get("sklearn")
    if isinstance(sklearn, dict) or loader == _SKLEARN_LOADER:
        return _sklearn_plan(folder, dict(sklearn or {}), pyfunc)
    if loader == _PYFUNC_LOADER:
        return _python_model_plan(folder, pyfunc)
    described = ", ".join(sorted(flavors))
    if loader:
        described += f" (python_function loader {loader})"
    raise InvalidInput(
        f"The MLflow model in {folder} has flavor(s) {described}, which Shipyard can't import: "
        "it imports scikit-learn models and MLflow Python models (python_function with "
        f"loader {_PYFUNC_LOADER}). Load it with MLflow and log it with shipyard.log_model "
        "instead.",
        details={"flavors": sorted(flavors)},
    )


def _sklearn_plan(folder: Path, sklearn: dict[str, Any], pyfunc: dict[str, Any]) -> _Plan:
    data = sklearn.get("pickled_model") or pyfunc.get("model_path") or pyfunc.get("data")
    data = _member(folder, data, "the sklearn model file (pickled_model)")
    serialization = str(sklearn.get("serialization_format") or "pickle")
    if serialization not in SERIALIZATIONS:
        raise InvalidInput(
            f"The MLflow sklearn model in {folder} uses serialization_format "
            f"{serialization!r}; Shipyard reads {', '.join(SERIALIZATIONS)}."
        )
    _refuse_code(folder, sklearn.get("code") or pyfunc.get("code"))
    config: dict[str, Any] = {
        "data": data,
        "serialization": serialization,
        "predict_fn": str(pyfunc.get("predict_fn") or "predict"),
        "runs_code_on_load": serialization != SKOPS,
    }
    if sklearn.get("sklearn_version"):
        config["library_versions"] = {"sklearn": str(sklearn["sklearn_version"])}
    if serialization == SKOPS:
        skops_io()  # MissingDependency now, rather than a version nobody here can load
        config["trusted_types"] = [str(t) for t in sklearn.get("skops_trusted_types") or []]
    return _Plan("sklearn", config, [data], drop_requirements=_MLFLOW_DISTRIBUTIONS)


def _python_model_plan(folder: Path, pyfunc: dict[str, Any]) -> _Plan:
    data = pyfunc.get("python_model")
    if isinstance(data, str) and data.endswith(".py"):
        raise InvalidInput(
            f"The MLflow model in {folder} is a model from code ({data}); Shipyard imports "
            "pickled Python models only. Log the model with shipyard.log_model instead."
        )
    data = _member(folder, data, "the Python model file (python_model)")
    _refuse_code(folder, pyfunc.get("code"))
    artifacts: dict[str, str] = {}
    for name, spec in dict(pyfunc.get("artifacts") or {}).items():
        rel = spec.get("path") if isinstance(spec, dict) else spec
        artifacts[str(name)] = _member(folder, rel, f"artifact {name!r}")
    config: dict[str, Any] = {
        "data": data,
        "serialization": "cloudpickle",
        "call": MLFLOW_PYTHON_MODEL,
        "artifacts": artifacts,
        "runs_code_on_load": True,
    }
    if pyfunc.get("model_config"):
        config["model_config"] = dict(pyfunc["model_config"])
    if pyfunc.get("cloudpickle_version"):
        config["library_versions"] = {"cloudpickle": str(pyfunc["cloudpickle_version"])}
    return _Plan("python_function", config, [data, *sorted(set(artifacts.values()))])


def _member(folder: Path, rel: Any, what: str) -> str:
    """``rel`` as a clean relative path of an existing file or folder inside ``folder``."""
    if not isinstance(rel, str) or not rel.strip():
        raise InvalidInput(f"{folder / MLMODEL} does not name {what}; the model is damaged.")
    try:
        clean = validation.artifact_path(rel.strip().removeprefix("./"))
    except InvalidArtifactPath:
        raise InvalidInput(
            f"{folder / MLMODEL} names {what} as {rel!r}, which is not a path inside the model "
            "folder; the model is damaged or was tampered with."
        ) from None
    if not (folder / clean).exists():
        raise InvalidInput(
            f"{folder / MLMODEL} names {what} {clean!r}, but the folder has no such file; copy "
            "the whole MLflow model folder."
        )
    return clean


def _refuse_code(folder: Path, code: Any) -> None:
    if code:
        raise InvalidInput(
            f"The MLflow model in {folder} brings its own code folder ({code!r}); Shipyard "
            "does not import models that need code outside the package. Make that code an "
            "installed package and save the model again without code_paths."
        )


def _copy(src: Path, dest: Path) -> None:
    """Copy a file or folder; symbolic links are refused (they could pull in files from
    outside the model folder)."""
    links = [src] if src.is_symlink() else []
    if src.is_dir() and not links:
        links = [p for p in src.rglob("*") if p.is_symlink()]
    if links:
        raise InvalidInput(
            f"{links[0]} is a symbolic link; Shipyard imports only plain files from an MLflow "
            "model folder. Replace the link with the file it points at."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copyfile(src, dest)


def _requirements(folder: Path, drop: tuple[str, ...]) -> list[str]:
    path = folder / REQUIREMENTS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        req = line.split("#", 1)[0].strip()
        if not req or req.startswith("-"):
            continue
        name = req
        for sep in ("==", ">=", "<=", "~=", "!=", ">", "<", "[", ";", " "):
            name = name.split(sep)[0]
        if name.strip().lower().replace("_", "-") not in drop:
            out.append(req)
    return out


def _provenance(folder: Path, mlmodel: Mapping[str, Any], notes: list[str]) -> dict[str, Any]:
    keep = ("mlflow_version", "model_uuid", "model_id", "run_id", "utc_time_created")
    out: dict[str, Any] = {k: str(mlmodel[k]) for k in keep if mlmodel.get(k) is not None}
    out["source"] = str(folder.absolute())
    out["flavors"] = sorted(mlmodel["flavors"])
    loader = _pyfunc(mlmodel).get("loader_module")
    if loader:
        out["loader_module"] = str(loader)
    raw_sig = mlmodel.get("signature")
    if isinstance(raw_sig, dict):
        out["signature"] = {k: v for k, v in raw_sig.items() if isinstance(v, str | type(None))}
    if notes:
        out["notes"] = notes
    return out


# ---------------------------------------------------------------------------- signature


def _signature(folder: Path, mlmodel: Mapping[str, Any]) -> Signature | None:
    raw = mlmodel.get("signature")
    if not raw:
        return None
    where = f"{folder / MLMODEL}"
    if not isinstance(raw, dict) or not raw.get("inputs"):
        raise InvalidInput(f"{where} has a signature without inputs; the model is damaged.")
    inputs = _schema(raw["inputs"], f"{where} signature inputs", outputs=False)
    outputs = None
    if raw.get("outputs"):
        try:
            outputs = _schema(raw["outputs"], f"{where} signature outputs", outputs=True)
        except InvalidInput:
            outputs = None  # outputs are documentation, not enforced: keep the inputs
    return Signature(inputs, outputs)


def _schema(raw: Any, where: str, *, outputs: bool) -> Schema:
    """An MLflow schema (a JSON string of a list of column or tensor specs) as a Schema."""
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where} is not valid JSON ({exc}); the model is damaged.") from None
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise InvalidInput(f"{where} is not a list of column or tensor specs.")
    if all(s.get("type") == "tensor" for s in specs):
        return Schema(tensors=tuple(_tensor(s, where) for s in specs))
    if any(s.get("type") == "tensor" for s in specs):
        raise InvalidInput(f"{where} mixes columns and tensors; the model is damaged.")
    unnamed = [s for s in specs if not s.get("name")]
    columns = []
    for i, spec in enumerate(specs):
        kind = spec.get("type")
        name = spec.get("name")
        if not name:
            name = "prediction" if outputs and len(unnamed) == 1 else str(i)
        if kind not in COLUMN_TYPES:
            raise InvalidInput(
                f"{where}: column {name!r} has type {json.dumps(kind)}, which Shipyard cannot "
                f"enforce (it knows {', '.join(COLUMN_TYPES)}). Pass signature= to "
                "import_mlflow_model with the signature to record.",
                details={"column": name, "type": kind},
            )
        columns.append(ColSpec(str(name), str(kind), optional=spec.get("required") is False))
    return Schema(columns=tuple(columns))


def _tensor(spec: dict[str, Any], where: str) -> TensorSpec:
    inner = spec.get("tensor-spec")
    if not isinstance(inner, dict) or not inner.get("dtype") or "shape" not in inner:
        raise InvalidInput(f"{where}: a tensor spec has no dtype or shape.")
    try:
        shape = tuple(int(d) for d in inner["shape"])
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{where}: tensor shape {inner['shape']!r} is not a list of ints."
        ) from None
    dtype = str(inner["dtype"])
    return TensorSpec("str" if dtype in ("str", "object") else dtype, shape, spec.get("name"))


# ---------------------------------------------------------------------------- input example


def _input_example(
    folder: Path, mlmodel: Mapping[str, Any], sig: Signature | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The MLflow input example in Shipyard's JSON form, or ``None`` and why not."""
    info = mlmodel.get("saved_input_example_info")
    if not isinstance(info, dict) or not info.get("artifact_path"):
        return None, None
    try:
        rel = _member(folder, info["artifact_path"], "the input example")
        raw = json.loads((folder / rel).read_text(encoding="utf-8"))
    except (ShipyardError, ValueError, OSError) as exc:
        return None, f"input example not imported: {exc}"
    kind = info.get("type")
    if kind == "dataframe":
        return _dataframe_example(raw, info.get("pandas_orient"))
    if kind == "ndarray":
        return _ndarray_example(raw, sig)
    return None, f"input example of type {kind!r} not imported (Shipyard keeps tables and arrays)"


def _dataframe_example(raw: Any, orient: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(raw, dict) and "dataframe_split" in raw:
        raw, orient = raw["dataframe_split"], "split"
    elif isinstance(raw, dict) and "dataframe_records" in raw:
        raw, orient = raw["dataframe_records"], "records"
    if isinstance(raw, dict) and isinstance(raw.get("columns"), list) and "data" in raw:
        columns = [str(c) for c in raw["columns"]]
        rows = raw["data"]
        if isinstance(rows, list) and all(
            isinstance(r, list) and len(r) == len(columns) for r in rows
        ):
            return {"type": "dataframe", "columns": columns, "data": rows}, None
    if isinstance(raw, list) and raw and all(isinstance(r, dict) for r in raw):
        names: dict[str, None] = {}
        for record in raw:
            names.update(dict.fromkeys(str(k) for k in record))
        columns = list(names)
        rows = [[record.get(c) for c in columns] for record in raw]
        return {"type": "dataframe", "columns": columns, "data": rows}, None
    return None, f"input example (a DataFrame in orient {orient!r}) not imported: unreadable"


def _ndarray_example(raw: Any, sig: Signature | None) -> tuple[dict[str, Any] | None, str | None]:
    tensors = sig.inputs.tensors if sig is not None else ()
    if isinstance(raw, dict) and set(raw) == {"inputs"}:
        raw = raw["inputs"]
    if isinstance(raw, list):
        out: dict[str, Any] = {"type": "ndarray", "inputs": raw}
        if len(tensors) == 1 and tensors[0].dtype != "str":
            out["dtype"] = tensors[0].dtype
        return out, None
    if isinstance(raw, dict) and raw:
        dtypes = {t.name: t.dtype for t in tensors if t.name and t.dtype != "str"}
        return {
            "type": "tensors",
            "inputs": {str(k): v for k, v in raw.items()},
            "dtypes": {str(k): dtypes[k] for k in raw if k in dtypes},
        }, None
    return None, "input example (an array) not imported: unreadable"


def _signature_from_example(example: dict[str, Any]) -> Signature | None:
    """The input schema of a converted example, when the MLflow model recorded no signature."""
    try:
        from shipyard.models.signature import example_from_json, infer_schema

        return Signature(infer_schema(example_from_json(example, None)))
    except (ImportError, ShipyardError, ValueError, TypeError):
        return None


__all__ = ["MLMODEL", "convert_mlflow_model", "import_mlflow_model", "is_mlflow_model"]
