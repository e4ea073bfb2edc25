"""The CLI's formatting helpers."""

from __future__ import annotations

import pytest

from shipyard.cli._output import format_duration, format_time, human_duration, human_size, truncate


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.45, "450ms"),
        (3.21, "3.2s"),
        (245, "4m 05s"),
        (7800, "2h 10m"),
        (3 * 86400 + 4 * 3600, "3d 4h"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_format_duration() -> None:
    assert format_duration(1000, 126_000) == "2m 05s"
    assert format_duration(None, 5) == "-"
    assert format_duration(1000, None) == "-"
    assert format_duration(1000, None, running=True) != "-"


def test_format_time_is_local_iso() -> None:
    text = format_time(1_700_000_000_000)
    assert len(text) == 19
    assert text[4] == "-"
    assert text[10] == " "
    assert text[13] == ":"
    assert format_time(None) == "-"


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "-"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (3 * 1024**3, "3.0 GiB")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_truncate() -> None:
    assert truncate("short") == "short"
    assert truncate("x" * 100, 10) == "x" * 9 + "…"
    assert truncate("two\nlines") == "two lines"
