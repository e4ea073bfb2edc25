"""Reports: the JSON holds every window's metrics and the latest one's drift details; the HTML page
draws a distribution overlay per feature, the drift table, performance over time and alerts."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from shipyard.monitoring import alerts, monitors
from shipyard.monitoring.drift import compare
from shipyard.monitoring.report import drift_html, monitor_html, monitor_report
from shipyard.workspace import Workspace
from tests.monitoring.conftest import write_feedback, write_requests
from tests.monitoring.test_monitors import T0


def _polyline_points(svg: str) -> int:
    match = re.search(r'<polyline points="([^"]*)"', svg)
    assert match, svg[:200]
    return len(match.group(1).split())


def test_monitor_report_json_and_html(workspace: Workspace) -> None:
    rng = np.random.default_rng(0)
    reqs: list[dict[str, Any]] = []
    for i in range(1000):
        shift = 1.5 if i >= 800 else 0.0  # the last window drifts
        x = float(rng.normal(shift))
        p = float(1 / (1 + np.exp(-x)))
        reqs.append({"id": f"q{i}", "ts": T0 + i, "features": {"x": x, "seg": "ab"[i % 2]},
                     "prediction": {"label": int(p > 0.5), "proba": p}})  # fmt: skip
    write_requests(workspace, "ep", reqs[:200])
    monitors.create_monitor(
        workspace, "m", endpoint="ep", reference={"window": {"start": 0, "end": T0 + 200}},
        window={"rows": 200}, task="classification", prediction_field="label",
        score_field="proba",
    )  # fmt: skip
    alerts.create_rule(workspace, "drift", monitor="m", metric="drift_share", operator=">=",
                       threshold=0.5)  # fmt: skip
    write_requests(workspace, "ep", reqs[200:])
    write_feedback(workspace, "ep", [(r["id"], int(rng.random() < 0.5)) for r in reqs[200:]])
    out = monitors.run_monitor(workspace, "m")
    assert len(out.results) == 4
    assert len(out.alerts) == 1

    results = workspace.monitors.list_results("m")
    rows = [monitors.result_dict(r, details=(i == len(results) - 1)) for i, r in enumerate(results)]
    report = monitor_report(
        monitors.monitor_dict(workspace.monitors.get_monitor("m")), rows,
        monitors.list_alerts(workspace, monitor="m"),
    )  # fmt: skip
    assert [r["metrics"]["accuracy"] for r in report["results"]] == [
        r.metrics["accuracy"] for r in out.results
    ]
    drift = report["results"][-1]["details"]["drift"]
    assert {c["column"]: c["drifted"] for c in drift["columns"]} == {"x": True, "seg": False}
    assert report["alerts"][0]["rule"] == "drift"

    page = monitor_html(report)
    assert "<script" not in page
    # the drift table: one row per feature, each with its reference/current overlay
    table = page.split("<h2>Latest window</h2>")[1].split("<h2>")[0]
    for column in ("x", "seg"):
        row = re.search(rf"<tr><td>{column}</td>.*?</tr>", table)
        assert row, column
        assert row.group(0).count("<rect") >= 4
    assert "<td>ks</td>" in table  # 200 rows a window: the two-sample test
    # performance and health over time: one point per window
    charts = dict(re.findall(r'<div class="chart"><div>([^<]+)</div>(<svg.*?</svg>)', page))
    assert {"accuracy", "f1", "roc_auc", "drift_share", "error_rate"} <= set(charts)
    assert _polyline_points(charts["accuracy"]) == 4
    assert "<h2>Alerts</h2><table>" in page


def test_drift_html_escapes_names() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"<b>x</b>": rng.normal(size=300)})
    cur = pd.DataFrame({"<b>x</b>": rng.normal(1.0, size=300)})
    page = drift_html(compare(ref, cur), "Drift <now>")
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<title>Drift &lt;now&gt;</title>" in page
    assert page.count("<rect") == 40  # 20 bins x (reference, current)
