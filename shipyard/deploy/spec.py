"""The deployment spec: which model, through which environments, behind which gates, rolled out
how, aborted when, and triggered by what. Read from YAML (or JSON), or built in Python.

.. code-block:: yaml

    name: flights                       # the deployment (and, by default, the endpoint)
    model: flights                      # the registered model
    environments:
      - name: staging
        alias: staging                  # moved when a version enters the environment
        gates:
          - {type: metric, metric: auc, min: 0.6}
          - {type: data_validation}
          - {type: load_check, load_budget_s: 60, latency_budget_ms: 250}
      - name: production
        alias: champion
        gates:
          - {type: metric, metric: auc, relative_to: champion, max_drop: 0.005}
          - {type: metric, metric: auc, slice: "*", min: 0.55}
          - {type: slice_gap, metric: auc, max_gap: 0.2}
          - {type: approvals, count: 1}
        rollout:
          shadow: {requests: 200}         # or a duration: {duration_s: 600}
          canary:
            steps: [10, 50]             # percent of traffic; 100 is the promotion
            window: {requests: 200, duration_s: 0, min_labels: 100}
          abort:
            error_rate: 0.01
            latency_p99_ms: 250
            prediction_drift: 0.3       # KS statistic between the arms' scores
            min_agreement: 0.8          # shadow: same answer as the stable arm
            online_metrics: true        # the metric gates, on labelled live traffic
    serving:
      endpoint: flights                 # prediction-log folder <home>/predictions/<endpoint>
      metrics_urls: ["http://127.0.0.1:5001/metrics"]   # for the error rate
    triggers:
      new_version: true
      drift_alert: {pipeline: "shipyard.deploy.flights:train", params: {}}
      schedule: {cron: "0 3 * * *", pipeline: "shipyard.deploy.flights:train"}

Every value is checked when the spec is read; a mistake is an ``InvalidInput`` that names the
key and says what it takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput

LOWER_IS_BETTER = frozenset({"loss", "log_loss", "logloss", "mae", "mse", "rmse", "error", "brier"})
"""Metric names (or suffixes after ``_``) where smaller is better."""
CHAMPION = "champion"


def _higher_is_better(metric: str) -> bool:
    last = metric.rsplit("_", 1)[-1]
    return metric not in LOWER_IS_BETTER and last not in LOWER_IS_BETTER


# ---------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class MetricGate:
    """A metric threshold: ``min``/``max`` absolute, or relative to the current holder of
    ``relative_to`` (an alias, usually ``champion``) with ``max_drop`` (higher-is-better
    metrics) / ``max_increase`` (lower-is-better). ``slice`` names one slice (the run metric
    ``<metric>.<slice>``) or ``*`` for every slice the version logged. Offline the values come
    from the version's run metrics; online (``online: true``) from labelled live traffic."""

    metric: str
    min: float | None = None
    max: float | None = None
    relative_to: str | None = None
    max_drop: float | None = None
    max_increase: float | None = None
    slice: str | None = None
    online: bool = True
    higher_is_better: bool | None = None
    name: str | None = None
    type: str = "metric"

    def __post_init__(self) -> None:
        if self.min is None and self.max is None and self.relative_to is None:
            raise InvalidInput(
                f"metric gate on {self.metric!r} sets no threshold; give min, max, or "
                "relative_to with max_drop / max_increase."
            )
        if self.relative_to is not None and self.max_drop is None and self.max_increase is None:
            raise InvalidInput(
                f"metric gate on {self.metric!r} is relative to {self.relative_to!r} but sets "
                "neither max_drop nor max_increase (0 means: no worse)."
            )

    @property
    def better_high(self) -> bool:
        if self.higher_is_better is not None:
            return self.higher_is_better
        return _higher_is_better(self.metric)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        what = self.metric + (f"[{self.slice}]" if self.slice else "")
        if self.relative_to is not None:
            allowed = self.max_drop if self.max_drop is not None else self.max_increase
            return f"{what} vs {self.relative_to} (allowed {'drop' if self.better_high else 'increase'} {allowed})"
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min}")
        if self.max is not None:
            parts.append(f"<= {self.max}")
        return f"{what} {' and '.join(parts)}"


