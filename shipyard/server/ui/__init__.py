"""The web UI, served by ``shipyard server`` at ``/``: server-rendered pages over the same services
the API calls, with uPlot (vendored under ``static/vendor/uplot``) drawing the charts.

=========================  ==================================================================
module                     pages
=========================  ==================================================================
:mod:`.experiments`        experiments; an experiment's runs table (filter, sort, columns)
:mod:`.runs`               a run (params, metrics, tags, artifacts, charts) and chart data
:mod:`.compare`            the compare view of 2-50 runs and its overlay data
:mod:`.registry`           models, versions, aliases, audit timeline, model card, lineage
:mod:`.pipelines`          pipeline runs, a run's DAG, step logs
:mod:`.datasets`           datasets, versions, schema, profile charts, diffs, validation reports
:mod:`.deployments`        deployments: traffic split, rollout timeline, actions
:mod:`.monitoring`         drift over time, performance, prediction volume, alerts
=========================  ==================================================================

Pages need no build step and no script inline: every script and style is a static file, so the
pages run under a strict Content-Security-Policy (see :mod:`._routing`). See ``docs/ui.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from shipyard.workspace import Workspace


def routes(ws: Workspace) -> list[BaseRoute]:
    """Every UI route and ``/static``, bound to ``ws``."""
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from shipyard.server.ui import (
        compare,
        datasets,
        deployments,
        experiments,
        monitoring,
        pipelines,
        registry,
        runs,
    )
    from shipyard.server.ui._routing import STATIC

    async def home(request: object) -> RedirectResponse:
        return RedirectResponse("/experiments", status_code=307)

    out: list[BaseRoute] = [
        Route("/", home, methods=["GET"], name="ui.home"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    for module in (
        experiments,
        runs,
        compare,
        registry,
        pipelines,
        datasets,
        deployments,
        monitoring,
    ):
        out += module.router.routes(ws)
    return out
