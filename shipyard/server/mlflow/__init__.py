"""The MLflow-compatible REST surface: the unmodified ``mlflow`` client, pointed at a Shipyard
server, tracks experiments and runs, moves artifacts, logs models and uses the model registry.

One module per resource, each exporting ``ENDPOINTS`` (:class:`~._wire.Endpoint` specs):

* :mod:`.experiments` - ``experiments/*``
* :mod:`.runs` - run lifecycle and search; :mod:`.run_data` - params, metrics, tags, batches,
  dataset inputs
* :mod:`.metrics` - metric history (paged, and sampled across runs)
* :mod:`.artifacts` - the proxied artifact service ``/api/2.0/mlflow-artifacts`` (files of runs,
  logged models and registered versions) and ``artifacts/list``
* :mod:`.logged_models` - MLflow 3 logged models (``logged-models/*``) and ``runs/outputs``
* :mod:`.registered_models` and :mod:`.model_versions` - the model registry
* :mod:`.info` - ``/api/3.0/mlflow/server-info``

Every request is put to the app's authorizer (:func:`shipyard.server.auth.authorize`) as
``read``/``write`` on ``run:<id>``, ``experiment:<id>``, ``logged-model:<id>`` or
``model:<name>`` (a registered model) before its handler runs. Handlers raise
:mod:`shipyard.errors`; the server's error handlers turn them into MLflow's error shape
(``error_code`` from each class's ``mlflow_code``) on these paths.
"""

from __future__ import annotations

from typing import Any

from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from shipyard.errors import MethodNotAllowed
from shipyard.server.mlflow import (
    artifacts,
    experiments,
    info,
    logged_models,
    metrics,
    model_versions,
    registered_models,
    run_data,
    runs,
)
from shipyard.server.mlflow._wire import Endpoint, json_endpoint
from shipyard.workspace import Workspace

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
"""The REST prefix MLflow clients call, and the one MLflow's web UI calls."""

ENDPOINTS: list[Endpoint] = [
    # The logging endpoints first: they are the hottest, and routes are matched in order.
    *run_data.ENDPOINTS,
    *runs.ENDPOINTS,
    *metrics.ENDPOINTS,
    *experiments.ENDPOINTS,
    *artifacts.ENDPOINTS,
    *logged_models.ENDPOINTS,
    *registered_models.ENDPOINTS,
    *model_versions.ENDPOINTS,
]
"""Every JSON endpoint of the MLflow surface."""


class MlflowRoutes(BaseRoute):
    """The whole MLflow surface as one route: a prefix test, then a dict lookup by path.

    Starlette's router tries its routes in order, a regular expression each; the MLflow surface
    has some 60 of them behind Shipyard's own API, which cost more per logging call than the
    handler's own parsing. Here a path outside the MLflow prefixes is turned away with one
    ``startswith``, and a fixed path finds its route in one lookup; only the few routes with
    path parameters (the artifact service) are tried in order.
    """

    path = PREFIXES[0]
    """For code that lists an app's routes by path (the MLflow prefix)."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._fixed: dict[str, list[Route]] = {}
        self._patterns: list[Route] = []
        prefixes: dict[str, None] = {}
        for route in routes:
            if route.param_convertors:
                self._patterns.append(route)
            else:
                # One path may have a route per method (registered-models/alias: GET/POST/DELETE).
                self._fixed.setdefault(route.path, []).append(route)
            # "/api/2.0/mlflow/runs/create" -> "/api/2.0/mlflow/"
            prefixes["/".join(route.path.split("/")[:4]) + "/"] = None
        self._prefixes = tuple(prefixes)

    def _find(self, scope: Scope) -> tuple[Match, Scope, Route | None]:
        path = get_route_path(scope)
        if not path.startswith(self._prefixes):
            return Match.NONE, {}, None
        fixed = self._fixed.get(path)
        candidates = fixed if fixed is not None else self._patterns
        partial: tuple[Match, Scope, Route | None] = (Match.NONE, {}, None)
        allow: set[str] = set()
        for route in candidates:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, child, route
            if match is Match.PARTIAL:
                allow.update(route.methods or ())
                if partial[2] is None:
                    partial = (match, child, route)
        if partial[2] is not None:
            partial[1]["shipyard.mlflow_allow"] = sorted(allow - {"HEAD"})
        return partial

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        match, child, route = self._find(scope)
        if route is None:
            return Match.NONE, {}
        return match, {**child, "shipyard.mlflow_route": route}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("shipyard.mlflow_route")
        if route is None:  # pragma: no cover - the router calls matches() first
            _, child, route = self._find(scope)
            if route is None:
                raise AssertionError("MlflowRoutes.handle called for a path it does not serve")
            scope.update(child)
        allow = scope.get("shipyard.mlflow_allow")
        if allow is not None:
            raise MethodNotAllowed(
                f"{scope['path']} does not answer {scope['method']}; use one of: "
                f"{', '.join(allow)}.",
                details={"allow": allow},
            )
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)


def route_list(workspace: Workspace) -> list[Route]:
    """Every route of the MLflow-compatible API, bound to ``workspace``, as plain routes."""
    out: list[Route] = []
    for prefix in PREFIXES:
        for spec in ENDPOINTS:
            endpoint = json_endpoint(spec, workspace)
            out.append(Route(prefix + spec.path, endpoint, methods=list(spec.methods)))
    for route in (*artifacts.service_routes(workspace), *info.info_routes()):
        assert isinstance(route, Route)
        out.append(route)
    return out


def routes(workspace: Workspace) -> list[BaseRoute]:
    """The MLflow-compatible API, bound to ``workspace``: one :class:`MlflowRoutes`."""
    return [MlflowRoutes(route_list(workspace))]


__all__ = ["ENDPOINTS", "PREFIXES", "MlflowRoutes", "route_list", "routes"]
