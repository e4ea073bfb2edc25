"""Shipyard's own REST API (``/api/v1``), one module per resource.

=========================  ==================================================================
module                     resource
=========================  ==================================================================
:mod:`.experiments`        experiments and their tags
:mod:`.runs`               runs, run tags, dataset inputs, run search
:mod:`.metrics`            batch logging (metrics, params, tags) and metric history
:mod:`.artifacts`          artifact files of a run (streamed upload and download)
:mod:`.models`             registered models, their tags, aliases, approval policy, audit trail
:mod:`.model_versions`     model versions, their tags, approvals, search, lineage by dataset
:mod:`.model_files`        the files of model versions (read-only, streamed download)
:mod:`.admin`              the artifact index and garbage-collection lists (admin only)
:mod:`.deployments`        deployments: controller state, traffic, timeline; promote/rollback
:mod:`.security`           users, API tokens, role grants and the audit log (``/api/v1/auth``)
=========================  ==================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from shipyard.workspace import Workspace


def routes(ws: Workspace) -> list[BaseRoute]:
    """Every ``/api/v1`` route, bound to ``ws``."""
    from shipyard.server.api import (
        admin,
        artifacts,
        deployments,
        experiments,
        metrics,
        model_files,
        model_versions,
        models,
        runs,
        security,
    )

    out: list[BaseRoute] = []
    for module in (
        experiments,
        runs,
        metrics,
        artifacts,
        models,
        model_versions,
        model_files,
        admin,
        security,
        deployments,
    ):
        out += module.routes(ws)
    return out
