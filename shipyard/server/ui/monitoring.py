"""Monitoring: monitors and their windows over time (drift per feature, performance, health and
volume), distribution overlays of the latest window, and alerts.

Reads go through :mod:`shipyard.monitoring.monitors` (``list_monitors``, ``results_over_time``,
``list_alerts``) and the monitor store; acknowledging an alert calls
:func:`shipyard.monitoring.alerts.acknowledge` (a ``write`` on the model the monitor watches). Charts fetch
``/ui/data/monitors/{name}/metrics?group=drift|performance|health|volume|quality``: one series per
metric, on the time axis of the windows' ends; latencies (``*_ms``) carry ``"scale": "ms"`` so the
chart gives them an axis of their own next to the error rate.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request

from shipyard.errors import InvalidInput
from shipyard.server.auth import principal_of, readable_ids
from shipyard.server.ui._routing import UiRouter, query_choice, query_int

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = UiRouter()

GROUPS = ("drift", "performance", "health", "volume", "quality")
HEALTH = ("error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
VOLUME = ("rows", "requests", "labelled")
QUALITY = ("missing_rate", "out_of_schema_rate")
DRIFT = ("drift_share", "dataset_drift", "prediction_drift", "prediction_drifted")
MAX_WINDOWS = 2000
MAX_OVERLAYS = 12


def available(ws: Workspace) -> bool:
    return getattr(ws, "monitor_store", None) is not None


def monitor_scope(request: Request, ws: Workspace) -> str:
    """A monitor is authorized as the registered model it watches (grants are given on
    models), or as the workspace's when it names none."""
    model = ws.monitors.get_monitor(request.path_params["name"]).model
    return f"model:{model}" if model else "monitor:*"


def alert_scope(request: Request, ws: Workspace) -> str:
    """An alert is authorized as its monitor's model."""
    alert = ws.monitors.get_alert(_alert_id(request))
    model = ws.monitors.get_monitor(alert.monitor).model
    return f"model:{model}" if model else "monitor:*"


def _alert_id(request: Request) -> int:
    raw = request.path_params["alert_id"]
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"alert {raw!r} is not an alert id (a number).") from None


def group_of(metric: str) -> str | None:
    """Which chart a window metric belongs on (segment metrics, ``auc[country=FR]``, on none)."""
    if metric.startswith("drift:") or metric in DRIFT:
        return "drift"
    if metric in HEALTH:
        return "health"
    if metric in VOLUME:
        return "volume"
    if metric in QUALITY:
        return "quality"
    if "[" in metric:
        return None
    return "performance"


MAX_ALERTS = 200
"""How many alerts the monitoring page lists (newest first)."""


@router.page("/monitoring", "monitoring.html", resource="ui")
def monitoring_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Every monitor with its latest window, and the alerts (open first); a project-scoped
    user sees the monitors of the models their grants name, and their alerts."""
    if not available(ws):
        return {"monitors": [], "alerts": [], "available": False, "status": ""}
    from shipyard.monitoring.monitors import list_alerts, list_monitors

    status = request.query_params.get("status") or None
    if status not in (None, "open", "acknowledged", "resolved"):
        raise InvalidInput(f"status={status!r} is not open, acknowledged or resolved.")
    monitors = list_monitors(ws)
    allowed = readable_ids(request, "model")
    if allowed is None:
        alerts = list_alerts(ws, status=status, max_results=MAX_ALERTS)
    else:  # each visible monitor's own, so other models' alerts cannot crowd them out
        monitors = [m for m in monitors if m.get("model") in allowed]
        alerts = [
            a
            for m in monitors
            for a in list_alerts(ws, status=status, monitor=m["name"], max_results=MAX_ALERTS)
        ]
        alerts.sort(key=lambda a: -a["alert_id"])  # newest first, as the store lists them
        del alerts[MAX_ALERTS:]
    return {
        "monitors": monitors,
        "alerts": alerts,
        "available": True,
        "status": status or "",
        "quote": quote,
    }


@router.page("/monitoring/{name}", "monitor.html", resource="monitor", scope=monitor_scope)
def monitor_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """One monitor: its settings, charts over time, the latest window's distributions."""
    from shipyard.monitoring.monitors import list_alerts, monitor_dict, results_over_time

    name = request.path_params["name"]
    monitor = ws.monitors.get_monitor(name)
    results = results_over_time(ws, name, max_results=50)
    latest = ws.monitors.list_results(name, max_results=1)
    groups = sorted(
        {g for r in results for m in r["metrics"] if (g := group_of(m)) is not None},
        key=GROUPS.index,
    )
    return {
        "monitor": monitor_dict(monitor),
        "results": list(reversed(results)),
        "groups": groups,
        "overlays": distribution_overlays(latest[0].details if latest else {}),
        "latest": latest[0] if latest else None,
        "alerts": list_alerts(ws, monitor=name, max_results=50),
        "quote": quote,
    }


