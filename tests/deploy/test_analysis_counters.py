"""The error rate of an analysis window: from the model servers' ``/metrics`` counters (deltas
against the window's start; no rate from counters that went back, a server restarted), or from
the failed predictions in the prediction log."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.deploy.analysis import Baseline, measure
from shipyard.deploy.spec import AbortConditions


def _measure(tmp_path: Path, phase: str, now: Baseline, then: Baseline):  # type: ignore[no-untyped-def]
    return measure(
        tmp_path,
        phase=phase,
        candidate_arm="v2",
        stable_arm="v1",
        since_ms=0,
        gates=(),
        abort=AbortConditions(),
        metrics_now=now,
        baseline=then,
    )


@pytest.mark.parametrize(("phase", "answered"), [("canary", "requests"), ("shadow", "shadow")])
def test_the_error_rate_is_the_counters_increase_over_the_window(
    tmp_path: Path, phase: str, answered: str
) -> None:
    then = Baseline(**{answered: {"v2": 100.0}}, errors={"v2": 1.0})
    now = Baseline(**{answered: {"v2": 190.0}}, errors={"v2": 11.0})
    signals = _measure(tmp_path, phase, now, then)
    assert (signals.errors, signals.error_rate) == (10, pytest.approx(10 / 100))


@pytest.mark.parametrize(("phase", "answered"), [("canary", "requests"), ("shadow", "shadow")])
def test_counters_that_went_back_give_no_error_rate(
    tmp_path: Path, phase: str, answered: str
) -> None:
    """A restarted server starts its counters at 0: the difference is negative, and a negative
    or meaningless rate must never judge the candidate."""
    then = Baseline(**{answered: {"v2": 100.0}}, errors={"v2": 40.0})
    now = Baseline(**{answered: {"v2": 150.0}}, errors={"v2": 2.0})  # since the restart
    signals = _measure(tmp_path, phase, now, then)
    assert (signals.errors, signals.error_rate) == (None, None)  # was -38 / 112
    assert any("restarted" in note for note in signals.notes)


def _log(folder: Path, rows: list[tuple[str, bool, str | None]]) -> None:
    """One prediction-log segment: ``(arm, shadow, error)`` per row, one request each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shipyard.monitoring.predictions import PREDICTION_COLUMNS

    records = [
        {
            "request_id": f"r{i}",
            "timestamp_ms": 1_000 + i,
            "model_name": "m",
            "model_version": arm.removeprefix("v"),
            "arm": arm,
            "shadow": shadow,
            "latency_ms": 1.0,
            "features": '{"columns": ["x"], "data": [[1.0]]}',
            "predictions": None if error else "[0.5]",
            "error": error,
        }
        for i, (arm, shadow, error) in enumerate(rows)
    ]
    table = pa.table({c: [r[c] for r in records] for c in PREDICTION_COLUMNS})
    pq.write_table(table, folder / "pred-1000000000-1-1.parquet")


def test_without_counters_the_error_rate_comes_from_the_log_in_shadow_too(
    tmp_path: Path,
) -> None:
    """Failed shadow predictions are logged (code SHADOW_FAILED), so a shadow window has an
    error rate without `serving.metrics_urls`; a canary window counts the candidate's failed
    answers and not its shadow failures."""
    rows = [("v1", False, None)] * 20  # the stable arm answers every request
    rows += [("v2", True, None)] * 16 + [("v2", True, "SHADOW_FAILED")] * 4
    rows += [("v2", False, None)] * 9 + [("v2", False, "INVALID_PARAMETER_VALUE")]
    _log(tmp_path, rows)

    def signals(phase: str):  # type: ignore[no-untyped-def]
        return measure(tmp_path, phase=phase, candidate_arm="v2", stable_arm="v1", since_ms=0,
                       gates=(), abort=AbortConditions())  # fmt: skip

    shadow = signals("shadow")
    assert (shadow.requests, shadow.errors) == (16, 4)
    assert shadow.error_rate == pytest.approx(4 / 20)
    canary = signals("canary")
    assert (canary.requests, canary.errors) == (9, 1)
    assert canary.error_rate == pytest.approx(1 / 10)
