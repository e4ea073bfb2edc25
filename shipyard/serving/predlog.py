"""The prediction log: every answered request, written off the request path in Parquet segments.

A request appends one row (request id, time, model name and version, arm, latency, the features
and predictions as JSON) to an in-memory buffer; a background thread writes the buffer as one
Parquet segment every ``flush_interval_s`` seconds or ``flush_rows`` rows, whichever comes first.
Each segment is written to a temporary name and renamed into place, so a reader never sees half
a file. **A crash loses at most the rows buffered since the last flush** (one interval); a clean
shutdown flushes them.

Shadow arms' predictions go to the same log with ``shadow = True``. Feedback (ground-truth
labels posted later by request id) goes to ``feedback-*.parquet`` segments in the same folder.
:func:`shipyard.monitoring.predictions.read_predictions` reads the answered rows and joins the
latest label of each request id.

Layout: ``<SHIPYARD_HOME>/predictions/<endpoint>/pred-<time>-<pid>-<n>.parquet``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shipyard.errors import missing_extra
from shipyard.monitoring.predictions import FEEDBACK_COLUMNS, PREDICTION_COLUMNS, log_folder

log = logging.getLogger("shipyard.serving")


class PredictionLog:
    """Buffers rows and writes them in Parquet segments from a background thread."""

    def __init__(
        self,
        folder: Path,
        *,
        flush_interval_s: float = 1.0,
        flush_rows: int = 10_000,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise missing_extra("pyarrow", "data") from None
        self.folder = folder
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self._rows: list[dict[str, Any]] = []
        self._feedback: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._seq = 0
        self.failures = 0
        self.on_failure = on_failure
        """Called once per segment that could not be written (the model server counts them in
        ``shipyard_serving_prediction_log_failures_total``)."""
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._run, name="shipyard-prediction-log", daemon=True
        )
        self._thread.start()

    def record(self, row: dict[str, Any]) -> None:
        """Queue one prediction row (cheap: an append under a lock)."""
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self.flush_rows
        if full:
            self._wake.set()

    def record_feedback(self, rows: Iterable[dict[str, Any]]) -> int:
        now = int(time.time() * 1000)
        batch = [
            {"request_id": r["request_id"], "timestamp_ms": now, "label": json.dumps(r["label"])}
            for r in rows
        ]
        with self._lock:
            self._feedback.extend(batch)
        self._wake.set()
        return len(batch)

    def flush(self) -> None:
        """Write what is buffered now (also called on a clean shutdown). A segment that cannot
        be written is counted (:attr:`failures`, ``on_failure``) and logged, and its rows are
        lost; serving goes on."""
        with self._lock:
            rows, self._rows = self._rows, []
            feedback, self._feedback = self._feedback, []
        for prefix, batch, columns in (
            ("pred", rows, PREDICTION_COLUMNS),
            ("feedback", feedback, FEEDBACK_COLUMNS),
        ):
            if not batch:
                continue
            try:
                self._write(prefix, batch, columns)
            except Exception:  # keep serving; the failure is counted and logged
                self.failures += 1
                if self.on_failure is not None:
                    self.on_failure()
                log.exception(
                    "could not write a %s segment of %d rows to %s; those rows are lost",
                    prefix,
                    len(batch),
                    self.folder,
                )

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self.flush()

    def _write(self, prefix: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._lock:  # flush() may run on the writer thread and a caller's at once
            self._seq += 1
            seq = self._seq
        name = f"{prefix}-{time.time_ns()}-{os.getpid()}-{seq}.parquet"
        # ``error`` is optional in a row (answered requests have none).
        table = pa.table({c: [r.get(c) if c == "error" else r[c] for r in rows] for c in columns})
        tmp = self.folder / f".{name}.tmp"
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, self.folder / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise


__all__ = ["FEEDBACK_COLUMNS", "PREDICTION_COLUMNS", "PredictionLog", "log_folder"]
