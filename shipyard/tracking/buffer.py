"""Metric buffering: a ``log_metric`` call appends to memory; batches go to the store.

A batch is written when the buffer reaches ``flush_size`` points, every ``flush_interval`` seconds
(a daemon thread started on first use), on :meth:`MetricBuffer.flush`, when a run ends, and at
interpreter exit. Once ``flush()`` returns, every point logged before it is committed: a process
killed afterwards loses nothing.

A background write that fails keeps its points and re-raises the error on the next ``flush()`` (or
``log`` call), so failures are never silent.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Sequence

from shipyard.entities import Metric
from shipyard.errors import ShipyardError, StoreUnavailable
from shipyard.validation import MAX_METRICS_PER_BATCH

WriteBatch = Callable[[str, Sequence[Metric]], None]


class MetricBuffer:
    """Thread-safe per-run buffer of metric points in front of ``write(run_id, metrics)``."""

    def __init__(self, write: WriteBatch, *, flush_size: int = 1000, flush_interval: float = 1.0):
        self._write = write
        self._flush_size = max(1, flush_size)
        self._interval = flush_interval
        self._pending: dict[str, list[Metric]] = defaultdict(list)
        self._count = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._error: BaseException | None = None
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        _LIVE_BUFFERS.add(self)

    def log(self, run_id: str, metric: Metric) -> None:
        """Queue one point (microseconds). Flushes inline when the buffer is full."""
        if self._error is not None:
            self._raise_pending_error()
        with self._lock:
            self._pending[run_id].append(metric)
            self._count += 1
            full = self._count >= self._flush_size
            if self._thread is None and self._interval > 0 and not self._closed:
                self._start_thread()
        if full:
            self.flush()

    def log_many(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if self._error is not None:
            self._raise_pending_error()
        with self._lock:
            self._pending[run_id].extend(metrics)
            self._count += len(metrics)
            full = self._count >= self._flush_size
            if self._thread is None and self._interval > 0 and not self._closed:
                self._start_thread()
        if full:
            self.flush()

    def flush(self, run_id: str | None = None) -> None:
        """Write buffered points (of one run, or all) and wait until they are committed."""
        self._drain(run_id)
        if self._error is not None:
            self._raise_pending_error()

    def pending(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        """Flush everything and stop the background thread."""
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        finally:
            _LIVE_BUFFERS.discard(self)

    # ------------------------------------------------------------------ internals

    def _take(self, run_id: str | None) -> dict[str, list[Metric]]:
        with self._lock:
            if run_id is None:
                taken, self._pending = dict(self._pending), defaultdict(list)
                self._count = 0
            else:
                points = self._pending.pop(run_id, [])
                self._count -= len(points)
                taken = {run_id: points} if points else {}
            return taken

    def _put_back(self, batches: dict[str, list[Metric]]) -> None:
        with self._lock:
            for rid, points in batches.items():
                self._pending[rid][:0] = points
                self._count += len(points)

    def _drain(self, run_id: str | None) -> None:
        # One writer at a time keeps each run's points in logging order.
        with self._flush_lock:
            batches = self._take(run_id)
            remaining = dict(batches)
            rid = ""
            try:
                for rid, points in batches.items():
                    for i in range(0, len(points), MAX_METRICS_PER_BATCH):
                        self._write(rid, points[i : i + MAX_METRICS_PER_BATCH])
                        rest = points[i + MAX_METRICS_PER_BATCH :]
                        if rest:
                            remaining[rid] = rest
                        else:
                            remaining.pop(rid, None)
            except (ShipyardError, ValueError) as exc:
                # A transient failure keeps the points for the next attempt; a rejected batch
                # (unknown or deleted run, invalid value) would fail forever, so it is dropped.
                if not isinstance(exc, StoreUnavailable):
                    remaining.pop(rid, None)
                self._put_back(remaining)
                raise
            except BaseException:
                self._put_back(remaining)
                raise

    def _raise_pending_error(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shipyard-metric-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            if self._closed:
                return
            try:
                self._drain(None)
            except BaseException as exc:
                # Kept, and raised to the caller on its next log or flush call.
                self._error = exc


_LIVE_BUFFERS: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for buf in list(_LIVE_BUFFERS):
        try:
            buf.close()
        except Exception as exc:  # pragma: no cover - exit path
            import sys

            print(f"shipyard: could not write buffered metrics at exit: {exc}", file=sys.stderr)
