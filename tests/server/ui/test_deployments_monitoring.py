"""The deployments and monitoring pages, their actions, and the lineage graph's downstream."""

from __future__ import annotations

import html
import json
import re

import httpx

from shipyard.errors import PermissionDenied
from shipyard.server.app import create_app
from shipyard.server.auth import Principal
from tests.server.asgi import ASGISyncTransport
from tests.server.ui.conftest import SeededClient


def get(ui: SeededClient, path: str, status: int = 200) -> str:
    r = ui.client.get(path)
    assert r.status_code == status, (path, r.text[:2000])
    return r.text


def post(
    ui: SeededClient, path: str, data: dict[str, str] | None = None, **kw: object
) -> httpx.Response:
    return ui.client.post(path, data=data or {}, follow_redirects=False, **kw)  # type: ignore[arg-type]


def state_of(ui: SeededClient) -> str:
    return ui.ws.deployments.get(ui.seeded.deployment).state


def test_deployments_list_shows_state_and_split(ui: SeededClient) -> None:
    body = get(ui, "/deployments")
    assert "churn-prod" in body
    assert "status-canary" in body
    assert "v1 90% · v2 10%" in body


def test_deployment_page_shows_traffic_gates_and_timeline(ui: SeededClient) -> None:
    body = get(ui, f"/deployments/{ui.seeded.deployment}")
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="0" width="([\d.]+)"', body)]
    assert widths == [648.0, 72.0]  # 90% and 10% of the bar
    assert "accuracy 0.92 &gt;= 0.5" in body  # the gate evidence
    assert "shadow passed" in body
    assert "agreement" in body
    assert "canary 10% → 50% → 100%" in body
    for action in ("promote", "rollback", "pause"):
        assert f'action="/deployments/churn-prod/{action}"' in body


