"""The deployment controller: a persisted state machine per deployment.

States (:class:`State`)::

    idle/promoted/rolled_back/blocked --new version--> gating --pass--> shadow --window ok-->
    canary step 0 --window ok--> canary step 1 ... --last window ok--> promoted
          gating --a gate fails--> blocked      shadow/canary --abort condition--> rolled_back
          any state --pause / hold alert--> paused --resume--> the state it was in

Every transition is one compare-and-set write of the deployment's row (its state, step, versions
and the traffic model servers poll), followed by one decision event with its evidence (gate
values and thresholds, analysis windows); registry aliases move when a version enters an
environment, with the decision in the alias move's reason. Nothing is held in memory between
ticks, so a controller killed mid-rollout resumes at the same step, in the same analysis window,
when it starts again.

:class:`Deployments` is the service (apply, status, promote, rollback, pause, resume, one
:meth:`~Deployments.tick`); :class:`Controller` ticks every deployment in a loop (``shipyard
controller``, or a background thread of ``shipyard server``).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shipyard.deploy.analysis import (
    ABORT,
    COMPLETE,
    WAIT,
    Baseline,
    baseline_arm,
    measure,
    scrape,
    verdict,
)
from shipyard.deploy.gates import GateReport, check_gates
from shipyard.deploy.spec import DeploymentPolicy, Environment
from shipyard.errors import (
    ApprovalRequired,
    GateFailed,
    InvalidInput,
    InvalidState,
    NotFound,
    ShipyardError,
)
from shipyard.store.deployments import DeploymentEvent, DeploymentRecord

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

log = logging.getLogger("shipyard.deploy")

CONTROLLER_USER = "shipyard-controller"


class State(StrEnum):
    IDLE = "idle"
    GATING = "gating"
    SHADOW = "shadow"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    BLOCKED = "blocked"
    PAUSED = "paused"


RESTING = frozenset({State.IDLE, State.PROMOTED, State.ROLLED_BACK, State.BLOCKED})
IN_ROLLOUT = frozenset({State.GATING, State.SHADOW, State.CANARY})


def arm_name(version: int) -> str:
    """The serving arm of a version: ``v3`` (the same across shadow, canary and stable, so a
    model server keeps the loaded version when its role changes)."""
    return f"v{version}"


def traffic_for(
    model: str,
    stable: int | None,
    candidate: int | None = None,
    *,
    weight: float = 0.0,
    shadow: bool = False,
) -> dict[str, Any]:
    """The arms a model server should serve: the stable version, and the candidate as a shadow
    or with ``weight`` percent of the traffic. During a canary a shadow copy of the stable
    version (``v1-baseline``) also scores every request, so the analysis compares both versions
    on the same requests."""
    arms: list[dict[str, Any]] = []
    shadows: list[dict[str, Any]] = []
    canary = candidate is not None and candidate != stable and not shadow
    if stable is not None:
        arms.append(
            {
                "name": arm_name(stable),
                "model": f"models:/{model}/{stable}",
                "weight": 100.0 - (weight if canary else 0.0),
            }
        )
    if candidate is not None and candidate != stable:
        entry = {"name": arm_name(candidate), "model": f"models:/{model}/{candidate}"}
        if shadow:
            shadows.append(entry)
        else:
            arms.append({**entry, "weight": weight})
            if stable is not None:
                shadows.append(
                    {"name": baseline_arm(arm_name(stable)), "model": f"models:/{model}/{stable}"}
                )
    return {"arms": arms, "shadow": shadows}


class Deployments:
    """Continuous deployment over one workspace (see the module docstring)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[DeploymentEvent], None] | None = None,
    ) -> None:
        self.ws = workspace
        self.clock = clock
        self.on_event = on_event

    @property
    def store(self) -> Any:
        return self.ws.deployments

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---------------------------------------------------------------- reading

    def get(self, name: str) -> DeploymentRecord:
        return self.store.get(name)

    def list(self) -> list[DeploymentRecord]:
        return list(self.store.list())

    def policy(self, record: DeploymentRecord | str) -> DeploymentPolicy:
        rec = self.get(record) if isinstance(record, str) else record
        return DeploymentPolicy.from_dict(rec.policy, source=f"deployment {rec.name!r}")

    def events(self, name: str, *, after: int | None = None) -> builtins.list[DeploymentEvent]:
        self.get(name)
        return list(self.store.events(name, after=after))

    def status(self, name: str) -> dict[str, Any]:
        """The deployment's state, traffic, versions and decision timeline."""
        rec = self.get(name)
        return {
            **rec.summary(),
            "last_signals": rec.context.get("last_signals"),
            "timeline": [_event_dict(e) for e in self.store.events(name)],
        }

    def traffic(self, name: str) -> tuple[int, dict[str, Any]]:
        """``(traffic_revision, traffic)``: what model servers of the deployment serve."""
        rec = self.get(name)
        return rec.traffic_revision, rec.traffic

    # ---------------------------------------------------------------- apply

    def apply(self, policy: DeploymentPolicy, *, user: str | None = None) -> DeploymentRecord:
        """Create the deployment, or update its policy (the rollout in flight keeps its step).
        Creates the pipeline schedules its triggers name."""
        from shipyard.registry import Registry

        Registry(self.ws).get_model(policy.model)  # NotFound for an unknown model
        self._check_triggers(policy)  # before anything is written: all of the spec or nothing
        user = user or _user()
        existing = self.store.find(policy.name)
        if existing is None:
            from shipyard.store.pipelines import TriggerEvent

            record = self.store.create(
                DeploymentRecord(
                    name=policy.name,
                    model=policy.model,
                    policy=policy.to_dict(),
                    state=State.IDLE,
                    environment=policy.served.name,
                    context={
                        "alert_watermark": self.ws.pipelines.latest_event_id(TriggerEvent.ALERT),
                    },
                    traffic={"arms": [], "shadow": []},
                )
            )
            action, message = (
                "applied",
                f"created deployment {policy.name!r} of model {policy.model!r}",
            )
        else:
            if existing.model != policy.model:
                raise InvalidInput(
                    f"deployment {policy.name!r} deploys model {existing.model!r}; a spec can't "
                    f"change it to {policy.model!r}. Apply it under another name."
                )
            record = self._write(existing, policy=policy.to_dict(), environment=policy.served.name)
            action, message = "applied", f"updated the policy of deployment {policy.name!r}"
        self._triggers(policy)
        self._event(record, action, message, evidence={"policy": policy.to_dict()}, user=user)
        return record

    def _check_triggers(self, policy: DeploymentPolicy) -> None:
        """``InvalidInput`` (or the loader's error) for a trigger whose pipeline cannot be
        loaded or whose cron expression does not parse."""
        from shipyard.pipelines.dsl import load_pipeline
        from shipyard.pipelines.scheduler import parse_cron

        for spec in _wanted_schedules(policy).values():
            load_pipeline(spec["reference"])
            if "cron" in spec:
                parse_cron(spec["cron"])

    def _triggers(self, policy: DeploymentPolicy) -> None:
        from shipyard.pipelines.scheduler import add_schedule

        wanted = _wanted_schedules(policy)
        store = self.ws.pipelines
        for existing in store.list_schedules():
            if existing.name.startswith(f"deploy-{policy.name}-") and existing.name not in wanted:
                store.delete_schedule(existing.name)
        for name, spec in wanted.items():
            with contextlib.suppress(NotFound):
                current = store.get_schedule(name)
                if (current.reference, current.params, current.event_filter) == (
                    spec["reference"],
                    spec["params"],
                    spec.get("event_filter"),
                ):
                    continue
                store.delete_schedule(name)
            add_schedule(self.ws, name, spec.pop("reference"), **spec)

    def delete(self, name: str) -> None:
        rec = self.get(name)
        for s in self.ws.pipelines.list_schedules():
            if s.name.startswith(f"deploy-{name}-"):
                self.ws.pipelines.delete_schedule(s.name)
        self.store.delete(name)
        self.store.record_event(
            name, "deleted", f"deleted deployment {name!r}", from_state=rec.state, user_id=_user()
        )

    # ---------------------------------------------------------------- gates

    def check_gates(
        self, model_uri: str, environment: str, *, deployment: str | None = None
    ) -> GateReport:
        """Measure the gates of ``environment`` (of ``deployment``, or of the only deployment of
        the URI's model) for the version ``model_uri`` names."""
        from shipyard.registry import Registry

        mv = Registry(self.ws).resolve(model_uri)
        rec = self._deployment_of(mv.name, deployment)
        env = self.policy(rec).environment(environment)
        return check_gates(self.ws, mv.name, mv.version, env)

    def _deployment_of(self, model: str, name: str | None) -> DeploymentRecord:
        if name is not None:
            return self.get(name)
        found = [r for r in self.list() if r.model == model]
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFound(
                f"No deployment deploys model {model!r}; create one with `shipyard deploy apply "
                "SPEC.yaml`, whose environments hold the gates."
            )
        raise InvalidInput(
            f"Model {model!r} has {len(found)} deployments ({', '.join(r.name for r in found)}); "
            "name one with --deployment."
        )

    # ---------------------------------------------------------------- people

    def promote(
        self,
        name: str,
        version: int | None = None,
        *,
        user: str | None = None,
        reason: str | None = None,
    ) -> DeploymentRecord:
        """Promote now: the candidate in rollout skips its remaining analysis; or ``version``
        (which must pass the served environment's gates: ``GateFailed`` if not) replaces the
        stable version directly."""
        rec = self.get(name)
        user = user or _user()
        policy = self.policy(rec)
        if version is None:
            if rec.state not in (State.SHADOW, State.CANARY) and not (
                rec.state == State.PAUSED and rec.paused_state in (State.SHADOW, State.CANARY)
            ):
                raise InvalidState(
                    f"deployment {name!r} is {rec.state} with no candidate in rollout; promote "
                    f"a version with `shipyard deploy promote {name} --version N`."
                )
            assert rec.candidate_version is not None
            return self._promote(
                rec,
                policy,
                rec.candidate_version,
                user=user,
                why=reason or "promoted by hand, skipping the remaining analysis",
            )
        if version == rec.stable_version:
            raise InvalidState(
                f"version {version} is already the stable version of deployment {name!r}; to "
                f"end a rollout in flight, use `shipyard deploy rollback {name}`."
            )
        for env in policy.environments:
            report = check_gates(self.ws, rec.model, version, env)
            self._event(
                rec,
                "gates_checked",
                report.message(),
                version=version,
                evidence=report.to_dict(),
                user=user,
            )
            if not report.passed:
                raise GateFailed(report.message(), details=report.to_dict())
            if env is not policy.served:
                self._move_alias(rec, env, version, user, f"passed the gates of {env.name}")
        return self._promote(rec, policy, version, user=user, why=reason or "promoted by hand")

    def rollback(
        self, name: str, *, user: str | None = None, reason: str | None = None
    ) -> DeploymentRecord:
        """Abort the rollout in flight (traffic back to the stable version), or, with none, go
        back to the version that was stable before the last promotion."""
        rec = self.get(name)
        user = user or _user()
        why = reason or "rolled back by hand"
        state = rec.paused_state if rec.state == State.PAUSED else rec.state
        if state in IN_ROLLOUT:
            return self._abort(rec, why, {"reason": why}, user=user)
        previous = rec.context.get("previous_stable")
        if previous is None:
            raise InvalidState(
                f"deployment {name!r} has no rollout in flight and no earlier stable version to "
                "go back to."
            )
        policy = self.policy(rec)
        self._move_alias(rec, policy.served, previous, user, why, force=True)
        new = self._write_after_alias(
            rec,
            policy.served,
            state=State.ROLLED_BACK,
            stable_version=previous,
            candidate_version=rec.stable_version,
            step=0,
            paused_state=None,
            traffic=traffic_for(rec.model, previous),
            context={
                **rec.context,
                "previous_stable": None,
                "last_considered": max(
                    rec.context.get("last_considered") or 0, rec.stable_version or 0
                ),
            },
            event=self._ev(
                "rolled_back",
                f"back to version {previous}: {why}",
                from_state=rec.state,
                version=rec.stable_version,
                user=user,
                evidence={"reason": why},
            ),
        )
        return new

    def pause(
        self, name: str, *, user: str | None = None, reason: str | None = None
    ) -> DeploymentRecord:
        rec = self.get(name)
        if rec.state == State.PAUSED:
            return rec
        return self._write(
            rec,
            state=State.PAUSED,
            paused_state=rec.state,
            event=self._ev(
                "paused",
                reason or "paused by hand",
                from_state=rec.state,
                version=rec.candidate_version,
                user=user or _user(),
            ),
        )

    def resume(self, name: str, *, user: str | None = None) -> DeploymentRecord:
        rec = self.get(name)
        if rec.state != State.PAUSED:
            raise InvalidState(f"deployment {name!r} is {rec.state}, not paused.")
        back = State(rec.paused_state or State.IDLE)
        changes: dict[str, Any] = {"state": back, "paused_state": None}
        if back in (State.SHADOW, State.CANARY):  # a fresh analysis window
            changes["step_started"] = self._now_ms()
            changes["context"] = {**rec.context, "baseline": _baseline_json(self._scrape(rec))}
        return self._write(
            rec,
            **changes,
            event=self._ev(
                "resumed",
                f"resumed in {back}" + (f" step {rec.step + 1}" if back == State.CANARY else ""),
                from_state=State.PAUSED,
                version=rec.candidate_version,
                user=user or _user(),
            ),
        )

    # ---------------------------------------------------------------- the state machine

    def tick(self, name: str) -> DeploymentRecord:
        """One step of the controller for deployment ``name``: react to alerts, start a rollout
        for a new version, or judge the analysis window in flight."""
        rec = self.get(name)
        policy = self.policy(rec)
        rec = self._alerts(rec, policy)
        if rec.state == State.PAUSED:
            return rec
        if rec.state in RESTING or rec.state == State.GATING:
            candidate = (
                rec.candidate_version
                if rec.state == State.GATING
                else self._new_version(rec, policy)
            )
            if candidate is None:
                return rec
            return self._gate(rec, policy, candidate)
        return self._analyse(rec, policy)

    def _new_version(self, rec: DeploymentRecord, policy: DeploymentPolicy) -> int | None:
        if not policy.triggers.new_version:
            return None
        from shipyard.registry import Registry

        try:
            latest = Registry(self.ws).latest_version(rec.model).version
        except NotFound:
            return None
        seen = max(rec.context.get("last_considered") or 0, rec.stable_version or 0)
        return latest if latest > seen else None

    def _gate(
        self, rec: DeploymentRecord, policy: DeploymentPolicy, version: int
    ) -> DeploymentRecord:
        if rec.state != State.GATING:
            before = rec.state
            rec = self._write(
                rec,
                state=State.GATING,
                candidate_version=version,
                step=0,
                context={**rec.context, "last_considered": version},
                event=self._ev(
                    "gating",
                    f"version {version} registered: checking the gates",
                    from_state=before,
                    version=version,
                ),
            )
        for env in policy.environments:
            report = check_gates(self.ws, rec.model, version, env)
            if not report.passed:
                return self._write(
                    rec,
                    state=State.BLOCKED,
                    event=self._ev(
                        "gates_failed",
                        report.message(),
                        from_state=State.GATING,
                        version=version,
                        evidence=report.to_dict(),
                    ),
                )
            vs = ""
            champion = next((r for r in report.results if r.details.get("reference_version")), None)
            if champion is not None:
                vs = f" (vs champion v{champion.details['reference_version']})"
            self._event(
                rec,
                "gates_passed",
                report.message() + vs,
                from_state=State.GATING,
                to_state=State.GATING,
                version=version,
                evidence=report.to_dict(),
            )
            if env is not policy.served:
                try:
                    self._move_alias(
                        rec, env, version, CONTROLLER_USER, f"passed the gates of {env.name}"
                    )
                except ApprovalRequired as exc:
                    return self._write(
                        rec,
                        state=State.BLOCKED,
                        event=self._ev("gates_failed", exc.message, version=version),
                    )
        served = policy.served
        if rec.stable_version is None or served.rollout is None:
            try:
                return self._promote(
                    rec,
                    policy,
                    version,
                    user=CONTROLLER_USER,
                    why="first version of the deployment"
                    if rec.stable_version is None
                    else f"passed the gates of {served.name} (no rollout configured)",
                )
            except ApprovalRequired as exc:  # as for the other environments' aliases above
                return self._write(
                    rec,
                    state=State.BLOCKED,
                    event=self._ev(
                        "gates_failed", exc.message, from_state=State.GATING, version=version
                    ),
                )
        rollout = served.rollout
        if rollout.shadow is not None:
            return self._enter(
                rec,
                State.SHADOW,
                0,
                traffic_for(rec.model, rec.stable_version, version, shadow=True),
                f"shadow: version {version} gets a copy of every request (stable v{rec.stable_version} answers)",
            )
        return self._enter(
            rec,
            State.CANARY,
            0,
            traffic_for(rec.model, rec.stable_version, version, weight=rollout.steps[0]),
            f"canary step 1/{len(rollout.steps)}: {rollout.steps[0]:g}% of traffic to version {version}",
        )

    def _enter(
        self, rec: DeploymentRecord, state: State, step: int, traffic: dict[str, Any], message: str
    ) -> DeploymentRecord:
        baseline = self._scrape(rec)
        new = self._write(
            rec,
            state=state,
            step=step,
            step_started=self._now_ms(),
            traffic=traffic,
            context={**rec.context, "baseline": _baseline_json(baseline), "last_signals": None},
            event=self._ev(
                "shadow_started" if state == State.SHADOW else "canary_step",
                message,
                from_state=rec.state,
                version=rec.candidate_version,
                evidence={"traffic": traffic, "step": step},
            ),
        )
        return new

    def _scrape(self, rec: DeploymentRecord) -> Baseline | None:
        return scrape(self.policy(rec).serving.metrics_urls)

    def _analyse(self, rec: DeploymentRecord, policy: DeploymentPolicy) -> DeploymentRecord:
        rollout = policy.served.rollout
        assert rec.candidate_version is not None
        assert rec.step_started is not None
        if rollout is None:  # the policy was re-applied without a rollout mid-way
            return self._promote(
                rec,
                policy,
                rec.candidate_version,
                user=CONTROLLER_USER,
                why=f"the policy no longer configures a rollout for {policy.served.name} "
                "(the candidate passed its gates)",
            )
        phase = "shadow" if rec.state == State.SHADOW else "canary"
        window = (
            rollout.shadow if phase == "shadow" and rollout.shadow is not None else rollout.window
        )
        folder = self.ws.settings.home / "predictions" / policy.endpoint
        signals = measure(
            folder,
            phase=phase,
            candidate_arm=arm_name(rec.candidate_version),
            stable_arm=arm_name(rec.stable_version) if rec.stable_version is not None else "",
            since_ms=rec.step_started,
            gates=policy.served.gates,
            abort=rollout.abort,
            metrics_now=self._scrape(rec),
            baseline=_baseline(rec.context.get("baseline")),
            judge_online=window.min_labels > 0,
        )
        elapsed = (self._now_ms() - rec.step_started) / 1000
        outcome, notes = verdict(signals, rollout.abort, window, elapsed)
        evidence = {
            "phase": phase,
            "step": rec.step,
            "window": {
                "requests": window.requests,
                "duration_s": window.duration_s,
                "min_labels": window.min_labels,
                "elapsed_s": round(elapsed, 1),
            },
            "signals": signals.to_dict(),
            "abort": {k: v for k, v in vars(rollout.abort).items()},
        }
        if outcome == ABORT:
            return self._abort(rec, "; ".join(notes), evidence, user=CONTROLLER_USER)
        next_step = 0 if phase == "shadow" else rec.step + 1
        if outcome == COMPLETE and next_step >= len(rollout.steps):
            # The served alias may need registry approvals: wait in this step for them (the
            # window stays passed) instead of failing, and re-recording it, on every tick.
            try:
                self._move_alias(
                    rec,
                    policy.served,
                    rec.candidate_version,
                    CONTROLLER_USER,
                    "every canary step passed its analysis window",
                )
            except ApprovalRequired as exc:
                outcome, notes = WAIT, [exc.message]
        if outcome != COMPLETE:
            summary = {"outcome": outcome, "missing": notes, **evidence}
            if rec.context.get("last_signals") != summary:
                return self._write(rec, context={**rec.context, "last_signals": summary})
            return rec
        where = (
            "shadow" if phase == "shadow" else f"canary step {rec.step + 1}/{len(rollout.steps)}"
        )
        self._event(
            rec,
            "analysis_passed",
            f"{where}: window passed ({_summary(signals)})",
            from_state=rec.state,
            version=rec.candidate_version,
            evidence=evidence,
        )
        if next_step >= len(rollout.steps):
            return self._promote(
                rec,
                policy,
                rec.candidate_version,
                user=CONTROLLER_USER,
                why="every canary step passed its analysis window",
                evidence=evidence,
            )
        weight = rollout.steps[next_step]
        return self._enter(
            rec,
            State.CANARY,
            next_step,
            traffic_for(rec.model, rec.stable_version, rec.candidate_version, weight=weight),
            f"canary step {next_step + 1}/{len(rollout.steps)}: {weight:g}% of traffic to version {rec.candidate_version}",
        )

    def _abort(
        self, rec: DeploymentRecord, why: str, evidence: dict[str, Any], *, user: str
    ) -> DeploymentRecord:
        state = rec.paused_state if rec.state == State.PAUSED else rec.state
        where = f"canary step {rec.step + 1}" if state == State.CANARY else str(state)
        served = (
            f"all traffic to version {rec.stable_version}"
            if rec.stable_version is not None
            else "no version was deployed yet, so none serves traffic"
        )
        return self._write(
            rec,
            state=State.ROLLED_BACK,
            step=0,
            paused_state=None,
            traffic=traffic_for(rec.model, rec.stable_version),
            context={**rec.context, "last_signals": None},
            event=self._ev(
                "rolled_back",
                f"version {rec.candidate_version} rolled back during {where}: {why}; {served}",
                from_state=state,
                version=rec.candidate_version,
                evidence=evidence,
                user=user,
            ),
        )

    def _promote(
        self,
        rec: DeploymentRecord,
        policy: DeploymentPolicy,
        version: int,
        *,
        user: str,
        why: str,
        evidence: dict[str, Any] | None = None,
    ) -> DeploymentRecord:
        first = rec.stable_version is None
        self._move_alias(rec, policy.served, version, user, why, force=True)
        action = "deployed" if first else "promoted"
        message = (
            f"version {version} deployed to {policy.served.name} ({policy.served.alias}), "
            f"100% of traffic: {why}"
            if first
            else f"version {version} promoted to {policy.served.alias} (was version "
            f"{rec.stable_version}), 100% of traffic: {why}"
        )
        return self._write_after_alias(
            rec,
            policy.served,
            state=State.PROMOTED,
            stable_version=version,
            candidate_version=None if first else version,
            step=0,
            paused_state=None,
            traffic=traffic_for(rec.model, version),
            context={
                **rec.context,
                "previous_stable": rec.stable_version,
                "last_signals": None,
                "last_considered": max(version, rec.context.get("last_considered") or 0),
            },
            event=self._ev(
                action,
                message,
                from_state=rec.state,
                version=version,
                user=user,
                evidence=evidence or {},
            ),
        )

    def _write_after_alias(
        self, rec: DeploymentRecord, env: Environment, **kwargs: Any
    ) -> DeploymentRecord:
        """:meth:`_write` after the served alias was moved: if the record changed meanwhile (a
        pause or a rollback won the race), the alias goes back to the stable version the record
        now holds, so the registry never says what the deployment does not serve."""
        try:
            return self._write(rec, **kwargs)
        except _Moved:
            now = self.store.find(rec.name)
            if now is not None and now.stable_version is not None:
                try:
                    self._move_alias(
                        now,
                        env,
                        now.stable_version,
                        CONTROLLER_USER,
                        "the deployment changed while this decision was written",
                    )
                except ShipyardError:
                    log.exception("deployment %s: could not put the alias back", rec.name)
            raise

    def _move_alias(
        self,
        rec: DeploymentRecord,
        env: Environment,
        version: int,
        user: str,
        why: str,
        *,
        force: bool = False,
    ) -> None:
        from shipyard.registry import Registry

        registry = Registry(self.ws)
        with contextlib.suppress(NotFound):
            if registry.get_version_by_alias(rec.model, env.alias).version == version:
                return
        registry.set_alias(
            rec.model, env.alias, version, user=user, reason=f"deployment {rec.name}: {why}"
        )

    # ---------------------------------------------------------------- alerts

    def _alerts(self, rec: DeploymentRecord, policy: DeploymentPolicy) -> DeploymentRecord:
        from shipyard.store.pipelines import TriggerEvent

        watermark = rec.context.get("alert_watermark")
        events = self.ws.pipelines.events_after(TriggerEvent.ALERT, watermark)
        if not events:
            return rec
        rec = self._write(rec, context={**rec.context, "alert_watermark": events[-1].event_id})
        for event in events:
            p = event.payload
            ours = p.get("deployment") == rec.name or (
                p.get("deployment") is None and p.get("model") == rec.model
            )
            if not ours:
                continue
            action = p.get("action")
            summary = (
                f"alert {event.name!r}: {p.get('metric', 'value')} = {p.get('value')} "
                f"(threshold {p.get('threshold')}), action {action or 'none'}"
            )
            self._event(
                rec,
                "alert",
                summary,
                version=rec.candidate_version or rec.stable_version,
                evidence={"event_id": event.event_id, **p},
            )
            if action == "hold" and rec.state != State.PAUSED:
                rec = self.pause(rec.name, user=CONTROLLER_USER, reason=f"held by {summary}")
            elif action == "rollback":
                with contextlib.suppress(InvalidState):
                    rec = self.rollback(rec.name, user=CONTROLLER_USER, reason=summary)
        return rec

    # ---------------------------------------------------------------- writes

    def _write(
        self, rec: DeploymentRecord, *, event: dict[str, Any] | None = None, **changes: Any
    ) -> DeploymentRecord:
        """Compare-and-set ``changes``, with the decision ``event`` in the same transaction."""
        if event is not None:
            event.setdefault("to_state", changes.get("state", rec.state))
        new = self.store.update(rec.name, rec.revision, changes, event=event)
        if new is None:
            raise _Moved(rec.name)
        if event is not None:
            log.info("deployment %s: %s: %s", rec.name, event["action"], event["message"])
            if self.on_event is not None:
                self.on_event(DeploymentEvent(0, rec.name, self._now_ms(), **event))
        return new

    @staticmethod
    def _ev(
        action: str,
        message: str,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        version: int | None = None,
        evidence: dict[str, Any] | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """The keyword arguments of one decision event (see :meth:`_write`)."""
        out: dict[str, Any] = {
            "action": action,
            "message": message,
            "from_state": from_state,
            "version": version,
            "evidence": evidence or {},
            "user_id": user or CONTROLLER_USER,
        }
        if to_state is not None:
            out["to_state"] = to_state
        return out

    def _event(
        self,
        rec: DeploymentRecord,
        action: str,
        message: str,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        version: int | None = None,
        evidence: dict[str, Any] | None = None,
        user: str | None = None,
    ) -> DeploymentEvent:
        event = self.store.record_event(
            rec.name,
            action,
            message,
            from_state=from_state,
            to_state=to_state or rec.state,
            version=version,
            evidence=evidence or {},
            user_id=user or CONTROLLER_USER,
        )
        log.info("deployment %s: %s: %s", rec.name, action, message)
        if self.on_event is not None:
            self.on_event(event)
        return event


class _Moved(InvalidState):
    """Another controller (or a person) changed the deployment between read and write."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"deployment {name!r} changed while this command ran (another controller or "
            "person acted on it); look at `shipyard deploy status` and retry."
        )


def _baseline_json(b: Baseline | None) -> dict[str, Any] | None:
    return None if b is None else {"requests": b.requests, "errors": b.errors, "shadow": b.shadow}


def _baseline(raw: Any) -> Baseline | None:
    if not isinstance(raw, dict):
        return None
    return Baseline(
        dict(raw.get("requests") or {}),
        dict(raw.get("errors") or {}),
        dict(raw.get("shadow") or {}),
    )


def _summary(s: Any) -> str:
    parts = [f"{s.requests} requests"]
    if s.error_rate is not None:
        parts.append(f"error rate {s.error_rate:.2%}")
    if s.latency_p99_ms is not None:
        parts.append(f"p99 {s.latency_p99_ms:.1f} ms")
    if s.prediction_drift is not None:
        parts.append(f"drift KS {s.prediction_drift:.3f}")
    if s.agreement is not None:
        parts.append(f"agreement {s.agreement:.1%}")
    for r in s.online:
        ref = r.details.get("reference")
        vs = f" vs {ref:.3f} (stable, same requests)" if isinstance(ref, float) else ""
        parts.append(f"live {r.gate}: {r.value:.3f}{vs}")
    return ", ".join(parts)


def _event_dict(e: DeploymentEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "time": e.event_time,
        "action": e.action,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "version": e.version,
        "message": e.message,
        "user": e.user_id,
        "evidence": e.evidence,
    }


def _user() -> str:
    from shipyard.tracking.context import current_user

    return current_user()


class Controller:
    """Ticks every deployment of a workspace every ``poll_interval_s`` (see the module
    docstring); one deployment's failure is logged and never stops the others."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        poll_interval_s: float = 1.0,
        on_event: Callable[[DeploymentEvent], None] | None = None,
    ) -> None:
        self.service = Deployments(workspace, on_event=on_event)
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> builtins.list[DeploymentRecord]:
        out = []
        for rec in self.service.list():
            try:
                out.append(self.service.tick(rec.name))
            except _Moved:
                continue
            except Exception:  # keep the other deployments going
                log.exception("deployment %s: the controller's tick failed", rec.name)
        return out

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # database hiccups: poll again
                log.exception("controller poll failed")
            self._stop.wait(self.poll_interval_s)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run_forever, name="shipyard-controller", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


@contextlib.contextmanager
def running(workspace: Workspace, **kw: Any) -> Iterator[Controller]:
    """A controller polling in a background thread for the ``with`` block."""
    c = Controller(workspace, **kw)
    c.start()
    try:
        yield c
    finally:
        c.stop()


__all__ = ["CONTROLLER_USER", "Controller", "Deployments", "State", "arm_name", "traffic_for"]


def _wanted_schedules(policy: DeploymentPolicy) -> dict[str, dict[str, Any]]:
    """The pipeline schedules a policy's triggers ask for, by name."""
    t = policy.triggers
    wanted: dict[str, dict[str, Any]] = {}
    if t.drift_pipeline:
        wanted[f"deploy-{policy.name}-drift"] = {
            "reference": t.drift_pipeline,
            "on": "alert",
            "event_filter": t.drift_filter,
            "params": t.drift_params,
        }
    if t.schedule and t.schedule_pipeline:
        wanted[f"deploy-{policy.name}-schedule"] = {
            "reference": t.schedule_pipeline,
            "cron": t.schedule,
            "params": t.schedule_params,
        }
    return wanted
