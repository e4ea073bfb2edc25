"""A four-step pipeline on a real dataset (scikit-learn's breast cancer data, bundled offline):
ingest -> validate -> train -> evaluate, with the model logged and registered.

    shipyard pipelines run examples/pipeline_demo.py:breast_cancer -p n_estimators=50
    shipyard pipelines run examples/pipeline_demo.py:breast_cancer      # every step a cache hit
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shipyard.pipelines import current, pipeline, step

RULES_FILE = "pipeline_demo_rules.json"
"""Optional validation rules (in the working folder); a declared input of ``validate``."""


@step
def ingest(test_fraction: float = 0.25, seed: int = 0) -> Any:
    """The breast cancer table with a ``split`` column (train/test)."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(seed)
    frame["split"] = np.where(rng.random(len(frame)) < test_fraction, "test", "train")
    return frame


@step(reads=[RULES_FILE])
def validate(frame: Any) -> Any:
    """Refuse data with missing values, too few rows, or a target that is not 0/1."""
    rules = {"min_rows": 100}
    if Path(RULES_FILE).is_file():
        rules.update(json.loads(Path(RULES_FILE).read_text()))
    problems = []
    if len(frame) < rules["min_rows"]:
        problems.append(f"{len(frame)} rows < {rules['min_rows']}")
    if frame.isna().any().any():
        problems.append("missing values")
    if not set(frame["target"].unique()) <= {0, 1}:
        problems.append("target outside {0, 1}")
    if problems:
        raise ValueError("the data failed validation: " + ", ".join(problems))
    print(f"validated {len(frame)} rows against {rules}")
    return frame


@step(track=True)
def train(frame: Any, n_estimators: int = 100, seed: int = 0) -> Any:
    """A random forest on the training rows, logged to the step's tracking run."""
    from sklearn.ensemble import RandomForestClassifier

    rows = frame[frame["split"] == "train"]
    features = rows.drop(columns=["target", "split"])
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    model.fit(features, rows["target"])
    ctx = current()
    ctx.client.log_params(ctx.tracking_run_id, {"n_estimators": n_estimators, "seed": seed})
    return model


@step(track=True)
def evaluate(model: Any, frame: Any, register_as: str = "") -> dict[str, float]:
    """Accuracy and AUC on the test rows; registers the model when ``register_as`` is set."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    import shipyard

    rows = frame[frame["split"] == "test"]
    features = rows.drop(columns=["target", "split"])
    scores = model.predict_proba(features)[:, 1]
    metrics = {
        "accuracy": float(accuracy_score(rows["target"], scores > 0.5)),
        "auc": float(roc_auc_score(rows["target"], scores)),
    }
    ctx = current()
    ctx.client.log_metrics(ctx.tracking_run_id, metrics)
    if register_as:
        shipyard.log_model(
            model,
            "model",
            input_example=features.head(3),
            registered_model_name=register_as,
            run_id=ctx.tracking_run_id,
            client=ctx.client,
        )
    return metrics


@pipeline
def breast_cancer(
    n_estimators: int = 50, test_fraction: float = 0.25, seed: int = 0, register_as: str = ""
):
    frame = validate(ingest(test_fraction, seed))
    model = train(frame, n_estimators, seed)
    evaluate(model, frame, register_as)
