"""Monitoring reports: one self-contained HTML page (inline SVG, no scripts, no network) or JSON.

The page shows the latest window's drift table with a distribution overlay per feature
(reference and current shares on common bins), the performance and health metrics over time as
small line charts, and the alert history. :func:`drift_html` renders a bare
:class:`~shipyard.monitoring.drift.DriftReport` the same way (``shipyard monitor drift --html``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from shipyard.monitoring.drift import DriftReport

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;width:100%}
td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
.drift{color:#b00020;font-weight:600}.ok{color:#1b5e20}.chart{display:inline-block;margin:6px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""
_REF, _CUR = "#7f8c8d", "#e67e22"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.4g}"
    return html.escape(str(value))


def overlay_svg(distribution: dict[str, Any], width: int = 260, height: int = 70) -> str:
    """Reference (grey) and current (orange) shares side by side per bin or category."""
    ref, cur = distribution.get("reference") or [], distribution.get("current") or []
    if not ref:
        return ""
    top = max(max(ref), max(cur), 1e-12)
    n = len(ref)
    slot = width / n
    bar = max(slot / 2 - 0.5, 0.5)
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for i, (r, c) in enumerate(zip(ref, cur, strict=False)):
        for j, (v, color) in enumerate(((r, _REF), (c, _CUR))):
            h = max(v, 0) / top * (height - 4)
            x = i * slot + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{color}"/>'
            )
    labels = distribution.get("categories")
    if labels:
        parts.append(f"<title>{html.escape(', '.join(map(str, labels)))}</title>")
    parts.append("</svg>")
    return "".join(parts)


def line_svg(points: list[tuple[int, float]], width: int = 320, height: int = 90) -> str:
    """A metric over time as a polyline (points ``(time, value)``)."""
    pts = [(t, v) for t, v in points if v is not None and math.isfinite(v)]
    if not pts:
        return '<svg width="0" height="0"></svg>'
    t0, t1 = min(p[0] for p in pts), max(p[0] for p in pts)
    v0, v1 = min(p[1] for p in pts), max(p[1] for p in pts)
    span_t, span_v = (t1 - t0) or 1, (v1 - v0) or 1
    xy = [
        (6 + (t - t0) / span_t * (width - 12), height - 14 - (v - v0) / span_v * (height - 28))
        for t, v in pts
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{_CUR}"/>' for x, y in xy)
    return (
        f'<svg width="{width}" height="{height}" role="img"><polyline points="{path}" '
        f'fill="none" stroke="{_CUR}" stroke-width="1.5"/>{dots}'
        f'<text x="4" y="{height - 2}" font-size="10">{_fmt(v0)}</text>'
        f'<text x="4" y="10" font-size="10">{_fmt(v1)}</text></svg>'
    )


def _drift_table(columns: list[dict[str, Any]]) -> str:
    rows = []
    for c in columns:
        verdict = (
            '<span class="drift">drift</span>' if c["drifted"] else '<span class="ok">ok</span>'
        )
        rows.append(
            f"<tr><td>{html.escape(c['column'])}</td><td>{html.escape(c['test'])}</td>"
            f"<td>{_fmt(c['statistic'])}</td><td>{_fmt(c['p_value'])}</td>"
            f"<td>{_fmt(c['threshold'])}</td><td>{verdict}</td>"
            f"<td>{overlay_svg(c.get('distribution') or {})}</td></tr>"
        )
    return (
        "<table><tr><th>column</th><th>test</th><th>statistic</th><th>p-value</th>"
        "<th>threshold</th><th>verdict</th><th>reference vs current</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _page(title: str, body: str) -> str:
    legend = (
        f'<p class="legend">Distributions:<span style="background:{_REF}"></span>reference'
        f'<span style="background:{_CUR}"></span>current</p>'
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{legend}{body}"
        "</body></html>"
    )


def drift_html(report: DriftReport, title: str = "Drift report") -> str:
    """A drift report as a self-contained HTML page."""
    d = report.to_dict(full=True)
    summary = (
        f"<p>Dataset drift: <b>{'yes' if d['dataset_drift'] else 'no'}</b>; "
        f"{sum(c['drifted'] for c in d['columns'])} of {len(d['columns'])} columns drifted "
        f"(share {d['share_drifted']:.2f}, threshold {d['drift_share']}).</p>"
    )
    return _page(title, summary + _drift_table(d["columns"]))


SERIES = (
    "drift_share",
    "prediction_drift",
    "missing_rate",
    "out_of_schema_rate",
    "accuracy",
    "f1",
    "roc_auc",
    "rmse",
    "mae",
    "r2",
    "error_rate",
    "latency_p95_ms",
)


def performance_notes(details: Mapping[str, Any]) -> list[str]:
    """Why a window's performance was not computed, or computed on fewer rows (one line each)."""
    out = []
    if details.get("performance_skipped"):
        out.append(f"no classification metrics: {details['performance_skipped']}")
    rows = details.get("performance_skipped_rows")
    if rows:
        out.append(f"{rows['rows']} labelled row(s) left out of performance: {rows['reason']}")
    unknown = details.get("performance_unknown_labels")
    if unknown:
        out.append(
            f"{unknown['rows']} labelled row(s) have a label that is not one of the monitor's "
            f"classes ({', '.join(unknown['labels'])}); they count as wrong answers. Check the "
            "monitor's classes against the labels feedback sends"
        )
    return out


