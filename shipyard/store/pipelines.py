"""The metadata store interface for pipelines: runs, step runs, schedules, firings and events.

One abstract class, implemented by :class:`~shipyard.store.sql_pipelines.SqlPipelineStore`
(SQLite and PostgreSQL, in the tracking store's database). The contract test suite
(``tests/pipelines/store_contract.py``) runs against every implementation. The entities it
returns are plain immutable values defined here, next to the interface.

Conventions:

* Pipeline runs and step runs are addressed by 32-hex-digit ids. A step run's output files are
  the artifact-index entries of owner :func:`step_owner` (``ps-`` + the step run id); a step run
  that reused another's output (a cache hit, or a resumed step) points at that owner instead.
* Cache lookups find the newest successful step run with a given cache key that produced its
  output itself (not through a hit), so a hit always names the execution that made the bytes.
* Schedules fire under compare-and-set: :meth:`PipelineStore.claim_fire_time` and
  :meth:`PipelineStore.claim_watermark` move a schedule forward only from the value the caller
  read, so several schedulers on one database fire each slot and each event once.
* Firings and events are append-only records; they outlive the schedules that made them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

STEP_OWNER_PREFIX = "ps-"
"""Artifact-index owners of step outputs are ``ps-`` followed by the step run's 32 hex digits."""


def step_owner(step_run_id: str) -> str:
    """The artifact-index owner of a step run's output files."""
    return STEP_OWNER_PREFIX + step_run_id


class PipelineStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)


class ScheduleKind(StrEnum):
    CRON = "cron"
    INTERVAL = "interval"
    EVENT = "event"


class TriggerEvent(StrEnum):
    """What an event schedule waits for."""

    DATASET_VERSION = "dataset_version"
    MODEL_VERSION = "model_version"
    ALERT = "alert"


class MissedPolicy(StrEnum):
    """What a scheduler does with time slots that passed while no scheduler ran."""

    SKIP = "skip"
    CATCH_UP = "catch_up"


