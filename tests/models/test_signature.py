"""Signatures: inference from DataFrames, arrays and dicts; enforcement on predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import InvalidInput
from shipyard.models.signature import (
    ColSpec,
    Schema,
    Signature,
    TensorSpec,
    enforce,
    infer_schema,
    infer_signature,
)

TABLE = Schema(
    columns=(
        ColSpec("age", "long"),
        ColSpec("income", "double"),
        ColSpec("city", "string"),
        ColSpec("ratio", "double"),
    )
)


def _row(**overrides: Any) -> pd.DataFrame:
    data: dict[str, Any] = {
        "age": np.array([30, 41], dtype="int64"),
        "income": np.array([1.5, 2.5]),
        "city": ["Oslo", "Lima"],
        "ratio": np.array([0.1, 0.2]),
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_infer_from_dataframe_names_every_column_type() -> None:
    df = pd.DataFrame(
        {
            "b": [True, False],
            "i32": np.array([1, 2], dtype="int32"),
            "i64": np.array([1, 2], dtype="int64"),
            "f32": np.array([1, 2], dtype="float32"),
            "f64": [1.0, 2.0],
            "s": ["x", "y"],
            "raw": [b"a", b"b"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    schema = infer_schema(df)
    assert [(c.name, c.type) for c in schema.columns] == [
        ("b", "boolean"),
        ("i32", "integer"),
        ("i64", "long"),
        ("f32", "float"),
        ("f64", "double"),
        ("s", "string"),
        ("raw", "binary"),
        ("t", "datetime"),
    ]


def test_infer_from_array_and_dict_gives_tensors() -> None:
    sig = infer_signature(np.zeros((5, 3), dtype="float32"), np.zeros(5, dtype="int64"))
    assert sig.inputs.tensors == (TensorSpec("float32", (-1, 3)),)
    assert sig.outputs is not None
    assert sig.outputs.tensors == (TensorSpec("int64", (-1,)),)
    named = infer_schema({"ids": np.zeros((2, 4), "int64"), "mask": np.ones((2, 4), bool)})
    assert [t.name for t in named.tensors] == ["ids", "mask"]
    assert named.tensors[1].dtype == "bool"


def test_infer_refuses_what_it_cannot_type() -> None:
    with pytest.raises(InvalidInput, match="column 'mixed'"):
        infer_schema(pd.DataFrame({"mixed": [1, "a"]}))
    with pytest.raises(InvalidInput, match="set"):
        infer_schema({1, 2})
    with pytest.raises(InvalidInput, match="unknown type"):
        ColSpec("x", "decimal")


def test_schema_round_trips_through_json() -> None:
    sig = Signature(TABLE, Schema(tensors=(TensorSpec("float64", (-1, 2), "proba"),)))
    assert Signature.from_dict(sig.to_dict()) == sig
    with pytest.raises(InvalidInput, match="'rows'"):
        Schema.from_dict({"type": "rows"})


def test_missing_column_is_named() -> None:
    with pytest.raises(InvalidInput, match="missing column 'income'") as info:
        enforce(TABLE, _row().drop(columns=["income"]))
    assert info.value.details["column"] == "income"


def test_optional_column_may_be_absent() -> None:
    schema = Schema(columns=(ColSpec("a", "long"), ColSpec("b", "double", optional=True)))
    out = enforce(schema, pd.DataFrame({"a": [1, 2]}))
    assert list(out.columns) == ["a"]


def test_wrong_type_names_column_expected_and_got() -> None:
    with pytest.raises(InvalidInput) as info:
        enforce(TABLE, _row(income=["a lot", "more"]))
    msg = str(info.value)
    assert "'income'" in msg
    assert "string" in msg
    assert "double" in msg
    assert info.value.details == {"column": "income", "expected": "double", "got": "string"}


@pytest.mark.parametrize(
    ("column", "values", "expected_dtype"),
    [
        ("age", np.array([30, 41], dtype="int32"), "int64"),  # int32 -> int64
        ("income", np.array([1, 2], dtype="int64"), "float64"),  # int -> double
        ("ratio", np.array([0.5, 0.25], dtype="float32"), "float64"),  # float32 -> float64
    ],
)
def test_safe_widening_is_converted(column: str, values: np.ndarray, expected_dtype: str) -> None:
    out = enforce(TABLE, _row(**{column: values}))
    assert out[column].dtype == expected_dtype
    np.testing.assert_array_equal(out[column].to_numpy(), values.astype(expected_dtype))


@pytest.mark.parametrize(
    ("column", "values", "got"),
    [
        ("age", np.array([30.5, 41.0]), "double"),  # double -> long loses the fraction
        ("age", np.array([True, False]), "boolean"),
        ("income", ["1.5", "2.5"], "string"),
    ],
)
def test_unsafe_conversion_is_refused(column: str, values: Any, got: str) -> None:
    with pytest.raises(InvalidInput, match=f"Column '{column}' has type {got}"):
        enforce(TABLE, _row(**{column: values}))


def test_double_to_float_is_refused() -> None:
    schema = Schema(columns=(ColSpec("x", "float"),))
    with pytest.raises(InvalidInput, match="expects float"):
        enforce(schema, pd.DataFrame({"x": [0.1, 0.2]}))


def test_extra_columns_dropped_and_order_fixed() -> None:
    df = _row()[["ratio", "city", "income", "age"]].assign(extra=[1, 2])
    out = enforce(TABLE, df)
    assert list(out.columns) == ["age", "income", "city", "ratio"]


def test_dicts_records_and_plain_rows_are_accepted_as_tables() -> None:
    out = enforce(TABLE, {"age": [1], "income": [2.0], "city": ["x"], "ratio": [0.5]})
    assert out.shape == (1, 4)
    out = enforce(TABLE, [{"age": 1, "income": 2.0, "city": "x", "ratio": 0.5}])
    assert out["age"].dtype == "int64"
    numeric = Schema(columns=(ColSpec("a", "double"), ColSpec("b", "double")))
    assert list(enforce(numeric, np.array([[1.0, 2.0]])).columns) == ["a", "b"]
    with pytest.raises(InvalidInput, match="shape"):
        enforce(numeric, np.zeros((2, 3)))
    with pytest.raises(InvalidInput, match="expects a table"):
        enforce(numeric, "not a table")


def test_tensor_dtype_and_shape_are_checked() -> None:
    schema = Schema(tensors=(TensorSpec("float64", (-1, 3)),))
    widened = enforce(schema, np.ones((2, 3), dtype="float32"))
    assert widened.dtype == np.float64
    assert enforce(schema, np.ones((2, 3), dtype="int64")).dtype == np.float64
    with pytest.raises(InvalidInput, match="shape \\[2, 4\\]"):
        enforce(schema, np.ones((2, 4)))
    narrow = Schema(tensors=(TensorSpec("int32", (-1,)),))
    with pytest.raises(InvalidInput, match="dtype int64, but the model expects int32"):
        enforce(narrow, np.ones(3, dtype="int64"))


def test_named_tensors_need_every_name() -> None:
    schema = Schema(tensors=(TensorSpec("int64", (-1,), "ids"), TensorSpec("bool", (-1,), "m")))
    with pytest.raises(InvalidInput, match="missing tensor 'm'"):
        enforce(schema, {"ids": np.arange(3)})
    with pytest.raises(InvalidInput, match="dict of arrays"):
        enforce(schema, np.arange(3))


def test_loaded_model_enforces_its_signature(tmp_path: Path, cancer: Any) -> None:
    pytest.importorskip("sklearn")
    from sklearn.tree import DecisionTreeClassifier

    X, y = cancer
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    shipyard.save_model(model, tmp_path / "m", input_example=X.head(3))
    loaded = shipyard.load_model(tmp_path / "m")
    sig = loaded.signature
    assert sig is not None
    assert sig.outputs is not None
    assert sig.outputs.tensors[0].dtype == "int64"
    with pytest.raises(InvalidInput, match="missing column 'mean radius'"):
        loaded.predict(X.drop(columns=["mean radius"]))
    with pytest.raises(InvalidInput, match="'worst area' has type string"):
        loaded.predict(X.head(2).assign(**{"worst area": ["big", "small"]}))
    shuffled = X[list(reversed(X.columns))].assign(noise=1.0)
    np.testing.assert_array_equal(loaded.predict(shuffled), model.predict(X))
    example = loaded.input_example()
    pd.testing.assert_frame_equal(example, X.head(3))
