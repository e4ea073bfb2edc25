"""Small mergeable sketches for profiles: quantiles, distinct counts and frequent items.

Each sketch summarizes a stream in bounded memory, can be merged with another sketch of the same
kind (the merge summarizes the concatenated streams), and round-trips through a JSON-ready dict,
so a serving window's profile can be computed piece by piece and combined with stored ones.

* :class:`QuantileSketch`: a KLL-style compactor hierarchy. Items at level ``h`` weigh ``2**h``;
  a level over its capacity is sorted and every other item (random offset) moves up a level.
  Large batches first pass a sampler (one random item out of each block of ``2**j``), which keeps
  the work linear in the batch size. Rank error is about 1% at the default ``k``.
* :class:`HyperLogLog`: ``2**p`` registers of the leading-zero counts of 64-bit hashes (the
  hashes come from :func:`hash_values`); about ``1.04 / sqrt(2**p)`` relative error, exact-ish
  small-range correction by linear counting.
* :class:`FrequentItems`: exact counts while there are at most ``capacity`` distinct items, then
  a Misra-Gries summary (every count is an underestimate by at most :attr:`FrequentItems.error`).

Randomness is seeded from the sketch's own state, so the same input gives the same sketch.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

_LEADING_ZEROS_16 = (16 - np.ceil(np.log2(np.arange(65536) + 1.0))).astype(np.uint8)
"""Leading zeros of every 16-bit value (16 for 0)."""
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def _unb64(text: str, dtype: Any) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).copy()


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer over a uint64 array (every input bit affects every output
    bit), done in place on a copy."""
    h = h.copy()
    with np.errstate(over="ignore"):
        h ^= h >> np.uint64(33)
        h *= _FMIX1
        h ^= h >> np.uint64(33)
        h *= _FMIX2
        h ^= h >> np.uint64(33)
    return h


