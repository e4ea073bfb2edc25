"""What lies downstream of a model version: the deployments serving it (stable or candidate) and
the alerts of the monitors watching those deployments, for the lineage graph.

Read through :class:`shipyard.deploy.Deployments` and
:func:`shipyard.monitoring.monitors.list_monitors` / ``list_alerts``; a workspace without a
deployment or monitoring store shows data -> run -> model only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shipyard.server.ui._graph import Node

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion
    from shipyard.workspace import Workspace

MAX_ALERTS = 5
"""Alerts drawn per deployment (the newest; the monitoring page lists them all)."""


@dataclass
class Item:
    node: Node
    column: int
    parent: str | None = None
    """The node this one hangs off (``None``: the model version)."""


@dataclass
class Downstream:
    nodes: list[Item] = field(default_factory=list)
    deployments: list[Any] = field(default_factory=list)


def of_version(ws: Workspace, version: ModelVersion) -> Downstream:
    """The deployments serving ``version`` and the alerts raised on them."""
    out = Downstream()
    if getattr(ws, "deployment_store", None) is None:
        return out
    from shipyard.deploy import Deployments

    serving = [
        rec
        for rec in Deployments(ws).list()
        if rec.model == version.name
        and version.version in (rec.stable_version, rec.candidate_version)
    ]
    monitors: list[dict[str, Any]] = []
    if serving and getattr(ws, "monitor_store", None) is not None:
        from shipyard.monitoring.monitors import list_monitors

        monitors = list_monitors(ws)
    for rec in serving:
        role = "stable" if rec.stable_version == version.version else "candidate"
        node = Node(
            f"deploy:{rec.name}",
            rec.name,
            f"{rec.state} · {role}",
            "kind-deployment",
            f"/deployments/{quote(rec.name, safe='')}",
        )
        out.deployments.append(rec)
        out.nodes.append(Item(node, 3))
        for alert in _alerts(ws, rec.name, monitors):
            out.nodes.append(
                Item(
                    Node(
                        f"alert:{alert['alert_id']}",
                        f"{alert['rule']}",
                        f"{alert['status']} · {alert['metric']}",
                        "kind-alert",
                        f"/monitoring/{quote(alert['monitor'], safe='')}#alerts",
                    ),
                    4,
                    node.id,
                )
            )
    return out


def _alerts(ws: Workspace, deployment: str, monitors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from shipyard.monitoring.monitors import list_alerts

    found: list[dict[str, Any]] = []
    for m in monitors:
        if m.get("deployment") == deployment:
            found += list_alerts(ws, monitor=m["name"], max_results=MAX_ALERTS)
    found.sort(key=lambda a: -int(a.get("fired_time") or 0))
    return found[:MAX_ALERTS]
