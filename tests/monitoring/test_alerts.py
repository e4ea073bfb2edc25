"""Alert rules: once per breach, N consecutive windows, cool-down, resolution and
acknowledgement; a webhook on a real loopback server; events that start a retraining pipeline
through the scheduler and carry the deployment controller's payload."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import alerts, monitors
from shipyard.pipelines.scheduler import Scheduler, add_schedule
from shipyard.workspace import Workspace
from tests.monitoring.conftest import write_requests
from tests.monitoring.test_monitors import T0, _requests

FAN = "tests.pipelines._example:fan"


@pytest.fixture
def monitor(workspace: Workspace) -> str:
    rng = np.random.default_rng(0)
    write_requests(workspace, "ep", _requests(rng, 0, 300))
    monitors.create_monitor(
        workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 300}},
        window={"rows": 100}, model="churn", deployment="churn-prod", task="classification",
    )  # fmt: skip
    return "m"


def _feed(ws: Workspace, name: str, values: list[float], rule: str) -> list[int]:
    """One result per value of ``drift_share`` (window i ends at i s); the alert id fired at each
    window (0: none)."""
    m = ws.monitors.get_monitor(name)
    fired = []
    for i, v in enumerate(values):
        result = ws.monitors.add_result(m.monitor_id, i * 1000, (i + 1) * 1000, 100,
                                        {"drift_share": v}, {})  # fmt: skip
        out = [a for a in alerts.evaluate_rules(ws, m, result) if a.rule == rule]
        fired.append(out[0].alert_id if out else 0)
    return fired


def test_fires_once_per_breach_after_n_windows_and_resolves(
    workspace: Workspace, monitor: str
) -> None:
    alerts.create_rule(workspace, "r", monitor=monitor, metric="drift_share", operator=">=",
                       threshold=0.5, consecutive=2)  # fmt: skip
    fired = _feed(workspace, monitor, [0.6, 0.1, 0.6, 0.7, 0.8, 0.9, 0.2, 0.7, 0.7], "r")
    #                                  1st  reset  1    2=fire 3   4   end  1    2=fire
    assert [bool(f) for f in fired] == [False, False, False, True, False, False, False, False, True]
    history = workspace.monitors.list_alerts(rule="r")
    assert [a.status for a in history] == ["open", "resolved"]  # newest first
    assert history[1].resolved_time == 7000
    assert history[1].value == 0.7
    assert history[1].threshold == 0.5


def test_cooldown_holds_back_a_flapping_metric(workspace: Workspace, monitor: str) -> None:
    alerts.create_rule(workspace, "cool", monitor=monitor, metric="drift_share", operator=">",
                       threshold=0.5, cooldown_s=5)  # fmt: skip
    fired = _feed(workspace, monitor, [0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.9], "cool")
    # fires at 1 s; the breaches at 3 s and 5 s are within 5 s of it; 7 s is not
    assert [bool(f) for f in fired] == [True, False, False, False, False, False, True, False]
    missing = _feed(workspace, monitor, [float("nan")], "cool")
    assert missing == [0]


def test_windows_without_the_metric_neither_end_nor_extend_a_breach(
    workspace: Workspace, monitor: str
) -> None:
    # accuracy on labelled windows only: the unlabelled windows in between (no metric) must not
    # end the breach, or every labelled window of one long breach would fire again
    alerts.create_rule(workspace, "acc", monitor=monitor, metric="accuracy", operator="<",
                       threshold=0.8, consecutive=2)  # fmt: skip
    m = workspace.monitors.get_monitor(monitor)
    values = [0.7, None, 0.6, None, 0.5, 0.9, None, 0.7, 0.7]
    #         1    gap   2=fire gap  3    end  gap   1    2=fire
    fired = []
    for i, v in enumerate(values):
        metrics = {} if v is None else {"accuracy": v}
        result = workspace.monitors.add_result(m.monitor_id, i * 1000, (i + 1) * 1000, 100,
                                               metrics, {})  # fmt: skip
        fired.append(bool(alerts.evaluate_rules(workspace, m, result)))
    assert fired == [False, False, True, False, False, False, False, False, True]
    history = workspace.monitors.list_alerts(rule="acc")
    assert [a.status for a in history] == ["open", "resolved"]
    assert history[1].resolved_time == 6000  # the first labelled window above the threshold
    assert workspace.monitors.get_rule("acc").last_result_id == result.result_id


def test_acknowledge_and_bad_rules(workspace: Workspace, monitor: str) -> None:
    alerts.create_rule(workspace, "a", monitor=monitor, metric="drift_share", operator=">",
                       threshold=0.0)  # fmt: skip
    (alert_id,) = [f for f in _feed(workspace, monitor, [1.0], "a") if f]
    acked = alerts.acknowledge(workspace, alert_id, "ann", "retraining")
    assert (acked.status, acked.acknowledged_by, acked.note) == (
        "acknowledged",
        "ann",
        "retraining",
    )
    assert workspace.monitors.list_alerts(status="acknowledged")[0].alert_id == alert_id
    with pytest.raises(NotFound, match="monitor alerts"):
        alerts.acknowledge(workspace, 999, "ann")
    for kwargs, match in (
        ({"operator": "=="}, "operator"),
        ({"action": "explode"}, "action"),
        ({"consecutive": 0}, "consecutive"),
        ({"sinks": [{"kind": "pager"}]}, "unknown alert sink"),
        ({"sinks": [{"kind": "webhook", "url": "ftp://x"}]}, "http"),
    ):
        args = {"monitor": monitor, "metric": "x", "operator": ">", "threshold": 1.0, **kwargs}
        with pytest.raises(InvalidInput, match=match):
            alerts.create_rule(workspace, "bad", **args)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        alerts.create_rule(workspace, "bad", monitor="nope", metric="x", operator=">",
                           threshold=1)  # fmt: skip


def test_rules_on_metrics_no_window_computes_are_refused(
    workspace: Workspace, monitor: str
) -> None:
    """A typo or a metric the monitor's task never computes would make a rule that can never
    fire; the error says which metrics exist."""
    for metric, match in (
        ("accuarcy", "unknown metric 'accuarcy'.*drift_share"),
        ("rmse", "not computed for a classification monitor.*accuracy"),
        ("drift:", "unknown metric"),
        ("rows[region=eu]", "unknown metric"),
    ):
        with pytest.raises(InvalidInput, match=match):
            alerts.create_rule(workspace, "bad", monitor=monitor, metric=metric, operator=">",
                               threshold=1.0)  # fmt: skip
    for metric in ("rows", "latency_p95_ms", "drift:x", "f1[region=eu]", "roc_auc"):
        alerts.create_rule(workspace, f"ok-{metric}", monitor=monitor, metric=metric,
                           operator=">", threshold=1.0)  # fmt: skip
    rng = np.random.default_rng(3)
    write_requests(workspace, "ep2", _requests(rng, 0, 200))
    monitors.create_monitor(
        workspace, "no-task", endpoint="ep2", reference={"window": {"start": 0, "end": T0 + 100}},
        window={"rows": 100},
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=r"has no task.*--task"):
        alerts.create_rule(workspace, "acc", monitor="no-task", metric="accuracy", operator="<",
                           threshold=0.8)  # fmt: skip


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": json.loads(body), "auth": self.headers.get("X-Token")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_and_event_sinks_start_retraining(
    workspace: Workspace, monitor: str, hook: tuple[str, list[dict]]
) -> None:
    url, received = hook
    add_schedule(workspace, "retrain", FAN, on="alert", event_filter="drift-*")
    alerts.create_rule(
        workspace, "drift-high", monitor=monitor, metric="drift_share", operator=">=",
        threshold=0.3, action="rollback",
        sinks=[{"kind": "log"}, {"kind": "webhook", "url": url, "headers": {"X-Token": "t"}},
               {"kind": "event"}],
    )  # fmt: skip
    rng = np.random.default_rng(1)
    write_requests(workspace, "ep", _requests(rng, 300, 300, shift=2.0))
    out = monitors.run_monitor(workspace, monitor)
    assert len(out.results) == 3
    (alert,) = out.alerts  # three breached windows, one alert
    assert [d["kind"] for d in alert.deliveries] == ["log", "webhook", "event"]
    assert all(d["ok"] for d in alert.deliveries)
    (call,) = received
    assert call["auth"] == "t"
    payload = call["body"]
    contract = {"alert_id", "rule", "monitor", "deployment", "model", "metric", "value",
                "threshold", "action"}  # fmt: skip
    assert contract <= set(payload)
    assert (payload["deployment"], payload["model"], payload["action"]) == (
        "churn-prod", "churn", "rollback")  # fmt: skip
    assert payload["alert_id"] == alert.alert_id
    assert payload["value"] >= 0.3
    (event,) = workspace.pipelines.events_after("alert", None)
    assert event.name == "drift-high"
    assert event.payload == payload
    # the scheduler turns the event into a pipeline run
    started = Scheduler(workspace).tick()
    assert len(started) == 1
    run = workspace.pipelines.get_run(started[0])
    assert run.status == "SUCCEEDED"
    assert run.trigger["cause"]["alert_id"] == alert.alert_id


def test_a_failing_webhook_is_recorded_not_raised(workspace: Workspace, monitor: str) -> None:
    from tests.conftest import free_port

    alerts.create_rule(workspace, "dead", monitor=monitor, metric="drift_share", operator=">=",
                       threshold=0.0,
                       sinks=[{"kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/",
                               "timeout_s": 1}])  # fmt: skip
    (alert_id,) = [f for f in _feed(workspace, monitor, [0.5], "dead") if f]
    (delivery,) = workspace.monitors.get_alert(alert_id).deliveries
    assert delivery["ok"] is False
    assert "Connect" in delivery["error"]
