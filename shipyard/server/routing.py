"""Route declarations: each endpoint states its method, path, permission and schemas in one place.

A route module creates an :class:`ApiRouter`, decorates its handlers, and exposes
``routes(workspace)``::

    router = ApiRouter(tag="experiments")

    @router.get(
        "/api/v1/experiments/{experiment_id}",
        action="read", resource="experiment", resource_param="experiment_id",
        summary="Get an experiment", response=obj({"experiment": ref("Experiment")}),
    )
    async def get_experiment(request: Request, ws: Workspace) -> Response: ...

    def routes(ws: Workspace) -> list[BaseRoute]:
        return router.routes(ws)

The wrapper built by :meth:`ApiRouter.routes` binds the workspace, asks the app's authorizer
(:func:`shipyard.server.auth.authorize`) before the handler runs, and carries the
:class:`EndpointSpec` on the route so :mod:`shipyard.server.openapi` documents exactly what is
served. Errors are not handled here: they propagate to the app's handlers
(:mod:`shipyard.server.errors`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard.server.auth import Action, authorize

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

Handler = Callable[[Request, "Workspace"], Awaitable[Response]]
Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One documented query-string parameter."""

    name: str
    schema: Schema
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """What one endpoint is: its method, path, permission and OpenAPI description."""

    method: str
    path: str
    handler: Handler
    action: Action
    resource: str
    """The kind of resource touched (``experiment``, ``run``, ``server``...)."""
    resource_param: str | None
    """The path parameter holding the resource id, or ``None`` (the resource is ``kind:*``)."""
    summary: str
    tag: str
    request: Schema | None = None
    response: Schema | None = None
    status: int = 200
    query: tuple[QueryParam, ...] = ()
    request_media_type: str = "application/json"
    response_media_type: str = "application/json"
    description: str = ""
    authorized_by_handler: bool = False
    """The resource is named in the body; the handler calls :func:`authorize` itself."""

    def resource_of(self, request: Request) -> str:
        """The resource string given to the authorizer for this request."""
        if self.resource_param is None:
            return f"{self.resource}:*"
        return f"{self.resource}:{request.path_params.get(self.resource_param, '*')}"


class ApiRoute(Route):
    """A Starlette route that remembers its :class:`EndpointSpec`."""

    def __init__(self, spec: EndpointSpec, endpoint: Callable[[Request], Awaitable[Response]]):
        super().__init__(spec.path, endpoint, methods=[spec.method], name=spec.handler.__name__)
        # ``{key:path}`` must match keys holding a newline too, so that the handler can refuse
        # them with a message instead of the router answering "no such endpoint".
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)
        self.spec = spec


def bind(spec: EndpointSpec, ws: Workspace) -> ApiRoute:
    """A route running ``spec.handler`` against ``ws`` after authorization."""
    handler = spec.handler
    action = spec.action

    if spec.authorized_by_handler:

        async def endpoint(request: Request) -> Response:
            return await handler(request, ws)

    else:

        async def endpoint(request: Request) -> Response:
            await authorize(request, action, spec.resource_of(request))
            return await handler(request, ws)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return ApiRoute(spec, endpoint)


@dataclass
class ApiRouter:
    """Collects the endpoints of one resource module."""

    tag: str
    specs: list[EndpointSpec] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        action: Action,
        resource: str,
        summary: str,
        resource_param: str | None = None,
        request: Schema | None = None,
        response: Schema | None = None,
        status: int = 200,
        query: tuple[QueryParam, ...] = (),
        request_media_type: str = "application/json",
        response_media_type: str = "application/json",
        authorized_by_handler: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare ``handler`` as the endpoint answering ``method path``."""

        def decorate(handler: Handler) -> Handler:
            self.specs.append(
                EndpointSpec(
                    method=method,
                    path=path,
                    handler=handler,
                    action=action,
                    resource=resource,
                    resource_param=resource_param,
                    summary=summary,
                    tag=self.tag,
                    request=request,
                    response=response,
                    status=status,
                    query=query,
                    request_media_type=request_media_type,
                    response_media_type=response_media_type,
                    description=(handler.__doc__ or "").strip(),
                    authorized_by_handler=authorized_by_handler,
                )
            )
            return handler

        return decorate

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def routes(self, ws: Workspace) -> list[BaseRoute]:
        """Starlette routes for every declared endpoint, bound to ``ws``."""
        return [bind(spec, ws) for spec in self.specs]
