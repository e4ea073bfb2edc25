"""How the quickstart reports a timeline that departs from its story."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.deploy.quickstart import Result, story_gaps


def _e(action: str, version: int, message: str = "", from_state: str = "") -> dict[str, Any]:
    return {"action": action, "version": version, "message": message, "from": from_state}


def _story() -> list[dict[str, Any]]:
    return [
        _e("deployed", 1),
        _e("gating", 2),
        _e("promoted", 2),
        _e("rolled_back", 3, "online gate auc", "canary"),
    ]


def test_the_whole_story_has_no_gaps(tmp_path: Path) -> None:
    assert story_gaps(Result(tmp_path, events=_story())) == []


def test_a_blocked_v2_is_named_with_its_reason(tmp_path: Path) -> None:
    events = [e for e in _story() if e["action"] != "promoted"]
    events.insert(2, _e("gates_failed", 2, "load check: p99 2991.5 ms > 2500 ms", "gating"))
    gaps = story_gaps(Result(tmp_path, events=events, failed_requests=2))
    assert gaps == [
        "v2 was not promoted (load check: p99 2991.5 ms > 2500 ms)",
        "2 user requests failed",
    ]


def test_v3_must_roll_back_from_its_canary(tmp_path: Path) -> None:
    events = _story()
    events[-1] = _e("rolled_back", 3, "shadow window", "shadow")
    assert story_gaps(Result(tmp_path, events=events)) == [
        "v3 was not rolled back during its canary"
    ]
    assert story_gaps(Result(tmp_path, events=events[:1] + events[2:-1])) == [
        "v3 was not rolled back during its canary"
    ]
