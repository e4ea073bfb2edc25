"""The metadata store interface for continuous deployment: deployments and their decision log.

One abstract class, implemented by :class:`~shipyard.store.sql_deployments.SqlDeploymentStore`
(SQLite and PostgreSQL, in the tracking store's database). The entities are plain immutable
values defined here, next to the interface.

Conventions:

* A :class:`DeploymentRecord` is the controller's persisted state machine for one deployment:
  its policy (the deployment spec as JSON), its state and rollout step, the versions involved,
  and the traffic it wants model servers to serve. Every write goes through
  :meth:`DeploymentStore.update` with the ``revision`` the writer read (compare-and-set), so two
  controllers on one database never both act on the same state.
* The traffic (``{"arms": [{name, model, weight}], "shadow": [{name, model}]}``) carries its own
  ``traffic_revision``; model servers poll it and swap their traffic table when it moves.
* Decisions are append-only :class:`DeploymentEvent` rows, with the evidence (gate values and
  thresholds, analysis windows) as a JSON object; they are the deployment's audit trail.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

ROLLOUT_STATES = frozenset({"gating", "shadow", "canary"})
"""The states in which a deployment's candidate version is still in use (also while paused in
one of them)."""


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    """One deployment's policy and the controller's state for it."""

    name: str
    model: str
    policy: dict[str, Any]
    state: str
    environment: str | None = None
    stable_version: int | None = None
    candidate_version: int | None = None
    step: int = 0
    step_started: int | None = None
    paused_state: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Any] = field(default_factory=dict)
    traffic_revision: int = 0
    revision: int = 0
    creation_time: int = 0
    last_update_time: int = 0

    def summary(self) -> dict[str, Any]:
        """The record as JSON for people and clients (the CLI's and the API's answer): what
        it is, where its rollout stands and what it serves; not its policy or context."""
        return {
            "name": self.name,
            "model": self.model,
            "state": self.state,
            "step": self.step,
            "environment": self.environment,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "paused_state": self.paused_state,
            "traffic": self.traffic,
            "traffic_revision": self.traffic_revision,
            "last_update_time": self.last_update_time,
        }

    def holds(self, version: int) -> bool:
        """Whether this deployment still needs ``version``: its stable version, or the candidate
        of a rollout under way (gating, shadow, canary, or paused in one)."""
        state = self.paused_state if self.state == "paused" else self.state
        return version == self.stable_version or (
            version == self.candidate_version and state in ROLLOUT_STATES
        )


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One decision of a deployment's controller (or a person), with its evidence."""

    event_id: int
    deployment: str
    event_time: int
    action: str
    from_state: str | None
    to_state: str | None
    version: int | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    user_id: str = ""


class DeploymentStore(ABC):
    """Deployments (policy + controller state + desired traffic) and their decision log."""

    @abstractmethod
    def create(self, record: DeploymentRecord) -> DeploymentRecord:
        """Store a new deployment (``revision`` 1). ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get(self, name: str) -> DeploymentRecord:
        """The deployment named ``name``. ``NotFound`` (naming the existing ones) if none."""

    @abstractmethod
    def find(self, name: str) -> DeploymentRecord | None:
        """The deployment named ``name``, or ``None``."""

    @abstractmethod
    def list(self) -> list[DeploymentRecord]:
        """Every deployment, by name."""

    @abstractmethod
    def update(
        self,
        name: str,
        expected_revision: int,
        changes: dict[str, Any],
        *,
        event: dict[str, Any] | None = None,
    ) -> DeploymentRecord | None:
        """Apply ``changes`` (field -> value of :class:`DeploymentRecord`) if the stored revision
        is still ``expected_revision``; the revision moves by one, and ``traffic_revision`` too
        when ``traffic`` changes. ``event`` (the keyword arguments of :meth:`record_event`) is
        appended in the same transaction, so a decision and its state change land together.
        ``None`` (and no change) when another writer moved it first."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a deployment (its events stay). ``NotFound`` if there is none."""

    @abstractmethod
    def record_event(
        self,
        deployment: str,
        action: str,
        message: str,
        *,
        from_state: str | None = None,
        to_state: str | None = None,
        version: int | None = None,
        evidence: dict[str, Any] | None = None,
        user_id: str = "",
    ) -> DeploymentEvent:
        """Append a decision to the deployment's log."""

    @abstractmethod
    def events(
        self, deployment: str, *, after: int | None = None, max_results: int = 1000
    ) -> builtins.list[DeploymentEvent]:
        """A deployment's decisions with ids greater than ``after``, oldest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources this store owns (not a shared database)."""