@dataclass(frozen=True)
class DataValidationGate:
    """Every dataset version the version's run read validates against its dataset's schema."""

    name: str | None = None
    type: str = "data_validation"

    @property
    def label(self) -> str:
        return self.name or "training data validates"


@dataclass(frozen=True)
class LoadCheckGate:
    """The exact package loads in a real model server process (``shipyard serve``) within
    ``load_budget_s`` and answers ``requests`` sample requests with no errors, p99 latency
    within ``latency_budget_ms``. The p99 is the nearest-rank one: with fewer than 100 requests
    it is the slowest request, so one stall on a busy machine fails the gate; send 100 or more
    for a p99 that tolerates an outlier."""

    load_budget_s: float = 60.0
    latency_budget_ms: float = 500.0
    requests: int = 20
    name: str | None = None
    type: str = "load_check"

    @property
    def label(self) -> str:
        return self.name or "load-and-query check"


@dataclass(frozen=True)
class SliceGapGate:
    """Fairness: the gap between the best and worst slice of ``metric`` is at most ``max_gap``."""

    metric: str
    max_gap: float
    name: str | None = None
    type: str = "slice_gap"

    @property
    def label(self) -> str:
        return self.name or f"{self.metric} slice gap <= {self.max_gap}"


@dataclass(frozen=True)
class ApprovalGate:
    """At least ``count`` distinct approvals of the version in the registry."""

    count: int = 1
    name: str | None = None
    type: str = "approvals"

    @property
    def label(self) -> str:
        return self.name or f"{self.count} approval(s)"


Gate = MetricGate | DataValidationGate | LoadCheckGate | SliceGapGate | ApprovalGate
GATE_TYPES: dict[str, type[Any]] = {
    "metric": MetricGate,
    "data_validation": DataValidationGate,
    "load_check": LoadCheckGate,
    "slice_gap": SliceGapGate,
    "approvals": ApprovalGate,
}


# ---------------------------------------------------------------------------- rollout


@dataclass(frozen=True)
class Window:
    """An analysis window: complete once the candidate arm answered ``requests`` requests,
    ``duration_s`` passed, and (when online metrics are checked) ``min_labels`` of its requests
    got labels. A window of N requests is ``Window(requests=N)``; one of a duration is
    ``Window(requests=1, duration_s=S)`` (in YAML ``{duration_s: S}``)."""

    requests: int = 100
    duration_s: float = 0.0
    min_labels: int = 0


@dataclass(frozen=True)
class AbortConditions:
    """What rolls a candidate back automatically during shadow and canary (``None``: off)."""

    error_rate: float | None = 0.01
    latency_p99_ms: float | None = None
    prediction_drift: float | None = None
    min_agreement: float | None = None
    online_metrics: bool = True


@dataclass(frozen=True)
class Rollout:
    """Shadow for a window (``shadow=None``: no shadow), then canary steps (percent of traffic,
    each with the analysis ``window``), then promotion."""

    shadow: Window | None = None
    steps: tuple[float, ...] = (10.0, 50.0)
    window: Window = field(default_factory=Window)
    abort: AbortConditions = field(default_factory=AbortConditions)


@dataclass(frozen=True)
class Environment:
    """A stage a version enters by passing its gates; its alias moves then (for the environment
    with a rollout: once the rollout promotes it)."""

    name: str
    alias: str
    gates: tuple[Gate, ...] = ()
    rollout: Rollout | None = None