class FiringStatus(StrEnum):
    STARTED = "STARTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class StepRun:
    """One execution (or reuse) of one step in one pipeline run."""

    step_run_id: str
    run_id: str
    name: str
    status: str
    cached: bool = False
    cache_key: str | None = None
    cache_components: dict[str, Any] = field(default_factory=dict)
    cache_source: str | None = None
    """The step run whose output this one reused (cache hit or resume), else ``None``."""
    attempts: int = 0
    start_time: int | None = None
    end_time: int | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] | None = None
    """``{"kind", "owner", "path", "digest", "size"}`` of the stored output, or ``None``."""
    error: str | None = None
    traceback: str | None = None
    logs: str | None = None
    executor: str = ""
    tracking_run_id: str | None = None
    links: list[dict[str, str]] = field(default_factory=list)
    """What the step produced elsewhere: ``{"kind": "model_version"|"dataset_version", "name",
    "version"}``."""

    @property
    def duration_s(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One run of a pipeline, with its step runs (in the order they started)."""

    run_id: str
    pipeline: str
    reference: str
    """How to import the pipeline again (``package.module:name`` or ``path/file.py:name``)."""
    params: dict[str, Any]
    status: str
    executor: str
    cache_enabled: bool
    start_time: int
    end_time: int | None = None
    resumed_from: str | None = None
    trigger: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    steps: list[StepRun] = field(default_factory=list)

    def step(self, name: str) -> StepRun:
        """The step run named ``name`` (``KeyError`` if the run has none)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a pipeline runs by itself: a cron expression, an interval, or an event."""

    schedule_id: int
    name: str
    reference: str
    kind: str
    spec: str
    """The cron expression, the interval in seconds, or the event (:class:`TriggerEvent`)."""
    params: dict[str, Any] = field(default_factory=dict)
    event_filter: str | None = None
    """For event schedules: a glob the dataset/model/alert name must match (``None``: any)."""
    missed: str = MissedPolicy.SKIP
    executor: str = "local"
    next_fire_time: int | None = None
    watermark: int | None = None
    """For event schedules: the last event id already handled."""
    enabled: bool = True
    creation_time: int = 0


@dataclass(frozen=True, slots=True)
class Firing:
    """One time a schedule fired (or skipped a slot), and why."""

    firing_id: int
    schedule_id: int
    schedule_name: str
    fire_time: int
    cause: dict[str, Any]
    status: str
    run_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PipelineEvent:
    """Something that happened that event schedules can react to (an alert, a new version)."""

    event_id: int
    kind: str
    name: str
    payload: dict[str, Any]
    event_time: int


class PipelineStore(ABC):
    """Pipeline runs, step runs and their lineage links, schedules, firings and events."""

    # ---------------------------------------------------------------- runs

    @abstractmethod
    def create_run(self, run: PipelineRun) -> PipelineRun:
        """Store a new pipeline run (its ``steps`` are ignored). ``AlreadyExists`` if the id is
        taken."""

    @abstractmethod
    def finish_run(self, run_id: str, status: str, *, error: str | None = None) -> PipelineRun:
        """Set a run's final status and end time."""

    @abstractmethod
    def get_run(self, run_id: str) -> PipelineRun:
        """The run with its step runs. ``NotFound`` if there is none (a unique id prefix of at
        least 6 digits is accepted)."""

    @abstractmethod
    def list_runs(
        self, *, pipeline: str | None = None, max_results: int = 100
    ) -> list[PipelineRun]:
        """Runs newest first (without their step runs), optionally of one pipeline."""

    # ---------------------------------------------------------------- step runs

    @abstractmethod
    def put_step_run(self, step: StepRun) -> StepRun:
        """Insert or replace a step run (its ``links`` are ignored; see :meth:`add_links`)."""

    @abstractmethod
    def get_step_run(self, step_run_id: str) -> StepRun:
        """One step run with its links. ``NotFound`` if there is none."""

    @abstractmethod
    def find_cached(self, cache_key: str) -> StepRun | None:
        """The newest successful step run with this key that executed (not a hit itself)."""

    @abstractmethod
    def step_history(
        self, name: str, *, before: int | None = None, max_results: int = 50
    ) -> list[StepRun]:
        """Executions of steps named ``name`` (not hits), newest first, started before ``before``
        (epoch ms) when given."""

    @abstractmethod
    def add_links(self, step_run_id: str, links: list[dict[str, str]]) -> None:
        """Record what a step run produced elsewhere (model versions, dataset versions)."""

    # ---------------------------------------------------------------- schedules

    @abstractmethod
    def create_schedule(self, schedule: Schedule) -> Schedule:
        """Store a schedule (its ``schedule_id`` is assigned). ``AlreadyExists`` if the name is
        taken."""

    @abstractmethod
    def get_schedule(self, name: str) -> Schedule:
        """The schedule named ``name``. ``NotFound`` if there is none."""

    @abstractmethod
    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""

    @abstractmethod
    def delete_schedule(self, name: str) -> None:
        """Remove a schedule (its firings stay). ``NotFound`` if there is none."""

    @abstractmethod
    def claim_fire_time(self, schedule_id: int, expected: int | None, new: int | None) -> bool:
        """Move a schedule's next fire time from ``expected`` to ``new``; ``False`` (and no
        change) when another scheduler moved it first."""

    @abstractmethod
    def claim_watermark(self, schedule_id: int, expected: int | None, new: int) -> bool:
        """Move an event schedule's watermark from ``expected`` to ``new``; ``False`` (and no
        change) when another scheduler moved it first."""

    @abstractmethod
    def record_firing(
        self,
        schedule: Schedule,
        cause: dict[str, Any],
        status: str,
        *,
        run_id: str | None = None,
        error: str | None = None,
    ) -> Firing:
        """Append a firing of ``schedule``."""

    @abstractmethod
    def update_firing(
        self, firing_id: int, status: str, *, run_id: str | None = None, error: str | None = None
    ) -> None:
        """Set a firing's outcome."""

    @abstractmethod
    def list_firings(
        self, schedule_name: str | None = None, max_results: int = 100
    ) -> list[Firing]:
        """Firings newest first, optionally of one schedule (by name)."""

    # ---------------------------------------------------------------- events

    @abstractmethod
    def record_event(self, kind: str, name: str, payload: dict[str, Any]) -> PipelineEvent:
        """Append an event (an alert fired, for example)."""

    @abstractmethod
    def events_after(
        self, kind: str, after: int | None, max_results: int = 100
    ) -> list[PipelineEvent]:
        """Events of ``kind`` with ids greater than ``after``, oldest first. ``kind`` is one of
        :class:`TriggerEvent`: model versions come from the registry's audit trail, dataset
        versions from the dataset store, alerts from :meth:`record_event`. Ids are per kind."""

    @abstractmethod
    def latest_event_id(self, kind: str) -> int | None:
        """The newest event id of ``kind`` (``None`` if there is none): a new event schedule's
        starting watermark."""

    @abstractmethod
    def close(self) -> None:
        """Release resources this store owns (not the shared database)."""