def distribution_overlays(details: dict[str, Any]) -> list[dict[str, Any]]:
    """Per drifting-first column of the latest window: reference and current shares on common
    bins (numeric) or categories, as chart data."""
    columns = (details.get("drift") or {}).get("columns") or []
    columns = sorted(columns, key=lambda c: (not c.get("drifted"), str(c.get("column"))))
    out = []
    for col in columns[:MAX_OVERLAYS]:
        dist = col.get("distribution") or {}
        if "edges" in dist:
            edges = dist["edges"]
            x = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
            labels: list[str] = []
        elif "categories" in dist:
            x = list(range(len(dist["categories"])))
            labels = [str(c) for c in dist["categories"]]
        else:
            continue
        chart = {
            "x": x,
            "reference": dist["reference"],
            "current": dist["current"],
            "labels": labels,
        }
        out.append(
            {
                "column": col.get("column"),
                "test": col.get("test"),
                "statistic": col.get("statistic"),
                "drifted": bool(col.get("drifted")),
                "chart": json.dumps(chart, allow_nan=False),
            }
        )
    return out


@router.data("/ui/data/monitors/{name}/metrics", resource="monitor", scope=monitor_scope)
def monitor_metrics(request: Request, ws: Workspace) -> dict[str, Any]:
    """One chart's series: every metric of ``group`` over the monitor's windows."""
    from shipyard.monitoring.monitors import results_over_time

    name = request.path_params["name"]
    group = query_choice(request, "group", GROUPS)
    limit = query_int(request, "windows", 500, 1, MAX_WINDOWS)
    results = results_over_time(ws, name, max_results=limit)
    keys = sorted({m for r in results for m in r["metrics"] if group_of(m) == group})
    series = []
    for key in keys:
        xs, ys = [], []
        for r in results:
            value = r["metrics"].get(key)
            if value is None or not math.isfinite(value):
                continue
            xs.append(r["window_end"] / 1000)
            ys.append(value)
        if xs:
            label = key.removeprefix("drift:")
            item: dict[str, Any] = {
                "name": label,
                "x": xs,
                "y": ys,
                "total": len(xs),
                "shown": len(xs),
            }
            if key.endswith("_ms"):
                item["scale"] = "ms"  # drawn on a second axis next to rates (0..1)
            series.append(item)
    return {"key": group, "axis": "time", "series": series}


@router.action(
    "/monitoring/alerts/{alert_id}/acknowledge", action="write", resource="alert", scope=alert_scope
)
def acknowledge_alert(request: Request, ws: Workspace, form: dict[str, str]) -> str:
    """Mark an alert acknowledged, with who and an optional note."""
    from shipyard.monitoring.alerts import acknowledge

    alert_id = _alert_id(request)
    principal = principal_of(request)
    note = form.get("note", "").strip()[:500] or None
    alert = acknowledge(ws, alert_id, principal.name, note)
    return f"/monitoring/{quote(alert.monitor, safe='')}#alerts"