@dataclass(frozen=True)
class Triggers:
    """What starts a rollout: a new registered version of the model; a drift alert (runs
    ``drift_pipeline``, whose new version then rolls out); a cron ``schedule`` running
    ``schedule_pipeline``."""

    new_version: bool = True
    drift_pipeline: str | None = None
    drift_params: dict[str, Any] = field(default_factory=dict)
    drift_filter: str | None = None
    schedule: str | None = None
    schedule_pipeline: str | None = None
    schedule_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Serving:
    """Where the controller reads live signals: the endpoint's prediction log and (for error
    rates) the model servers' Prometheus ``/metrics`` URLs."""

    endpoint: str | None = None
    metrics_urls: tuple[str, ...] = ()
    poll_interval_s: float = 1.0


@dataclass(frozen=True)
class DeploymentPolicy:
    """A whole deployment spec (see the module docstring)."""

    name: str
    model: str
    environments: tuple[Environment, ...]
    serving: Serving = field(default_factory=Serving)
    triggers: Triggers = field(default_factory=Triggers)

    def __post_init__(self) -> None:
        if not self.environments:
            raise InvalidInput(
                f"deployment {self.name!r} lists no environments; add one under `environments:` "
                "(name, alias, gates, rollout)."
            )
        names = [e.name for e in self.environments]
        if len(set(names)) != len(names):
            raise InvalidInput(f"deployment {self.name!r} names an environment twice: {names}.")
        rollouts = [e.name for e in self.environments if e.rollout is not None]
        if len(rollouts) > 1:
            raise InvalidInput(
                f"deployment {self.name!r} has rollouts in {rollouts}; one endpoint serves one "
                "environment, so give a rollout to one of them (the served one)."
            )

    @property
    def endpoint(self) -> str:
        return self.serving.endpoint or self.name

    @property
    def served(self) -> Environment:
        """The environment the endpoint serves: the one with a rollout, else the last."""
        for env in self.environments:
            if env.rollout is not None:
                return env
        return self.environments[-1]

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        raise InvalidInput(
            f"deployment {self.name!r} has no environment {name!r}; its environments are "
            f"{', '.join(e.name for e in self.environments)}."
        )

    # ---------------------------------------------------------------- (de)serializing

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items() if v is not None}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        out = clean(asdict(self))
        for env, spec_env in zip(out["environments"], self.environments, strict=True):
            rollout = env.get("rollout")
            if rollout is not None:
                rollout["canary"] = {"steps": rollout.pop("steps"), "window": rollout.pop("window")}
                # an abort condition set to None is off, which is not its default (error_rate
                # defaults to 0.01): keep it as null so that reading the dict back keeps it off
                assert spec_env.rollout is not None
                rollout["abort"] = asdict(spec_env.rollout.abort)
        t = self.triggers
        triggers: dict[str, Any] = {"new_version": t.new_version}
        if t.drift_pipeline:
            triggers["drift_alert"] = clean(
                {"pipeline": t.drift_pipeline, "params": t.drift_params, "filter": t.drift_filter}
            )
        if t.schedule:
            triggers["schedule"] = clean(
                {"cron": t.schedule, "pipeline": t.schedule_pipeline, "params": t.schedule_params}
            )
        out["triggers"] = triggers
        return out

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "the deployment spec") -> DeploymentPolicy:
        r = _Reader(source)
        raw = r.mapping(raw, "", {"name", "model", "environments", "serving", "triggers"})
        model = r.string(raw.get("model"), "model")
        name = r.string(raw.get("name", model), "name")
        envs = tuple(
            _environment(r, e, f"environments[{i}]")
            for i, e in enumerate(r.list(raw.get("environments"), "environments"))
        )
        serving_raw = r.mapping(
            raw.get("serving", {}), "serving", {"endpoint", "metrics_urls", "poll_interval_s"}
        )
        serving = Serving(
            endpoint=r.opt_string(serving_raw.get("endpoint"), "serving.endpoint"),
            metrics_urls=tuple(
                r.string(u, "serving.metrics_urls[]")
                for u in r.list(serving_raw.get("metrics_urls", []), "serving.metrics_urls")
            ),
            poll_interval_s=r.number(
                serving_raw.get("poll_interval_s", 1.0), "serving.poll_interval_s", low=0.05
            ),
        )
        t = r.mapping(
            raw.get("triggers", {}), "triggers", {"new_version", "drift_alert", "schedule"}
        )
        drift = r.mapping(t.get("drift_alert", {}), "triggers.drift_alert", _PIPELINE_KEYS)
        sched = r.mapping(t.get("schedule", {}), "triggers.schedule", {*_PIPELINE_KEYS, "cron"})
        if sched and not sched.get("cron"):
            raise InvalidInput(f"{source}: triggers.schedule needs `cron` (e.g. '0 3 * * *').")
        triggers = Triggers(
            new_version=r.boolean(t.get("new_version", True), "triggers.new_version"),
            drift_pipeline=r.opt_string(drift.get("pipeline"), "triggers.drift_alert.pipeline"),
            drift_params=dict(r.mapping(drift.get("params", {}), "triggers.drift_alert.params")),
            drift_filter=r.opt_string(drift.get("filter"), "triggers.drift_alert.filter"),
            schedule=r.opt_string(sched.get("cron"), "triggers.schedule.cron"),
            schedule_pipeline=r.opt_string(sched.get("pipeline"), "triggers.schedule.pipeline"),
            schedule_params=dict(r.mapping(sched.get("params", {}), "triggers.schedule.params")),
        )
        if drift and triggers.drift_pipeline is None:
            raise InvalidInput(f"{source}: triggers.drift_alert needs `pipeline` (module:name).")
        if sched and triggers.schedule_pipeline is None:
            raise InvalidInput(f"{source}: triggers.schedule needs `pipeline` (module:name).")
        return cls(name, model, envs, serving, triggers)

    @classmethod
    def from_file(cls, path: str | Path) -> DeploymentPolicy:
        """Read a spec from a ``.yaml``/``.yml`` or ``.json`` file."""
        from shipyard.validation import spec_file

        file = Path(path)
        raw = spec_file(file, "deployment spec")
        return cls.from_dict(raw, source=str(file))


