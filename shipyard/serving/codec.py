"""Request bodies to model inputs, predictions to response bodies.

MLflow's scoring formats (``/invocations``): a JSON object with exactly one of
``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs`` (plus optional
``params``), or a CSV table with a header. The Open Inference Protocol (V2): a list of named
tensors, either one per column (named after the column) or one 2-D tensor whose columns follow
the signature's order. Every malformed body raises :class:`~shipyard.errors.InvalidInput`
(400) or :class:`~shipyard.errors.UnsupportedMediaType` (415) naming the problem.

JSON and CSV have no date or bytes type, so :func:`decode_wire_types` reads the signature's
``datetime`` columns from ISO 8601 strings and its ``binary`` columns from base64 (as MLflow's
scoring server does), and a column of nothing but ``null`` as missing numbers where the signature
wants a ``double`` or ``float``; everything else is left to the signature check.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pandas as pd

from shipyard.errors import InvalidInput, UnsupportedMediaType
from shipyard.models.signature import Schema

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")

V2_DATATYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_V2_OF_KIND = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}
_V2_OF_COLUMN = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


def parse_json(raw: bytes) -> Any:
    """orjson, with the position of the first error in the message."""
    if not raw.strip():
        raise InvalidInput('The request body is empty; send a JSON object such as {"inputs": ...}.')
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The request body is not valid JSON: {exc.msg} at character {exc.pos}; send a JSON "
            "object with Content-Type: application/json."
        ) from None


def media_type(content_type: str | None) -> str:
    """The bare media type (``application/json`` when none is sent)."""
    if not content_type:
        return "application/json"
    return content_type.split(";", 1)[0].strip().lower()


# ------------------------------------------------------------------------ MLflow /invocations


def parse_invocations(
    raw: bytes, content_type: str | None, schema: Schema | None
) -> tuple[Any, dict[str, Any] | None]:
    """``(model input, params)`` of an ``/invocations`` body."""
    kind = media_type(content_type)
    if kind == "text/csv":
        return decode_wire_types(parse_csv(raw), schema), None
    if kind != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not supported by /invocations; send application/json "
            "(dataframe_split, dataframe_records, instances or inputs) or text/csv.",
            details={"content_type": kind},
        )
    return parse_invocations_body(parse_json(raw), schema)


def parse_invocations_body(body: Any, schema: Schema | None) -> tuple[Any, dict[str, Any] | None]:
    """``(model input, params)`` of a parsed ``/invocations`` JSON body."""
    if not isinstance(body, dict):
        raise InvalidInput(
            f"The request body must be a JSON object with one of {', '.join(MLFLOW_KEYS)}; got a "
            f"JSON {type(body).__name__}."
        )
    present = [k for k in MLFLOW_KEYS if k in body]
    if len(present) != 1:
        extra = f"; it has {present}" if present else ""
        raise InvalidInput(
            f"The request body must hold exactly one of {', '.join(MLFLOW_KEYS)}{extra}. For a "
            'table send {"dataframe_split": {"columns": [...], "data": [[...]]}}.'
        )
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput("`params` must be a JSON object of parameter names to values.")
    key = present[0]
    return decode_wire_types(from_mlflow(key, body[key], schema), schema), params


def decode_wire_types(data: Any, schema: Schema | None) -> Any:
    """``data`` with the signature's ``datetime`` columns parsed from ISO 8601 strings, its
    ``binary`` columns decoded from base64, and all-``null`` ``double``/``float`` columns as
    NaN (see the module docstring). A value that does not parse is a 400 naming the column."""
    if schema is None or not schema.columns or not isinstance(data, pd.DataFrame):
        return data
    for column in schema.columns:
        name = column.name
        if name not in data.columns:
            continue
        values = data[name]
        if values.dtype.kind not in "OUT" and str(values.dtype) not in ("string", "str"):
            continue
        present = values.dropna()
        if column.type == "datetime" and all(isinstance(v, str) for v in present):
            data[name] = _datetimes(values, name)
        elif column.type == "binary" and all(isinstance(v, str) for v in present):
            data[name] = values.map(lambda v, n=name: _base64(v, n), na_action="ignore").astype(
                object
            )
        elif column.type in ("double", "float") and present.empty:
            data[name] = values.astype("float64" if column.type == "double" else "float32")
    return data


def _datetimes(values: pd.Series, name: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(values, format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        bad = next((v for v in values.dropna() if not _is_iso_datetime(v)), None)
        raise InvalidInput(
            f"Column {name!r} is a datetime, but {bad!r} is not an ISO 8601 date and time; send "
            'strings such as "2024-05-01T12:30:00" (one with a UTC offset is converted to UTC).',
            details={"column": name, "expected": "datetime"},
        ) from None
    return parsed.dt.tz_convert(None).astype("datetime64[ns]")


def _is_iso_datetime(value: str) -> bool:
    try:
        pd.to_datetime([value], format="ISO8601", utc=True)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _base64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"Column {name!r} is binary: send its values base64-encoded; {value[:20]!r} is not.",
            details={"column": name, "expected": "binary"},
        ) from None


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is float or t is int


def numeric_matrix(body: Any, names: tuple[str, ...]) -> np.ndarray | None:
    """The fast path: a float64 matrix in ``names`` order when ``body`` is a
    ``dataframe_split`` or ``dataframe_records`` table holding exactly those columns and only
    numbers (no booleans, no nulls); ``None`` otherwise (the caller then takes the checked path,
    which explains anything wrong)."""
    if not isinstance(body, dict) or len(body) != 1:
        return None
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or set(split) - {"columns", "data", "index"}:
            return None
        columns, data = split.get("columns"), split.get("data")
        if not isinstance(data, list) or not data or not isinstance(columns, list):
            return None
        if tuple(columns) == names:
            rows = data
        elif len(columns) == len(names) and set(columns) == set(names):
            order = [columns.index(n) for n in names]
            rows = [[r[i] for i in order] for r in data if isinstance(r, list)]
        else:
            return None
    elif "dataframe_records" in body:
        records = body["dataframe_records"]
        if not isinstance(records, list) or not records:
            return None
        try:
            rows = [[r[n] for n in names] for r in records]
        except (KeyError, TypeError):
            return None
    else:
        return None
    width = len(names)
    for r in rows:
        if not isinstance(r, list) or len(r) != width or not all(map(_is_number, r)):
            return None
    return np.array(rows, dtype=np.float64)


def parse_csv(raw: bytes) -> pd.DataFrame:
    if not raw.strip():
        raise InvalidInput("The CSV body is empty; send a header line and at least one row.")
    try:
        return pd.read_csv(io.BytesIO(raw))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"The CSV body could not be read: {exc}; send a header and rows."
        ) from None


def from_mlflow(key: str, value: Any, schema: Schema | None) -> Any:
    columnar = schema is None or not schema.is_tensor
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise InvalidInput(
                '`dataframe_split` must be an object {"columns": [...], "data": [[...], ...]}.'
            )
        columns = value.get("columns")
        try:
            return pd.DataFrame(value["data"], columns=columns, index=value.get("index"))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"`dataframe_split` does not make a table: {exc}.") from None
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInput("`dataframe_records` must be a list of objects, one per row.")
        return pd.DataFrame(value)
    if key == "instances":
        if not isinstance(value, list):
            raise InvalidInput("`instances` must be a list of rows.")
        if value and all(isinstance(r, dict) for r in value):
            return pd.DataFrame(value) if columnar else _dict_of_arrays(pd.DataFrame(value))
        return _array(value, "instances")
    # inputs
    if isinstance(value, dict):
        if columnar:
            try:
                return pd.DataFrame({k: np.atleast_1d(v) for k, v in value.items()})
            except ValueError as exc:
                raise InvalidInput(f"`inputs` columns do not make a table: {exc}.") from None
        return {k: _array(v, f"inputs.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return _array(value, "inputs")
    raise InvalidInput("`inputs` must be a list (a tensor) or an object of column -> values.")


def _dict_of_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _array(value: Any, label: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise InvalidInput(
            f"`{label}` is ragged (rows of different lengths) or not an array: {exc}"
        ) from None
    if arr.dtype.kind == "O":
        raise InvalidInput(f"`{label}` is ragged or mixes types; send rows of equal length.")
    return arr


def encode_predictions(predictions: Any) -> Any:
    """Predictions as JSON-safe values: arrays to lists, DataFrames to records."""
    if isinstance(predictions, pd.DataFrame):
        return predictions.to_dict(orient="records")
    if isinstance(predictions, pd.Series):
        return predictions.tolist()
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    if isinstance(predictions, Mapping):
        return {str(k): encode_predictions(v) for k, v in predictions.items()}
    return predictions


def rows_of(data: Any) -> int:
    """How many rows a model input holds (for batching and the log)."""
    if isinstance(data, pd.DataFrame):
        return len(data)
    if isinstance(data, Mapping):
        first = next(iter(data.values()), None)
        return len(first) if first is not None and hasattr(first, "__len__") else 1
    if isinstance(data, np.ndarray):
        return int(data.shape[0]) if data.ndim else 1
    return 1


def json_default(value: Any) -> Any:
    """What orjson cannot write itself: timestamps as ISO 8601, bytes as base64, numpy
    scalars as numbers, anything else as its ``str``."""
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dumps(value: Any) -> bytes:
    """JSON bytes of a response or log value (numpy arrays and :func:`json_default`)."""
    return orjson.dumps(value, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def features_json(data: Any, names: tuple[str, ...] | None = None) -> str:
    """The features of a request as a JSON string for the prediction log (``names``: the
    columns of a matrix)."""
    if names is not None:
        return dumps({"columns": list(names), "data": data}).decode()
    if isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        return dumps({"columns": columns, "data": data.to_numpy().tolist()}).decode()
    return dumps(encode_predictions(data)).decode()


# ------------------------------------------------------------------ Open Inference Protocol V2


def parse_v2(body: Any, schema: Schema | None) -> Any:
    """The model input of a V2 inference request."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput(
            'A V2 inference request is an object with a non-empty "inputs" list of tensors '
            '{"name", "shape", "datatype", "data"}.'
        )
    tensors = {}
    for i, raw in enumerate(body["inputs"]):
        name, arr = _v2_tensor(raw, i)
        tensors[name] = arr
    if schema is not None and schema.columns:
        names = [c.name for c in schema.columns]
        if len(tensors) == 1:
            (only,) = tensors.values()
            if only.ndim == 2 and next(iter(tensors)) not in names:
                if only.shape[1] != len(names):
                    raise InvalidInput(
                        f"The 2-D input tensor has {only.shape[1]} columns, but the model takes "
                        f"{len(names)} ({', '.join(names[:8])}{', ...' if len(names) > 8 else ''}); "
                        "send one column per signature column, in signature order, or one tensor "
                        "per column named after it.",
                        details={"expected": len(names), "got": int(only.shape[1])},
                    )
                return decode_wire_types(pd.DataFrame(only, columns=names), schema)
        lengths = {a.shape[0] if a.ndim else 1 for a in tensors.values()}
        if len(lengths) > 1:
            raise InvalidInput(
                f"The per-column tensors have different lengths {sorted(lengths)}; send the "
                "same number of rows in each."
            )
        frame = pd.DataFrame({k: (a.reshape(-1) if a.ndim > 1 else a) for k, a in tensors.items()})
        return decode_wire_types(frame, schema)
    if schema is not None and schema.tensors and schema.tensors[0].name is None:
        return next(iter(tensors.values()))
    if len(tensors) == 1 and schema is None:
        return next(iter(tensors.values()))
    return tensors


