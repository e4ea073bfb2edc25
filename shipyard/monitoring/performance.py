"""Model quality on labelled rows: classification and regression metrics, per segment.

The definitions are scikit-learn's defaults (``tests/monitoring/test_monitors.py`` checks the
values against it on the same rows): binary precision / recall / F1 of the positive label
(``1``, ``True`` or ``"1"``, else the larger label), macro averages for more than two classes;
ROC AUC from scores (ties get half credit); log loss with probabilities clipped to
``[eps, 1 - eps]``, ``eps`` the float64 machine epsilon; R² is ``1 - SS_res / SS_tot``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")


_NEGATIVE_POSITIVE = ((0, 1), ("0", "1"), ("false", "true"), ("no", "yes"))
"""A window whose labels and predictions are all the negative class of one of these pairs
still scores the positive class (the class a 1-D score is the probability of)."""


def _positive(labels: Sequence[Any]) -> Any:
    for candidate in (1, True, "1", "true", "yes"):
        if candidate in labels:
            return candidate
    for negative, positive in _NEGATIVE_POSITIVE:
        if all(v == negative and type(v) is type(negative) for v in labels):
            return positive
    return max(labels, key=_class_order)  # the larger label, in scikit-learn's class order


def label_key(value: Any) -> Any:
    """Class labels compared as equal across JSON round trips (``1.0`` is ``1``) and as
    scikit-learn compares them (``True`` is ``1``)."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _class_order(value: Any) -> tuple[int, Any]:
    """Classes in scikit-learn's order (``np.unique``): numbers numerically, then strings."""
    if isinstance(value, int | float | np.integer | np.floating):
        return (0, float(value))
    return (1, str(value))


def class_columns(classes: Sequence[Any]) -> list[int]:
    """Which probability columns of a model with ``classes`` (its ``classes_``, in the order of
    its probability columns) :func:`classification` reads as scores: the positive class's column
    for two classes, else every column in scikit-learn's class order."""
    labels = [label_key(c) for c in classes]
    if len(labels) == 2:
        positive = str(_positive(labels))
        return [[str(v) for v in labels].index(positive)]
    return sorted(range(len(labels)), key=lambda i: _class_order(labels[i]))


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney with mid-ranks); ``None`` with one class."""
    pos = y_true.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    scores: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1, and with ``scores`` (probability of the positive class for
    binary, one row of class probabilities per row otherwise, classes in scikit-learn's order:
    numbers numerically, strings alphabetically) ROC AUC and log loss.

    ``classes``: every class of the model, when known (a monitor's ``classes``). The score
    columns are then those classes (as scikit-learn's ``labels=``), not only the classes seen
    in these rows, and with two classes the positive one is chosen among them; ROC AUC and log
    loss are ``None`` when a label is not one of them."""
    y_true = [label_key(v) for v in y_true]
    y_pred = [label_key(v) for v in y_pred]
    t = np.asarray([str(v) for v in y_true])
    p = np.asarray([str(v) for v in y_pred])
    n = t.size
    out: dict[str, float | None] = dict.fromkeys(CLASSIFICATION)
    if n == 0:
        return out
    out["accuracy"] = float(np.mean(t == p))
    raw_labels = list(dict.fromkeys([*y_true, *y_pred]))
    known = [label_key(c) for c in classes] if classes else []
    columns = list(dict.fromkeys(str(v) for v in sorted(raw_labels, key=_class_order)))
    binary = len(set(columns) | {str(v) for v in known}) <= 2
    if binary:
        positive = str(_positive(known if len(known) == 2 else raw_labels))
        tp = float(np.sum((p == positive) & (t == positive)))
        fp = float(np.sum((p == positive) & (t != positive)))
        fn = float(np.sum((p != positive) & (t == positive)))
        pr = tp / (tp + fp) if tp + fp else 0.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        out["precision"], out["recall"] = pr, rc
        out["f1"] = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
    else:
        precision, recall, f1 = [], [], []
        for c in columns:
            tp = float(np.sum((p == c) & (t == c)))
            fp = float(np.sum((p == c) & (t != c)))
            fn = float(np.sum((p != c) & (t == c)))
            pc = tp / (tp + fp) if tp + fp else 0.0
            rc = tp / (tp + fn) if tp + fn else 0.0
            precision.append(pc)
            recall.append(rc)
            f1.append(2 * pc * rc / (pc + rc) if pc + rc else 0.0)
        out["precision"] = float(np.mean(precision))
        out["recall"] = float(np.mean(recall))
        out["f1"] = float(np.mean(f1))
    if known:  # the score columns are the model's classes, not only those seen here
        columns = list(dict.fromkeys(str(v) for v in sorted(known, key=_class_order)))
        if not set(t) <= set(columns):
            scores = None  # scikit-learn refuses a label the model has no column for
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64)
        eps = np.finfo(np.float64).eps
        if s.ndim == 1:
            positive = str(_positive(known if len(known) == 2 else raw_labels))
            y = (t == positive).astype(float)
            out["roc_auc"] = roc_auc(y, s)
            q = np.clip(s, eps, 1 - eps)
            out["log_loss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
        else:
            index = {c: i for i, c in enumerate(columns)}
            if s.shape[1] == len(columns):
                q = np.clip(s, eps, 1 - eps)
                q = q / q.sum(axis=1, keepdims=True)
                picked = q[np.arange(n), [index[v] for v in t]]
                out["log_loss"] = float(-np.mean(np.log(picked)))
                aucs = [roc_auc((t == c).astype(float), s[:, i]) for i, c in enumerate(columns)]
                defined = [a for a in aucs if a is not None]
                out["roc_auc"] = float(np.mean(defined)) if len(defined) == len(aucs) else None
    return out


def _number(value: Any) -> float:
    """A label or prediction as a finite float, NaN where it is not a number (feedback labels
    are any JSON a client sent: ``"n/a"``, a list...)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def regression(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float | None]:
    """RMSE, MAE and R² (``None`` for R² when the labels are constant) over the rows whose
    label and prediction are both numbers (others are left out rather than failing the
    window)."""
    t = np.asarray([_number(v) for v in y_true], dtype=np.float64)
    p = np.asarray([_number(v) for v in y_pred], dtype=np.float64)
    keep = ~(np.isnan(t) | np.isnan(p))
    if not keep.all():
        t, p = t[keep], p[keep]
    out: dict[str, float | None] = dict.fromkeys(REGRESSION)
    if t.size == 0:
        return out
    err = t - p
    out["rmse"] = float(math.sqrt(np.mean(err * err)))
    out["mae"] = float(np.mean(np.abs(err)))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    out["r2"] = 1.0 - float(np.sum(err * err)) / ss_tot if ss_tot > 0 else None
    return out


def evaluate(
    task: str,
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    scores: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float | None]:
    """The task's metrics (``classification``, with the model's ``classes`` when known, or
    ``regression``)."""
    if task == "regression":
        return regression(y_true, y_pred)
    return classification(y_true, y_pred, scores, classes)
