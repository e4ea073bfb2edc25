"""Serving integration: a model trained from a training set and served with its feature
service answers entity-key-only requests with the predictions offline scoring gives on the same
feature values, and the prediction log records those values."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.features import FeatureService, FeatureStore
from shipyard.serving import DeploymentSpec, read_predictions
from shipyard.tracking.client import Client
from shipyard.workspace import Workspace
from tests.features.conftest import Generated, definitions
from tests.serving.conftest import serving

SERVICE_FEATURES = ["customer_stats:spend", "customer_stats:orders"]


def _train(fs: FeatureStore, g: Generated) -> tuple[object, list[int], pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    ts = fs.get_training_set(pd.DataFrame(g.entity_rows), "churn-model").to_pandas().dropna()
    X, y = ts[["spend", "orders"]].astype({"orders": "int64"}), ts["label"]
    model = LogisticRegression(max_iter=1000).fit(X, y)
    ids = sorted({r["customer_id"] for r in g.rows})
    return model, ids, X


@pytest.fixture
def trained(workspace: Workspace, generated: Generated) -> tuple[FeatureStore, object, list[int]]:
    fs = FeatureStore(workspace)
    fs.apply(
        [*definitions(generated.path, ttl=None), FeatureService("churn-model", SERVICE_FEATURES)]
    )
    model, ids, X = _train(fs, generated)
    shipyard.log_model(
        model,
        "model",
        input_example=X[:3],
        registered_model_name="churn",
        feature_service="churn-model",
        client=Client(workspace=workspace),
    )
    fs.materialize()
    return fs, model, ids


def test_entity_key_requests_predict_like_offline_scoring(
    workspace: Workspace, generated: Generated, trained: tuple[FeatureStore, object, list[int]]
) -> None:
    fs, model, ids = trained
    # Offline scoring: the training set at a time after every feature row (the values the
    # online store holds), scored by the same model object.
    after = max(r["ts"] for r in generated.rows) + timedelta(hours=1)
    offline = fs.get_training_set(
        pd.DataFrame({"customer_id": ids, "event_timestamp": [after] * len(ids)}), "churn-model"
    ).to_pandas()
    scored = model.predict_proba(offline[["spend", "orders"]].fillna(0))  # type: ignore[attr-defined]
    complete = offline["spend"].notna().to_numpy()
    ids_ok = [i for i, ok in zip(ids, complete, strict=True) if ok]
    with serving(workspace, DeploymentSpec.single("models:/churn/1")) as s:
        r = s.client.post("/predict", json={"entities": [{"customer_id": i} for i in ids_ok]})
        assert r.status_code == 200, r.text
        served = np.asarray(r.json()["predictions"])
        expected = model.predict(offline[complete][["spend", "orders"]])  # type: ignore[attr-defined]
        assert served.tolist() == expected.tolist()
        assert len(scored) == len(ids)
        r = s.client.post("/invocations", json={"entities": [{"customer_id": ids_ok[0]}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == expected[:1].tolist()
        # A request that names no entity key is a clear 400.
        r = s.client.post("/predict", json={"entities": [{"nope": 1}]})
        assert r.status_code == 400
        assert "customer_id" in r.json()["message"]
        s.log.flush()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(s.log_dir.glob("pred-*.parquet")):
            time.sleep(0.05)
    log = read_predictions(s.log_dir)
    logged = json.loads(log["features"].iloc[0])
    assert logged["columns"] == ["spend", "orders"]
    np.testing.assert_allclose(
        np.asarray(logged["data"], dtype=float),
        offline[complete][["spend", "orders"]].to_numpy(float),
    )


def test_a_model_without_feature_service_refuses_entity_requests(
    workspace: Workspace, generated: Generated
) -> None:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"spend": [1.0, 2.0, 3.0, 4.0], "orders": [1, 2, 3, 4]})
    model = LogisticRegression().fit(X, [0, 1, 0, 1])
    shipyard.log_model(
        model, "model", input_example=X[:2], registered_model_name="plain",
        client=Client(workspace=workspace),
    )  # fmt: skip
    with serving(workspace, DeploymentSpec.single("models:/plain/1")) as s:
        r = s.client.post("/predict", json={"entities": [{"customer_id": 1}]})
        assert r.status_code == 400
        assert "declares no feature service" in r.json()["message"]
