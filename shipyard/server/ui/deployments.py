"""Deployments: each deployment's traffic split, its rollout timeline with the gate evidence, and
the promote / rollback / pause / resume actions.

Routes ask the authorizer what the API's deployment routes ask (:mod:`shipyard.server.api
.deployments`): ``read`` and ``deploy`` on ``deployment:<name>``.

Everything goes through :class:`shipyard.deploy.Deployments` (``list``, ``status``, ``policy``,
``promote``, ``rollback``, ``pause``, ``resume``): the pages read what ``shipyard deploy status``
prints, and the actions are POST forms declared with the ``deploy`` action, so the authorizer
decides who may press them (the deployer role). A refused or impossible action (a gate fails, no
rollout is in flight) answers a page with the reason.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request

from shipyard.errors import InvalidInput
from shipyard.server.auth import principal_of, readable_ids
from shipyard.server.ui._routing import UiRouter

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = UiRouter()

ARM_COLOURS = ("arm-0", "arm-1", "arm-2", "arm-3")
SPLIT_WIDTH = 720


def _service(ws: Workspace) -> Any:
    from shipyard.deploy import Deployments

    return Deployments(ws)


def available(ws: Workspace) -> bool:
    """Whether the workspace keeps deployments (a SQL workspace with the deploy service)."""
    return getattr(ws, "deployment_store", None) is not None


@router.page("/deployments", "deployments.html", resource="ui")
def deployments_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """Every deployment with its state, versions and traffic split (a project-scoped user: the
    deployments of the models their grants name)."""
    if not available(ws):
        return {"deployments": [], "available": False}
    allowed = readable_ids(request, "model")
    rows = []
    for rec in _service(ws).list():
        if allowed is None or rec.model in allowed:
            rows.append({"record": rec, "split": traffic_split(rec.traffic)})
    return {"deployments": rows, "available": True, "quote": quote}


@router.page("/deployments/{name}", "deployment.html", resource="deployment", resource_param="name")
def deployment_page(request: Request, ws: Workspace) -> dict[str, Any]:
    """One deployment: traffic, versions, policy, the rollout timeline and the actions."""
    service = _service(ws)
    name = request.path_params["name"]
    status = service.status(name)
    record = service.get(name)
    policy = service.policy(record)
    timeline = [_event_view(e) for e in reversed(status["timeline"])]
    state = status["state"]
    effective = status["paused_state"] if state == "paused" else state
    return {
        "status": status,
        "record": record,
        "policy": policy,
        "environments": [_environment_view(env) for env in policy.environments],
        "split": traffic_split(status["traffic"]),
        "timeline": timeline,
        "can_promote_candidate": effective in ("shadow", "canary"),
        "paused": state == "paused",
        "done": request.query_params.get("done", ""),
        "quote": quote,
    }


def traffic_split(traffic: dict[str, Any]) -> dict[str, Any]:
    """The arms (name, model, weight) as bar segments of :data:`SPLIT_WIDTH` px, and shadows."""
    arms = [a for a in traffic.get("arms") or [] if isinstance(a, dict)]
    total = sum(float(a.get("weight") or 0) for a in arms) or 1.0
    segments = []
    x = 0.0
    for i, arm in enumerate(arms):
        weight = float(arm.get("weight") or 0)
        width = SPLIT_WIDTH * weight / total
        segments.append(
            {
                "name": str(arm.get("name", "")),
                "model": str(arm.get("model", "")),
                "weight": weight,
                "x": round(x, 1),
                "width": round(width, 1),
                "colour": ARM_COLOURS[i % len(ARM_COLOURS)],
            }
        )
        x += width
    shadows = [s for s in traffic.get("shadow") or [] if isinstance(s, dict)]
    return {"arms": segments, "shadows": shadows, "width": SPLIT_WIDTH}


def _environment_view(env: Any) -> dict[str, Any]:
    rollout = env.rollout
    return {
        "name": env.name,
        "alias": env.alias,
        "gates": [str(getattr(g, "label", g)) for g in env.gates],
        "shadow": None if rollout is None or rollout.shadow is None else rollout.shadow.requests,
        "steps": [] if rollout is None else list(rollout.steps),
        "window": None if rollout is None else rollout.window,
    }


def _event_view(event: dict[str, Any]) -> dict[str, Any]:
    """A timeline entry: gate results as a table, other evidence as short key/value lines."""
    evidence = dict(event.get("evidence") or {})
    gates = evidence.pop("results", None)
    lines = []
    for key, value in evidence.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append((key, text if len(text) <= 300 else text[:297] + "..."))
    return {
        **event,
        "gates": gates if isinstance(gates, list) else [],
        "evidence_lines": lines,
    }


def _reason(form: dict[str, str]) -> str | None:
    reason = form.get("reason", "").strip()
    return reason[:500] or None


def _user(request: Request) -> str:
    """Who acted: the signed-in user, or ``anonymous`` on a server without auth (as the API
    records it; never the server process's own operating-system user)."""
    return principal_of(request).name


def _back(name: str, done: str) -> str:
    return f"/deployments/{quote(name, safe='')}?done={done}"


@router.action(
    "/deployments/{name}/promote", action="deploy", resource="deployment", resource_param="name"
)
def promote(request: Request, ws: Workspace, form: dict[str, str]) -> str:
    """Promote the candidate in rollout now, or (``version``) a version past its gates."""
    name = request.path_params["name"]
    raw = form.get("version", "").strip()
    version = None
    if raw:
        try:
            version = int(raw)
        except ValueError:
            raise InvalidInput(f"version {raw!r} is not a number; give 1, 2, 3...") from None
    _service(ws).promote(name, version, user=_user(request), reason=_reason(form))
    return _back(name, "promoted")


@router.action(
    "/deployments/{name}/rollback", action="deploy", resource="deployment", resource_param="name"
)
def rollback(request: Request, ws: Workspace, form: dict[str, str]) -> str:
    """Abort the rollout in flight, or go back to the previous stable version."""
    name = request.path_params["name"]
    _service(ws).rollback(name, user=_user(request), reason=_reason(form))
    return _back(name, "rolled_back")


@router.action(
    "/deployments/{name}/pause", action="deploy", resource="deployment", resource_param="name"
)
def pause(request: Request, ws: Workspace, form: dict[str, str]) -> str:
    """Hold the deployment where it is (the controller stops acting on it)."""
    name = request.path_params["name"]
    _service(ws).pause(name, user=_user(request), reason=_reason(form))
    return _back(name, "paused")


@router.action(
    "/deployments/{name}/resume", action="deploy", resource="deployment", resource_param="name"
)
def resume(request: Request, ws: Workspace, form: dict[str, str]) -> str:
    """Let the controller go on from the state the deployment was paused in."""
    name = request.path_params["name"]
    _service(ws).resume(name, user=_user(request))
    return _back(name, "resumed")
