"""Alert rules over monitor results, and the sinks alerts go to.

A rule watches one metric of one monitor's results (``drift_share``, ``accuracy``,
``error_rate``, ``drift:age``, ``f1[region=eu]``...; see ``docs/monitoring.md``) with an
operator and a threshold. It is *breached* on a window when the comparison holds; it *fires*
when it has been breached for ``consecutive`` windows in a row, once per breach: while the
breach lasts no further alert fires, and when a window is no longer breached the breach ends
and the rule's open alerts are resolved. A window without the metric (no labelled rows yet, a
column missing) changes nothing: it neither counts towards ``consecutive`` nor ends a breach.
A new breach fires again only when ``cooldown_s`` has passed since the last firing (window
time), so a flapping metric cannot storm.

Sinks (plugins: :func:`register_alert_sink`):

* ``{"kind": "log"}``: a warning on the ``shipyard.monitoring`` logger;
* ``{"kind": "webhook", "url": ..., "headers": {...}, "timeout_s": 5}``: an HTTP POST of the
  payload as JSON (two attempts);
* ``{"kind": "event"}``: ``shipyard.pipelines.fire_event("alert", rule, payload)``, which starts
  pipelines scheduled on ``alert`` events (retraining) and is what the deployment controller
  polls (``hold`` / ``rollback``).

The payload (the contract with the deployment controller) has at least ``alert_id``, ``rule``,
``monitor``, ``deployment``, ``model``, ``metric``, ``value``, ``threshold`` and ``action``
(``retrain``, ``hold``, ``rollback`` or ``None``).
"""

from __future__ import annotations

import logging
import math
import operator as op
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.store.monitoring import Alert, AlertRule, AlertStatus, Monitor, MonitorResult

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.monitoring")

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    ">=": op.ge,
    "<": op.lt,
    "<=": op.le,
}
ACTIONS = ("retrain", "hold", "rollback")

Sink = Callable[["Workspace", dict[str, Any], dict[str, Any]], dict[str, Any]]
"""``sink(workspace, config, payload)`` delivers one alert; returns what it did (a dict)."""
_SINKS: dict[str, Sink] = {}


def register_alert_sink(kind: str, sink: Sink, *, replace: bool = False) -> None:
    """Add a sink kind: rules list it as ``{"kind": kind, ...config}``."""
    if kind in _SINKS and not replace:
        raise InvalidInput(f"an alert sink {kind!r} is registered already; pass replace=True.")
    _SINKS[kind] = sink


