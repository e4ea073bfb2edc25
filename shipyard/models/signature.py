"""Model signatures: what a model takes and returns, inferred from examples, enforced on predict.

A :class:`Signature` holds an input :class:`Schema` and, optionally, an output one. A schema is
either a list of named columns (:class:`ColSpec`, for tables) or a list of tensors
(:class:`TensorSpec`, for arrays and dicts of arrays):

    >>> sig = infer_signature(train_df, model.predict(train_df))
    >>> sig.inputs.columns[0]
    ColSpec(name='age', type='long', optional=False)

:func:`enforce` is what a loaded model's ``predict`` runs first. For a column schema it

* raises :class:`~shipyard.errors.InvalidInput` naming a missing (non-optional) column;
* raises :class:`~shipyard.errors.InvalidInput` naming a column whose type cannot be converted
  safely, with the expected and the received type;
* widens safe types (``integer -> long``, ``integer/long -> double``, ``float -> double``) to
  the recorded one;
* drops extra columns and puts the columns in the recorded order.

For a tensor schema it checks dtypes the same way and the dimensions that are not ``-1``.

Column types use MLflow's names: ``boolean``, ``integer`` (int32), ``long`` (int64), ``float``
(float32), ``double`` (float64), ``string``, ``binary``, ``datetime``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMN_TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")

# The column types each recorded type accepts besides itself (conversions that lose nothing).
_WIDENINGS: dict[str, frozenset[str]] = {
    "long": frozenset({"integer"}),
    "float": frozenset(),
    "double": frozenset({"integer", "long", "float"}),
}

_NUMPY_TYPE = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "datetime": "datetime64[ns]",
}


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One named column of a table: its type and whether it may be absent."""

    name: str
    type: str
    optional: bool = False

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise InvalidInput(
                f"Column {self.name!r} has unknown type {self.type!r}; use one of "
                f"{', '.join(COLUMN_TYPES)}."
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.optional:
            out["optional"] = True
        return out


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An array: numpy dtype name and shape (``-1`` for a dimension of any size)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape)}
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True, slots=True)
class Schema:
    """Columns (a table) or tensors (arrays), never a mix."""

    columns: tuple[ColSpec, ...] = ()
    tensors: tuple[TensorSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.columns and self.tensors:
            raise InvalidInput("A schema holds columns or tensors, not both.")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise InvalidInput(f"A schema names each column once; got {names}.")

    @property
    def is_tensor(self) -> bool:
        return bool(self.tensors)

    def to_dict(self) -> dict[str, Any]:
        if self.tensors:
            return {"type": "tensors", "tensors": [t.to_dict() for t in self.tensors]}
        return {"type": "columns", "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Schema:
        kind = raw.get("type")
        if kind == "tensors":
            return cls(
                tensors=tuple(
                    TensorSpec(str(t["dtype"]), tuple(int(d) for d in t["shape"]), t.get("name"))
                    for t in raw["tensors"]
                )
            )
        if kind == "columns":
            return cls(
                columns=tuple(
                    ColSpec(str(c["name"]), str(c["type"]), bool(c.get("optional", False)))
                    for c in raw["columns"]
                )
            )
        raise InvalidInput(f"Schema type {kind!r} is unknown; expected 'columns' or 'tensors'.")


@dataclass(frozen=True, slots=True)
class Signature:
    """The inputs a model takes and (optionally) the outputs it returns."""

    inputs: Schema
    outputs: Schema | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "outputs": self.outputs.to_dict() if self.outputs is not None else None,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Signature:
        outputs = raw.get("outputs")
        return cls(Schema.from_dict(raw["inputs"]), Schema.from_dict(outputs) if outputs else None)


# ---------------------------------------------------------------------- inference


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """The signature of a model that takes ``model_input`` (and returns ``model_output``).

    Accepts a pandas DataFrame or Series, a numpy array (or list), or a dict of arrays.
    """
    return Signature(
        infer_schema(model_input), infer_schema(model_output) if model_output is not None else None
    )


def infer_schema(data: Any) -> Schema:
    """The schema of one example (see :func:`infer_signature`)."""
    import numpy as np

    pd = _pandas()
    if pd is not None and isinstance(data, pd.DataFrame):
        return Schema(
            columns=tuple(ColSpec(str(c), _column_type(data[c], str(c))) for c in data.columns)
        )
    if pd is not None and isinstance(data, pd.Series):
        name = str(data.name) if data.name is not None else "prediction"
        return Schema(columns=(ColSpec(name, _column_type(data, name)),))
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInput("Cannot infer a signature from an empty dict.")
        return Schema(tensors=tuple(_tensor_spec(np.asarray(v), str(k)) for k, v in data.items()))
    if isinstance(data, np.ndarray | list | tuple):
        return Schema(tensors=(_tensor_spec(np.asarray(data), None),))
    raise InvalidInput(
        f"Cannot infer a signature from a {type(data).__name__}; pass a pandas DataFrame, a "
        "numpy array or a dict of arrays, or build a Signature yourself."
    )


def _tensor_spec(arr: np.ndarray, name: str | None) -> TensorSpec:
    if arr.dtype.kind == "O":
        raise InvalidInput(
            f"Cannot infer a tensor type for {name or 'the input'}: its values are Python objects; "
            "convert it to a numeric or string array first."
        )
    shape = (-1, *arr.shape[1:]) if arr.ndim else ()
    return TensorSpec(arr.dtype.name if arr.dtype.kind != "U" else "str", shape, name)


def _column_type(col: pd.Series, name: str) -> str:
    found = _series_type(col)
    if found is None:
        raise InvalidInput(
            f"Cannot infer the type of column {name!r} (dtype {col.dtype}); its values mix types. "
            "Convert it to one type, or build a Signature yourself."
        )
    return found


def _series_type(col: pd.Series) -> str | None:
    import numpy as np

    dtype = col.dtype
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        size = np.dtype(dtype).itemsize if isinstance(dtype, np.dtype) else dtype.itemsize
        if (kind == "i" and size <= 4) or (kind == "u" and size <= 2):
            return "integer"
        return "long"
    if kind == "f":
        return "float" if dtype.itemsize <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind in "OUT" or str(dtype) in ("string", "str"):
        values = col.dropna()
        if values.empty or all(isinstance(v, str) for v in values):
            return "string"
        if all(isinstance(v, bytes | bytearray) for v in values):
            return "binary"
        return None
    return None


# ---------------------------------------------------------------------- enforcement


def enforce(schema: Schema, data: Any) -> Any:
    """Check ``data`` against ``schema`` and return it converted (see the module docstring)."""
    if schema.is_tensor:
        return _enforce_tensors(schema, data)
    return _enforce_columns(schema, data)


def _enforce_columns(schema: Schema, data: Any) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(data, Mapping):
        data = pd.DataFrame({k: np.atleast_1d(v) for k, v in data.items()})
    elif isinstance(data, list) and data and isinstance(data[0], Mapping):
        data = pd.DataFrame(data)
    elif isinstance(data, np.ndarray | list):
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != len(schema.columns):
            raise InvalidInput(
                f"The model expects a table of {_names(schema)}; "
                f"got an array of shape {arr.shape}. Send a DataFrame or a dict of columns."
            )
        data = pd.DataFrame(arr, columns=[c.name for c in schema.columns])
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"The model expects a table (DataFrame or dict of columns); got {type(data).__name__}."
        )
    out: dict[str, Any] = {}
    for spec in schema.columns:
        if spec.name not in data.columns:
            if spec.optional:
                continue
            raise InvalidInput(
                f"Input is missing column {spec.name!r} (type {spec.type}); the model expects "
                f"{_names(schema)}.",
                details={"column": spec.name, "expected": spec.type},
            )
        out[spec.name] = _convert_column(spec, data[spec.name])
    return pd.DataFrame(out, index=data.index)


def _names(schema: Schema, limit: int = 8) -> str:
    names = [c.name for c in schema.columns]
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"{len(names)} columns: {shown}" + (", ..." if len(names) > limit else "")


def _convert_column(spec: ColSpec, col: pd.Series) -> pd.Series:
    got = _series_type(col)
    if got == spec.type:
        return col
    if got is not None and got in _WIDENINGS.get(spec.type, ()):
        return col.astype(_NUMPY_TYPE[spec.type])
    raise InvalidInput(
        f"Column {spec.name!r} has type {got or str(col.dtype)}, but the model expects "
        f"{spec.type}; convert it (only safe widening such as integer -> long or "
        "long -> double is done automatically).",
        details={"column": spec.name, "expected": spec.type, "got": got or str(col.dtype)},
    )


def _enforce_tensors(schema: Schema, data: Any) -> Any:
    import numpy as np

    pd = _pandas()
    if len(schema.tensors) == 1 and schema.tensors[0].name is None:
        spec = schema.tensors[0]
        if isinstance(data, Mapping) and len(data) == 1:
            data = next(iter(data.values()))
        if pd is not None and isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        return _convert_tensor(spec, np.asarray(data), "input")
    if not isinstance(data, Mapping):
        raise InvalidInput(
            f"The model expects named tensors {[t.name for t in schema.tensors]}; send a dict "
            f"of arrays, got {type(data).__name__}."
        )
    out = {}
    for spec in schema.tensors:
        assert spec.name is not None
        if spec.name not in data:
            raise InvalidInput(
                f"Input is missing tensor {spec.name!r} ({spec.dtype}, shape {list(spec.shape)}).",
                details={"column": spec.name, "expected": spec.dtype},
            )
        out[spec.name] = _convert_tensor(spec, np.asarray(data[spec.name]), repr(spec.name))
    return out


def _convert_tensor(spec: TensorSpec, arr: np.ndarray, label: str) -> np.ndarray:
    import numpy as np

    if spec.dtype == "str":
        if arr.dtype.kind not in "UO":
            raise InvalidInput(f"Tensor {label} has dtype {arr.dtype}, but the model expects str.")
    else:
        expected = np.dtype(spec.dtype)
        if arr.dtype != expected:
            if not _safe_cast(arr.dtype, expected):
                raise InvalidInput(
                    f"Tensor {label} has dtype {arr.dtype.name}, but the model expects "
                    f"{expected.name}; convert it (only safe widening is done automatically).",
                    details={"column": label, "expected": expected.name, "got": arr.dtype.name},
                )
            arr = arr.astype(expected)
    if len(spec.shape) != arr.ndim or any(
        want != -1 and want != got for want, got in zip(spec.shape, arr.shape, strict=False)
    ):
        raise InvalidInput(
            f"Tensor {label} has shape {list(arr.shape)}, but the model expects "
            f"{list(spec.shape)} (-1 means any size).",
            details={"column": label, "expected": list(spec.shape), "got": list(arr.shape)},
        )
    return arr


def _safe_cast(got: np.dtype, expected: np.dtype) -> bool:
    """Widening that keeps every value: int32 -> int64, int -> float64, float32 -> float64."""
    if got.kind == expected.kind:
        return got.itemsize <= expected.itemsize
    if got.kind == "u" and expected.kind == "i":
        return got.itemsize < expected.itemsize
    if got.kind in "iu" and expected.kind == "f":
        return expected.itemsize == 8 or got.itemsize < expected.itemsize
    return False


def example_to_json(example: Any) -> dict[str, Any]:
    """A JSON form of an input example (a table in pandas' "split" layout, or tensors)."""
    import numpy as np

    pd = _pandas()
    if pd is not None and isinstance(example, pd.DataFrame):
        return {
            "type": "dataframe",
            "columns": [str(c) for c in example.columns],
            "data": [[_json_value(v) for v in row] for row in example.itertuples(index=False)],
        }
    if isinstance(example, Mapping):
        return {
            "type": "tensors",
            "inputs": {str(k): np.asarray(v).tolist() for k, v in example.items()},
            "dtypes": {str(k): np.asarray(v).dtype.str for k, v in example.items()},
        }
    arr = np.asarray(example)
    return {"type": "ndarray", "inputs": arr.tolist(), "dtype": arr.dtype.str}


def example_from_json(raw: Mapping[str, Any], schema: Schema | None) -> Any:
    """Rebuild an input example written by :func:`example_to_json`."""
    import numpy as np

    kind = raw.get("type")
    if kind == "dataframe":
        import pandas as pd

        df = pd.DataFrame(raw["data"], columns=raw["columns"])
        if schema is not None and not schema.is_tensor:
            for spec in schema.columns:
                if spec.name in df.columns and spec.type in _NUMPY_TYPE:
                    df[spec.name] = df[spec.name].astype(_NUMPY_TYPE[spec.type])
        return df
    if kind == "tensors":
        dtypes = raw.get("dtypes", {})
        return {k: np.asarray(v, dtype=dtypes.get(k)) for k, v in raw["inputs"].items()}
    if kind == "ndarray":
        return np.asarray(raw["inputs"], dtype=raw.get("dtype"))
    raise InvalidInput(f"Input example type {kind!r} is unknown.")


def _json_value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _pandas() -> Any:
    """pandas if something imported it already (no DataFrame can exist otherwise)."""
    return sys.modules.get("pandas")


__all__: Sequence[str] = [
    "COLUMN_TYPES",
    "ColSpec",
    "Schema",
    "Signature",
    "TensorSpec",
    "enforce",
    "infer_schema",
    "infer_signature",
]
