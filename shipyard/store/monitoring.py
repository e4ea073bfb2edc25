"""The metadata store interface for monitoring: monitors, their results, alert rules, alerts.

One abstract class, implemented by :class:`~shipyard.store.sql_monitoring.SqlMonitorStore`
(SQLite and PostgreSQL, in the tracking store's database). The entities it returns are plain
immutable values defined here, next to the interface.

Conventions:

* A monitor's ``watermark`` is the end (epoch ms, exclusive) of the last serving window it
  computed; :meth:`MonitorStore.claim_window` moves it forward only from the value the caller
  read, so several schedulers on one database compute each window once.
* A rule's evaluation state (consecutive breaches, whether a breach is open, when it last fired)
  moves under compare-and-set on the last result it saw (:meth:`MonitorStore.update_rule_state`),
  so each result is evaluated once and each breach fires one alert.
* Alerts are append-only records (status and acknowledgement change); they outlive their rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Monitor:
    """What to watch: an endpoint's prediction log against a reference, window by window."""

    monitor_id: int
    name: str
    endpoint: str
    model: str | None = None
    deployment: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    """``reference``, ``window``, ``task``, ``features``, ``segments``, ``tests``..."""
    reference_profile: str | None = None
    """The reference's :class:`~shipyard.data.profile.Profile` as JSON (stored once)."""
    enabled: bool = True
    watermark: int | None = None
    creation_time: int = 0
    last_run_time: int | None = None


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """One window's numbers (``metrics``: flat name -> value) and details (drift report,
    performance per segment, health)."""

    result_id: int
    monitor_id: int
    window_start: int
    window_end: int
    num_rows: int
    metrics: dict[str, float | None]
    details: dict[str, Any]
    computed_time: int


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Fire when ``metric`` (operator) ``threshold`` holds for ``consecutive`` windows; once per
    breach, and not again within ``cooldown_s`` of the last firing."""

    rule_id: int
    name: str
    monitor: str
    metric: str
    operator: str
    threshold: float
    consecutive: int = 1
    cooldown_s: int = 0
    sinks: list[dict[str, Any]] = field(default_factory=list)
    action: str | None = None
    enabled: bool = True
    creation_time: int = 0
    last_result_id: int | None = None
    breach_count: int = 0
    in_breach: bool = False
    last_fired_time: int | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """One firing of a rule, its delivery to the sinks and its acknowledgement."""

    alert_id: int
    rule_id: int
    rule: str
    monitor: str
    metric: str
    value: float | None
    threshold: float
    result_id: int | None
    status: str
    fired_time: int
    resolved_time: int | None = None
    acknowledged_by: str | None = None
    acknowledged_time: int | None = None
    note: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


class MonitorStore(ABC):
    """Monitors, monitor results, alert rules and alerts."""

    # ---------------------------------------------------------------- monitors

    @abstractmethod
    def create_monitor(self, monitor: Monitor) -> Monitor:
        """Store a monitor (its id is assigned). ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_monitor(self, name: str) -> Monitor:
        """The monitor named ``name``. ``NotFound`` if there is none."""

    @abstractmethod
    def list_monitors(self) -> list[Monitor]:
        """Every monitor, by name."""

    @abstractmethod
    def delete_monitor(self, name: str) -> None:
        """Remove a monitor and its results (alerts stay). ``NotFound`` if there is none."""

    @abstractmethod
    def update_monitor(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        reference_profile: str | None = None,
        spec: dict[str, Any] | None = None,
        last_run_time: int | None = None,
    ) -> Monitor:
        """Change a monitor's switch, stored reference profile or spec, or stamp when it last ran
        (epoch ms; a run that found no new window still counts, so the scheduler waits its
        interval). ``NotFound`` if there is none."""

    @abstractmethod
    def claim_window(self, monitor_id: int, expected: int | None, new: int) -> bool:
        """Move a monitor's watermark from ``expected`` to ``new`` (and stamp its last run);
        ``False`` (and no change) when another process moved it first."""

    # ---------------------------------------------------------------- results

    @abstractmethod
    def add_result(
        self,
        monitor_id: int,
        window_start: int,
        window_end: int,
        num_rows: int,
        metrics: dict[str, float | None],
        details: dict[str, Any],
    ) -> MonitorResult:
        """Append one window's result."""

    @abstractmethod
    def list_results(
        self,
        monitor: str,
        *,
        since: int | None = None,
        until: int | None = None,
        max_results: int = 1000,
    ) -> list[MonitorResult]:
        """A monitor's results, oldest first: the latest ``max_results`` whose window ends in
        [since, until] (epoch ms, either bound optional)."""

    @abstractmethod
    def get_result(self, result_id: int) -> MonitorResult:
        """One result. ``NotFound`` if there is none."""

    # ---------------------------------------------------------------- rules

    @abstractmethod
    def create_rule(self, rule: AlertRule) -> AlertRule:
        """Store a rule (its id is assigned). ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_rule(self, name: str) -> AlertRule:
        """The rule named ``name``. ``NotFound`` if there is none."""

    @abstractmethod
    def list_rules(self, monitor: str | None = None) -> list[AlertRule]:
        """Every rule (of one monitor), by name."""

    @abstractmethod
    def delete_rule(self, name: str) -> None:
        """Remove a rule (its alerts stay). ``NotFound`` if there is none."""

    @abstractmethod
    def update_rule_state(
        self,
        rule_id: int,
        expected_result_id: int | None,
        *,
        last_result_id: int,
        breach_count: int,
        in_breach: bool,
        last_fired_time: int | None,
    ) -> bool:
        """Move a rule's evaluation state on from the result it last saw; ``False`` (and no
        change) when another evaluator moved it first."""

    # ---------------------------------------------------------------- alerts

    @abstractmethod
    def add_alert(self, alert: Alert) -> Alert:
        """Append an alert (its id is assigned)."""

    @abstractmethod
    def set_deliveries(
        self,
        alert_id: int,
        deliveries: list[dict[str, Any]],
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Record the payload sent and what each sink did with it."""

    @abstractmethod
    def get_alert(self, alert_id: int) -> Alert:
        """One alert. ``NotFound`` if there is none."""

    @abstractmethod
    def list_alerts(
        self,
        *,
        status: str | None = None,
        rule: str | None = None,
        monitor: str | None = None,
        max_results: int = 100,
    ) -> list[Alert]:
        """Alerts newest first, optionally by status, rule or monitor."""

    @abstractmethod
    def acknowledge_alert(self, alert_id: int, user: str, note: str | None = None) -> Alert:
        """Mark an open alert acknowledged (an acknowledged or resolved one keeps its status and
        gets the note). ``NotFound`` if there is none."""

    @abstractmethod
    def resolve_alerts(self, rule_id: int, when: int) -> int:
        """Resolve a rule's open and acknowledged alerts (its breach ended); how many."""

    @abstractmethod
    def close(self) -> None:
        """Release resources this store owns (not the shared database)."""