def _log_sink(ws: Workspace, config: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    logger.warning(
        "alert %s: monitor %s %s = %s (threshold %s)%s",
        payload["rule"], payload["monitor"], payload["metric"], payload["value"],
        payload["threshold"], f", action {payload['action']}" if payload["action"] else "",
    )  # fmt: skip
    return {"ok": True}


def _webhook_sink(ws: Workspace, config: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    import httpx

    url = config["url"]
    last = ""
    for _ in range(2):
        try:
            response = httpx.post(
                url,
                json=payload,
                headers=dict(config.get("headers") or {}),
                timeout=float(config.get("timeout_s", 5.0)),
            )
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code < 300:
            return {"ok": True, "status": response.status_code}
        last = f"HTTP {response.status_code}"
        if response.status_code < 500:
            break
    logger.warning("alert %s: webhook %s failed: %s", payload["rule"], url, last)
    return {"ok": False, "error": last}


def _event_sink(ws: Workspace, config: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    from shipyard.pipelines.service import fire_event

    event = fire_event("alert", payload["rule"], payload, workspace=ws)
    return {"ok": True, "event_id": event.event_id}


register_alert_sink("log", _log_sink)
register_alert_sink("webhook", _webhook_sink)
register_alert_sink("event", _event_sink)


def check_sinks(sinks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for sink in sinks:
        kind = sink.get("kind")
        if kind not in _SINKS:
            raise InvalidInput(
                f"unknown alert sink {kind!r}; known sinks: {', '.join(sorted(_SINKS))}."
            )
        if kind == "webhook" and not str(sink.get("url", "")).startswith(("http://", "https://")):
            raise InvalidInput("a webhook sink needs an http:// or https:// url.")
        out.append(dict(sink))
    return out


WINDOW_METRICS = (
    "rows", "requests", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "missing_rate", "out_of_schema_rate", "drift_share", "dataset_drift", "prediction_drift",
    "prediction_drifted", "labelled",
)  # fmt: skip
"""The metrics every window result may hold (besides ``drift:COLUMN`` and performance)."""
_SEGMENTED = re.compile(r"(?P<metric>[a-z_0-9]+)\[[^=\]]+=.*\]")


def check_metric(metric: str, task: str | None) -> None:
    """Refuse a metric no window of a monitor with ``task`` ever computes: a rule on it would
    never fire, silently."""
    from shipyard.monitoring.performance import CLASSIFICATION, REGRESSION

    performance = {"classification": CLASSIFICATION, "regression": REGRESSION}
    segmented = _SEGMENTED.fullmatch(metric)
    name = segmented.group("metric") if segmented else metric
    if not segmented and (metric in WINDOW_METRICS or (metric.startswith("drift:") and metric[6:])):
        return
    if name in CLASSIFICATION or name in REGRESSION:
        if task is None:
            raise InvalidInput(
                f"metric {metric!r} is a performance metric, but the monitor has no task, so its "
                "windows never compute one; create the monitor with --task classification or "
                "regression."
            )
        if name in performance[task]:
            return
        raise InvalidInput(
            f"metric {metric!r} is not computed for a {task} monitor; use one of "
            f"{', '.join(performance[task])}."
        )
    raise InvalidInput(
        f"unknown metric {metric!r}; a rule watches one of {', '.join(WINDOW_METRICS)}, "
        "drift:COLUMN, or a performance metric such as accuracy, rmse or f1[COLUMN=VALUE] "
        "(see docs/monitoring.md)."
    )


def create_rule(
    ws: Workspace,
    name: str,
    *,
    monitor: str,
    metric: str,
    operator: str,
    threshold: float,
    consecutive: int = 1,
    cooldown_s: int = 0,
    sinks: list[dict[str, Any]] | None = None,
    action: str | None = None,
) -> AlertRule:
    """Create an alert rule on a monitor's metric (see the module docstring). Sinks default to
    the log; ``action`` (retrain, hold, rollback) travels in the payload."""
    if not name or len(name) > 250:
        raise InvalidInput("an alert rule needs a name of 1 to 250 characters.")
    if operator not in OPERATORS:
        raise InvalidInput(f"operator must be one of {' '.join(OPERATORS)}, not {operator!r}.")
    if action is not None and action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)} or none, not {action!r}.")
    if consecutive < 1:
        raise InvalidInput(f"consecutive must be at least 1, not {consecutive}.")
    if cooldown_s < 0:
        raise InvalidInput(f"cooldown_s must not be negative, not {cooldown_s}.")
    if not math.isfinite(float(threshold)):
        raise InvalidInput("the threshold must be a finite number.")
    watched = ws.monitors.get_monitor(monitor)  # NotFound names the fix
    checked_sinks = check_sinks(sinks if sinks is not None else [{"kind": "log"}])
    check_metric(metric, watched.spec.get("task"))
    return ws.monitors.create_rule(
        AlertRule(
            rule_id=0,
            name=name,
            monitor=monitor,
            metric=metric,
            operator=operator,
            threshold=float(threshold),
            consecutive=int(consecutive),
            cooldown_s=int(cooldown_s),
            sinks=checked_sinks,
            action=action,
        )
    )


def evaluate_rules(ws: Workspace, monitor: Monitor, result: MonitorResult) -> list[Alert]:
    """Evaluate every enabled rule of ``monitor`` on a new result; the alerts that fired."""
    fired = []
    for rule in ws.monitors.list_rules(monitor.name):
        if not rule.enabled:
            continue
        if rule.last_result_id is not None and result.result_id <= rule.last_result_id:
            continue
        alert = _evaluate(ws, monitor, rule, result)
        if alert is not None:
            fired.append(alert)
    return fired


def _evaluate(
    ws: Workspace, monitor: Monitor, rule: AlertRule, result: MonitorResult
) -> Alert | None:
    measured = result.metrics.get(rule.metric)
    value = math.nan if measured is None else float(measured)
    count, in_breach, last_fired = rule.breach_count, rule.in_breach, rule.last_fired_time
    fire = False
    now = result.window_end
    # A window without the metric (no labelled rows yet, no answered request) is no evidence
    # either way: the breach neither grows nor ends, so a gap inside it cannot fire it twice.
    if math.isfinite(value):
        breached = OPERATORS[rule.operator](value, rule.threshold)
        count = count + 1 if breached else 0
        cooled = last_fired is None or now - last_fired >= rule.cooldown_s * 1000
        if not breached:
            in_breach = False
        elif not in_breach and count >= rule.consecutive and cooled:
            fire, in_breach, last_fired = True, True, now
    if not ws.monitors.update_rule_state(
        rule.rule_id,
        rule.last_result_id,
        last_result_id=result.result_id,
        breach_count=count,
        in_breach=in_breach,
        last_fired_time=last_fired,
    ):
        return None  # another evaluator took this result
    if rule.in_breach and not in_breach:
        ws.monitors.resolve_alerts(rule.rule_id, now)
    if not fire:
        return None
    alert = ws.monitors.add_alert(
        Alert(
            alert_id=0,
            rule_id=rule.rule_id,
            rule=rule.name,
            monitor=monitor.name,
            metric=rule.metric,
            value=value,
            threshold=rule.threshold,
            result_id=result.result_id,
            status=AlertStatus.OPEN,
            fired_time=_wall_ms(),
        )
    )
    payload = {
        "alert_id": alert.alert_id,
        "rule": rule.name,
        "monitor": monitor.name,
        "deployment": monitor.deployment or monitor.endpoint,
        "endpoint": monitor.endpoint,
        "model": monitor.model,
        "metric": rule.metric,
        "value": alert.value,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "action": rule.action,
        "result_id": result.result_id,
        "window_start": result.window_start,
        "window_end": result.window_end,
        "fired_time": alert.fired_time,
    }
    ws.monitors.set_deliveries(alert.alert_id, [], payload)
    deliveries = []
    for sink in rule.sinks:
        try:
            outcome = _SINKS[sink["kind"]](ws, sink, payload)
        except Exception as exc:  # a broken sink must not stop the others
            logger.warning("alert %s: sink %s failed: %s", rule.name, sink["kind"], exc)
            outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        deliveries.append({"kind": sink["kind"], **outcome})
    ws.monitors.set_deliveries(alert.alert_id, deliveries, payload)
    return ws.monitors.get_alert(alert.alert_id)


def _wall_ms() -> int:
    import time

    return int(time.time() * 1000)


def acknowledge(ws: Workspace, alert_id: int, user: str, note: str | None = None) -> Alert:
    """Acknowledge an alert (who and why)."""
    return ws.monitors.acknowledge_alert(alert_id, user, note)
