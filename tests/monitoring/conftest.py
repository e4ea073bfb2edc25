"""Fixtures for the monitoring tests: prediction logs written in serving's format."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.monitoring.predictions import FEEDBACK_COLUMNS, PREDICTION_COLUMNS, log_folder
from shipyard.workspace import Workspace

_seq = [0]


def write_requests(
    ws: Workspace,
    endpoint: str,
    requests: Iterable[dict[str, Any]],
    *,
    written_ns: int | None = None,
) -> Path:
    """One log segment of requests: each ``{"id", "ts", "features": {col: value}, "prediction",
    "latency_ms"?, "error"?}`` (one example per request)."""
    folder = log_folder(ws.settings.home, endpoint)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in requests:
        cols = list(r["features"])
        rows.append(
            {
                "request_id": r["id"],
                "timestamp_ms": int(r["ts"]),
                "model_name": "m",
                "model_version": "1",
                "arm": "primary",
                "shadow": False,
                "latency_ms": float(r.get("latency_ms", 5.0)),
                "features": json.dumps(
                    {"columns": cols, "data": [[r["features"][c] for c in cols]]}
                ),
                "predictions": None if r.get("error") else json.dumps([r["prediction"]]),
                "error": r.get("error"),
            }
        )
    _seq[0] += 1
    stamp = written_ns if written_ns is not None else max(r["timestamp_ms"] for r in rows) * 10**6
    table = pa.table({c: [row[c] for row in rows] for c in PREDICTION_COLUMNS})
    path = folder / f"pred-{stamp}-1-{_seq[0]}.parquet"
    pq.write_table(table, path)
    return folder


def write_feedback(ws: Workspace, endpoint: str, labels: Sequence[tuple[str, Any]]) -> None:
    folder = log_folder(ws.settings.home, endpoint)
    folder.mkdir(parents=True, exist_ok=True)
    _seq[0] += 1
    table = pa.table(
        {
            "request_id": [r for r, _ in labels],
            "timestamp_ms": [0] * len(labels),
            "label": [json.dumps(v) for _, v in labels],
        }
    )
    assert tuple(table.column_names) == FEEDBACK_COLUMNS
    pq.write_table(table, folder / f"feedback-{_seq[0]}-1-{_seq[0]}.parquet")
