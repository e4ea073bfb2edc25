"""The scikit-learn flavor's matrix predictor for tree ensembles: the same values as the
estimator (exactly, on real data), the estimator itself for matrices it does not take, and
only for the estimators it knows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.models.flavors.sklearn import forest_predictor

Data = tuple[pd.DataFrame, pd.Series]


@pytest.mark.parametrize("estimator", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("predict_fn", ["predict", "predict_proba"])
def test_classifiers_predict_exactly_what_scikit_learn_does(
    cancer: Data, estimator: type, predict_fn: str
) -> None:
    X, y = cancer
    matrix = X.to_numpy(np.float64)
    model = estimator(n_estimators=40, random_state=0).fit(matrix, y)
    fast = forest_predictor(model, predict_fn)
    assert fast is not None
    expected = getattr(model, predict_fn)(matrix)
    assert np.array_equal(fast(matrix), expected)
    assert np.array_equal(fast(matrix[3:4]), expected[3:4])  # one row, as the server sends


@pytest.mark.parametrize("estimator", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressors_predict_exactly_what_scikit_learn_does(diabetes: Data, estimator: type) -> None:
    X, y = diabetes
    matrix = X.to_numpy(np.float64)
    model = estimator(n_estimators=30, random_state=0).fit(matrix, y)
    fast = forest_predictor(model, "predict")
    assert fast is not None
    assert np.array_equal(fast(matrix), model.predict(matrix))
    assert forest_predictor(model, "predict_proba") is None


def test_matrices_it_was_not_checked_for_go_to_the_estimator(cancer: Data) -> None:
    X, y = cancer
    matrix = X.to_numpy(np.float64)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(matrix, y)
    fast = forest_predictor(model, "predict")
    assert fast is not None
    with pytest.raises(ValueError, match="features"):
        fast(matrix[:, :5])  # scikit-learn's own message about the width
    with_nan = matrix[:2].copy()
    with_nan[0, 0] = np.nan
    assert np.array_equal(fast(with_nan), model.predict(with_nan))
    too_big = matrix[:2].copy()
    too_big[1, 3] = 1e39  # finite as float64, infinite as the trees' float32
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="too large") as theirs:
        model.predict(too_big)  # numpy warns of the overflow in scikit-learn's own cast
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="too large") as ours:
        fast(too_big)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="0 sample"):
        fast(matrix[:0])
    integers = np.rint(matrix[:20]).astype(np.int64)
    assert np.array_equal(fast(integers), model.predict(integers))


def test_a_forest_fitted_with_several_jobs_agrees_to_rounding(cancer: Data) -> None:
    """Its own threads sum the trees in the order they finish; the predictor sums in estimator
    order, one of those answers."""
    X, y = cancer
    matrix = X.to_numpy(np.float64)
    model = RandomForestClassifier(n_estimators=40, random_state=0, n_jobs=2).fit(matrix, y)
    fast = forest_predictor(model, "predict_proba")
    assert fast is not None
    assert np.allclose(fast(matrix), model.predict_proba(matrix), rtol=0, atol=1e-12)


def test_only_single_output_tree_ensembles_get_one(cancer: Data) -> None:
    X, y = cancer
    matrix = X.to_numpy(np.float64)
    assert forest_predictor(LogisticRegression(max_iter=5000).fit(matrix, y), "predict") is None
    boosted = GradientBoostingClassifier(n_estimators=5).fit(matrix, y)
    assert forest_predictor(boosted, "predict") is None
    two_outputs = RandomForestClassifier(n_estimators=5).fit(matrix, np.column_stack([y, y]))
    assert forest_predictor(two_outputs, "predict") is None
    forest = RandomForestClassifier(n_estimators=5).fit(matrix, y)
    assert forest_predictor(forest, "apply") is None


def test_a_loaded_forest_serves_matrices_through_it(cancer: Data, tmp_path: Path) -> None:
    X, y = cancer
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    shipyard.save_model(model, tmp_path / "forest", input_example=X.head(3))
    loaded = shipyard.load_model(tmp_path / "forest")
    matrix = X.to_numpy(np.float64)
    assert loaded._matrix_predict is not None
    assert np.array_equal(loaded.predict_unchecked(matrix), loaded.predict(X))
    assert np.array_equal(loaded.predict_unchecked(matrix), model.predict(X))