def _v2_tensor(raw: Any, index: int) -> tuple[str, np.ndarray]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"inputs[{index}] must be an object {{name, shape, datatype, data}}.")
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in raw]
    if missing:
        raise InvalidInput(f"inputs[{index}] lacks {', '.join(missing)}.")
    name, shape, datatype = raw["name"], raw["shape"], raw["datatype"]
    if not isinstance(name, str):
        raise InvalidInput(f"inputs[{index}].name must be a string.")
    if datatype not in V2_DATATYPES:
        raise InvalidInput(
            f"inputs[{index}] ({name!r}) has datatype {datatype!r}; use one of "
            f"{', '.join(V2_DATATYPES)}.",
            details={"column": name, "got": str(datatype)},
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"inputs[{index}] ({name!r}): shape must be a list of sizes >= 0.")
    try:
        arr = np.asarray(raw["data"], dtype=V2_DATATYPES[datatype])
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"inputs[{index}] ({name!r}): data does not match datatype {datatype}: {exc}.",
            details={"column": name, "expected": datatype},
        ) from None
    if datatype == "BYTES":
        arr = arr.astype(str)
    size = int(np.prod(shape)) if shape else 1
    if arr.size != size:
        raise InvalidInput(
            f"inputs[{index}] ({name!r}) has {arr.size} values, but shape {shape} needs {size}.",
            details={"column": name, "expected": shape},
        )
    return name, arr.reshape(shape)


