"""Analysis windows: the live signals of a candidate arm against the stable arm, and the verdict.

Signals come from the endpoint's prediction log (``<home>/predictions/<endpoint>``, read with
:func:`shipyard.monitoring.read_predictions`: arm, latency, predictions, and the labels that
feedback attached later, and the failed predictions: the candidate's failed answers in a canary,
its failed shadow copies in shadow) and, when the spec names the servers' Prometheus
``/metrics``, their exact error counters:

* **error rate**: failed / answered+failed predictions of the candidate arm since the window
  began (counter deltas against the baseline read when it began, or rows of the log);
* **latency p99** of the candidate arm's answered requests;
* **prediction drift** between the arms: the two-sample Kolmogorov-Smirnov statistic of their
  scores in the window (:func:`shipyard.monitoring.compare` when monitoring provides it);
* **agreement** (shadow only, where both arms answer the same request ids): the share of
  requests on which both give the same class (score >= 0.5) or, for regressors, values within
  10% of each other;
* **online metrics**: the environment's metric gates on the labelled requests of each arm.

:func:`verdict` turns the signals and the rollout's abort conditions into ``abort`` (with the
breached conditions), ``complete`` (the window is full and nothing breached) or ``wait``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.deploy.gates import GateResult, online_metric_results, percentile
from shipyard.deploy.spec import AbortConditions, Gate, Window

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ABORT, COMPLETE, WAIT = "abort", "complete", "wait"
MIN_ONLINE_LABELS = 30
"""Online metric gates judge a window only once it has at least this many labelled requests."""


@dataclass(frozen=True)
class Signals:
    """What one analysis window measured (``None``: not measurable yet)."""

    phase: str
    candidate_arm: str
    stable_arm: str
    since_ms: int
    requests: int
    stable_requests: int
    labels: int
    latency_p99_ms: float | None = None
    error_rate: float | None = None
    errors: int | None = None
    prediction_drift: float | None = None
    agreement: float | None = None
    online: tuple[GateResult, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["online"] = [r.to_dict() for r in self.online]
        return {k: _round(v) for k, v in out.items()}


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


@dataclass
class Baseline:
    """Counter values read from ``/metrics`` when a window began, per arm."""

    requests: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    shadow: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------- metrics scrape

_SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(urls: Sequence[str], timeout_s: float = 2.0) -> Baseline | None:
    """Requests and errors per arm summed over the servers' ``/metrics`` (``None`` when no
    URL is configured or none answers)."""
    if not urls:
        return None
    import httpx

    totals = Baseline()
    answered = False
    for url in urls:
        try:
            text = httpx.get(url, timeout=timeout_s).text
        except httpx.HTTPError:
            continue
        answered = True
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if not m:
                continue
            name = m["name"]
            target = {
                "shipyard_serving_requests_total": totals.requests,
                "shipyard_serving_errors_total": totals.errors,
                "shipyard_serving_shadow_predictions_total": totals.shadow,
            }.get(name)
            if target is None:
                continue
            arm = dict(_LABEL.findall(m["labels"])).get("arm", "")
            target[arm] = target.get(arm, 0.0) + float(m["value"])
    return totals if answered else None


# ---------------------------------------------------------------------------- the log


def _read(folder: Path, since_ms: int) -> pd.DataFrame | None:
    from shipyard.errors import InvalidInput
    from shipyard.monitoring import read_predictions

    try:
        return read_predictions(folder, include_shadow=True, include_errors=True, since_ms=since_ms)
    except InvalidInput:
        return None


def scores_of(predictions: str) -> list[float]:
    """The numeric scores in one logged ``predictions`` JSON value (one per row)."""
    value = json.loads(predictions)
    out: list[float] = []

    def walk(v: Any) -> None:
        if isinstance(v, bool | int | float):
            out.append(float(v))
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
                break

    walk(value)
    return out


def _labels_of(label: Any) -> list[float] | None:
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return None
    if isinstance(label, list):
        return [float(x) for x in label]
    try:
        return [float(label)]
    except (TypeError, ValueError):
        return None


def _paired(cand: pd.DataFrame, ref: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, candidate scores, stable scores)`` of the labelled requests both scored."""
    import numpy as np

    merged = cand[["request_id", "predictions", "label"]].merge(
        ref[["request_id", "predictions"]].drop_duplicates("request_id"),
        on="request_id",
        suffixes=("_c", "_r"),
    )
    ys: list[float] = []
    cs: list[float] = []
    rs: list[float] = []
    for pc, pr, label in zip(
        merged["predictions_c"], merged["predictions_r"], merged["label"], strict=True
    ):
        labels = _labels_of(label)
        if labels is None:
            continue
        a, b = scores_of(pc), scores_of(pr)
        if len(a) != len(labels) or len(b) != len(labels):
            continue
        ys.extend(labels)
        cs.extend(a)
        rs.extend(b)
    return np.asarray(ys, float), np.asarray(cs, float), np.asarray(rs, float)


