"""Shipyard's tracking demo: a small hyperparameter sweep on a real dataset, tracked end to end.

Trains gradient-boosted trees and logistic regressions on the Wisconsin breast-cancer dataset that
ships with scikit-learn (569 tumours, 30 features, no download), and records each model as a
Shipyard run: hyperparameters, a validation curve per boosting iteration, the dataset it was trained
on, a confusion matrix, a JSON report and the pickled model. Then it searches the runs for the best
models and tells you how to look at them with the CLI and the server.

    python examples/tracking_demo.py                       # workspace in ./.shipyard
    python examples/tracking_demo.py --home /tmp/demo      # somewhere else
    SHIPYARD_TRACKING_URI=http://127.0.0.1:5000 python examples/tracking_demo.py   # a server

``scripts/demo`` installs what it needs and runs it.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard

EXPERIMENT = "breast-cancer-demo"
SEED = 0


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_val: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series
    labels: list[str]


def load_data() -> Split:
    """The breast-cancer dataset, split 80/20 (stratified, fixed seed)."""
    bunch = load_breast_cancer(as_frame=True)
    x, y = bunch.data, bunch.target
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=SEED
    )
    return Split(x_train, x_val, y_train, y_val, [str(n) for n in bunch.target_names])


def sweep() -> Iterator[tuple[str, dict[str, Any]]]:
    """The configurations to train: (model family, hyperparameters)."""
    for learning_rate in (0.05, 0.2):
        for max_depth in (2, 4):
            yield (
                "hist_gradient_boosting",
                {
                    "learning_rate": learning_rate,
                    "max_depth": max_depth,
                    "max_iter": 100,
                    "l2_regularization": 1.0,
                },
            )
    for c in (0.01, 0.1, 1.0):
        yield "logistic_regression", {"C": c, "max_iter": 2000}


def build(family: str, params: dict[str, Any]) -> Any:
    if family == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(**params, early_stopping=False, random_state=SEED)
    return make_pipeline(StandardScaler(), LogisticRegression(**params, random_state=SEED))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count half)."""
    ranks = rankdata(p)
    positives = int(y.sum())
    negatives = len(y) - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_training_curve(model: HistGradientBoostingClassifier, data: Split) -> None:
    """One metric point per boosting iteration: the learning curve of the run (the SDK buffers
    them, so a call costs microseconds)."""
    y_train, y_val = data.y_train.to_numpy(), data.y_val.to_numpy()
    train_stages = model.staged_predict_proba(data.x_train)
    val_stages = model.staged_predict_proba(data.x_val)
    for step, (p_train, p_val) in enumerate(zip(train_stages, val_stages, strict=True)):
        shipyard.log_metrics(
            {
                "train_log_loss": _log_loss(y_train, p_train[:, 1]),
                "val_log_loss": _log_loss(y_val, p_val[:, 1]),
                "val_auc": _auc(y_val, p_val[:, 1]),
            },
            step=step,
        )


def log_evaluation(model: Any, data: Split, out: Path) -> dict[str, float]:
    """Final validation metrics, a confusion-matrix CSV, a JSON report and the pickled model."""
    proba = model.predict_proba(data.x_val)[:, 1]
    pred = (proba >= 0.5).astype(int)
    scores = {
        "val_auc": float(roc_auc_score(data.y_val, proba)),
        "val_accuracy": float(accuracy_score(data.y_val, pred)),
        "val_log_loss": float(log_loss(data.y_val, proba)),
    }
    # Logged at the step after the curve, so they are the runs' latest values.
    step = int(getattr(model, "n_iter_", 0))
    shipyard.log_metrics(scores, step=step)

    matrix = confusion_matrix(data.y_val, pred)
    with open(out / "confusion_matrix.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actual \\ predicted", *data.labels])
        for label, row in zip(data.labels, matrix.tolist(), strict=True):
            writer.writerow([label, *row])
    shipyard.log_artifact(out / "confusion_matrix.csv", artifact_path="evaluation")

    report = classification_report(
        data.y_val, pred, target_names=data.labels, output_dict=True, zero_division=0
    )
    (out / "report.json").write_text(json.dumps({"scores": scores, "report": report}, indent=2))
    shipyard.log_artifact(out / "report.json", artifact_path="evaluation")

    with open(out / "model.pkl", "wb") as f:
        pickle.dump(model, f)
    shipyard.log_artifact(out / "model.pkl", artifact_path="model")
    return scores


