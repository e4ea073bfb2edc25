"""The gate engine: one set of gate definitions, evaluated offline (before a version enters an
environment) and online (on labelled live traffic during canary analysis).

Offline, :func:`check_gates` measures each gate of an environment for one model version:

* metric gates read the version's run metrics (``auc``, slices as ``auc.<slice>``), absolute or
  against the version the gate's ``relative_to`` alias points at (the champion);
* the data-validation gate validates every dataset version the run read against its dataset's
  schema;
* the load-and-query check starts ``shipyard serve`` on the exact package in a subprocess,
  times the load, and sends sample requests (no errors, p99 within budget);
* slice-gap gates compare the best and worst slice; approval gates count registry approvals.

Online, :func:`online_metric_results` applies the same metric gates to a live analysis window:
the candidate arm's labelled requests against the stable arm's in the same window.

Every result names the gate, the measured value and the threshold; a :class:`GateReport` that
fails says so in one message (:meth:`GateReport.message`).
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.deploy.spec import (
    ApprovalGate,
    DataValidationGate,
    Environment,
    Gate,
    LoadCheckGate,
    MetricGate,
    SliceGapGate,
)
from shipyard.errors import InvalidState, NotFound

if TYPE_CHECKING:
    import numpy as np

    from shipyard.entities import ModelVersion
    from shipyard.workspace import Workspace


@dataclass(frozen=True)
class GateResult:
    """One gate measured: ``passed`` is ``None`` when it could not be measured (and so does not
    block, e.g. no champion yet to compare against)."""

    gate: str
    type: str
    passed: bool | None
    value: Any
    threshold: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    """Every gate of one environment for one version."""

    model: str
    version: int
    environment: str
    results: tuple[GateResult, ...]
    online: bool = False

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if r.passed is False]

    def message(self) -> str:
        where = "online" if self.online else "offline"
        if self.passed:
            return (
                f"version {self.version} of {self.model!r} passes the {len(self.results)} "
                f"{where} gate(s) of {self.environment}."
            )
        parts = [f"{f.gate!r}: {f.message}" for f in self.failures]
        return (
            f"version {self.version} of {self.model!r} fails {len(parts)} {where} gate(s) of "
            f"{self.environment}: " + "; ".join(parts)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "online": self.online,
            "passed": self.passed,
            "results": [r.to_dict() for r in self.results],
        }


# ---------------------------------------------------------------------------- offline


def check_gates(ws: Workspace, model: str, version: int, environment: Environment) -> GateReport:
    """Measure every gate of ``environment`` for version ``version`` of ``model``."""
    from shipyard.registry import Registry

    mv = Registry(ws).get_version(model, version)
    metrics = run_metrics(ws, mv)
    results = [_offline(ws, mv, metrics, g) for g in environment.gates]
    return GateReport(model, version, environment.name, tuple(results))


def run_metrics(ws: Workspace, mv: ModelVersion) -> dict[str, float]:
    """The latest value of each metric of the version's run (empty when it has no run)."""
    if mv.run_id is None:
        return {}
    try:
        run = ws.store.get_run(mv.run_id)
    except NotFound:
        return {}
    return {k: float(m.value) for k, m in run.data.metrics.items()}


def _offline(ws: Workspace, mv: ModelVersion, metrics: dict[str, float], gate: Gate) -> GateResult:
    if isinstance(gate, MetricGate):
        return _metric_offline(ws, mv, metrics, gate)
    if isinstance(gate, SliceGapGate):
        return _slice_gap(metrics, gate)
    if isinstance(gate, ApprovalGate):
        approvers = sorted({a.approver for a in ws.registry.list_approvals(mv.name, mv.version)})
        ok = len(approvers) >= gate.count
        return GateResult(
            gate.label,
            gate.type,
            ok,
            len(approvers),
            f">= {gate.count}",
            f"{len(approvers)} approval(s) ({', '.join(approvers) or 'none'}), "
            f"{gate.count} required"
            + ("" if ok else f"; approve with `shipyard models approve {mv.name}/{mv.version}`"),
            {"approvers": approvers},
        )
    if isinstance(gate, DataValidationGate):
        return _data_validation(ws, mv, gate)
    return load_check(ws, f"models:/{mv.name}/{mv.version}", gate)


