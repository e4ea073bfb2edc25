"""Serving windows: the prediction log turned into one row per predicted example, cut into
windows by count or by time.

A log row is one request: ``features`` holds the request's table as JSON (``{"columns",
"data"}``, a column mapping, records or a matrix), ``predictions`` one prediction per example
(scalars, records or per-class probability lists), and ``label`` the feedback (one value, or a
list with one label per example). :func:`explode` turns them into a frame with one row per
example: the feature columns, ``__prediction__``, ``__score__`` (the positive-class probability,
or the probability vector), ``__label__``, ``__proba_columns__`` (how many class probabilities
the prediction held; ``None`` for other predictions), and the request's ``__timestamp_ms__``,
``__latency_ms__``, ``__error__`` and ``__request_id__``.

A probability list is read with the monitor's ``classes`` (the labels of its columns, what
scikit-learn's ``model.classes_`` holds) when it has them: the prediction is the class of the
largest probability, and the score is the positive class's probability (two classes) or the
probabilities in :func:`shipyard.monitoring.performance.classification`'s class order. A list
whose length is not the number of classes is neither (the monitor leaves its row out of
performance). Without ``classes`` the prediction is the column index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.monitoring.performance import class_columns

PREDICTION = "__prediction__"
SCORE = "__score__"
LABEL = "__label__"
TIMESTAMP = "__timestamp_ms__"
LATENCY = "__latency_ms__"
ERROR = "__error__"
REQUEST = "__request_id__"
PROBA_COLUMNS = "__proba_columns__"
META = (PREDICTION, SCORE, LABEL, TIMESTAMP, LATENCY, ERROR, REQUEST, PROBA_COLUMNS)


def _feature_rows(text: Any) -> list[dict[str, Any]]:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    data = json.loads(text) if isinstance(text, str) else text
    if isinstance(data, dict) and "columns" in data and "data" in data:
        cols = [str(c) for c in data["columns"]]
        rows = data["data"]
        if rows and not isinstance(rows[0], list | tuple):
            rows = [rows]
        return [dict(zip(cols, r, strict=False)) for r in rows]
    if isinstance(data, dict):
        cols = list(data)
        values = [v if isinstance(v, list) else [v] for v in data.values()]
        n = max((len(v) for v in values), default=0)
        return [{c: (v[i] if i < len(v) else None) for c, v in zip(cols, values, strict=True)}
                for i in range(n)]  # fmt: skip
    if isinstance(data, list):
        if data and isinstance(data[0], dict):
            return [dict(r) for r in data]
        if data and isinstance(data[0], list):
            return [{f"f{i}": v for i, v in enumerate(r)} for r in data]
        return [{"f0": v} for v in data]
    return [{"f0": data}]


def _predictions(
    text: Any,
    n: int,
    field: str | None,
    score_field: str | None,
    classes: Sequence[Any] | None = None,
    columns: list[int] | None = None,
) -> list[Any]:
    """``(prediction, score, probability columns)`` per example (``columns``: the
    :func:`~shipyard.monitoring.performance.class_columns` of ``classes``)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return [(None, None, None)] * n
    data = json.loads(text) if isinstance(text, str) else text
    if isinstance(data, dict):
        if "predictions" in data:
            data = data["predictions"]
        else:
            cols = list(data)
            values = [v if isinstance(v, list) else [v] for v in data.values()]
            data = [{c: v[i] for c, v in zip(cols, values, strict=True)}
                    for i in range(len(values[0]) if values else 0)]  # fmt: skip
    if not isinstance(data, list):
        data = [data]
    out: list[tuple[Any, Any, int | None]] = []
    for item in data:
        if isinstance(item, dict):
            key = field or next(iter(item), None)
            value = item.get(score_field) if score_field else None
            out.append((item.get(key) if key is not None else None, value, None))
        elif isinstance(item, list):
            probs = [float(v) for v in item]
            out.append((*_from_probabilities(probs, classes, columns), len(probs)))
        else:
            out.append((item, None, None))
    out += [(None, None, None)] * (n - len(out))
    return out[:n] if n else out


def _from_probabilities(
    probs: list[float], classes: Sequence[Any] | None, columns: list[int] | None
) -> tuple[Any, Any]:
    """``(prediction, score)`` of one row of class probabilities (see the module docstring)."""
    if classes is None or columns is None:
        label = int(np.argmax(probs)) if probs else None
        return label, (probs[1] if len(probs) == 2 else probs)
    if len(probs) != len(classes):
        return None, None
    label = classes[int(np.argmax(probs))]
    if len(columns) == 1:
        return label, probs[columns[0]]
    return label, [probs[i] for i in columns]


