"""How step outputs become files, by type, and back.

========================  =========  ==========================================
value                     kind       files (under ``output/`` of the step run)
========================  =========  ==========================================
pandas DataFrame          parquet    ``data.parquet`` (needs pyarrow)
pyarrow Table             arrow      ``data.parquet``
numpy array               npy        ``data.npy`` (no pickled objects)
a model a flavor saves    model      the model package (``model/...``)
JSON-able value           json       ``data.json``
anything else             pickle     ``data.pkl``, with a :class:`ShipyardWarning`
========================  =========  ==========================================

Workers materialize (:func:`dump`) and the driver stores the files, so serialization runs where
the step ran. The output's digest is the sha256 of its file (of the sorted file list for a
model package), which is what downstream cache keys use.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

OUTPUT_DIR = "output"
_SINGLE = {
    "parquet": "data.parquet",
    "arrow": "data.parquet",
    "npy": "data.npy",
    "json": "data.json",
    "pickle": "data.pkl",
}


@dataclass
class Materialized:
    """A step output as files: ``kind`` says how to read them back."""

    kind: str
    files: dict[str, bytes] = field(default_factory=dict)
    type_name: str = ""

    @property
    def digest(self) -> str:
        if len(self.files) == 1:
            return hashlib.sha256(next(iter(self.files.values()))).hexdigest()
        h = hashlib.sha256()
        for path in sorted(self.files):
            h.update(f"{path}\0{hashlib.sha256(self.files[path]).hexdigest()}\n".encode())
        return h.hexdigest()

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _model_flavor(value: Any) -> Any:
    from shipyard.models.flavors.base import flavors

    for flavor in flavors().all():
        if flavor.name != "pyfunc" and flavor.handles(value):
            return flavor
    return None


def dump(value: Any) -> Materialized:
    """``value`` as files, by type (see the module docstring)."""
    module = _module_of(value)
    type_name = f"{type(value).__module__}.{type(value).__qualname__}"
    if module == "pandas" and type(value).__name__ == "DataFrame":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pass
        else:
            buf = io.BytesIO()
            value.to_parquet(buf)
            return Materialized("parquet", {_SINGLE["parquet"]: buf.getvalue()}, type_name)
    if module == "pyarrow" and type(value).__name__ == "Table":
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(value, buf)
        return Materialized("arrow", {_SINGLE["arrow"]: buf.getvalue()}, type_name)
    if module == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return Materialized("npy", {_SINGLE["npy"]: buf.getvalue()}, type_name)
    if _is_json(value):
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        return Materialized("json", {_SINGLE["json"]: data}, type_name)
    flavor = _model_flavor(value)
    if flavor is not None:
        from shipyard.models.package import save_model

        with tempfile.TemporaryDirectory(prefix="shipyard-step-model-") as tmp:
            folder = Path(tmp) / "model"
            save_model(value, folder, flavor=flavor)
            files = {
                f"model/{p.relative_to(folder).as_posix()}": p.read_bytes()
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            }
        return Materialized("model", files, type_name)
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise InvalidInput(
            f"the step returned a {type_name}, which has no storage format and can't be "
            f"pickled ({exc}); return a DataFrame, an array, a model or JSON-able data."
        ) from exc
    return Materialized("pickle", {_SINGLE["pickle"]: data}, type_name)


def load(kind: str, files: dict[str, bytes]) -> Any:
    """The value files written by :func:`dump` hold."""
    if kind == "json":
        return json.loads(files[_SINGLE["json"]])
    if kind == "npy":
        import numpy as np

        return np.load(io.BytesIO(files[_SINGLE["npy"]]), allow_pickle=False)
    if kind == "parquet":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(files[_SINGLE["parquet"]]))
    if kind == "arrow":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(files[_SINGLE["arrow"]]))
    if kind == "pickle":
        return pickle.loads(files[_SINGLE["pickle"]])
    if kind == "model":
        from shipyard.models.package import load_package

        with tempfile.TemporaryDirectory(prefix="shipyard-step-model-") as tmp:
            folder = Path(tmp)
            for path, data in files.items():
                target = folder / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            return load_package(folder / "model").unwrap()
    raise InvalidInput(f"unknown step output kind {kind!r}; was it written by a newer Shipyard?")
