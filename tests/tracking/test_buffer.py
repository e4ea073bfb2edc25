from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from shipyard.entities import Metric
from shipyard.errors import InvalidState, StoreUnavailable
from shipyard.tracking.buffer import MetricBuffer


class Recorder:
    def __init__(self, fail_with: BaseException | None = None) -> None:
        self.batches: list[tuple[str, list[Metric]]] = []
        self.fail_with = fail_with
        self.lock = threading.Lock()

    def __call__(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with self.lock:
            self.batches.append((run_id, list(metrics)))

    def points(self, run_id: str) -> list[Metric]:
        return [m for rid, batch in self.batches for m in batch if rid == run_id]


def m(i: int) -> Metric:
    return Metric("loss", float(i), 1000 + i, i)


def test_flush_writes_everything_in_order_per_run() -> None:
    rec = Recorder()
    buf = MetricBuffer(rec, flush_size=10_000, flush_interval=0)
    for i in range(2500):
        buf.log("a" if i % 2 else "b", m(i))
    assert rec.batches == []
    buf.flush()
    assert [p.step for p in rec.points("a")] == list(range(1, 2500, 2))
    assert [p.step for p in rec.points("b")] == list(range(0, 2500, 2))
    # Never more than the store's batch limit in one write.
    assert max(len(b) for _, b in rec.batches) <= 1000
    assert buf.pending() == 0


def test_flush_of_one_run_leaves_the_others() -> None:
    rec = Recorder()
    buf = MetricBuffer(rec, flush_size=10_000, flush_interval=0)
    buf.log("a", m(1))
    buf.log("b", m(2))
    buf.flush("a")
    assert rec.points("a") == [m(1)]
    assert rec.points("b") == []
    assert buf.pending() == 1


def test_full_buffer_flushes_inline() -> None:
    rec = Recorder()
    buf = MetricBuffer(rec, flush_size=5, flush_interval=0)
    for i in range(5):
        buf.log("a", m(i))
    assert len(rec.points("a")) == 5


def test_interval_flush_happens_in_background() -> None:
    rec = Recorder()
    buf = MetricBuffer(rec, flush_size=10_000, flush_interval=0.05)
    buf.log("a", m(1))
    deadline = time.monotonic() + 5
    while not rec.points("a") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rec.points("a") == [m(1)]
    buf.close()


def test_transient_failure_keeps_points_for_retry() -> None:
    rec = Recorder(fail_with=StoreUnavailable("down"))
    buf = MetricBuffer(rec, flush_size=10_000, flush_interval=0)
    buf.log("a", m(1))
    with pytest.raises(StoreUnavailable):
        buf.flush()
    assert buf.pending() == 1
    rec.fail_with = None
    buf.flush()
    assert rec.points("a") == [m(1)]


def test_rejected_batch_is_dropped_and_reported() -> None:
    rec = Recorder(fail_with=InvalidState("run is deleted"))
    buf = MetricBuffer(rec, flush_size=10_000, flush_interval=0)
    buf.log("a", m(1))
    with pytest.raises(InvalidState):
        buf.flush()
    assert buf.pending() == 0


def test_background_failure_surfaces_on_next_call() -> None:
    rec = Recorder(fail_with=InvalidState("run is deleted"))
    buf = MetricBuffer(rec, flush_size=10_000, flush_interval=0.02)
    buf.log("a", m(1))
    deadline = time.monotonic() + 5
    while buf.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(InvalidState):
        buf.log("a", m(2))
    rec.fail_with = None
    buf.close()
