"""The error rate of an analysis window from the model servers' ``/metrics`` counters: deltas
against the window's start, and no rate from counters that went back (a server restarted)."""

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
