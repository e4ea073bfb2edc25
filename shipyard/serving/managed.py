"""Serving a controller-managed deployment: the endpoint follows the traffic (arms, weights,
shadow arms) that the continuous-deployment controller persists (:mod:`shipyard.deploy`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.errors import InvalidState
from shipyard.serving.traffic import Arm, DeploymentSpec

if TYPE_CHECKING:
    from shipyard.serving.endpoint import TrafficSource
    from shipyard.workspace import Workspace


def managed_spec(
    ws: Workspace, deployment: str, *, poll_interval_s: float | None = None
) -> tuple[int, DeploymentSpec]:
    """``(traffic revision, spec)`` of deployment ``deployment`` now. ``InvalidState`` while it
    has no version deployed."""
    from shipyard.deploy import Deployments

    service = Deployments(ws)
    rec = service.get(deployment)
    policy = service.policy(rec)
    return rec.traffic_revision, _spec(
        policy.endpoint,
        rec.traffic,
        deployment,
        policy.serving.poll_interval_s if poll_interval_s is None else poll_interval_s,
    )


def _spec(name: str, traffic: dict, deployment: str, poll: float) -> DeploymentSpec:  # type: ignore[type-arg]
    arms = tuple(Arm(a["name"], a["model"], float(a["weight"])) for a in traffic.get("arms", []))
    if not arms:
        raise InvalidState(
            f"Deployment {deployment!r} has no version deployed yet, so there is nothing to "
            "serve; wait for the controller to deploy the first version that passes the gates "
            f"(`shipyard deploy status {deployment}`)."
        )
    shadow = tuple(Arm(a["name"], a["model"], 0.0) for a in traffic.get("shadow", []))
    return DeploymentSpec(name=name, arms=arms, shadow=shadow, poll_interval_s=poll)


def traffic_source(deployment: str, endpoint: str, poll_interval_s: float) -> TrafficSource:
    """What an :class:`~shipyard.serving.endpoint.Endpoint` polls for ``deployment``."""

    def read(ws: Workspace) -> tuple[int, DeploymentSpec] | None:
        from shipyard.deploy import Deployments

        rec = Deployments(ws).get(deployment)
        if not rec.traffic.get("arms"):
            return None
        return rec.traffic_revision, _spec(endpoint, rec.traffic, deployment, poll_interval_s)

    return read