_PIPELINE_KEYS = {"pipeline", "params", "filter"}


def _environment(r: _Reader, raw: Any, where: str) -> Environment:
    raw = r.mapping(raw, where, {"name", "alias", "gates", "rollout"})
    name = r.string(raw.get("name"), f"{where}.name")
    alias = r.string(raw.get("alias", name), f"{where}.alias")
    gates = tuple(
        _gate(r, g, f"{where}.gates[{i}]")
        for i, g in enumerate(r.list(raw.get("gates", []), f"{where}.gates"))
    )
    rollout = None
    if raw.get("rollout") is not None:
        ro = r.mapping(raw["rollout"], f"{where}.rollout", {"shadow", "canary", "abort"})
        shadow = _window(r, ro["shadow"], f"{where}.rollout.shadow") if ro.get("shadow") else None
        canary = r.mapping(ro.get("canary", {}), f"{where}.rollout.canary", {"steps", "window"})
        steps = tuple(
            r.number(s, f"{where}.rollout.canary.steps[]", low=0.01, high=99.99)
            for s in r.list(canary.get("steps", [10, 50]), f"{where}.rollout.canary.steps")
        )
        if list(steps) != sorted(steps):
            raise InvalidInput(
                f"{r.source}: {where}.rollout.canary.steps must increase (e.g. [10, 50]); got "
                f"{list(steps)}."
            )
        ab = r.mapping(
            ro.get("abort", {}),
            f"{where}.rollout.abort",
            {"error_rate", "latency_p99_ms", "prediction_drift", "min_agreement", "online_metrics"},
        )

        def opt(key: str, default: float | None, high: float | None = None) -> float | None:
            value = ab.get(key, default)
            if value is None:
                return None
            return r.number(value, f"{where}.rollout.abort.{key}", low=0, high=high)

        abort = AbortConditions(
            error_rate=opt("error_rate", 0.01, 1),
            latency_p99_ms=opt("latency_p99_ms", None),
            prediction_drift=opt("prediction_drift", None, 1),
            min_agreement=opt("min_agreement", None, 1),
            online_metrics=r.boolean(
                ab.get("online_metrics", True), f"{where}.rollout.abort.online_metrics"
            ),
        )
        rollout = Rollout(
            shadow=shadow,
            steps=steps,
            window=_window(r, canary.get("window", {}), f"{where}.rollout.canary.window"),
            abort=abort,
        )
    return Environment(name, alias, gates, rollout)