def baseline_arm(stable_arm: str) -> str:
    """The shadow arm that scores canary traffic with the stable version (``v1-baseline``)."""
    return f"{stable_arm}-baseline"


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic (0: same distribution, 1: disjoint)."""
    try:  # monitoring's drift tests when it provides them
        import pandas as pd

        from shipyard.monitoring import compare  # type: ignore[attr-defined]

        report = compare(
            pd.DataFrame({"score": list(a)}),
            pd.DataFrame({"score": list(b)}),
            columns=["score"],
            tests={"score": "ks"},
        )
        column = report.columns[0]
        if str(column.test).lower() == "ks" and column.statistic is not None:
            return float(column.statistic)
    except Exception:
        pass
    import numpy as np

    x, y = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    if len(x) == 0 or len(y) == 0:
        return math.nan
    grid = np.concatenate([x, y])
    cdf_x = np.searchsorted(x, grid, side="right") / len(x)
    cdf_y = np.searchsorted(y, grid, side="right") / len(y)
    return float(np.max(np.abs(cdf_x - cdf_y)))


def _agreement(cand: pd.DataFrame, stable: pd.DataFrame) -> tuple[float | None, int]:
    merged = cand.merge(stable, on="request_id", suffixes=("_c", "_s"))
    if merged.empty:
        return None, 0
    same = total = 0
    for pc, ps in zip(merged["predictions_c"], merged["predictions_s"], strict=True):
        a, b = scores_of(pc), scores_of(ps)
        for x, y in zip(a, b, strict=False):
            total += 1
            if 0 <= x <= 1 and 0 <= y <= 1:
                same += (x >= 0.5) == (y >= 0.5)
            else:
                same += abs(x - y) <= 0.1 * max(abs(x), abs(y), 1e-12)
    return (same / total if total else None), len(merged)


def _counter_increase(
    phase: str, arm: str, now: Baseline | None, then: Baseline | None
) -> tuple[float, float] | str | None:
    """How many requests ``arm`` answered and failed since the window began, from the servers'
    ``/metrics`` counters: ``None`` without them, ``"reset"`` when one went back (a model server
    restarted, so the difference means nothing)."""
    if now is None or then is None:
        return None
    answered_now, answered_then = (
        (now.shadow, then.shadow) if phase == "shadow" else (now.requests, then.requests)
    )
    done = answered_now.get(arm, 0.0) - answered_then.get(arm, 0.0)
    failed = now.errors.get(arm, 0.0) - then.errors.get(arm, 0.0)
    return "reset" if done < 0 or failed < 0 else (done, failed)


def measure(
    folder: Path,
    *,
    phase: str,
    candidate_arm: str,
    stable_arm: str,
    since_ms: int,
    gates: Sequence[Gate],
    abort: AbortConditions,
    metrics_now: Baseline | None = None,
    baseline: Baseline | None = None,
    judge_online: bool = True,
) -> Signals:
    """The signals of the window that began at ``since_ms`` (see the module docstring).
    ``judge_online=False`` (a window that waits for no labels) skips the online metric gates."""
    frame = _read(folder, since_ms)
    notes: list[str] = []
    logged_errors = 0
    if frame is None or frame.empty:
        window = None
    else:
        window = frame[frame["timestamp_ms"] >= since_ms]
        if "error" in window.columns:
            failed = window["error"].notna()
            # The candidate's own failures: its answers in a canary, its shadow copies in shadow.
            own = (window["arm"] == candidate_arm) & (
                window["shadow"].astype(bool) == (phase == "shadow")
            )
            logged_errors = int((failed & own).sum())
            window = window[~failed]
    if window is None or window.empty:
        cand = ref = None
    else:
        shadow_phase = phase == "shadow"
        cand = window[(window["arm"] == candidate_arm) & (window["shadow"] == shadow_phase)]
        if shadow_phase:  # the stable arm answers the very requests the candidate shadows
            ref = window[(window["arm"] == stable_arm) & ~window["shadow"].astype(bool)]
        else:  # a shadow copy of the stable version scores every canary request too
            ref = window[(window["arm"] == baseline_arm(stable_arm)) & window["shadow"]]
    requests = 0 if cand is None else len(cand)
    stable_n = 0 if ref is None else len(ref)
    latency = drift = agreement = None
    labels = 0
    online: list[GateResult] = []
    if cand is not None and requests:
        latency = percentile(list(cand["latency_ms"]), 99)
        if ref is not None and stable_n:
            cand_scores = [s for p in cand["predictions"] for s in scores_of(p)]
            ref_scores = [s for p in ref["predictions"] for s in scores_of(p)]
            drift = ks_statistic(ref_scores, cand_scores)
            agreement, _ = _agreement(cand, ref)
            y, cs, rs = _paired(cand, ref)
            labels = len(y)
            if abort.online_metrics and judge_online and labels:
                online = online_metric_results(
                    gates, y, cs, rs, reference_label=f"stable {stable_arm}"
                )
        else:
            notes.append(f"no scores of the stable version {stable_arm} in the window yet")
    error_rate = errors = None
    counters = _counter_increase(phase, candidate_arm, metrics_now, baseline)
    if counters == "reset":
        notes.append(
            "the servers' /metrics counters went back since the window began (a model "
            "server restarted), so the error rate is measured from the prediction log instead"
        )
    if isinstance(counters, tuple):
        done, failed = counters
        errors = int(failed)
        if done + failed > 0:
            error_rate = failed / (done + failed)
    elif requests + logged_errors > 0:
        errors = logged_errors  # failed predictions (shadow copies too) are in the log
        error_rate = logged_errors / (requests + logged_errors)
    return Signals(
        phase,
        candidate_arm,
        stable_arm,
        since_ms,
        requests,
        stable_n,
        labels,
        latency,
        error_rate,
        errors,
        drift,
        agreement,
        tuple(online),
        tuple(notes),
    )


def verdict(
    signals: Signals, abort: AbortConditions, window: Window, elapsed_s: float
) -> tuple[str, list[str]]:
    """``(ABORT, breaches)``, ``(COMPLETE, [])`` or ``(WAIT, what is still missing)``."""
    breaches: list[str] = []
    s = signals
    if (
        abort.error_rate is not None
        and s.error_rate is not None
        and s.error_rate > abort.error_rate
    ):
        breaches.append(
            f"error rate {s.error_rate:.2%} > {abort.error_rate:.2%} ({s.errors} failed)"
        )
    p99, limit = s.latency_p99_ms, abort.latency_p99_ms
    if limit is not None and p99 is not None and p99 > limit:
        breaches.append(f"latency p99 {p99:.1f} ms > {limit} ms")
    # distributions are judged on half a window (of requests, and of time)
    enough = s.requests >= max(window.requests // 2, 1) and elapsed_s >= window.duration_s / 2
    drift, most = s.prediction_drift, abort.prediction_drift
    if enough and most is not None and drift is not None and drift > most:
        breaches.append(f"prediction drift between arms (KS) {drift:.3f} > {most}")
    agree, least = s.agreement, abort.min_agreement
    if enough and least is not None and agree is not None and agree < least:
        breaches.append(f"arm agreement {agree:.1%} < {least:.0%}")
    labels_ok = signals.labels >= window.min_labels
    if window.min_labels > 0 and signals.labels >= max(window.min_labels, MIN_ONLINE_LABELS):
        for result in signals.online:
            if result.passed is False:
                breaches.append(f"online gate {result.gate!r}: {result.message}")
    if breaches:
        return ABORT, breaches
    missing = []
    if signals.requests < window.requests:
        missing.append(f"{signals.requests}/{window.requests} requests")
    if elapsed_s < window.duration_s:
        missing.append(f"{elapsed_s:.0f}/{window.duration_s:.0f}s")
    if not labels_ok:
        missing.append(f"{signals.labels}/{window.min_labels} labels")
    return (WAIT, missing) if missing else (COMPLETE, [])