def hash_numbers(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of numbers (as float64, so ``1`` and ``1.0`` hash alike; ``-0.0`` as 0)."""
    floats = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    return _fmix64(floats.view(np.uint64))


def hash_strings(values: Iterable[str | bytes]) -> np.ndarray:
    """64-bit hashes of strings (BLAKE2b, 8 bytes); used on dictionaries, not on every row."""
    out = [
        int.from_bytes(
            hashlib.blake2b(v if isinstance(v, bytes) else v.encode(), digest_size=8).digest(),
            "little",
        )
        for v in values
    ]
    return np.array(out, dtype=np.uint64)


# ---------------------------------------------------------------------------- quantiles


class QuantileSketch:
    """Mergeable approximate quantiles of a stream of finite floats (see the module docstring)."""

    def __init__(self, k: int = 400) -> None:
        if k < 8:
            raise ValueError("k must be at least 8")
        self.k = k
        self.n = 0
        self.levels: list[np.ndarray] = [np.empty(0)]

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.n, len(self.levels), self.k])

    def _capacity(self, level: int) -> int:
        depth = len(self.levels) - level - 1
        return max(8, math.ceil(self.k * (2 / 3) ** depth))

    def update(self, values: np.ndarray) -> None:
        """Add a batch of values (NaNs must already be removed)."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        rng = self._rng()
        self.n += int(values.size)
        # The sampler: keep one random item per block of 2**j, weight 2**j, for big batches.
        intake = 8 * self.k
        level = 0
        while values.size >> level > intake:
            level += 1
        if level:
            block = 1 << level
            whole = values.size // block
            picks = np.arange(whole) * block + rng.integers(0, block, whole)
            head, tail = values[picks], values[whole * block :]
            self._add(level, head)
            if tail.size:
                # The tail (fewer than one block) is kept whole at level 0.
                self._add(0, tail)
        else:
            self._add(0, values)
        self._compress(rng)

    def _add(self, level: int, items: np.ndarray) -> None:
        while len(self.levels) <= level:
            self.levels.append(np.empty(0))
        self.levels[level] = np.concatenate([self.levels[level], items])

    def _compress(self, rng: np.random.Generator) -> None:
        level = 0
        while level < len(self.levels):
            items = self.levels[level]
            if items.size > self._capacity(level):
                items = np.sort(items)
                keep = items[-1:] if items.size % 2 else items[:0]
                even = items[: items.size - keep.size]
                promoted = even[int(rng.integers(0, 2)) :: 2]
                self.levels[level] = keep
                self._add(level + 1, promoted)
            level += 1

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A new sketch of both streams."""
        out = QuantileSketch(max(self.k, other.k))
        out.n = self.n + other.n
        depth = max(len(self.levels), len(other.levels))
        out.levels = [
            np.concatenate(
                [
                    self.levels[i] if i < len(self.levels) else np.empty(0),
                    other.levels[i] if i < len(other.levels) else np.empty(0),
                ]
            )
            for i in range(depth)
        ]
        out._compress(out._rng())
        return out

    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        items = np.concatenate(self.levels) if self.levels else np.empty(0)
        weights = np.concatenate([np.full(lv.size, 2.0**h) for h, lv in enumerate(self.levels)])
        order = np.argsort(items, kind="stable")
        return items[order], np.cumsum(weights[order])

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Approximate values at the given ranks in [0, 1] (``None`` for an empty sketch)."""
        qs = list(qs)
        items, cum = self._weighted()
        if items.size == 0:
            return [None for _ in qs]
        total = cum[-1]
        idx = np.searchsorted(cum, np.asarray(qs, dtype=np.float64) * total, side="left")
        return [float(items[min(int(i), items.size - 1)]) for i in idx]

    def cdf(self, points: Iterable[float]) -> list[float]:
        """The approximate fraction of values at or below each point."""
        items, cum = self._weighted()
        pts = np.asarray(list(points), dtype=np.float64)
        if items.size == 0:
            return [0.0] * pts.size
        pos = np.searchsorted(items, pts, side="right")
        below = np.where(pos > 0, cum[np.maximum(pos - 1, 0)], 0.0)
        return [float(x) for x in below / cum[-1]]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "levels": [_b64(lv) for lv in self.levels]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuantileSketch:
        out = cls(int(d["k"]))
        out.n = int(d["n"])
        out.levels = [_unb64(text, np.float64) for text in d["levels"]] or [np.empty(0)]
        return out


# ---------------------------------------------------------------------------- distinct counts


class HyperLogLog:
    """Mergeable distinct-count estimate over 64-bit hashes (see the module docstring)."""

    def __init__(self, p: int = 12) -> None:
        if not 4 <= p <= 16:
            raise ValueError("p must be between 4 and 16")
        self.p = p
        self.registers = np.zeros(1 << p, dtype=np.uint8)

    def update(self, hashes: np.ndarray) -> None:
        """Add a batch of uint64 hashes."""
        if hashes.size == 0:
            return
        p = self.p
        index = (hashes >> np.uint64(64 - p)).astype(np.intp)
        rest = hashes << np.uint64(p)
        # rho = 1 + leading zeros of the remaining bits, read 16 bits at a time from a table;
        # a run of more than 32 zeros (probability 2**-32) is counted as 32.
        high = (rest >> np.uint64(48)).astype(np.intp)
        rho = _LEADING_ZEROS_16[high] + 1
        empty = high == 0
        if empty.any():
            low = ((rest[empty] >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.intp)
            rho[empty] = _LEADING_ZEROS_16[low] + 17
        np.minimum(rho, 64 - p + 1, out=rho)
        np.maximum.at(self.registers, index, rho)

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        if other.p != self.p:
            raise ValueError("can't merge HyperLogLog sketches of different precision")
        out = HyperLogLog(self.p)
        out.registers = np.maximum(self.registers, other.registers)
        return out

    def estimate(self) -> float:
        m = float(self.registers.size)
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.exp2(-self.registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return m * math.log(m / zeros)
        return raw

    def to_dict(self) -> dict[str, Any]:
        return {"p": self.p, "registers": _b64(self.registers)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HyperLogLog:
        out = cls(int(d["p"]))
        out.registers = _unb64(d["registers"], np.uint8)
        return out


# ---------------------------------------------------------------------------- frequent items


class FrequentItems:
    """Counts of the most frequent items (exact until ``capacity`` distinct items are seen)."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self.counts: dict[str, int] = {}
        self.error = 0
        """Every stored count is at most this much below the true count (0: exact)."""

    @property
    def exact(self) -> bool:
        return self.error == 0

    def update(self, counts: Mapping[str, int]) -> None:
        """Add the counts of a batch (item -> occurrences)."""
        for item, count in counts.items():
            self.counts[item] = self.counts.get(item, 0) + int(count)
        self._shrink()

    def _shrink(self) -> None:
        if len(self.counts) <= self.capacity:
            return
        ordered = sorted(self.counts.values(), reverse=True)
        cut = ordered[self.capacity]
        self.error += cut
        self.counts = {k: v - cut for k, v in self.counts.items() if v > cut}

    def merge(self, other: FrequentItems) -> FrequentItems:
        out = FrequentItems(max(self.capacity, other.capacity))
        out.counts = dict(self.counts)
        out.error = self.error + other.error
        out.update(other.counts)
        return out

    def top(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` most frequent items with their counts, most frequent first (ties by item)."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "error": self.error, "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrequentItems:
        out = cls(int(d["capacity"]))
        out.error = int(d["error"])
        out.counts = {str(k): int(v) for k, v in d["counts"].items()}
        return out