def _window(r: _Reader, raw: Any, where: str) -> Window:
    raw = r.mapping(raw, where, {"requests", "duration_s", "min_labels"})
    # `{duration_s: 600}` alone is a window of time (at least one request), `{requests: N}`
    # alone one of N requests; with both, the window needs both.
    default_requests = 1 if "duration_s" in raw and "requests" not in raw else 100
    return Window(
        requests=int(r.number(raw.get("requests", default_requests), f"{where}.requests", low=1)),
        duration_s=r.number(raw.get("duration_s", 0), f"{where}.duration_s", low=0),
        min_labels=int(r.number(raw.get("min_labels", 0), f"{where}.min_labels", low=0)),
    )


def _gate(r: _Reader, raw: Any, where: str) -> Gate:
    raw = r.mapping(raw, where)
    kind = raw.get("type")
    cls = GATE_TYPES.get(str(kind))
    if cls is None:
        raise InvalidInput(
            f"{r.source}: {where} has type {kind!r}; use one of {', '.join(GATE_TYPES)}."
        )
    allowed = set(cls.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidInput(
            f"{r.source}: {where} ({kind} gate) has unknown keys {sorted(unknown)}; it takes "
            f"{', '.join(sorted(allowed - {'type'}))}."
        )
    numbers = {"min", "max", "max_drop", "max_increase", "max_gap", "load_budget_s"}
    numbers |= {"latency_budget_ms"}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in numbers and value is not None:
            values[key] = r.number(value, f"{where}.{key}")
        elif key in ("count", "requests"):
            values[key] = int(r.number(value, f"{where}.{key}", low=0 if key == "count" else 1))
        elif key in ("online", "higher_is_better"):
            values[key] = r.boolean(value, f"{where}.{key}")
        elif key != "type":
            values[key] = r.opt_string(value, f"{where}.{key}")
    if cls in (MetricGate, SliceGapGate) and not values.get("metric"):
        raise InvalidInput(f"{r.source}: {where} ({kind} gate) needs `metric`.")
    if cls is SliceGapGate and "max_gap" not in values:
        raise InvalidInput(f"{r.source}: {where} (slice_gap gate) needs `max_gap`.")
    try:
        gate: Gate = cls(**values)
    except InvalidInput as exc:
        raise InvalidInput(f"{r.source}: {where}: {exc.message}") from None
    return gate


class _Reader:
    """Checks one spec's values, naming the key and the source in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def mapping(self, value: Any, where: str, keys: set[str] | None = None) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise InvalidInput(f"{self.source}: {where or 'the spec'} must be a mapping.")
        if keys is not None:
            unknown = set(value) - keys
            if unknown:
                raise InvalidInput(
                    f"{self.source}: {where or 'the spec'} has unknown keys {sorted(unknown)}; "
                    f"use {', '.join(sorted(keys))}."
                )
        return value

    def list(self, value: Any, where: str) -> Sequence[Any]:
        if not isinstance(value, list) or (where == "environments" and not value):
            raise InvalidInput(f"{self.source}: `{where}` must be a non-empty list.")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{self.source}: `{where}` must be a non-empty string.")
        return value.strip()

    def opt_string(self, value: Any, where: str) -> str | None:
        return None if value is None else self.string(value, where)

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{self.source}: `{where}` must be true or false.")
        return value

    def number(
        self, value: Any, where: str, *, low: float | None = None, high: float | None = None
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{self.source}: `{where}` must be a number; got {value!r}.")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
            raise InvalidInput(f"{self.source}: `{where}` is {value}; use a value in {bounds}.")
        return float(value)