def v2_outputs(predictions: Any) -> list[dict[str, Any]]:
    """V2 output tensors of a model's predictions."""
    if isinstance(predictions, pd.DataFrame):
        return [_v2_out(str(c), predictions[c].to_numpy()) for c in predictions.columns]
    if isinstance(predictions, Mapping):
        return [_v2_out(str(k), np.asarray(v)) for k, v in predictions.items()]
    if isinstance(predictions, pd.Series):
        return [_v2_out(str(predictions.name or "predict"), predictions.to_numpy())]
    return [_v2_out("predict", np.asarray(predictions))]


def _v2_out(name: str, arr: np.ndarray) -> dict[str, Any]:
    datatype = _V2_OF_KIND.get(arr.dtype.kind, "BYTES")
    data = arr.reshape(-1).tolist() if datatype != "BYTES" else [str(v) for v in arr.reshape(-1)]
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}


def v2_tensor_meta(schema: Schema | None) -> list[dict[str, Any]]:
    """V2 metadata tensors of a schema."""
    if schema is None:
        return []
    if schema.columns:
        return [
            {"name": c.name, "datatype": _V2_OF_COLUMN[c.type], "shape": [-1]}
            for c in schema.columns
        ]
    out = []
    for i, t in enumerate(schema.tensors):
        kind = np.dtype(t.dtype).kind if t.dtype != "str" else "U"
        out.append(
            {
                "name": t.name or f"input-{i}",
                "datatype": _V2_OF_KIND.get(kind, "BYTES"),
                "shape": list(t.shape),
            }
        )
    return out
