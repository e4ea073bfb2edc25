"""The monitoring store's contract, on SQLite and PostgreSQL: names are unique, watermarks and
rule states move only from the value the caller read, alerts keep their history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import AlreadyExists, NotFound
from shipyard.store.monitoring import Alert, AlertRule, Monitor
from shipyard.workspace import Workspace


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    uri = None
    if request.param == "postgres":
        uri = request.getfixturevalue("postgres_uri")
    settings = Settings.from_env({}, home=tmp_path / "h", tracking_uri=uri)
    workspace = Workspace.open(settings)
    try:
        yield workspace
    finally:
        workspace.close()


def test_monitor_results_rules_and_alerts(ws: Workspace) -> None:
    store = ws.monitors
    m = store.create_monitor(Monitor(0, "m", "ep", spec={"window": {"rows": 5}}))
    with pytest.raises(AlreadyExists, match="monitor delete"):
        store.create_monitor(Monitor(0, "m", "ep"))
    assert store.claim_window(m.monitor_id, None, 100)
    assert not store.claim_window(m.monitor_id, None, 200)  # someone moved it first
    assert store.claim_window(m.monitor_id, 100, 200)
    assert store.get_monitor("m").watermark == 200
    assert store.get_monitor("m").last_run_time is not None
    for end in (100, 200, 300):
        store.add_result(m.monitor_id, end - 100, end, 5, {"x": end / 100, "bad": float("nan")},
                         {"k": [end]})  # fmt: skip
    results = store.list_results("m")
    assert [r.window_end for r in results] == [100, 200, 300]
    assert results[0].metrics == {"x": 1.0, "bad": None}
    assert [r.window_end for r in store.list_results("m", since=150, max_results=1)] == [300]
    assert store.get_result(results[0].result_id).details == {"k": [100]}
    rule = store.create_rule(AlertRule(0, "r", "m", "x", ">", 1.5, sinks=[{"kind": "log"}]))
    assert store.list_rules("m") == [rule]
    assert store.list_rules("other") == []
    assert store.update_rule_state(rule.rule_id, None, last_result_id=1, breach_count=1,
                                   in_breach=True, last_fired_time=5)  # fmt: skip
    assert not store.update_rule_state(rule.rule_id, None, last_result_id=2, breach_count=0,
                                       in_breach=False, last_fired_time=None)  # fmt: skip
    assert store.get_rule("r").in_breach
    alert = store.add_alert(Alert(0, rule.rule_id, "r", "m", "x", 2.0, 1.5, 1, "open", 5))
    store.set_deliveries(alert.alert_id, [{"kind": "log", "ok": True}], {"alert_id": 1})
    got = store.get_alert(alert.alert_id)
    assert got.deliveries == [{"kind": "log", "ok": True}]
    assert got.payload == {"alert_id": 1}
    acked = store.acknowledge_alert(alert.alert_id, "ann", "seen")
    assert (acked.status, acked.acknowledged_by, acked.note) == ("acknowledged", "ann", "seen")
    assert store.resolve_alerts(rule.rule_id, 9) == 1
    assert store.get_alert(alert.alert_id).status == "resolved"
    again = store.acknowledge_alert(alert.alert_id, "bob", "late")
    assert again.status == "resolved"
    assert again.note == "late"
    store.update_monitor("m", enabled=False, spec={"window": {"rows": 9}})
    assert not store.get_monitor("m").enabled
    assert store.get_monitor("m").spec == {"window": {"rows": 9}}
    assert store.update_monitor("m", last_run_time=123).last_run_time == 123
    assert store.get_monitor("m").watermark == 200  # stamping a run leaves the watermark
    with pytest.raises(NotFound):
        store.update_monitor("nope", last_run_time=1)
    store.delete_rule("r")
    store.delete_monitor("m")
    with pytest.raises(NotFound):
        store.list_results("m")
    with pytest.raises(NotFound, match="monitor rules"):
        store.delete_rule("r")
    assert [a.alert_id for a in store.list_alerts(monitor="m")] == [alert.alert_id]
