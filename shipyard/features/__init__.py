"""The feature store: feature views over versioned data, point-in-time-correct training sets,
materialization to an online store (SQLite or Redis), and features served with predictions.

Needs the ``features`` extra (duckdb, pyarrow): ``pip install 'shipyard[features]'``; Redis
as the online store also needs ``shipyard[redis]``. See ``docs/features.md``.
"""

from __future__ import annotations

from shipyard.features.api import (
    apply,
    feature_store,
    get_online_features,
    get_training_set,
    materialize,
)
from shipyard.features.definitions import (
    DatasetSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    on_demand_feature_view,
)
from shipyard.features.service import FeatureStore, OnlineResponse, TrainingSet

__all__ = [
    "DatasetSource",
    "Entity",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "OnlineResponse",
    "TrainingSet",
    "apply",
    "feature_store",
    "get_online_features",
    "get_training_set",
    "materialize",
    "on_demand_feature_view",
]