def monitor_report(
    monitor: dict[str, Any], results: list[dict[str, Any]], alerts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The JSON report: the monitor, its results over time (with the latest one's details) and
    its alerts."""
    return {"monitor": monitor, "results": results, "alerts": alerts}


def monitor_html(report: dict[str, Any]) -> str:
    """The HTML page of :func:`monitor_report`'s JSON."""
    monitor, results, alerts = report["monitor"], report["results"], report["alerts"]
    body = [
        f"<p>Endpoint <b>{html.escape(monitor['endpoint'])}</b>"
        + (f", model <b>{html.escape(str(monitor['model']))}</b>" if monitor.get("model") else "")
        + f"; {len(results)} window(s).</p>"
    ]
    if not results:
        body.append("<p>No window computed yet; run <code>shipyard monitor run</code>.</p>")
    else:
        latest = results[-1]
        body.append(
            f"<h2>Latest window</h2><p>{latest['num_rows']} rows, "
            f"window {latest['window_start']} to {latest['window_end']} (epoch ms).</p>"
        )
        drift = (latest.get("details") or {}).get("drift")
        if drift:
            body.append(_drift_table(drift["columns"]))
        pdrift = (latest.get("details") or {}).get("prediction_drift")
        if pdrift:
            body.append("<h2>Prediction drift</h2>" + _drift_table([pdrift]))
        for text in performance_notes(latest.get("details") or {}):
            body.append(f'<p class="drift">Performance: {html.escape(text)}.</p>')
        charts = []
        for name in SERIES:
            points = [(r["window_end"], r["metrics"].get(name)) for r in results]
            if any(v is not None for _, v in points):
                charts.append(
                    f'<div class="chart"><div>{html.escape(name)}</div>{line_svg(points)}</div>'
                )
        if charts:
            body.append("<h2>Over time</h2>" + "".join(charts))
    rows = "".join(
        f"<tr><td>{a['alert_id']}</td><td>{html.escape(a['rule'])}</td>"
        f"<td>{html.escape(a['metric'])}</td><td>{_fmt(a['value'])}</td>"
        f"<td>{_fmt(a['threshold'])}</td><td>{html.escape(a['status'])}</td>"
        f"<td>{_fmt(a.get('action'))}</td></tr>"
        for a in alerts
    )
    body.append(
        "<h2>Alerts</h2><table><tr><th>id</th><th>rule</th><th>metric</th><th>value</th>"
        f"<th>threshold</th><th>status</th><th>action</th></tr>{rows}</table>"
        if alerts
        else "<h2>Alerts</h2><p>None.</p>"
    )
    return _page(f"Monitor {monitor['name']}", "".join(body))
