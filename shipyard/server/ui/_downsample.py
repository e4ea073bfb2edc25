"""Server-side downsampling of metric histories, so a chart of 100,000 points ships ~2,000.

:func:`minmax_buckets` splits the points (in x order) into equal-count buckets and keeps, per
bucket, the points holding its minimum and its maximum, plus the first and the last point. A
line through them draws the same envelope as the full series at chart resolution: spikes and
dips survive (an average would hide them), and the work is a few vectorized numpy passes.
NaN values are kept out of the extremes; non-finite values are dropped from charts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import numpy as np

DEFAULT_POINTS = 2000
"""Points a chart receives at most (two per bucket): more than a laptop screen has pixels."""


def minmax_buckets(x: Any, y: Any, points: int = DEFAULT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` of ``(x, y)`` (x ascending) that keep each bucket's min and max."""
    import numpy as np

    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(ys)
    if not finite.all():
        xs, ys = xs[finite], ys[finite]
    n = len(xs)
    if n <= max(points, 4):
        return xs, ys
    buckets = max(1, (points - 2) // 2)
    size = -(-n // buckets)  # ceil
    padded = np.full(buckets * size, np.nan)
    padded[:n] = ys
    grid = padded.reshape(buckets, size)
    valid = ~np.isnan(grid).all(axis=1)
    offsets = np.arange(buckets) * size
    lo = np.nanargmin(np.where(np.isnan(grid[valid]), np.inf, grid[valid]), axis=1)
    hi = np.nanargmax(np.where(np.isnan(grid[valid]), -np.inf, grid[valid]), axis=1)
    keep = np.concatenate(([0], offsets[valid] + lo, offsets[valid] + hi, [n - 1]))
    keep = np.unique(keep)  # sorted, so x stays ascending
    return xs[keep], ys[keep]


class Series(TypedDict):
    """The chart payload of one series (what ``static/ui.js`` draws)."""

    x: list[float]
    y: list[float]
    total: int
    """Points in the history."""
    shown: int
    """Points sent (at most the ``points`` asked for)."""
    downsampled: bool


def series_json(x: Any, y: Any, points: int = DEFAULT_POINTS) -> Series:
    """The chart payload of one series: ``{x, y, total, shown, downsampled}``."""
    total = len(x)
    xs, ys = minmax_buckets(x, y, points)
    return {
        "x": xs.tolist(),
        "y": ys.tolist(),
        "total": total,
        "shown": len(xs),
        "downsampled": len(xs) < total,
    }
