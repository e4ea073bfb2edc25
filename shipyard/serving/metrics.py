"""Prometheus metrics of a serving endpoint, written in the text exposition format (0.0.4).

Written here rather than with ``prometheus_client``: the endpoint needs only labelled counters
and histograms, the format is a few lines, and the base install stays lean (no extra to add).
Each worker process keeps its own numbers; with ``--workers N`` a scrape sees one worker's, so
scrape every worker (or run one worker per replica, the usual layout behind a load balancer).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, labels: Labels = ()) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        # The text format 0.0.4 names the family after its samples (``..._total``), as
        # prometheus_client writes it; otherwise Prometheus files the samples as untyped.
        name = f"{self.name}_total"
        out = [f"# HELP {name} {self.help}", f"# TYPE {name} counter"]
        with self._lock:
            items = list(self._values.items())
        out += [f"{name}{_labels(lb)} {v}" for lb, v in items]
        return out


class Histogram:
    """Observations counted into cumulative buckets per label set."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self._values: dict[Labels, list[float]] = {}  # bucket counts..., +Inf count, sum
        self._lock = threading.Lock()

    def observe(self, value: float, labels: Labels = ()) -> None:
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            row = self._values.get(labels)
            if row is None:
                row = self._values[labels] = [0.0] * (len(self.buckets) + 2)
            row[i] += 1
            row[-1] += value

    def count(self, labels: Labels = ()) -> int:
        row = self._values.get(labels)
        return int(sum(row[:-1])) if row else 0

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            items = [(lb, list(row)) for lb, row in self._values.items()]
        for lb, row in items:
            running = 0.0
            for bound, n in zip(self.buckets, row, strict=False):
                running += n
                le = 'le="' + str(bound) + '"'
                out.append(f"{self.name}_bucket{_labels(lb, le)} {running}")
            running += row[len(self.buckets)]
            inf = 'le="+Inf"'
            out.append(f"{self.name}_bucket{_labels(lb, inf)} {running}")
            out.append(f"{self.name}_sum{_labels(lb)} {row[-1]}")
            out.append(f"{self.name}_count{_labels(lb)} {running}")
        return out


class ServingMetrics:
    """Every metric one endpoint exports (labels: ``model``, ``version``, ``arm``)."""

    def __init__(self) -> None:
        self.requests = Counter("shipyard_serving_requests", "Prediction requests answered.")
        self.errors = Counter(
            "shipyard_serving_errors", "Prediction requests refused or failed, by error code."
        )
        self.latency = Histogram(
            "shipyard_serving_request_latency_seconds",
            "Time from reading a request to its answer.",
            LATENCY_BUCKETS,
        )
        self.shadow = Counter(
            "shipyard_serving_shadow_predictions", "Predictions made by shadow arms (logged only)."
        )
        self.shadow_dropped = Counter(
            "shipyard_serving_shadow_dropped",
            "Shadow copies not made because too many were already queued (the shadow is slower "
            "than the traffic).",
        )
        self.batch_rows = Histogram(
            "shipyard_serving_batch_rows", "Rows per model call of the micro-batcher.", ROW_BUCKETS
        )
        self.queue_wait = Histogram(
            "shipyard_serving_queue_wait_seconds",
            "Time a request waited in the micro-batcher's queue.",
            LATENCY_BUCKETS,
        )
        self.load_time = Histogram(
            "shipyard_serving_model_load_seconds",
            "Time to load a model version and run its warm-up prediction.",
            LOAD_BUCKETS,
        )
        self.log_dropped = Counter(
            "shipyard_serving_prediction_log_failures",
            "Prediction-log segments that could not be written.",
        )

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in (
            self.requests,
            self.errors,
            self.latency,
            self.shadow,
            self.shadow_dropped,
            self.batch_rows,
            self.queue_wait,
            self.load_time,
            self.log_dropped,
        ):
            lines += metric.render()
        return ("\n".join(lines) + "\n").encode()
