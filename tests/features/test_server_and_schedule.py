"""Online features over HTTP (``POST /api/v1/features/online``, and the SDK against a server
URI), and materialization fired by the pipeline scheduler."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import shipyard
from shipyard.features import FeatureStore, get_online_features
from shipyard.features.schedule import REFERENCE, schedule_materialization
from shipyard.pipelines.scheduler import Scheduler
from shipyard.server.app import create_app
from shipyard.workspace import Workspace
from tests.cli.conftest import Shipyard
from tests.features.conftest import Generated, definitions
from tests.server.conftest import serve_in_thread


@pytest.fixture
def server(workspace: Workspace, fs: FeatureStore, generated: Generated) -> Iterator[str]:
    fs.apply(definitions(generated.path, ttl=None))
    fs.materialize()
    with serve_in_thread(create_app(workspace)) as url:
        yield url


def test_online_features_over_http_match_the_embedded_answer(
    server: str, fs: FeatureStore, generated: Generated
) -> None:
    ids = [{"customer_id": i} for i in sorted({r["customer_id"] for r in generated.rows})[:20]]
    embedded = fs.get_online_features("churn", ids).to_dict()
    r = httpx.post(
        f"{server}/api/v1/features/online", json={"feature_service": "churn", "entities": ids}
    )
    assert r.status_code == 200, r.text
    assert r.json()["features"] == embedded
    r = httpx.post(
        f"{server}/api/v1/features/online",
        json={
            "features": ["customer_stats:orders"],
            "entities": ids[:2],
            "full_feature_names": True,
        },
    )
    assert list(r.json()["features"]) == ["customer_id", "customer_stats__orders"]
    shipyard.set_tracking_uri(server)
    try:
        remote = get_online_features("churn", ids)
        assert remote.to_dict() == embedded
        with pytest.raises(shipyard.ShipyardError, match="no feature metadata store"):
            shipyard.features.materialize()
    finally:
        shipyard.set_tracking_uri(None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"entities": [{"customer_id": 1}]}, "exactly one of"),
        ({"feature_service": "churn", "entities": "x"}, '"entities" must be a list'),
        ({"feature_service": 3, "entities": []}, "must be a string"),
        ({"feature_service": "nope", "entities": [{"customer_id": 1}]}, "No feature service"),
        ({"feature_service": "churn", "entities": [{"id": 1}]}, "no join key"),
    ],
)
def test_bad_online_requests_are_4xx_with_a_reason(
    server: str, body: dict[str, object], message: str
) -> None:
    r = httpx.post(f"{server}/api/v1/features/online", json=body)
    assert 400 <= r.status_code < 500
    assert message in r.json()["message"]


def test_a_scheduled_firing_materializes_incrementally(
    workspace: Workspace, fs: FeatureStore, generated: Generated
) -> None:
    fs.apply(definitions(generated.path, ttl=None))
    schedule = schedule_materialization(workspace, "features-every-minute", every_s=60)
    assert schedule.reference == REFERENCE
    assert schedule.next_fire_time is not None
    [run_id] = Scheduler(workspace).tick(now_ms=schedule.next_fire_time)
    run = workspace.pipelines.get_run(run_id)
    assert run.status == "SUCCEEDED", run.error
    [m] = fs.meta.materializations("customer_stats")
    assert m.mode == "incremental"
    assert m.num_rows == len({r["customer_id"] for r in generated.rows})
    # The firing's progress, as `shipyard pipelines show RUN --logs` prints it.
    shown = Shipyard(workspace.settings.home)("pipelines", "show", run_id, "--logs").stdout
    n = m.num_rows
    assert f"customer_stats: 0/{n} entity row(s) written" in shown
    assert f"customer_stats: {n}/{n} entity row(s) written" in shown
    cid = generated.rows[0]["customer_id"]
    assert (
        fs.get_online_features("churn", [{"customer_id": cid}]).to_dict()["orders"][0] is not None
    )
    # The next firing finds nothing new.
    [second] = Scheduler(workspace).tick(now_ms=schedule.next_fire_time + 60_000)
    assert workspace.pipelines.get_run(second).status == "SUCCEEDED"
    assert fs.meta.materializations("customer_stats")[0].num_rows == 0