def train_one(family: str, params: dict[str, Any], data: Split, train_frame: pd.DataFrame) -> str:
    if family == "hist_gradient_boosting":
        name = f"hgb-lr{params['learning_rate']}-depth{params['max_depth']}"
    else:
        name = f"logreg-C{params['C']}"
    with shipyard.start_run(run_name=name) as run:
        shipyard.set_tags({"model_family": family, "dataset": "breast_cancer"})
        shipyard.log_params({"model_family": family, **params, "seed": SEED})
        shipyard.log_input(
            train_frame,
            context="training",
            name="breast_cancer_train",
            source="sklearn.datasets.load_breast_cancer",
        )
        started = time.perf_counter()
        model = build(family, params).fit(data.x_train, data.y_train)
        shipyard.log_metric("fit_seconds", time.perf_counter() - started)
        if isinstance(model, HistGradientBoostingClassifier):
            log_training_curve(model, data)
        with tempfile.TemporaryDirectory(prefix="shipyard-demo-") as tmp:
            scores = log_evaluation(model, data, Path(tmp))
        print(f"  {name:<20} val_auc={scores['val_auc']:.4f}")
        return run.run_id


def show_best() -> None:
    page = shipyard.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string="metrics.val_auc > 0.9",
        order_by=["metrics.val_auc DESC", "metrics.val_log_loss ASC"],
        max_results=5,
    )
    print(f"\nBest runs (metrics.val_auc > 0.9, best first) in experiment {EXPERIMENT!r}:")
    print(f"  {'run id':<32}  {'model':<22} {'val_auc':>8} {'val_acc':>8} {'val_logloss':>11}")
    for found in page:
        m = found.data.metrics
        print(
            f"  {found.info.run_id:<32}  {found.data.params.get('model_family', '?'):<22}"
            f" {m['val_auc'].value:>8.4f} {m['val_accuracy'].value:>8.4f}"
            f" {m['val_log_loss'].value:>11.4f}"
        )


def show_next_steps(home_option: str) -> None:
    uri = shipyard.get_tracking_uri()
    print(f"\nEverything above is stored at {uri}")
    if uri.startswith(("http://", "https://")):
        print(f"Open {uri} in a browser, or list the runs with:")
        print(f"  SHIPYARD_TRACKING_URI={uri} shipyard runs list --experiment {EXPERIMENT}")
        return
    print("Look at the runs with the CLI (inside the environment: source .venv/bin/activate):")
    print(f"  shipyard{home_option} experiments list")
    print(f"  shipyard{home_option} runs list --experiment {EXPERIMENT}")
    print(f"  shipyard{home_option} runs show <run id>")
    print(f"  shipyard{home_option} artifacts list <run id>")
    print("Serve them to your team (and to unmodified MLflow clients):")
    print(f"  shipyard{home_option} server --host 127.0.0.1 --port 5000")
    print("  MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python your_mlflow_script.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="workspace folder (default: $SHIPYARD_HOME or ./.shipyard)")
    parser.add_argument("--tracking-uri", help="sqlite:///..., postgresql://... or http(s)://...")
    args = parser.parse_args(argv)

    home_option = ""
    if args.home or args.tracking_uri:
        shipyard.set_tracking_uri(args.tracking_uri, home=args.home)
        if args.home and not args.tracking_uri:
            home_option = f" --home {shlex.quote(str(Path(args.home).absolute()))}"

    started = time.perf_counter()
    data = load_data()
    train_frame = data.x_train.assign(target=data.y_train)
    print(
        f"Dataset: breast cancer (scikit-learn), {len(data.x_train)} training and "
        f"{len(data.x_val)} validation rows, {data.x_train.shape[1]} features"
    )
    experiment = shipyard.set_experiment(EXPERIMENT)
    print(f"Experiment {experiment.name!r} (id {experiment.experiment_id}); training:")
    np.random.seed(SEED)
    for family, params in sweep():
        train_one(family, params, data, train_frame)
    show_best()
    show_next_steps(home_option)
    print(f"\nDone in {time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