def explode(
    log: Any,
    *,
    prediction_field: str | None = None,
    score_field: str | None = None,
    classes: Sequence[Any] | None = None,
) -> Any:
    """One row per example of the requests in ``log`` (see the module docstring)."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    columns = class_columns(classes) if classes else None
    has_error = "error" in log.columns
    for row in log.itertuples(index=False):
        error = getattr(row, "error", None) if has_error else None
        error = None if error is None or (isinstance(error, float) and np.isnan(error)) else error
        feats = _feature_rows(row.features)
        n = max(len(feats), 1)
        preds = _predictions(row.predictions, n, prediction_field, score_field, classes, columns)
        label = getattr(row, "label", None)
        labels = label if isinstance(label, list) and len(label) == n else [label] * n
        if n > 1 and not isinstance(label, list):
            labels = [None] * n if label is None else [label] * n
        for i in range(n):
            rec = dict(feats[i]) if i < len(feats) else {}
            rec[PREDICTION], rec[SCORE], rec[PROBA_COLUMNS] = (
                preds[i] if error is None else (None, None, None)
            )
            value = labels[i]
            rec[LABEL] = None if isinstance(value, float) and np.isnan(value) else value
            rec[TIMESTAMP] = int(row.timestamp_ms)
            rec[LATENCY] = float(row.latency_ms) if row.latency_ms is not None else None
            rec[ERROR] = error
            rec[REQUEST] = row.request_id
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    for column in META:
        if column not in frame.columns:
            frame[column] = None
    return frame


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int
    """Exclusive end (epoch ms)."""
    rows: Any
    """The exploded rows (a DataFrame)."""


def wait_ms(spec: dict[str, Any] | Any, settle_ms: int) -> int:
    """How long after its end a window of ``spec`` waits to be complete: its label delay, or
    ``settle_ms`` when that is longer."""
    return max(int(float(spec.get("label_delay_s", 0)) * 1000), settle_ms)


def cut(
    rows: Any,
    spec: dict[str, Any],
    *,
    after: int | None,
    now_ms: int,
    partial: bool = False,
    max_windows: int = 100,
    settle_ms: int = 0,
) -> Iterator[Window]:
    """Complete windows of ``rows`` (exploded, oldest first) that end after ``after``.

    ``spec``: ``{"rows": N}`` (windows of N examples, cut between requests) or ``{"seconds": S}``
    (tumbling windows aligned to multiples of S since the epoch), each with an optional
    ``label_delay_s``: a window is complete once ``now_ms`` passed its end plus the delay, so
    labels sent through feedback after the predictions have time to arrive; ``settle_ms`` is the
    least such wait (rows the prediction log writes late). ``partial`` also yields the trailing
    incomplete window (on-demand runs)."""
    if rows.empty:
        return
    ts = rows[TIMESTAMP].to_numpy(dtype=np.int64)
    start_at = 0 if after is None else int(np.searchsorted(ts, after, side="left"))
    delay = wait_ms(spec, settle_ms)
    if "rows" in spec:
        size = int(spec["rows"])
        i, made = start_at, 0
        while i < ts.size and made < max_windows:
            j = min(i + size, ts.size)
            while j < ts.size and ts[j] == ts[j - 1]:
                j += 1  # keep a request's examples (same timestamp) together
            waiting = delay > 0 and int(ts[j - 1]) + 1 + delay > now_ms
            if (j - i < size or waiting) and not partial:
                return
            yield Window(int(ts[i]), int(ts[j - 1]) + 1, rows.iloc[i:j])
            i, made = j, made + 1
        return
    if "seconds" in spec:
        step = int(float(spec["seconds"]) * 1000)
        if step <= 0:
            raise InvalidInput("a time window needs seconds > 0.")
        if start_at >= ts.size:
            return
        first = int(ts[start_at]) // step * step
        made = 0
        lo = first
        while made < max_windows:
            hi = lo + step
            if hi + delay > now_ms and not partial:
                return
            a = int(np.searchsorted(ts, lo, side="left"))
            b = int(np.searchsorted(ts, hi, side="left"))
            if a >= ts.size:
                return
            if b > a:
                yield Window(max(lo, after or lo), hi, rows.iloc[max(a, start_at) : b])
                made += 1
            lo = hi
        return
    raise InvalidInput(
        f"window {spec!r} has neither `rows` nor `seconds`; give --window-rows N or "
        "--window-seconds S."
    )
