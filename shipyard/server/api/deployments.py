"""Deployments: the continuous-deployment controller's state, traffic and decision timeline,
and the people's levers (promote, roll back, pause, resume).

Reading needs ``read`` on ``deployment:<name>``; the levers change production, so they need
``deploy`` (the deployer role). Each handler makes one call to
:class:`shipyard.deploy.Deployments` in the threadpool; the audit trail records the request's
principal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard.server._http_util import json_response, optional_int, optional_str, read_json_object
from shipyard.server.api.schemas import INTEGER, NULLABLE_INTEGER, STRING, array, obj
from shipyard.server.auth import principal_of
from shipyard.server.routing import ApiRouter

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="deployments")

BASE = "/api/v1/deployments"
ONE = BASE + "/{name}"
_ANY: dict[str, Any] = {"type": "object"}
_DEPLOYMENT = obj(
    {
        "name": STRING,
        "model": STRING,
        "state": STRING,
        "step": INTEGER,
        "stable_version": NULLABLE_INTEGER,
        "candidate_version": NULLABLE_INTEGER,
        "traffic": _ANY,
        "traffic_revision": INTEGER,
    },
    ("name", "model", "state"),
)
_LEVER = obj({"reason": STRING})


def routes(ws: Workspace) -> list[BaseRoute]:
    """The deployment endpoints bound to ``ws``."""
    return router.routes(ws)


def _service(ws: Workspace) -> Any:
    from shipyard.deploy import Deployments

    return Deployments(ws)


def _user(request: Request) -> str:
    principal = principal_of(request)
    return principal.name


@router.get(
    BASE,
    action="read",
    resource="deployment",
    summary="List deployments",
    response=obj({"deployments": array(_DEPLOYMENT)}, ("deployments",)),
)
async def list_deployments(request: Request, ws: Workspace) -> Response:
    records = await run_in_threadpool(lambda: _service(ws).list())
    return json_response({"deployments": [r.summary() for r in records]})


@router.get(
    ONE,
    action="read",
    resource="deployment",
    resource_param="name",
    summary="A deployment's state, traffic and decision timeline",
    response=_ANY,
)
async def get_deployment(request: Request, ws: Workspace) -> Response:
    name = request.path_params["name"]
    return json_response(await run_in_threadpool(lambda: _service(ws).status(name)))


@router.get(
    ONE + "/traffic",
    action="read",
    resource="deployment",
    resource_param="name",
    summary="The arms and weights model servers of a deployment serve",
    response=obj({"revision": INTEGER, "traffic": _ANY}, ("revision", "traffic")),
)
async def get_traffic(request: Request, ws: Workspace) -> Response:
    name = request.path_params["name"]
    revision, traffic = await run_in_threadpool(lambda: _service(ws).traffic(name))
    return json_response({"revision": revision, "traffic": traffic})


@router.post(
    ONE + "/promote",
    action="deploy",
    resource="deployment",
    resource_param="name",
    summary="Promote the candidate in rollout now, or a given version",
    request=obj({"version": INTEGER, "reason": STRING}),
    response=_DEPLOYMENT,
)
async def promote(request: Request, ws: Workspace) -> Response:
    name = request.path_params["name"]
    body = await read_json_object(request)
    version, reason = optional_int(body, "version"), optional_str(body, "reason")
    user = _user(request)
    rec = await run_in_threadpool(
        lambda: _service(ws).promote(name, version, user=user, reason=reason)
    )
    return json_response(rec.summary())


@router.post(
    ONE + "/rollback",
    action="deploy",
    resource="deployment",
    resource_param="name",
    summary="Abort the rollout in flight, or go back to the previous stable version",
    request=_LEVER,
    response=_DEPLOYMENT,
)
async def rollback(request: Request, ws: Workspace) -> Response:
    return await _lever(request, ws, "rollback")


async def _lever(request: Request, ws: Workspace, lever: str) -> Response:
    """Pull ``lever`` (``rollback`` / ``pause``: they take a ``reason``) as the caller."""
    name = request.path_params["name"]
    reason = optional_str(await read_json_object(request), "reason")
    user = _user(request)
    rec = await run_in_threadpool(
        lambda: getattr(_service(ws), lever)(name, user=user, reason=reason)
    )
    return json_response(rec.summary())


@router.post(
    ONE + "/pause",
    action="deploy",
    resource="deployment",
    resource_param="name",
    summary="Hold a deployment where it is",
    request=_LEVER,
    response=_DEPLOYMENT,
)
async def pause(request: Request, ws: Workspace) -> Response:
    return await _lever(request, ws, "pause")


@router.post(
    ONE + "/resume",
    action="deploy",
    resource="deployment",
    resource_param="name",
    summary="Resume a paused deployment",
    response=_DEPLOYMENT,
)
async def resume(request: Request, ws: Workspace) -> Response:
    name = request.path_params["name"]
    await read_json_object(request)
    user = _user(request)
    rec = await run_in_threadpool(lambda: _service(ws).resume(name, user=user))
    return json_response(rec.summary())
