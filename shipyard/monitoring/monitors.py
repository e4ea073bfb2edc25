"""Monitors: an endpoint's serving windows against a stored reference, window by window.

A monitor names the endpoint whose prediction log it reads (``<SHIPYARD_HOME>/predictions/
<endpoint>/``), optionally the model and deployment it watches, a reference (a dataset version,
whose stored profile is used as is, given or found as a model version's training data in its
lineage, or a window of the log, profiled once when the monitor is created) and how to cut windows (``{"rows": N}`` or ``{"seconds": S}``). :func:`run_monitor`
computes every complete window after the monitor's watermark and stores one result per window:

* input drift of the feature columns (:func:`shipyard.monitoring.compare` against the stored
  profile: the reference is never rescanned) and prediction drift (against the reference's
  prediction column: the ``target`` column of a dataset, or the window's predictions);
* missing and out-of-schema rates (:func:`shipyard.data.validate.validate` against the
  dataset's schema, or the schema inferred from the reference profile);
* performance on the rows whose labels arrived through feedback, overall and per segment
  (predictions that are class probabilities are read with the monitor's ``classes``, the
  labels of their columns; without them, a window whose labels are not column indexes gets
  no classification metrics, and its details say why);
* service health: error rate, latency percentiles, request and row counts.

Then every alert rule of the monitor is evaluated on the new results
(:mod:`shipyard.monitoring.alerts`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import windows as w
from shipyard.monitoring.drift import CORRECTIONS, compare, get_test
from shipyard.monitoring.performance import CLASSIFICATION, evaluate, label_key
from shipyard.monitoring.predictions import log_folder, read_predictions
from shipyard.store.monitoring import Alert, Monitor, MonitorResult

if TYPE_CHECKING:
    from shipyard.data.profile import Profile
    from shipyard.data.schema import Schema
    from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.monitoring")

TASKS = ("classification", "regression")
MAX_SEGMENT_VALUES = 20
DEFAULT_INTERVAL_S = 300
LOG_SETTLE_S = 5.0
"""How long after its end a window waits before it counts as complete, so the rows a model
server's prediction log writes late (it flushes every second, per worker) are in it: a window
marked done is never computed again, and a row that lands after it would be left out."""


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------- creating


def create_monitor(
    ws: Workspace,
    name: str,
    *,
    endpoint: str,
    reference: Mapping[str, Any],
    window: Mapping[str, Any],
    model: str | None = None,
    deployment: str | None = None,
    task: str | None = None,
    features: list[str] | None = None,
    target: str | None = None,
    segments: list[str] | None = None,
    tests: Mapping[str, str] | str | None = None,
    correction: str | None = None,
    interval_s: int = DEFAULT_INTERVAL_S,
    prediction_field: str | None = None,
    score_field: str | None = None,
    classes: Sequence[str | int | float | bool] | None = None,
) -> Monitor:
    """Create a monitor and store its reference profile (see the module docstring).

    ``reference``: ``{"model": "models:/NAME/VERSION"}`` (or ``@alias``: the dataset version
    that model version was trained on, from its run's inputs), ``{"dataset": NAME, "version":
    N}`` (version optional: the latest) or ``{"window": {"start": ms, "end": ms}}`` (a span of
    the endpoint's own log).
    ``window``: ``{"rows": N}`` or ``{"seconds": S}``, optionally with ``"label_delay_s": D``
    (a window is computed once D seconds have passed after its last prediction, so the labels
    that feedback brings later are in it). ``task``:
    ``classification`` or ``regression`` (performance needs it). ``target``: the label column of
    a reference dataset (excluded from the features; its distribution is the reference for
    prediction drift). ``segments``: feature columns to break performance down by.
    ``classes``: the class labels in the order of the probability columns when predictions
    are class probabilities (a scikit-learn model's ``classes_``); a prediction is then the class
    of its largest probability, compared with the labels feedback sends.
    """
    if not name or len(name) > 250:
        raise InvalidInput("a monitor needs a name of 1 to 250 characters.")
    if task is not None and task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}, not {task!r}.")
    if correction is not None and correction not in CORRECTIONS:
        raise InvalidInput(
            f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}."
        )
    if interval_s <= 0:
        raise InvalidInput(f"interval_s must be positive, not {interval_s}.")
    _check_window(window)
    classes = _check_classes(classes)
    spec: dict[str, Any] = {
        "window": dict(window),
        "task": task,
        "features": list(features) if features else None,
        "target": target,
        "segments": list(segments or []),
        "tests": tests,
        "correction": correction,
        "interval_s": int(interval_s),
        "prediction_field": prediction_field,
        "score_field": score_field,
        "classes": classes,
    }
    for test in [tests] if isinstance(tests, str) else list((tests or {}).values()):
        get_test(test)  # an unknown test is refused now, not at the first run
    profile, ref_spec = _reference_profile(ws, endpoint, reference, spec)
    _check_columns(profile, features, segments, tests)
    spec["reference"] = ref_spec
    ws.monitors  # noqa: B018 - fail early without a monitoring store
    return ws.monitors.create_monitor(
        Monitor(
            monitor_id=0,
            name=name,
            endpoint=endpoint,
            model=model,
            deployment=deployment,
            spec=spec,
            reference_profile=json.dumps(profile.to_dict(), allow_nan=False),
            # A window reference is followed by the windows after it.
            watermark=ref_spec["window"]["end"] if "window" in ref_spec else None,
        )
    )


def _check_window(window: Mapping[str, Any]) -> None:
    if "rows" in window:
        rows = window["rows"]
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise InvalidInput(f"window rows must be a positive integer, not {rows!r}.")
    elif "seconds" in window:
        seconds = window["seconds"]
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not 0.001 <= seconds < math.inf
        ):
            raise InvalidInput(
                f"window seconds must be a number of seconds of at least 0.001 (windows are cut "
                f"in milliseconds), not {seconds!r}."
            )
    else:
        raise InvalidInput(
            "a monitor's window is {'rows': N} or {'seconds': S}; give --window-rows or "
            "--window-seconds."
        )
    delay = window.get("label_delay_s", 0)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay < math.inf:
        raise InvalidInput(f"label_delay_s must be a number of seconds >= 0, not {delay!r}.")


def _check_classes(classes: Any) -> list[str | int | float | bool] | None:
    if classes is None:
        return None
    how = (
        "give the class labels in the order of the model's probability columns (scikit-learn's "
        "`model.classes_`), as in classes=['setosa', 'versicolor', 'virginica']"
    )
    if isinstance(classes, np.ndarray):
        classes = classes.tolist()  # model.classes_ as it is
    if isinstance(classes, str | bytes | Mapping) or not isinstance(classes, Sequence):
        raise InvalidInput(f"classes must be a list of class labels, not {classes!r}; {how}.")
    values = [v.item() if isinstance(v, np.generic) else v for v in classes]
    for value in values:
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise InvalidInput(
                f"classes holds {value!r}; each class must be a string, a number or a boolean; "
                f"{how}."
            )
    if len(values) < 2:
        raise InvalidInput(f"classes must name at least 2 classes, not {values!r}; {how}.")
    seen: dict[str, Any] = {}
    for value in values:
        key = str(label_key(value))
        if key in seen:
            raise InvalidInput(
                f"classes names one class twice ({seen[key]!r} and {value!r}: labels are "
                f"compared as text, True as 1 and 1.0 as 1); {how}."
            )
        seen[key] = value
    return values


def _check_columns(
    profile: Profile,
    features: Sequence[str] | None,
    segments: Sequence[str] | None,
    tests: Mapping[str, str] | str | None,
) -> None:
    """``InvalidInput`` for a feature, segment or per-column test naming a column the reference
    does not have (a typo would otherwise watch nothing, silently)."""
    # A window reference lists the features it was asked for even where the log has none.
    known = {name for name, col in profile.columns.items() if col.count > col.nulls}
    named = [("feature", c) for c in features or []] + [("segment", c) for c in segments or []]
    if isinstance(tests, Mapping):
        named += [("test column", c) for c in tests if c not in ("numeric", "categorical")]
    for what, column in named:
        if column not in known:
            shown = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
            raise InvalidInput(
                f"{what} {column!r} is not a column with values in the monitor's reference "
                f"({shown}); check the spelling."
            )


def _reference_profile(
    ws: Workspace, endpoint: str, reference: Mapping[str, Any], spec: dict[str, Any]
) -> tuple[Profile, dict[str, Any]]:

    if "model" in reference:  # the training data of a model version, from its lineage
        from shipyard.registry.lineage import training_dataset

        uri = reference["model"]
        if not isinstance(uri, str):
            raise InvalidInput(
                f"reference model {uri!r} is not a model URI such as 'models:/churn/3'."
            )
        name, number = training_dataset(ws, uri)
        profile, ref = _reference_profile(ws, endpoint, {"dataset": name, "version": number}, spec)
        return profile, {**ref, "model": uri}
    if "dataset" in reference:
        from shipyard.data.service import Datasets

        version = Datasets(ws).get(str(reference["dataset"]), reference.get("version"))
        profile = Datasets(ws).profile(version.name, version.version)
        target = spec.get("target")
        if target is not None and target not in profile.columns:
            raise InvalidInput(
                f"the target column {target!r} is not in {version.uri}; it has "
                f"{', '.join(profile.columns)}."
            )
        return profile, {"dataset": version.name, "version": version.version}
    if "window" in reference:
        span = reference["window"]
        start, end = int(span.get("start", 0)), int(span.get("end", _now_ms()))
        rows = _rows(ws, endpoint, spec, since=start)
        rows = rows[(rows[w.TIMESTAMP] >= start) & (rows[w.TIMESTAMP] < end)]
        if rows.empty:
            raise InvalidInput(
                f"the reference window [{start}, {end}) of endpoint {endpoint!r} has no "
                "predictions; pick a span the log covers, or a dataset version."
            )
        return _profile_rows(rows, spec), {"window": {"start": start, "end": end}}
    raise InvalidInput(
        "a monitor's reference is {'model': 'models:/NAME/VERSION'} (its training data), "
        "{'dataset': NAME, 'version': N} or {'window': {'start': ms, 'end': ms}}; give "
        "--reference-model URI, --reference-dataset NAME[:VERSION] or --reference-window "
        "START:END."
    )


def _profile_rows(rows: Any, spec: Mapping[str, Any]) -> Profile:
    from shipyard.data.profile import Profile

    table = _arrow(_features(rows, spec, with_prediction=True))
    return Profile.from_batches(table.to_batches(), schema=table.schema)


def _arrow(frame: Any) -> Any:
    import pyarrow as pa

    clean = frame.copy()
    for column in clean.columns:
        if clean[column].dtype == object:
            values = clean[column]
            if values.map(lambda v: isinstance(v, bool | np.bool_) or v is None).all():
                continue
            if values.map(lambda v: v is None or isinstance(v, int | float)).all():
                clean[column] = values.astype("float64")
            else:
                clean[column] = values.map(lambda v: None if v is None else str(v))
    return pa.Table.from_pandas(clean, preserve_index=False)


def _features(rows: Any, spec: Mapping[str, Any], *, with_prediction: bool) -> Any:
    names = spec.get("features") or [c for c in rows.columns if c not in w.META]
    names = [c for c in names if c != spec.get("target")]
    missing = [c for c in names if c not in rows.columns]
    frame = rows.reindex(columns=names) if missing else rows[names]
    if with_prediction:
        frame = frame.assign(**{w.PREDICTION: _plain(rows[w.PREDICTION])})
    return frame


def _plain(values: Any) -> Any:
    """Predictions as numbers where they are numbers (else strings)."""
    import pandas as pd

    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        return numeric.astype("float64")
    return values.map(lambda v: None if v is None else str(v))


def _rows(ws: Workspace, endpoint: str, spec: Mapping[str, Any], since: int | None) -> Any:
    folder = log_folder(ws.settings.home, endpoint)
    try:
        log = read_predictions(folder, include_errors=True, since_ms=since)
    except InvalidInput:
        raise NotFound(
            f"endpoint {endpoint!r} has no prediction log at {folder}; serve it with "
            "`shipyard serve` (the log is on by default) before monitoring it."
        ) from None
    return w.explode(
        log,
        prediction_field=spec.get("prediction_field"),
        score_field=spec.get("score_field"),
        classes=spec.get("classes"),
    ).reset_index(drop=True)


# ---------------------------------------------------------------------------- computing


def _schema(ws: Workspace, monitor: Monitor, profile: Profile, names: list[str]) -> Schema:
    from shipyard.data.schema import Schema, infer_schema

    ref = monitor.spec.get("reference", {})
    schema: Schema | None = None
    if "dataset" in ref:
        from shipyard.data.service import Datasets

        try:
            schema = Datasets(ws).schema(ref["dataset"])
        except NotFound:
            schema = None
    if schema is None:
        schema = infer_schema(profile)
    columns = {k: v for k, v in schema.columns.items() if k in names}
    return Schema(columns)


def compute_window(
    ws: Workspace, monitor: Monitor, window: w.Window, profile: Profile
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """The metrics and details of one window (see the module docstring)."""
    from shipyard.data.validate import validate

    spec = monitor.spec
    rows = window.rows
    answered = rows[rows[w.ERROR].isna()]
    metrics: dict[str, float | None] = {
        "rows": float(len(answered)),
        "requests": float(rows[w.REQUEST].nunique()),
    }
    details: dict[str, Any] = {}
    # Health.
    per_request = rows.drop_duplicates(w.REQUEST)
    failed = per_request[w.ERROR].notna()
    metrics["error_rate"] = float(failed.mean()) if len(per_request) else None
    latency = per_request.loc[~failed, w.LATENCY].dropna().to_numpy(dtype=np.float64)
    for q in (50, 95, 99):
        metrics[f"latency_p{q}_ms"] = float(np.percentile(latency, q)) if latency.size else None
    details["errors"] = {str(k): int(v) for k, v in per_request[w.ERROR].value_counts().items()}
    if answered.empty:
        return metrics, details
    feature_frame = _features(answered, spec, with_prediction=False)
    names = [c for c in feature_frame.columns if c in profile.columns]
    # Missing and out-of-schema rates.
    cells = max(len(feature_frame) * max(len(feature_frame.columns), 1), 1)
    metrics["missing_rate"] = float(feature_frame.isna().to_numpy().sum() / cells)
    table = _arrow(feature_frame)
    report = validate(
        table.to_batches(), _schema(ws, monitor, profile, list(feature_frame.columns))
    )
    bad = sum(a.count for a in report.anomalies if a.kind not in ("null_values", "extra_column"))
    metrics["out_of_schema_rate"] = float(bad / cells)
    details["validation"] = report.to_dict()
    # Input drift against the stored profile.
    tests, correction = spec.get("tests"), spec.get("correction")
    if names:
        drift = compare(profile, table.select(names), tests=tests, correction=correction)
        metrics["drift_share"] = drift.share_drifted
        metrics["dataset_drift"] = float(drift.dataset_drift)
        for c in drift.columns:
            metrics[f"drift:{c.column}"] = c.statistic
        details["drift"] = drift.to_dict(full=True)
    # Prediction drift against the reference's prediction (or target) column.
    ref_pred = w.PREDICTION if w.PREDICTION in profile.columns else spec.get("target")
    preds = _plain(answered[w.PREDICTION])
    if ref_pred in profile.columns and preds.notna().any():
        import pandas as pd

        from shipyard.data.profile import Profile

        ref_col = profile.columns[ref_pred]
        ref_profile = Profile(profile.num_rows, {"prediction": _renamed(ref_col, "prediction")})
        current = _arrow(pd.DataFrame({"prediction": preds}))
        pdrift = compare(ref_profile, current, tests=tests if isinstance(tests, str) else None)
        if pdrift.columns:
            c = pdrift.columns[0]
            metrics["prediction_drift"] = c.statistic
            metrics["prediction_drifted"] = float(c.drifted)
            details["prediction_drift"] = c.to_dict(full=True)
    # Performance on the labelled rows.
    task = spec.get("task")
    labelled = answered[answered[w.LABEL].notna()]
    metrics["labelled"] = float(len(labelled))
    skipped = None
    if task == "classification" and not labelled.empty:
        labelled, skipped = _scorable(labelled, spec.get("classes"), details)
    if skipped:
        metrics.update(dict.fromkeys(CLASSIFICATION))
        details["performance_skipped"] = skipped
    elif task and not labelled.empty:
        overall = _performance(task, labelled, spec.get("classes"))
        metrics.update(overall)
        segments: dict[str, Any] = {}
        for column in spec.get("segments") or []:
            if column not in labelled.columns:
                continue
            per: dict[str, Any] = {}
            values = labelled[column].astype(str).value_counts().index[:MAX_SEGMENT_VALUES]
            for value in values:
                part = labelled[labelled[column].astype(str) == value]
                scores = _performance(task, part, spec.get("classes"))
                per[str(value)] = {"rows": len(part), **scores}
                for k, v in scores.items():
                    metrics[f"{k}[{column}={value}]"] = v
            segments[column] = per
        details["performance"] = {"overall": overall, "segments": segments}
    return metrics, details


def _renamed(col: Any, name: str) -> Any:
    from shipyard.data.profile import ColumnProfile

    return ColumnProfile.from_dict({**col.to_dict(), "name": name})


SKIPPED_NO_CLASSES = (
    "predictions are class probabilities but the labels are not column indexes (0 to {last}): "
    "{examples}; create the monitor with classes=[...] (--classes) in the order of "
    "model.classes_"
)


def _scorable(
    labelled: Any, classes: Sequence[Any] | None, details: dict[str, Any]
) -> tuple[Any, str | None]:
    """The labelled rows a classification window can score, and why it scores none.

    With ``classes``, rows whose probability list has another length are left out (counted in
    ``details["performance_skipped_rows"]``). Without, probability predictions are column
    indexes: labels that cannot be one (a class name, a number past the last column) would make
    every metric wrong, so the window gets none."""
    sizes = labelled[w.PROBA_COLUMNS]
    proba = sizes.notna()
    if not proba.any():
        return labelled, None
    if classes:
        wrong = proba & (sizes != len(classes))
        if wrong.any():
            found = sorted({int(k) for k in sizes[wrong]})
            details["performance_skipped_rows"] = {
                "rows": int(wrong.sum()),
                "reason": f"the prediction holds {' or '.join(map(str, found))} class "
                f"probabilities, but the monitor has {len(classes)} classes",
            }
        kept = labelled[~wrong]
        known = {str(label_key(c)) for c in classes}
        unknown = [v for v in kept[w.LABEL] if str(label_key(v)) not in known]
        if unknown:  # scored as wrong answers, but most likely a mistake in `classes`
            distinct = list(dict.fromkeys(repr(v) for v in unknown))
            details["performance_unknown_labels"] = {
                "rows": len(unknown),
                "labels": distinct[:5] + (["..."] if len(distinct) > 5 else []),
            }
        return kept, None
    bad: list[Any] = []
    for label, k in zip(labelled.loc[proba, w.LABEL], sizes[proba], strict=True):
        if _column_index(label, int(k)) is None and label not in bad:
            bad.append(label)
    if not bad:
        return labelled, None
    last = int(sizes[proba].max()) - 1
    shown = ", ".join(repr(v) for v in bad[:5]) + (", ..." if len(bad) > 5 else "")
    return labelled, SKIPPED_NO_CLASSES.format(last=last, examples=shown)


def _column_index(label: Any, columns: int) -> int | None:
    """The probability column a label names without ``classes``: ``1``, ``1.0``, ``True`` or
    the text ``"1"`` (labels sent as strings) for column 1 of ``columns``; ``None`` otherwise."""
    value = label_key(label)
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < columns else None


def _performance(
    task: str, rows: Any, classes: Sequence[Any] | None = None
) -> dict[str, float | None]:
    y_true = list(rows[w.LABEL])
    y_pred = list(rows[w.PREDICTION])
    scores = None
    if task == "classification":
        raw = [s for s in rows[w.SCORE] if s is not None and not _is_nan(s)]
        widths = {len(s) if isinstance(s, list) else 0 for s in raw}
        if len(raw) == len(rows) and raw and len(widths) == 1:  # one shape (a model may add
            scores = np.asarray(raw, dtype=np.float64)  # a class mid-window: then none)
    return evaluate(task, y_true, y_pred, scores, classes)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass
class RunOutcome:
    """What one run of a monitor did."""

    monitor: str
    results: list[MonitorResult] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "windows": [result_dict(r) for r in self.results],
            "alerts": [alert_dict(a) for a in self.alerts],
        }


def run_monitor(
    ws: Workspace,
    name: str,
    *,
    now_ms: int | None = None,
    partial: bool = False,
    settle_s: float = LOG_SETTLE_S,
) -> RunOutcome:
    """Compute every complete window after the monitor's watermark (``partial``: also the
    trailing incomplete one; it is not marked done), store the results and evaluate the rules.

    A window is complete once it is full (``rows``) or over (``seconds``), and ``now_ms`` is
    ``settle_s`` (or the monitor's label delay, when longer) past its end: the prediction log
    writes its rows up to a second late. ``settle_s=0`` suits a caller that knows the log is
    complete (the model server stopped, or its log was flushed)."""
    if not (isinstance(settle_s, int | float) and math.isfinite(settle_s) and settle_s >= 0):
        raise InvalidInput(f"settle_s must be a number of seconds >= 0, not {settle_s!r}.")
    from shipyard.data.profile import Profile
    from shipyard.monitoring.alerts import evaluate_rules

    monitor = ws.monitors.get_monitor(name)
    if monitor.reference_profile is None:
        raise InvalidInput(f"monitor {name!r} has no reference profile; create it again.")
    profile = Profile.from_dict(json.loads(monitor.reference_profile))
    now = now_ms if now_ms is not None else _now_ms()
    outcome = RunOutcome(name)
    rows = _rows(ws, monitor.endpoint, monitor.spec, since=monitor.watermark)
    watermark = monitor.watermark
    settle_ms = int(settle_s * 1000)
    windows = w.cut(
        rows, monitor.spec["window"], after=watermark, now_ms=now, partial=partial,
        settle_ms=settle_ms,
    )  # fmt: skip
    for window in windows:
        metrics, details = compute_window(ws, monitor, window, profile)
        metrics = {k: (v if v is None or math.isfinite(v) else None) for k, v in metrics.items()}
        complete = _complete(window, monitor.spec["window"], now, settle_ms)
        if complete:
            if not ws.monitors.claim_window(monitor.monitor_id, watermark, window.end):
                logger.info("monitor %s: window claimed by another process", name)
                break
            watermark = window.end
        result = ws.monitors.add_result(
            monitor.monitor_id, window.start, window.end, len(window.rows), metrics,
            {**details, "complete": complete},
        )  # fmt: skip
        outcome.results.append(result)
        if complete:
            outcome.alerts += evaluate_rules(ws, monitor, result)
    # Stamped even when no window was new, so the scheduler waits the monitor's interval.
    ws.monitors.update_monitor(name, last_run_time=now)
    return outcome


def _complete(window: w.Window, spec: Mapping[str, Any], now: int, settle_ms: int) -> bool:
    wait = w.wait_ms(spec, settle_ms)
    if "rows" in spec:  # full, and old enough
        return len(window.rows) >= int(spec["rows"]) and window.end + wait <= now
    return window.end + wait <= now


def due_monitors(ws: Workspace, now_ms: int | None = None) -> list[Monitor]:
    """Enabled monitors whose interval passed since their last run."""
    now = now_ms if now_ms is not None else _now_ms()
    out = []
    for m in ws.monitors.list_monitors():
        interval = int(m.spec.get("interval_s", DEFAULT_INTERVAL_S)) * 1000
        if m.enabled and (m.last_run_time is None or now - m.last_run_time >= interval):
            out.append(m)
    return out


# ---------------------------------------------------------------------------- reading (UI)


def monitor_dict(m: Monitor) -> dict[str, Any]:
    return {
        "name": m.name,
        "endpoint": m.endpoint,
        "model": m.model,
        "deployment": m.deployment,
        "enabled": m.enabled,
        "watermark": m.watermark,
        "last_run_time": m.last_run_time,
        "creation_time": m.creation_time,
        **{
            k: m.spec.get(k)
            for k in ("reference", "window", "task", "segments", "interval_s", "classes")
        },
    }


def result_dict(r: MonitorResult, details: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "result_id": r.result_id,
        "window_start": r.window_start,
        "window_end": r.window_end,
        "num_rows": r.num_rows,
        "metrics": r.metrics,
    }
    if details:
        out["details"] = r.details
    return out


def alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "rule": a.rule,
        "monitor": a.monitor,
        "metric": a.metric,
        "value": a.value,
        "threshold": a.threshold,
        "status": a.status,
        "fired_time": a.fired_time,
        "resolved_time": a.resolved_time,
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_time": a.acknowledged_time,
        "note": a.note,
        "action": a.payload.get("action"),
        "deliveries": a.deliveries,
    }


def list_monitors(ws: Workspace) -> list[dict[str, Any]]:
    """Every monitor with its latest metrics (what a monitors page shows)."""
    out = []
    for m in ws.monitors.list_monitors():
        latest = ws.monitors.list_results(m.name, max_results=1)
        out.append({**monitor_dict(m), "latest": result_dict(latest[0]) if latest else None})
    return out


def results_over_time(
    ws: Workspace, name: str, *, since: int | None = None, max_results: int = 1000
) -> list[dict[str, Any]]:
    """A monitor's window results, oldest first (a metric-over-time chart's data)."""
    return [result_dict(r) for r in ws.monitors.list_results(name, since=since,
                                                              max_results=max_results)]  # fmt: skip


def list_alerts(
    ws: Workspace, *, status: str | None = None, monitor: str | None = None, max_results: int = 100
) -> list[dict[str, Any]]:
    """Alerts newest first."""
    return [
        alert_dict(a)
        for a in ws.monitors.list_alerts(status=status, monitor=monitor, max_results=max_results)
    ]