def test_pause_resume_and_rollback_call_the_service(ui: SeededClient) -> None:
    name = ui.seeded.deployment
    r = post(ui, f"/deployments/{name}/pause", {"reason": "looking at latency"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/deployments/{name}?done=paused"
    assert state_of(ui) == "paused"
    body = get(ui, r.headers["location"])
    assert "looking at latency" in body
    assert "Done: paused" in body
    assert 'action="/deployments/churn-prod/resume"' in body
    assert post(ui, f"/deployments/{name}/resume").status_code == 303
    assert state_of(ui) == "canary"
    assert post(ui, f"/deployments/{name}/rollback", {"reason": "bad canary"}).status_code == 303
    rec = ui.ws.deployments.get(name)
    assert rec.state == "rolled_back"
    assert [a["weight"] for a in rec.traffic["arms"]] == [100.0]
    # No sign-in on this server: the timeline says so, not the server process's own user.
    assert ui.ws.deployments.events(name)[-1].user_id == "anonymous"


def test_promote_the_candidate_or_a_named_version(ui: SeededClient) -> None:
    name = ui.seeded.deployment
    r = post(ui, f"/deployments/{name}/promote", {"reason": "canary looks good"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/deployments/{name}?done=promoted"
    rec = ui.ws.deployments.get(name)
    assert (rec.state, rec.stable_version) == ("promoted", 2)
    assert [(a["name"], a["weight"]) for a in rec.traffic["arms"]] == [("v2", 100.0)]
    assert ui.ws.registry.get_model_version_by_alias(ui.seeded.model, "champion").version == 2
    body = get(ui, r.headers["location"])
    assert "Done: promoted" in body
    assert "canary looks good" in body
    # A named version goes through its offline gates first, then replaces the stable one.
    assert post(ui, f"/deployments/{name}/promote", {"version": "1"}).status_code == 303
    rec = ui.ws.deployments.get(name)
    assert rec.stable_version == 1
    assert [e.action for e in ui.ws.deployments.events(name)][-2:] == ["gates_checked", "promoted"]


def test_impossible_actions_say_why(ui: SeededClient) -> None:
    name = ui.seeded.deployment
    bad = post(ui, f"/deployments/{name}/promote", {"version": "two"})
    assert bad.status_code == 400
    assert "&#39;two&#39; is not a number" in bad.text
    resume = post(ui, f"/deployments/{name}/resume")
    assert resume.status_code == 409
    assert "not paused" in resume.text
    assert state_of(ui) == "canary"


def test_a_form_posted_from_another_site_is_refused(ui: SeededClient) -> None:
    r = post(
        ui, f"/deployments/{ui.seeded.deployment}/pause", headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403
    assert "evil.example" in r.text
    assert state_of(ui) == "canary"
    # the same host over https (a TLS-terminating proxy in front) is this server
    same = post(
        ui, f"/deployments/{ui.seeded.deployment}/pause", headers={"Origin": "https://testserver"}
    )
    assert same.status_code == 303
    lookalike = post(
        ui,
        f"/deployments/{ui.seeded.deployment}/resume",
        headers={"Origin": "http://testserver.evil"},
    )
    assert lookalike.status_code == 403


class ReadOnly:
    """Lets everyone read; nobody deploy."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def authorize(self, principal: Principal, action: str, resource: str) -> None:
        self.asked.append((action, resource))
        if action != "read":
            raise PermissionDenied(f"{principal.name} lacks {action} on {resource}")


def test_actions_need_the_deploy_permission(ui: SeededClient) -> None:
    authorizer = ReadOnly()
    app = create_app(ui.ws, authorizer=authorizer)
    with httpx.Client(transport=ASGISyncTransport(app), base_url="http://testserver") as c:
        assert c.get(f"/deployments/{ui.seeded.deployment}").status_code == 200
        r = c.post(f"/deployments/{ui.seeded.deployment}/rollback", data={})
        assert r.status_code == 403
        assert "lacks deploy on deployment:churn-prod" in r.text
        ack = c.post("/monitoring/alerts/1/acknowledge", data={})
        assert ack.status_code == 403
    # what the API's deployment routes ask; a monitor's alert as the model it watches
    assert ("deploy", "deployment:churn-prod") in authorizer.asked
    assert ("read", "deployment:churn-prod") in authorizer.asked
    assert ("write", "model:churn") in authorizer.asked
    assert state_of(ui) == "canary"


def test_monitoring_overview_and_acknowledgement(ui: SeededClient) -> None:
    body = get(ui, "/monitoring")
    assert "churn-live" in body
    assert "age-drift" in body
    assert 'action="/monitoring/alerts/1/acknowledge"' in body
    r = post(ui, "/monitoring/alerts/1/acknowledge", {"note": "retraining now"})
    assert r.status_code == 303
    assert r.headers["location"] == "/monitoring/churn-live#alerts"
    alert = ui.ws.monitors.get_alert(1)
    assert alert.status == "acknowledged"
    assert alert.note == "retraining now"
    listed = get(ui, "/monitoring?status=acknowledged")
    assert "retraining now" in listed
    assert "/alerts/1/acknowledge" not in listed
    assert "age-drift" not in get(ui, "/monitoring?status=open").split('id="alerts"')[-1]
    get(ui, "/monitoring?status=bogus", status=400)


def test_monitor_page_charts_over_time_and_distributions(ui: SeededClient) -> None:
    body = get(ui, f"/monitoring/{ui.seeded.monitor}")
    groups = re.findall(r"metrics\?group=(\w+)", body)
    assert groups == ["drift", "performance", "health", "volume", "quality"]
    overlays = [
        json.loads(html.unescape(m))
        for m in re.findall(r'data-chart="dist" data-points="([^"]+)"', body)
    ]
    assert len(overlays) == 2
    assert len(overlays[0]["x"]) == 10
    assert overlays[0]["labels"] == []
    assert overlays[1]["labels"] == ["basic", "pro", "team"]
    drift = ui.client.get(f"/ui/data/monitors/{ui.seeded.monitor}/metrics?group=drift").json()
    names = [s["name"] for s in drift["series"]]
    assert names == ["age", "plan", "drift_share"]
    age = drift["series"][0]
    assert len(age["x"]) == 12
    assert age["y"][-1] > age["y"][0]
    # latencies get an axis of their own next to the error rate (a rate of 0.01 would be a flat
    # line on a 0-30 ms scale)
    health = ui.client.get(f"/ui/data/monitors/{ui.seeded.monitor}/metrics?group=health").json()
    scales = {s["name"]: s.get("scale") for s in health["series"]}
    assert scales == {"error_rate": None, "latency_p99_ms": "ms"}
    perf = ui.client.get(f"/ui/data/monitors/{ui.seeded.monitor}/metrics?group=performance")
    assert [s["name"] for s in perf.json()["series"]] == ["accuracy"]  # no segment metrics
    assert (
        ui.client.get(f"/ui/data/monitors/{ui.seeded.monitor}/metrics?group=x").status_code == 400
    )
    get(ui, "/monitoring/nope", status=404)


def test_lineage_reaches_deployments_and_alerts(ui: SeededClient) -> None:
    v2 = get(ui, f"/models/{ui.seeded.model}/versions/2")
    assert 'class="node kind-deployment"' in v2
    assert "canary · candidate" in v2
    assert 'class="node kind-alert"' in v2
    assert "age-drift" in v2
    v1 = get(ui, f"/models/{ui.seeded.model}/versions/1")
    assert "canary · stable" in v1


def test_real_users_and_roles(ui: SeededClient) -> None:
    """With the workspace's users and roles: a reader sees the deployment but cannot roll it
    back; a deployer can pause it, and is recorded as who did."""
    from shipyard.security import Security
    from shipyard.server.auth import auth_for_workspace

    security = Security.for_workspace(ui.ws)
    tokens = {}
    for user, role, scope in (("rita", "reader", "*"), ("dev", "deployer", "*")):
        security.create_user(user, actor="test")
        security.grant(user, role, scope, actor="test")
        tokens[user] = security.create_token(user, "ui", actor="test").secret
    authenticator, authorizer = auth_for_workspace(ui.ws)
    app = create_app(ui.ws, authenticator=authenticator, authorizer=authorizer)
    name = ui.seeded.deployment
    with httpx.Client(transport=ASGISyncTransport(app), base_url="http://testserver") as c:
        assert c.get(f"/deployments/{name}").status_code == 401
        rita = {"Authorization": f"Bearer {tokens['rita']}"}
        assert c.get(f"/deployments/{name}", headers=rita).status_code == 200
        assert c.post(f"/deployments/{name}/rollback", headers=rita, data={}).status_code == 403
        dev = {"Authorization": f"Bearer {tokens['dev']}"}
        ok = c.post(f"/deployments/{name}/pause", headers=dev, data={}, follow_redirects=False)
        assert ok.status_code == 303
    assert ui.ws.deployments.get(name).state == "paused"
    assert ui.ws.deployments.events(name)[-1].user_id == "dev"  # the signed-in user
