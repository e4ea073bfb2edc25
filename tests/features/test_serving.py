"""Serving integration: a model trained from a training set and served with its feature
service answers entity-key-only requests with the predictions offline scoring gives on the same
feature values, and the prediction log records those values."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.features import FeatureService, FeatureStore
from shipyard.serving import DeploymentSpec, read_predictions
from shipyard.tracking.client import Client
from shipyard.workspace import Workspace
from tests.features.conftest import Generated, definitions
from tests.features.test_definitions import write_defs
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
    complete = offline["spend"].notna().to_numpy()
    ids_ok = [i for i, ok in zip(ids, complete, strict=True) if ok]
    with serving(workspace, DeploymentSpec.single("models:/churn/1")) as s:
        r = s.client.post("/predict", json={"entities": [{"customer_id": i} for i in ids_ok]})
        assert r.status_code == 200, r.text
        served = np.asarray(r.json()["predictions"])
        expected = model.predict(offline[complete][["spend", "orders"]])  # type: ignore[attr-defined]
        assert served.tolist() == expected.tolist()
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


def test_entity_requests_carry_request_data_for_on_demand_features(
    workspace: Workspace, generated: Generated, tmp_path: Path
) -> None:
    """A feature service with an on-demand feature: each entity object carries the request
    field it needs, and the server's predictions equal offline scoring of the training set."""
    from sklearn.linear_model import LogisticRegression

    fs = FeatureStore(workspace)
    fs.apply(str(write_defs(tmp_path, generated.path, ttl_hours=10_000)))
    columns = ["spend", "orders", "basket_share"]
    fs.apply([FeatureService("churn-basket", [f"customer_stats:{c}" for c in columns[:2]]
                             + ["basket:basket_share"])])  # fmt: skip
    rng = np.random.default_rng(3)
    train = pd.DataFrame(generated.entity_rows).assign(
        basket=rng.uniform(1, 50, len(generated.entity_rows))
    )
    ts = fs.get_training_set(train, "churn-basket").to_pandas().dropna()
    label = ts["basket_share"] > ts["basket_share"].median()  # so predictions differ by row
    model = LogisticRegression(max_iter=1000).fit(ts[columns], label)
    shipyard.log_model(
        model, "model", input_example=ts[columns][:3], registered_model_name="basket",
        feature_service="churn-basket", client=Client(workspace=workspace),
    )  # fmt: skip
    fs.materialize()
    after = max(r["ts"] for r in generated.rows) + timedelta(hours=1)
    ids = sorted({r["customer_id"] for r in generated.rows})
    baskets = [float(b) for b in rng.uniform(1, 50, len(ids))]
    offline = fs.get_training_set(
        pd.DataFrame(
            {"customer_id": ids, "event_timestamp": [after] * len(ids), "basket": baskets}
        ),
        "churn-basket",
    ).to_pandas()
    ok = offline[columns].notna().all(axis=1).to_numpy()
    entities = [
        {"customer_id": i, "basket": b}
        for i, b, keep in zip(ids, baskets, ok, strict=True) if keep
    ]  # fmt: skip
    with serving(workspace, DeploymentSpec.single("models:/basket/1")) as s:
        r = s.client.post("/predict", json={"entities": entities})
        assert r.status_code == 200, r.text
        expected = model.predict(offline[ok][columns]).tolist()
        assert r.json()["predictions"] == expected
        assert len(set(expected)) == 2
        r = s.client.post("/predict", json={"entities": [{"customer_id": ids[0]}]})
        assert r.status_code == 400
        assert "basket" in r.json()["message"]
    fs.close()