def _slices(metrics: dict[str, float], metric: str) -> dict[str, float]:
    prefix = metric + "."
    return {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def _metric_offline(
    ws: Workspace, mv: ModelVersion, metrics: dict[str, float], gate: MetricGate
) -> GateResult:
    if gate.slice:
        slices = _slices(metrics, gate.metric)
        if gate.slice != "*":
            slices = {k: v for k, v in slices.items() if k == gate.slice}
        if not slices:
            return GateResult(
                gate.label,
                gate.type,
                False,
                None,
                _threshold(gate, None),
                f"the run of version {mv.version} logged no metric "
                f"{gate.metric}.{gate.slice if gate.slice != '*' else '<slice>'}; log slice "
                f"metrics as '{gate.metric}.<slice>'",
            )
        worst_name = (
            min(slices, key=slices.__getitem__)
            if gate.better_high
            else max(slices, key=slices.__getitem__)
        )
        values = slices
    else:
        if gate.metric not in metrics:
            return GateResult(
                gate.label,
                gate.type,
                False,
                None,
                _threshold(gate, None),
                f"the run of version {mv.version} logged no metric {gate.metric!r} (it logged "
                f"{', '.join(sorted(metrics)) or 'none'})",
            )
        worst_name = ""
        values = {"": metrics[gate.metric]}
    reference = None
    ref_version = None
    if gate.relative_to is not None:
        try:
            holder = ws.registry.get_model_version_by_alias(mv.name, gate.relative_to)
        except NotFound:
            holder = None
        if holder is None or holder.version == mv.version:
            value = values[worst_name]
            return GateResult(
                gate.label,
                gate.type,
                None,
                value,
                "n/a",
                f"no {gate.relative_to} to compare with yet"
                if holder is None
                else f"version {mv.version} is the {gate.relative_to} itself",
            )
        ref_metrics = run_metrics(ws, holder)
        ref_values = (
            _slices(ref_metrics, gate.metric)
            if gate.slice
            else {"": ref_metrics.get(gate.metric, math.nan)}
        )
        ref_version = holder.version
        # per slice, compare against the same slice of the reference
        verdicts = {}
        for k, v in values.items():
            ref = ref_values.get(k)
            if ref is None or math.isnan(ref):
                continue
            verdicts[k] = (v, ref, _relative_ok(gate, v, ref))
        if not verdicts:
            return GateResult(
                gate.label,
                gate.type,
                False,
                values[worst_name],
                "n/a",
                f"the {gate.relative_to} (version {holder.version}) logged no {gate.metric}"
                + (" slices" if gate.slice else ""),
            )
        failing = [k for k, (_, _, ok) in verdicts.items() if not ok]
        key = (
            failing[0]
            if failing
            else worst_name
            if worst_name in verdicts
            else next(iter(verdicts))
        )
        value, reference, _ = verdicts[key]
        ok = not failing
        threshold = _threshold(gate, reference)
        where = f" on slice {key}" if key else ""
        return GateResult(
            gate.label,
            gate.type,
            ok,
            round(value, 6),
            threshold,
            f"{gate.metric}{where} is {_fmt(value)}, {gate.relative_to} (version {ref_version}) "
            f"has {_fmt(reference)}; needs {threshold}",
            {"reference": reference, "reference_version": ref_version, "slice": key or None},
        )
    value = values[worst_name]
    ok = _absolute_ok(gate, value)
    where = f" (worst slice {worst_name})" if worst_name else ""
    return GateResult(
        gate.label,
        gate.type,
        ok,
        round(value, 6),
        _threshold(gate, None),
        f"{gate.metric}{where} is {_fmt(value)}; needs {_threshold(gate, None)}",
        {"slice": worst_name or None, "slices": values if worst_name else {}},
    )


def _relative_ok(gate: MetricGate, value: float, reference: float) -> bool:
    if gate.better_high:
        allowed = gate.max_drop if gate.max_drop is not None else 0.0
        ok = value >= reference - allowed
    else:
        allowed = gate.max_increase if gate.max_increase is not None else 0.0
        ok = value <= reference + allowed
    return ok and _absolute_ok(gate, value)


def _absolute_ok(gate: MetricGate, value: float) -> bool:
    if math.isnan(value):
        return False
    if gate.min is not None and value < gate.min:
        return False
    return not (gate.max is not None and value > gate.max)


def _threshold(gate: MetricGate, reference: float | None) -> str:
    parts = []
    if gate.relative_to is not None:
        if gate.better_high:
            drop = gate.max_drop or 0.0
            bound = f" = {_fmt(reference - drop)}" if reference is not None else ""
            parts.append(f">= {gate.relative_to} - {drop}{bound}")
        else:
            inc = gate.max_increase or 0.0
            bound = f" = {_fmt(reference + inc)}" if reference is not None else ""
            parts.append(f"<= {gate.relative_to} + {inc}{bound}")
    if gate.min is not None:
        parts.append(f">= {gate.min}")
    if gate.max is not None:
        parts.append(f"<= {gate.max}")
    return " and ".join(parts)


def _slice_gap(metrics: dict[str, float], gate: SliceGapGate) -> GateResult:
    slices = _slices(metrics, gate.metric)
    if len(slices) < 2:
        return GateResult(
            gate.label,
            gate.type,
            False,
            None,
            f"<= {gate.max_gap}",
            f"needs two or more slices of {gate.metric} ('{gate.metric}.<slice>' run metrics); "
            f"found {len(slices)}",
        )
    best, worst = max(slices, key=slices.__getitem__), min(slices, key=slices.__getitem__)
    gap = slices[best] - slices[worst]
    ok = gap <= gate.max_gap
    return GateResult(
        gate.label,
        gate.type,
        ok,
        round(gap, 6),
        f"<= {gate.max_gap}",
        f"{gate.metric} ranges from {_fmt(slices[worst])} ({worst}) to {_fmt(slices[best])} "
        f"({best}): a gap of {_fmt(gap)}; allowed {gate.max_gap}",
        {"slices": slices},
    )


def _data_validation(ws: Workspace, mv: ModelVersion, gate: DataValidationGate) -> GateResult:
    """Every dataset version the run read validates against its dataset's schema: the one
    people keep (``Datasets.set_schema``). A version always fits the schema inferred from
    itself, so a dataset without a kept schema fails the gate, saying how to give it one."""
    from shipyard.data import Datasets

    threshold = "every training dataset version validates against its dataset's schema"
    inputs = [] if mv.run_id is None else ws.datasets.inputs_of(mv.run_id)
    if not inputs:
        return GateResult(
            gate.label,
            gate.type,
            False,
            0,
            threshold,
            f"the run of version {mv.version} recorded no dataset version it read; record its "
            "training data with Datasets.log_input(run_id, name, version)",
        )
    service = Datasets(ws)
    checked: dict[str, Any] = {}
    failed = []
    for dv, context in inputs:
        label = f"{dv.name}/{dv.version}" + (f" ({context})" if context else "")
        if ws.datasets.get_user_schema(dv.name) is None:
            checked[label] = {"ok": False, "errors": None, "schema": None}
            failed.append(
                f"{label}: dataset {dv.name!r} has no schema to validate against (a version "
                "always fits the schema inferred from itself); keep one with `shipyard data "
                f"schema {dv.name} --set schema.yaml` or Datasets.set_schema"
            )
            continue
        schema = service.schema(dv.name)
        with tempfile.TemporaryDirectory(prefix="shipyard-gate-") as tmp:
            folder = service.download(dv.name, dv.version, os.path.join(tmp, "data"))  # type: ignore[arg-type]
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            report = service.validate(
                dv.name, files[0] if len(files) == 1 else folder, schema=schema
            )
        errors = [a for a in report.anomalies if a.severity == "error"]
        checked[label] = {"ok": report.ok, "errors": len(errors), "schema": "kept"}
        if not report.ok:
            failed.append(f"{label}: {'; '.join(a.message for a in errors[:3])}")
    ok = not failed
    return GateResult(
        gate.label,
        gate.type,
        ok,
        f"{len(inputs) - len(failed)}/{len(inputs)} valid",
        threshold,
        "every dataset version the run read validates against its dataset's schema ("
        + ", ".join(checked)
        + ")"
        if ok
        else "validation failed for " + " | ".join(failed),
        {"datasets": checked},
    )


# ---------------------------------------------------------------------------- load check


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(ws: Workspace, *args: str) -> list[str]:
    """``shipyard`` in a subprocess on the same workspace, running ``args``."""
    s = ws.settings
    return [
        sys.executable,
        "-m",
        "shipyard",
        "--home",
        str(s.home),
        "--tracking-uri",
        s.tracking_uri,
        *args,
    ]


def subprocess_env(ws: Workspace) -> dict[str, str]:
    env = dict(os.environ)
    env["SHIPYARD_ARTIFACT_URI"] = ws.settings.artifact_uri
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


WARM_UP_REQUESTS = 3
"""Requests sent before the load check's timed ones (their answers are not judged)."""


def load_check(ws: Workspace, model_uri: str, gate: LoadCheckGate) -> GateResult:
    """Serve the exact package in a real ``shipyard serve`` process and query it."""
    import httpx

    from shipyard.models.sdk import load_model

    model = load_model(model_uri, workspace=ws)
    sample = model.input_example()
    if sample is None:
        return GateResult(
            gate.label,
            gate.type,
            False,
            None,
            f"loads in <= {gate.load_budget_s}s, p99 <= {gate.latency_budget_ms} ms",
            f"{model_uri} has no input example to query it with; log the model with "
            "input_example=...",
        )
    body = _records(sample)
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's output, closed in `finally`
    proc = subprocess.Popen(
        serve_command(
            ws, "serve", model_uri, "--port", str(port), "--no-log", "--poll-interval", "0"
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(ws),
    )
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}"
    threshold = f"loads in <= {gate.load_budget_s}s, p99 <= {gate.latency_budget_ms} ms, 0 errors"
    try:
        load_s = _wait_ready(proc, url, gate.load_budget_s)
        if load_s is None:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
            elapsed = time.perf_counter() - started
            return GateResult(
                gate.label,
                gate.type,
                False,
                {"load_s": round(elapsed, 2)},
                threshold,
                f"the server did not become ready within {gate.load_budget_s}s"
                + (f" ({' / '.join(tail)})" if tail else ""),
            )
        latencies, errors = [], []
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(WARM_UP_REQUESTS):  # connection set-up, first-call caches
                client.post("/invocations", json={"dataframe_records": body})
            for i in range(gate.requests):
                t0 = time.perf_counter()
                r = client.post("/invocations", json={"dataframe_records": body})
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors.append(f"request {i}: HTTP {r.status_code} {r.text[:120]}")
        p99 = percentile(latencies, 99)
        ok = load_s <= gate.load_budget_s and not errors and p99 <= gate.latency_budget_ms
        value = {"load_s": round(load_s, 2), "p99_ms": round(p99, 1), "errors": len(errors)}
        return GateResult(
            gate.label,
            gate.type,
            ok,
            value,
            threshold,
            f"loaded in {load_s:.1f}s (budget {gate.load_budget_s:g}s); {gate.requests} "
            f"requests, {len(errors)} errors (allowed 0), p99 {p99:.1f} ms (budget "
            f"{gate.latency_budget_ms:g} ms)" + (f"; {errors[0]}" if errors else ""),
            value,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _records(sample: Any) -> list[dict[str, Any]]:
    import json

    import pandas as pd

    frame = sample if isinstance(sample, pd.DataFrame) else pd.DataFrame(sample)
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def _wait_ready(proc: subprocess.Popen[bytes], url: str, budget_s: float) -> float | None:
    import httpx

    start = time.perf_counter()
    while time.perf_counter() - start < budget_s:
        if proc.poll() is not None:
            return None
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


# ---------------------------------------------------------------------------- online


def compute_metric(name: str, y_true: np.ndarray, score: np.ndarray) -> float:
    """A metric on labels ``y_true`` and predicted scores (probabilities of the positive class
    for classifiers, values for regressors): ``auc``, ``accuracy``, ``log_loss``, ``brier``,
    ``mae``, ``mse``, ``rmse``. ``InvalidState`` for a metric it can't compute online."""
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    base = name.rsplit(".", 1)[0] if "." in name else name
    base = base.lower()
    if base in ("auc", "roc_auc"):
        positives = y == 1
        n_pos, n_neg = int(positives.sum()), int((~positives).sum())
        if n_pos == 0 or n_neg == 0:
            return math.nan
        from scipy.stats import rankdata

        ranks = rankdata(s)
        return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    if base == "accuracy":
        return float(np.mean((s >= 0.5) == (y == 1)))
    if base in ("log_loss", "logloss"):
        p = np.clip(s, 1e-15, 1 - 1e-15)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    if base == "brier":
        return float(np.mean((s - y) ** 2))
    if base == "mae":
        return float(np.mean(np.abs(s - y)))
    if base == "mse":
        return float(np.mean((s - y) ** 2))
    if base == "rmse":
        return float(np.sqrt(np.mean((s - y) ** 2)))
    raise InvalidState(
        f"metric {name!r} can't be computed on live traffic; online gates support auc, "
        "accuracy, log_loss, brier, mae, mse and rmse (mark the gate `online: false`)."
    )


def metric_se(name: str, y_true: np.ndarray, score: np.ndarray) -> float:
    """The standard error of :func:`compute_metric` on this sample (Hanley-McNeil for AUC; the
    spread of the per-request loss over sqrt(n) otherwise)."""
    import numpy as np

    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    base = (name.rsplit(".", 1)[0] if "." in name else name).lower()
    n = len(y)
    if n < 2:
        return math.inf
    if base in ("auc", "roc_auc"):
        a = compute_metric(name, y, s)
        n1, n0 = int((y == 1).sum()), int((y != 1).sum())
        if math.isnan(a) or n1 == 0 or n0 == 0:
            return math.inf
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
        return float(math.sqrt(max(var, 0.0)))
    if base == "accuracy":
        per = ((s >= 0.5) == (y == 1)).astype(float)
    elif base in ("log_loss", "logloss"):
        p = np.clip(s, 1e-15, 1 - 1e-15)
        per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    elif base in ("brier", "mse", "rmse"):
        per = (s - y) ** 2
    else:
        per = np.abs(s - y)
    return float(np.std(per, ddof=1) / math.sqrt(n))


CONFIDENCE_Z = 1.645
"""Online, a gate fails only when the candidate is worse than allowed by more than this many
standard errors (one-sided 95%): a small window can't roll back a good version on noise."""
BOOTSTRAP_SAMPLES = 300


def paired_margin(
    name: str, y: np.ndarray, candidate: np.ndarray, reference: np.ndarray, *, seed: int = 0
) -> float:
    """The one-sided 95% noise margin of ``metric(candidate) - metric(reference)`` on the same
    requests (a seeded bootstrap over requests: pairing cancels the requests' own difficulty)."""
    import numpy as np

    n = len(y)
    if n < 2:
        return math.inf
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(BOOTSTRAP_SAMPLES):
        i = rng.integers(0, n, n)
        d = compute_metric(name, y[i], candidate[i]) - compute_metric(name, y[i], reference[i])
        if not math.isnan(d):
            diffs.append(d)
    if len(diffs) < BOOTSTRAP_SAMPLES // 2:
        return math.inf
    return float(CONFIDENCE_Z * np.std(diffs, ddof=1))


def online_metric_results(
    gates: Sequence[Gate],
    labels: np.ndarray,
    candidate: np.ndarray,
    reference: np.ndarray,
    *,
    reference_label: str,
) -> list[GateResult]:
    """The environment's online metric gates on one analysis window: ``labels`` of the
    window's labelled requests, with the candidate's and the stable version's scores on the same
    requests. Relative gates compare against the stable version (the current champion); a gate
    fails when the candidate is worse than allowed beyond the noise margin."""
    results = []
    n = len(labels)
    for gate in gates:
        if not isinstance(gate, MetricGate) or not gate.online or gate.slice:
            continue
        try:
            value = compute_metric(gate.metric, labels, candidate)
        except InvalidState:
            continue
        if gate.relative_to is not None:
            ref = compute_metric(gate.metric, labels, reference)
            margin = paired_margin(gate.metric, labels, candidate, reference)
            if gate.better_high:
                worse_by = ref - value - (gate.max_drop or 0.0)
            else:
                worse_by = value - ref - (gate.max_increase or 0.0)
            ok = not (worse_by > margin) and _absolute_ok(gate, value)
            threshold = _threshold(gate, ref)
            message = (
                f"live {gate.metric} {_fmt(value)} vs {_fmt(ref)} for {reference_label} on the "
                f"same {n} labelled requests; needs {threshold} (noise margin {_fmt(margin)})"
            )
            details = {"reference": ref, "labels": n, "margin": margin}
        else:
            margin = CONFIDENCE_Z * metric_se(gate.metric, labels, candidate)
            low = gate.min - margin if gate.min is not None else None
            high = gate.max + margin if gate.max is not None else None
            ok = not math.isnan(value) and not (
                (low is not None and value < low) or (high is not None and value > high)
            )
            threshold = _threshold(gate, None)
            message = (
                f"live {gate.metric} {_fmt(value)} on {n} labelled requests; needs {threshold} "
                f"(noise margin {_fmt(margin)})"
            )
            details = {"labels": n, "margin": margin}
        results.append(
            GateResult(gate.label, gate.type, ok, round(value, 6), threshold, message, details)
        )
    return results


def require_passed(report: GateReport) -> None:
    """Raise :class:`~shipyard.errors.GateFailed` when the report has a failed gate."""
    from shipyard.errors import GateFailed

    if not report.passed:
        raise GateFailed(report.message(), details=report.to_dict())
