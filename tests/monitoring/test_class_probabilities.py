"""Predictions that are class probabilities (``predict_proba``): a monitor's ``classes`` (the
labels of the probability columns, ``model.classes_``) turn them into class labels and scores
in scikit-learn's class order, so performance against class-name labels equals scikit-learn's;
without ``classes``, labels that cannot be column indexes get no (misleading) metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from shipyard.errors import InvalidInput
from shipyard.monitoring import monitors
from shipyard.monitoring.report import monitor_html
from shipyard.workspace import Workspace
from tests.monitoring.conftest import write_feedback, write_requests

T0 = 1_728_000_000_000  # a midnight (UTC) in the past: windows are aligned, and settled
IRIS = ["setosa", "versicolor", "virginica"]


def _proba_requests(rng: np.random.Generator, n: int, k: int) -> tuple[list[dict], list[int]]:
    """Requests whose prediction is a row of ``k`` probabilities, and the column each example
    truly belongs to (drawn from the row, so the scores are informative)."""
    reqs, truth = [], []
    for i in range(n):
        probs = rng.dirichlet(np.ones(k) * 0.5)
        reqs.append({"id": f"p{i}", "ts": T0 + i, "features": {"x": float(rng.normal()),
                     "seg": "ab"[i % 2]}, "prediction": [float(v) for v in probs]})  # fmt: skip
        truth.append(int(rng.choice(k, p=probs)))
    return reqs, truth


def _monitor(
    ws: Workspace, reqs: list[dict], labels: list[Any], classes: Any = None, **kw: Any
) -> Any:
    """A classification monitor over ``reqs`` (the first 100 are the reference) with feedback
    ``labels`` for the others, run once: the window results."""
    write_requests(ws, "ep", reqs[:100])
    monitors.create_monitor(
        ws, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 100}},
        window={"rows": len(reqs) - 100}, task="classification", classes=classes, **kw,
    )  # fmt: skip
    write_requests(ws, "ep", reqs[100:])
    write_feedback(ws, "ep", [(r["id"], y) for r, y in zip(reqs[100:], labels, strict=True)])
    return monitors.run_monitor(ws, "m").results


def test_class_names_with_classes_equal_sklearn(workspace: Workspace) -> None:
    rng = np.random.default_rng(21)
    reqs, truth = _proba_requests(rng, 500, 3)
    y = [IRIS[c] for c in truth[100:]]
    (result,) = _monitor(workspace, reqs, y, IRIS, segments=["seg"])
    probs = np.array([r["prediction"] for r in reqs[100:]])
    pred = [IRIS[i] for i in probs.argmax(axis=1)]
    m = result.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert 0.4 < m["accuracy"] < 1  # informative scores, not the index-vs-name collapse to 0
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=IRIS))
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", labels=IRIS)
    )
    seg = [i for i, r in enumerate(reqs[100:]) if r["features"]["seg"] == "a"]
    assert m["accuracy[seg=a]"] == pytest.approx(
        skm.accuracy_score([y[i] for i in seg], [pred[i] for i in seg])
    )
    assert "performance_skipped" not in result.details
    assert monitors.monitor_dict(workspace.monitors.get_monitor("m"))["classes"] == IRIS


def test_binary_class_names_score_the_positive_class(workspace: Workspace) -> None:
    rng = np.random.default_rng(22)
    reqs, truth = _proba_requests(rng, 400, 2)
    y = [["no", "yes"][c] for c in truth[100:]]
    (result,) = _monitor(workspace, reqs, y, ["no", "yes"])
    probs = np.array([r["prediction"] for r in reqs[100:]])
    pred = [["no", "yes"][i] for i in probs.argmax(axis=1)]
    m = result.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="yes"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="yes"))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probs[:, 1]))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=["no", "yes"]))


@pytest.mark.parametrize(
    "classes",
    [
        ["virginica", "setosa", "versicolor"],  # the model's columns are not in sorted order
        [3, 1, 2],  # integers that are not column indexes, unsorted
        ["yes", "no"],  # binary, the positive class in the first column
    ],
)
def test_classes_in_any_order_line_up_with_sklearn(
    workspace: Workspace, classes: list[Any]
) -> None:
    rng = np.random.default_rng(23)
    reqs, truth = _proba_requests(rng, 400, len(classes))
    y = [classes[c] for c in truth[100:]]
    (result,) = _monitor(workspace, reqs, y, classes)
    probs = np.array([r["prediction"] for r in reqs[100:]])
    pred = [classes[i] for i in probs.argmax(axis=1)]
    order = sorted(range(len(classes)), key=lambda i: classes[i])  # scikit-learn's classes_
    in_order = probs[:, order]
    labels = [classes[i] for i in order]
    m = result.metrics
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, in_order, labels=labels))
    if len(classes) == 2:
        assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, in_order[:, 1]))
    else:
        assert m["roc_auc"] == pytest.approx(
            skm.roc_auc_score(y, in_order, multi_class="ovr", labels=labels)
        )


def test_rows_with_another_number_of_probabilities_are_left_out(workspace: Workspace) -> None:
    rng = np.random.default_rng(24)
    reqs, truth = _proba_requests(rng, 400, 3)
    short = {f"p{i}" for i in range(100, 400, 10)}
    for r in reqs:
        if r["id"] in short:
            r["prediction"] = r["prediction"][:2]
    y = [IRIS[c] for c in truth[100:]]
    (result,) = _monitor(workspace, reqs, y, IRIS)
    kept = [(r, label) for r, label in zip(reqs[100:], y, strict=True) if r["id"] not in short]
    probs = np.array([r["prediction"] for r, _ in kept])
    yk = [label for _, label in kept]
    m = result.metrics
    assert m["labelled"] == 300
    assert m["accuracy"] == pytest.approx(
        skm.accuracy_score(yk, [IRIS[i] for i in probs.argmax(axis=1)])
    )
    assert m["log_loss"] == pytest.approx(skm.log_loss(yk, probs, labels=IRIS))
    skipped = result.details["performance_skipped_rows"]
    assert skipped == {
        "rows": len(short),
        "reason": "the prediction holds 2 class probabilities, but the monitor has 3 classes",
    }


@pytest.mark.parametrize("names", [IRIS, [1, 2, 3]])
def test_labels_that_are_not_column_indexes_need_classes(
    workspace: Workspace, names: list[Any]
) -> None:
    rng = np.random.default_rng(25)
    reqs, truth = _proba_requests(rng, 300, 3)
    (result,) = _monitor(workspace, reqs, [names[c] for c in truth[100:]])
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert result.metrics[metric] is None
    assert result.metrics["labelled"] == 200
    reason = result.details["performance_skipped"]
    assert reason.startswith("predictions are class probabilities but the labels are not column")
    assert "create the monitor with classes=[...]" in reason
    assert repr(names[-1]) in reason
    assert "performance" not in result.details
    page = monitor_html({"monitor": monitors.monitor_dict(workspace.monitors.get_monitor("m")),
                         "results": [monitors.result_dict(result, details=True)],
                         "alerts": []})  # fmt: skip
    assert "no classification metrics: predictions are class probabilities" in page


def test_column_index_labels_keep_working_without_classes(workspace: Workspace) -> None:
    rng = np.random.default_rng(26)
    reqs, truth = _proba_requests(rng, 300, 3)
    (result,) = _monitor(workspace, reqs, truth[100:])
    probs = np.array([r["prediction"] for r in reqs[100:]])
    assert result.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(truth[100:], probs.argmax(axis=1))
    )
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(truth[100:], probs))
    assert "performance_skipped" not in result.details


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["a", "b", "a"], "names one class twice ('a' and 'a'"),
        ([1, 1.0], "names one class twice (1 and 1.0"),
        ([True, 1], "names one class twice (True and 1"),
        (["a"], "at least 2 classes"),
        ([], "at least 2 classes"),
        ("abc", "must be a list of class labels"),
        ({"a": 0, "b": 1}, "must be a list of class labels"),
        ([["a"], "b"], "each class must be a string, a number or a boolean"),
        ([None, "b"], "each class must be a string, a number or a boolean"),
        ([float("nan"), 1], "each class must be a string, a number or a boolean"),
    ],
)
def test_invalid_classes_are_refused(workspace: Workspace, classes: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=r"model\.classes_") as caught:
        monitors.create_monitor(
            workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": 1}},
            window={"rows": 10}, task="classification", classes=classes,
        )  # fmt: skip
    assert message in str(caught.value)


def test_classes_accept_a_numpy_array(workspace: Workspace) -> None:
    """``model.classes_`` as it is: a numpy array of numpy scalars, stored as plain JSON."""
    rng = np.random.default_rng(27)
    reqs, _ = _proba_requests(rng, 200, 3)
    write_requests(workspace, "ep", reqs)
    classes: Any = np.array([1, 2, 3])  # what sklearn's (untyped) classes_ holds
    created = monitors.create_monitor(
        workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 100}},
        window={"rows": 100}, classes=classes,
    )  # fmt: skip
    assert created.spec["classes"] == [1, 2, 3]
    assert [type(c) for c in created.spec["classes"]] == [int, int, int]


def test_column_indexes_sent_as_text_are_scored(workspace: Workspace) -> None:
    """Feedback that sends the index labels as strings ("0", "1", from a CSV) is scored as the
    numbers it names."""
    rng = np.random.default_rng(28)
    reqs, truth = _proba_requests(rng, 300, 2)
    (result,) = _monitor(workspace, reqs, [str(c) for c in truth[100:]])
    probs = np.array([r["prediction"] for r in reqs[100:]])
    assert "performance_skipped" not in result.details
    assert result.metrics["accuracy"] == pytest.approx(
        skm.accuracy_score(truth[100:], probs.argmax(axis=1))
    )
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(truth[100:], probs[:, 1]))


def test_labels_outside_the_classes_are_counted_and_explained(workspace: Workspace) -> None:
    rng = np.random.default_rng(29)
    reqs, truth = _proba_requests(rng, 300, 3)
    labels: list[Any] = [IRIS[c] for c in truth[100:]]
    labels[:7] = ["Setosa"] * 7  # a spelling the model's classes do not have
    (result,) = _monitor(workspace, reqs, labels, IRIS)
    assert result.details["performance_unknown_labels"] == {"rows": 7, "labels": ["'Setosa'"]}
    assert result.metrics["log_loss"] is None  # scikit-learn refuses such labels
    page = monitor_html({"monitor": monitors.monitor_dict(workspace.monitors.get_monitor("m")),
                         "results": [monitors.result_dict(result, details=True)],
                         "alerts": []})  # fmt: skip
    assert "7 labelled row(s) have a label that is not one of the monitor&#x27;s classes" in page


def test_a_window_with_two_probability_widths_still_scores_its_answers(
    workspace: Workspace,
) -> None:
    """A model version that gained a class mid-window: without ``classes`` the scores have two
    shapes; the window keeps its accuracy and leaves the score metrics out instead of failing
    on every run."""
    rng = np.random.default_rng(30)
    reqs, truth = _proba_requests(rng, 300, 2)
    wide, wide_truth = _proba_requests(rng, 50, 3)
    for r in wide:
        r["id"] = "w" + r["id"]
    reqs = reqs[:250] + [{**r, "ts": T0 + 250 + i} for i, r in enumerate(wide)]
    truth = truth[:250] + wide_truth
    (result,) = _monitor(workspace, reqs, truth[100:])
    pred = [int(np.argmax(r["prediction"])) for r in reqs[100:]]
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth[100:], pred))
    assert result.metrics["roc_auc"] is None
    assert result.metrics["log_loss"] is None


def test_the_positive_class_of_two_numbers_is_the_larger() -> None:
    from shipyard.monitoring.performance import classification

    y_true, y_pred = [2, 10, 10, 2, 10], [10, 10, 2, 2, 10]
    got = classification(y_true, y_pred)
    assert got["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, pos_label=10))
    assert got["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label=10))
