"""The module-level feature-store API (``shipyard.features.get_online_features(...)``): thin
wrappers over a :class:`~shipyard.features.service.FeatureStore` on the default client's
workspace (``shipyard.get_client()``).

Against a server (``SHIPYARD_TRACKING_URI=http://...``) only online reads work, through
``POST /api/v1/features/online``; the other calls need a direct database URI and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.features.definitions import Definition, FeatureService
    from shipyard.features.service import (
        ApplyResult,
        FeatureStore,
        OnlineResponse,
        ProgressCallback,
        TrainingSet,
    )
    from shipyard.store.features import Materialization
    from shipyard.workspace import Workspace

ONLINE_PATH = "/api/v1/features/online"


def _workspace() -> Workspace:
    from shipyard.tracking.fluent import get_client

    return get_client().workspace


_stores: list[FeatureStore] = []
_KEEP = 8


def feature_store(workspace: Workspace | None = None) -> FeatureStore:
    """The :class:`FeatureStore` of ``workspace`` (default: the default client's), kept for the
    last few workspaces so its definition cache and online-store connections are reused."""
    from shipyard.features.service import FeatureStore

    ws = workspace or _workspace()
    for store in _stores:
        if store.ws is ws:
            return store
    store = FeatureStore(ws)
    _stores.insert(0, store)
    del _stores[_KEEP:]
    return store


def apply(
    definitions: str | Sequence[Definition], *, prune: bool = False, dry_run: bool = False
) -> ApplyResult:
    """Apply definitions (a file, a module or objects) as new versions; see
    :meth:`FeatureStore.apply`."""
    return feature_store().apply(definitions, prune=prune, dry_run=dry_run)


def get_training_set(
    entity_rows: Any,
    features: Sequence[str] | str | FeatureService,
    *,
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
) -> TrainingSet:
    """A point-in-time-correct training set; see :meth:`FeatureStore.get_training_set`."""
    return feature_store().get_training_set(
        entity_rows,
        features,
        timestamp_column=timestamp_column,
        full_feature_names=full_feature_names,
    )


def materialize(
    views: Sequence[str] | None = None,
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    incremental: bool = False,
    progress: ProgressCallback | None = None,
) -> list[Materialization]:
    """Write the latest values into the online store; see :meth:`FeatureStore.materialize`."""
    return feature_store().materialize(
        views, start=start, end=end, incremental=incremental, progress=progress
    )


def get_online_features(
    features: Sequence[str] | str | FeatureService,
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
) -> OnlineResponse:
    """The online feature values of ``entity_rows``, from the online store (embedded) or from
    the server (``POST /api/v1/features/online``)."""
    ws = _workspace()
    if ws.settings.is_remote:
        return remote_online_features(ws, features, entity_rows, full_feature_names)
    return feature_store(ws).get_online_features(
        features, entity_rows, full_feature_names=full_feature_names
    )


def online_request(
    features: Sequence[str] | str | FeatureService,
    entity_rows: Sequence[Mapping[str, Any]],
    full_feature_names: bool,
) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/features/online``."""
    from shipyard.features.definitions import FeatureService

    body: dict[str, Any] = {
        "entities": [dict(r) for r in entity_rows],
        "full_feature_names": full_feature_names,
    }
    if isinstance(features, FeatureService):
        body["feature_service"] = features.name
    elif isinstance(features, str):
        body["feature_service"] = features
    else:
        body["features"] = list(features)
    return body


def remote_online_features(
    ws: Workspace,
    features: Sequence[str] | str | FeatureService,
    entity_rows: Sequence[Mapping[str, Any]],
    full_feature_names: bool = False,
) -> OnlineResponse:
    from shipyard.features.service import OnlineResponse

    http = getattr(ws.store, "http", None)
    if http is None:  # pragma: no cover - a remote workspace always has its HTTP client
        raise InvalidInput("this workspace has no server connection.")
    answer = http.call(
        "POST", ONLINE_PATH, json=online_request(features, entity_rows, full_feature_names)
    )
    return OnlineResponse(dict(answer["features"]))
