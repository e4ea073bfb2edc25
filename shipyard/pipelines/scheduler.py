"""Schedules and triggers, and the scheduler that fires them.

A schedule is a cron expression (five fields, local time: ``"0 3 * * *"``), an interval in
seconds, or an event: a new dataset version, a new model version, or an alert
(:func:`shipyard.pipelines.fire_event`), optionally filtered by a name glob. The scheduler polls
the metadata store, so triggers are durable and work across processes: dataset and model
versions are read from their own tables after the schedule's persisted watermark, and each slot
or event is claimed with a compare-and-set before it fires, so two schedulers on one database
never fire it twice. Every firing is recorded with its cause.

Missed slots (no scheduler ran, e.g. the server was down) follow the schedule's policy:

* ``skip`` (default): the missed slots are recorded as one SKIPPED firing, and the schedule
  fires again at its next slot;
* ``catch_up``: each missed slot fires, oldest first (at most :data:`MAX_CATCH_UP`; older ones
  are recorded as skipped).

``shipyard server`` runs a scheduler in a background thread; ``shipyard scheduler`` runs one
alone.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.pipelines.dsl import load_pipeline
from shipyard.store.pipelines import (
    FiringStatus,
    MissedPolicy,
    Schedule,
    ScheduleKind,
    TriggerEvent,
)
from shipyard.workspace import Workspace

logger = logging.getLogger("shipyard.pipelines.scheduler")

MAX_CATCH_UP = 10
"""The most missed slots a ``catch_up`` schedule fires at once."""
GRACE_MS = 60_000
"""A slot is on time (not missed) when the scheduler sees it within this long."""
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))


# ---------------------------------------------------------------------------- cron


def parse_cron(expr: str) -> list[set[int]]:
    """The allowed values of each of the five fields (``*``, ``a-b``, ``*/n``, ``a,b``)."""
    fields = expr.split()
    if len(fields) != 5:
        raise InvalidInput(
            f"cron expression {expr!r} has {len(fields)} fields; write five: minute hour day "
            "month weekday, e.g. '0 3 * * *' (03:00 every day)."
        )
    allowed: list[set[int]] = []
    for text, (name, low, high) in zip(fields, _FIELDS, strict=True):
        values: set[int] = set()
        for part in text.split(","):
            body, _, step_text = part.partition("/")
            try:
                step = int(step_text) if step_text else 1
                if body == "*":
                    start, end = low, high
                elif "-" in body:
                    a, b = body.split("-", 1)
                    start, end = int(a), int(b)
                else:
                    start = end = int(body)
                    if step_text:
                        end = high
            except ValueError:
                raise InvalidInput(
                    f"cron field {name} {text!r} is not a number, range or */n."
                ) from None
            if name == "weekday":
                start, end = start % 7 if start == 7 else start, 6 if end == 7 else end
            if step < 1 or start < low or end > high or start > end:
                raise InvalidInput(f"cron field {name} {text!r} is outside {low}-{high}.")
            values.update(range(start, end + 1, step))
        allowed.append(values)
    return allowed


def next_cron_time(expr: str, after_ms: int) -> int:
    """The first slot of ``expr`` strictly after ``after_ms`` (epoch ms, local time)."""
    minute, hour, day, month, weekday = parse_cron(expr)
    t = datetime.fromtimestamp(after_ms / 1000).replace(second=0, microsecond=0) + timedelta(
        minutes=1
    )
    for _ in range(366 * 24 * 60):
        if (
            t.month in month
            and t.day in day
            and (t.weekday() + 1) % 7 in weekday
            and t.hour in hour
            and t.minute in minute
        ):
            return int(t.timestamp() * 1000)
        t += timedelta(minutes=1)
    raise InvalidInput(f"cron expression {expr!r} never fires.")


def next_fire_time(schedule: Schedule, after_ms: int) -> int | None:
    if schedule.kind == ScheduleKind.CRON:
        return next_cron_time(schedule.spec, after_ms)
    if schedule.kind == ScheduleKind.INTERVAL:
        return after_ms + int(float(schedule.spec) * 1000)
    return None


# ---------------------------------------------------------------------------- schedules


def add_schedule(
    workspace: Workspace,
    name: str,
    reference: str,
    *,
    cron: str | None = None,
    every_s: float | None = None,
    on: str | None = None,
    event_filter: str | None = None,
    params: dict[str, Any] | None = None,
    missed: str = MissedPolicy.SKIP,
    executor: str = "inprocess",
) -> Schedule:
    """Create a schedule: exactly one of ``cron``, ``every_s`` or ``on`` (a
    :class:`TriggerEvent` value). The pipeline reference is checked by importing it."""
    if not name or not name.strip() or name != name.strip() or len(name) > 250:
        raise InvalidInput(
            f"schedule name {name!r} must be 1 to 250 characters, not blank and without "
            "leading or trailing spaces."
        )
    chosen = [x for x in (cron, every_s, on) if x is not None]
    if len(chosen) != 1:
        raise InvalidInput("give exactly one of --cron, --every or --on for a schedule.")
    if missed not in {m.value for m in MissedPolicy}:
        raise InvalidInput(f"missed={missed!r}; use skip or catch_up.")
    pipeline = load_pipeline(reference)
    pipeline.bind(dict(params or {}))
    now = int(time.time() * 1000)
    watermark = None
    if cron is not None:
        kind, spec = ScheduleKind.CRON, cron.strip()
        parse_cron(spec)
    elif every_s is not None:
        if not math.isfinite(every_s) or every_s <= 0:
            raise InvalidInput(f"--every must be a positive number of seconds, not {every_s}.")
        kind, spec = ScheduleKind.INTERVAL, repr(float(every_s))
    else:
        if on not in {e.value for e in TriggerEvent}:
            raise InvalidInput(
                f"--on {on!r} is not an event; use one of {', '.join(e.value for e in TriggerEvent)}."
            )
        kind, spec = ScheduleKind.EVENT, str(on)
        watermark = workspace.pipelines.latest_event_id(spec)
    draft = Schedule(
        0,
        name,
        reference,
        kind,
        spec,
        dict(params or {}),
        event_filter,
        missed,
        executor,
        None,
        watermark,
        True,
        now,
    )
    draft = Schedule(**{**_fields(draft), "next_fire_time": next_fire_time(draft, now)})
    return workspace.pipelines.create_schedule(draft)


def _fields(s: Schedule) -> dict[str, Any]:
    return {f: getattr(s, f) for f in Schedule.__dataclass_fields__}


class Scheduler:
    """Fires due schedules and pending events of one workspace (see the module docstring)."""

    def __init__(self, workspace: Workspace, *, poll_interval_s: float = 5.0) -> None:
        self.ws = workspace
        self.store = workspace.pipelines
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now_ms: int | None = None) -> list[str]:
        """One poll: fire what is due; returns the ids of the pipeline runs it started."""
        started: list[str] = []
        for schedule in self.store.list_schedules():
            if not schedule.enabled:
                continue
            try:
                if schedule.kind == ScheduleKind.EVENT:
                    started += self._events(schedule)
                else:
                    started += self._timed(schedule, now_ms or int(time.time() * 1000))
            except ShipyardError as exc:
                logger.warning("schedule %s: %s", schedule.name, exc.message)
        return started

    def _timed(self, schedule: Schedule, now: int) -> list[str]:
        due = schedule.next_fire_time
        if due is None or due > now:
            return []
        slots: list[int] = []
        t = due
        while t <= now and len(slots) < 10_000:
            slots.append(t)
            t = next_fire_time(schedule, t) or now + 1
        if not self.store.claim_fire_time(schedule.schedule_id, due, t):
            return []  # another scheduler fired it
        on_time = [s for s in slots if now - s <= GRACE_MS]
        missed = [s for s in slots if now - s > GRACE_MS]
        fire: list[int] = on_time[-1:]
        if missed:
            if schedule.missed == MissedPolicy.CATCH_UP:
                fire = (missed + on_time)[-MAX_CATCH_UP:]
                skipped = [s for s in missed if s not in fire]
            else:
                skipped = missed
            if skipped:
                self.store.record_firing(
                    schedule,
                    {
                        "kind": "missed",
                        "slots": len(skipped),
                        "first": skipped[0],
                        "last": skipped[-1],
                        "policy": schedule.missed,
                    },
                    FiringStatus.SKIPPED,
                )
        runs = []
        for slot in fire:
            cause = {"kind": schedule.kind, "spec": schedule.spec, "slot": slot}
            if slot in missed:
                cause["caught_up"] = True
            runs.append(self._fire(schedule, cause))
        return [r for r in runs if r]

    def _events(self, schedule: Schedule) -> list[str]:
        events = self.store.events_after(schedule.spec, schedule.watermark)
        if not events:
            return []
        if not self.store.claim_watermark(
            schedule.schedule_id, schedule.watermark, events[-1].event_id
        ):
            return []
        runs = []
        for event in events:
            if schedule.event_filter and not fnmatch.fnmatchcase(event.name, schedule.event_filter):
                continue
            cause = {
                "kind": "event",
                "event": schedule.spec,
                "event_id": event.event_id,
                **event.payload,
            }
            cause.setdefault("name", event.name)
            runs.append(self._fire(schedule, cause))
        return [r for r in runs if r]

    def _fire(self, schedule: Schedule, cause: dict[str, Any]) -> str | None:
        from shipyard.pipelines.service import run

        firing = self.store.record_firing(schedule, cause, FiringStatus.STARTED)
        try:
            result = run(
                schedule.reference,
                schedule.params,
                workspace=self.ws,
                executor=schedule.executor,
                trigger={
                    "kind": "schedule",
                    "schedule": schedule.name,
                    "firing_id": firing.firing_id,
                    "cause": cause,
                },
            )
        except Exception as exc:  # a broken pipeline must not stop the scheduler
            self.store.update_firing(
                firing.firing_id, FiringStatus.FAILED, error=f"{type(exc).__name__}: {exc}"
            )
            logger.warning("schedule %s failed to run: %s", schedule.name, exc)
            return None
        status = FiringStatus.SUCCEEDED if result.status == "SUCCEEDED" else FiringStatus.FAILED
        self.store.update_firing(firing.firing_id, status, run_id=result.run_id, error=result.error)
        return result.run_id

    # ---------------------------------------------------------------- background

    def run_forever(self) -> None:
        """Poll until :meth:`stop` is called (blocks)."""
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep polling through database hiccups
                logger.exception("scheduler poll failed")
            self._stop.wait(self.poll_interval_s)

    def start(self) -> None:
        """Poll in a daemon thread."""
        self._thread = threading.Thread(
            target=self.run_forever, name="shipyard-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
