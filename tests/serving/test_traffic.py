"""Traffic: canary split by weight, sticky keys, shadow arms that never change an answer, per-arm
metrics; the deployment spec file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.serving import Arm, DeploymentSpec, TrafficTable, read_predictions
from shipyard.workspace import Workspace
from tests.serving.conftest import Data, serving

CANARY = DeploymentSpec(
    name="cancer",
    arms=(
        Arm("champion", "models:/cancer@champion", 90),
        Arm("challenger", "models:/cancer/2", 10),
    ),
)

SHADOWED = DeploymentSpec(
    name="cancer",
    arms=(Arm("champion", "models:/cancer@champion", 100),),
    shadow=(Arm("challenger", "models:/cancer@challenger", 0),),
)
"""The champion answers; the challenger (a constant 1) gets a copy of every request."""


def test_a_90_10_table_lands_within_2_points_over_10000_requests() -> None:
    table = TrafficTable.from_spec(CANARY)
    picks = [table.choose() for _ in range(10_000)]
    assert abs(picks.count("challenger") / 10_000 - 0.10) <= 0.02
    keyed = [table.choose(f"customer-{i}") for i in range(10_000)]
    assert abs(keyed.count("challenger") / 10_000 - 0.10) <= 0.02


def test_sticky_keys_stay_on_their_arm() -> None:
    table = TrafficTable.from_spec(CANARY)
    for i in range(200):
        key = f"user-{i}"
        assert len({table.choose(key) for _ in range(5)}) == 1


def test_canary_over_http_routes_by_weight_and_counts_per_arm(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    row = cancer.X.iloc[[0]].to_dict("records")
    with serving(workspace, CANARY) as s:
        arms = [
            s.client.post("/predict", json={"dataframe_records": row}).json()["arm"]
            for _ in range(1000)
        ]
        share = arms.count("challenger") / 1000
        assert abs(share - 0.10) <= 0.04  # 1,000 draws: 4 points is over 4 standard deviations
        # the same key always lands on the same arm, whatever the other traffic
        keyed = {
            s.client.post("/predict", json={"dataframe_records": row, "key": "k-42"}).json()["arm"]
            for _ in range(20)
        }
        by_header = {
            s.client.post(
                "/predict", json={"dataframe_records": row}, headers={"X-Shipyard-Key": "k-42"}
            ).json()["arm"]
            for _ in range(20)
        }
        assert len(keyed) == 1
        assert keyed == by_header
        metrics = s.client.get("/metrics").text
        for arm, version in (("champion", "1"), ("challenger", "2")):
            n = arms.count(arm) + (40 if arm in keyed else 0)
            line = (
                f'shipyard_serving_requests_total{{model="cancer",version="{version}",arm="{arm}"}}'
            )
            assert f"{line} {float(n)}" in metrics
        assert (
            'shipyard_serving_request_latency_seconds_bucket{model="cancer",version="2"' in metrics
        )


def test_shadow_never_changes_the_answer_and_is_logged(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    spec = SHADOWED
    rows = cancer.X.iloc[:40]
    with serving(workspace, spec) as s:
        alone = s.endpoint.state().versions["champion"].model.predict(rows).tolist()
        assert set(alone) == {0, 1}  # the shadow (constant 1) would differ on some rows
        answers = []
        for i in range(40):
            r = s.client.post(
                "/predict", json={"dataframe_records": rows.iloc[[i]].to_dict("records")}
            )
            answers.append(r.json())
        assert [a["predictions"][0] for a in answers] == alone
        assert {a["arm"] for a in answers} == {"champion"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            s.log.flush()
            logged = read_predictions(s.log_dir, include_shadow=True)
            if (logged["shadow"]).sum() == 40:
                break
            time.sleep(0.05)
        shadow = logged[logged["shadow"]]
        assert len(shadow) == 40
        assert set(shadow["arm"]) == {"challenger"}
        assert set(shadow["predictions"]) == {"[1]"}
        assert set(shadow["request_id"]) == {a["request_id"] for a in answers}
        assert len(read_predictions(s.log_dir)) == 40  # answered rows only by default
        assert (
            'shipyard_serving_shadow_predictions_total{model="cancer",version="2",arm="challenger"} 40.0'
            in s.client.get("/metrics").text
        )


def test_a_failed_shadow_prediction_is_logged_not_answered(
    workspace: Workspace, models: Registry, cancer: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shadow arm that fails is logged with code SHADOW_FAILED (the rollout's shadow error
    rate reads it), and the caller still gets the stable arm's answer."""
    spec = SHADOWED
    rows = cancer.X.iloc[:10]
    with serving(workspace, spec) as s:
        (shadow,) = s.endpoint.state().shadows()

        def fails(data: Any) -> Any:
            raise ValueError("the shadow model broke")

        monkeypatch.setattr(shadow.model, "predict", fails)
        for i in range(10):
            r = s.client.post(
                "/predict", json={"dataframe_records": rows.iloc[[i]].to_dict("records")}
            )
            assert r.status_code == 200
            assert r.json()["arm"] == "champion"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            s.log.flush()
            logged = read_predictions(s.log_dir, include_shadow=True, include_errors=True)
            if logged["shadow"].sum() == 10:
                break
            time.sleep(0.05)
        failed = logged[logged["shadow"]]
        assert len(failed) == 10
        assert set(failed["error"]) == {"SHADOW_FAILED"}
        assert failed["predictions"].isna().all()
        assert len(read_predictions(s.log_dir, include_shadow=True)) == 10  # errors left out


