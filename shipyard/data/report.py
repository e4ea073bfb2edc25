"""Reports of validation results and profile diffs: JSON (the ``to_dict`` forms) and one
self-contained HTML page each (no scripts, no external assets)."""

from __future__ import annotations

import json
from html import escape
from typing import Any


def to_json_text(report: Any) -> str:
    """Strict JSON of a ValidationReport, a ProfileDiff or a diff dict."""
    from shipyard.entities import to_json

    body = report.to_dict() if hasattr(report, "to_dict") else report
    return json.dumps(to_json(body), indent=2, allow_nan=False, ensure_ascii=False)


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.error{color:#b00}"
    ".warning{color:#a60}.drifted{background:#fee}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))


def validation_html(report: Any, title: str = "Validation report") -> str:
    """An HTML page for a :class:`~shipyard.data.validate.ValidationReport`."""
    verdict = "passed" if report.ok else "failed"
    rows = "".join(
        f"<tr class='{a.severity}'><td>{_fmt(a.column or '')}</td><td>{_fmt(a.kind)}</td>"
        f"<td>{_fmt(a.severity)}</td><td>{a.count}</td><td>{a.fraction:.4f}</td>"
        f"<td>{_fmt(a.message)}</td><td>{_fmt(json.dumps(a.examples, default=str))}</td></tr>"
        for a in report.anomalies
    )
    body = (
        f"<p>{report.num_rows} rows; validation <b>{verdict}</b> with "
        f"{len(report.anomalies)} anomalies.</p><table><tr><th>column</th><th>kind</th>"
        f"<th>severity</th><th>count</th><th>fraction</th><th>message</th><th>examples</th></tr>"
        f"{rows}</table>"
    )
    return _page(title, body)


def profile_diff_html(diff: Any, title: str = "Profile diff") -> str:
    """An HTML page for a :class:`~shipyard.data.profile.ProfileDiff`."""
    rows = []
    for c in diff.columns:
        moved = "; ".join(
            f"{k}: {_fmt(v.get('base'))} → {_fmt(v.get('other'))}" for k, v in c.changes.items()
        )
        dist = ", ".join(f"{k} {v:.3f}" for k, v in c.distance.items())
        rows.append(
            f"<tr class='{'drifted' if c.drifted else ''}'><td>{_fmt(c.column)}</td>"
            f"<td>{_fmt(c.status)}</td><td>{dist}</td><td>{moved}</td>"
            f"<td>{_fmt(', '.join(c.new_categories))}</td></tr>"
        )
    body = (
        f"<p>{diff.base_rows} rows → {diff.other_rows} rows; drifted (PSI ≥ {diff.threshold}): "
        f"{_fmt(', '.join(diff.drifted_columns) or 'none')}</p><table><tr><th>column</th>"
        f"<th>status</th><th>distance</th><th>moved</th><th>new categories</th></tr>"
        f"{''.join(rows)}</table>"
    )
    return _page(title, body)
