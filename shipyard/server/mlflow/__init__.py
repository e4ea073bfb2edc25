"""The MLflow-compatible REST surface: the unmodified ``mlflow`` client, pointed at a Shipyard
server, tracks experiments and runs and moves artifacts.

One module per resource, each exporting ``ENDPOINTS`` (:class:`~._wire.Endpoint` specs):

* :mod:`.experiments` - ``experiments/*``
* :mod:`.runs` - run lifecycle and search; :mod:`.run_data` - params, metrics, tags, batches,
  dataset inputs
* :mod:`.metrics` - metric history (paged, and sampled across runs)
* :mod:`.artifacts` - the proxied artifact service ``/api/2.0/mlflow-artifacts`` and
  ``artifacts/list``
* :mod:`.info` - ``/api/3.0/mlflow/server-info``; logged models: an always-empty search, JSON
  404s for the rest

Every request is put to the app's authorizer (:func:`shipyard.server.auth.authorize`) as
``read``/``write`` on ``run:<id>`` or ``experiment:<id>`` before its handler runs. Handlers raise
:mod:`shipyard.errors`; the server's error handlers turn them into MLflow's error shape
(``error_code`` from each class's ``mlflow_code``) on these paths.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from shipyard.server.mlflow import artifacts, experiments, info, metrics, run_data, runs
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
    *info.ENDPOINTS,
]
"""Every JSON endpoint of the MLflow surface."""


def routes(workspace: Workspace) -> list[BaseRoute]:
    """Every route of the MLflow-compatible API, bound to ``workspace``."""
    out: list[BaseRoute] = []
    for prefix in PREFIXES:
        for spec in ENDPOINTS:
            endpoint = json_endpoint(spec, workspace)
            out.append(Route(prefix + spec.path, endpoint, methods=list(spec.methods)))
    out.extend(artifacts.service_routes(workspace))
    out.extend(info.info_routes(PREFIXES))
    return out


__all__ = ["ENDPOINTS", "PREFIXES", "routes"]