def test_spec_files(tmp_path: Path) -> None:
    yml = tmp_path / "d.yaml"
    yml.write_text(
        "name: churn\nsticky_header: X-Customer\narms:\n"
        "  - {name: a, model: 'models:/churn@champion', weight: 90}\n"
        "  - {name: b, model: 'models:/churn/3', weight: 10}\n"
        "shadow:\n  - {name: c, model: 'models:/churn/4'}\n"
    )
    spec = DeploymentSpec.from_file(yml)
    assert spec.sticky_header == "X-Customer"
    assert [a.weight for a in spec.arms] == [90, 10]
    assert spec.shadow[0].name == "c"
    js = tmp_path / "d.json"
    js.write_text(json.dumps(spec.to_dict()))
    assert DeploymentSpec.from_file(js) == spec
    assert DeploymentSpec.single("models:/churn@champion").name == "churn"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"name": "x", "arms": []}, "no arms"),
        ({"arms": "models:/a/1"}, "must be a list"),
        ({"arms": [{"name": "a"}]}, "`model`"),
        ({"arms": [{"model": "m", "weight": -1}]}, "weight -1"),
        ({"arms": [{"model": "m", "weight": 0}]}, "sum to 0"),
        ({"arms": [{"model": "m", "weight": "lots"}]}, "not a number"),
        ({"arms": [{"model": "m"}, {"model": "m"}]}, "names an arm twice"),
        ({"arms": [{"model": "m"}], "weights": {}}, "unknown keys"),
    ],
)
def test_bad_specs_name_the_problem(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        DeploymentSpec.from_dict(raw)


def test_unreadable_spec_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="Cannot read"):
        DeploymentSpec.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        DeploymentSpec.from_file(bad)


SHADOW_GATE = threading.Event()


class GatedShadow:
    """A shadow model that answers 1 once ``SHADOW_GATE`` is open (so a test can hold it)."""

    def predict(self, data: Any) -> Any:
        import numpy as np

        SHADOW_GATE.wait(30)
        return np.ones(len(data), dtype=np.int64)


def test_a_stuck_shadow_never_holds_up_answers_and_drops_copies_past_its_bound(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    import shipyard
    from shipyard.serving.app import create_app
    from shipyard.serving.endpoint import Endpoint
    from tests.server.conftest import serve_in_thread

    folder = workspace.settings.home / "gated"
    SHADOW_GATE.set()  # open while the server loads and warms the model up
    shipyard.save_model(GatedShadow(), folder, input_example=cancer.X[:2])
    spec = DeploymentSpec(
        name="cancer",
        arms=(Arm("champion", "models:/cancer@champion", 100),),
        shadow=(Arm("stuck", str(folder), 0),),
        poll_interval_s=0,
    )
    endpoint = Endpoint(workspace, spec)
    endpoint.load()
    app = create_app(endpoint, load_on_startup=False, max_shadow_in_flight=4)
    rows = cancer.X.iloc[:20]
    expected = endpoint.state().versions["champion"].model.predict(rows).tolist()
    SHADOW_GATE.clear()  # from now on every shadow call blocks
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            answers = [
                client.post(
                    "/predict", json={"dataframe_records": rows.iloc[[i]].to_dict("records")}
                ).json()
                for i in range(20)
            ]
            assert [a["predictions"][0] for a in answers] == expected
            assert {a["arm"] for a in answers} == {"champion"}
            stuck = endpoint.state().versions["stuck"]
            labels = f'model="{stuck.model_name}",version="{stuck.version}"'
            metrics = client.get("/metrics").text
            # four copies queued (one of them running), the other sixteen dropped and counted
            assert f'shipyard_serving_shadow_dropped_total{{{labels},arm="stuck"}} 16.0' in metrics
            SHADOW_GATE.set()
            deadline = time.monotonic() + 10
            done = f'shipyard_serving_shadow_predictions_total{{{labels},arm="stuck"}} 4.0'
            while done not in client.get("/metrics").text:
                assert time.monotonic() < deadline, client.get("/metrics").text
                time.sleep(0.02)
    finally:
        SHADOW_GATE.set()
        endpoint.close()


def test_a_90_10_canary_over_10000_requests_through_the_app_lands_within_2_points(
    workspace: Workspace, models: Registry, cancer: Data
) -> None:
    """The whole request path (parse, pick, predict, answer) in process, 10,000 times: the
    challenger's share is 10 +/- 2 points and each answer comes from the arm it names."""
    import asyncio

    from shipyard.serving.app import create_app
    from shipyard.serving.endpoint import Endpoint

    endpoint = Endpoint(workspace, CANARY)
    endpoint.load()
    app = create_app(endpoint, load_on_startup=False)
    row = cancer.X.iloc[[0]]
    body = {"dataframe_split": {"columns": list(row.columns), "data": row.to_numpy().tolist()}}
    champion = endpoint.state().versions["champion"].model.predict(row).tolist()
    assert champion == [0]  # the challenger (a constant 1) answers differently

    async def send() -> list[tuple[str, list[int]]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            out = []
            for _ in range(10_000):
                answer = (await client.post("/predict", json=body)).json()
                out.append((answer["arm"], answer["predictions"]))
            return out

    try:
        answers = asyncio.run(send())
    finally:
        endpoint.close()
    arms = [arm for arm, _ in answers]
    assert abs(arms.count("challenger") / 10_000 - 0.10) <= 0.02
    assert {tuple(p) for arm, p in answers if arm == "champion"} == {(0,)}
    assert {tuple(p) for arm, p in answers if arm == "challenger"} == {(1,)}
