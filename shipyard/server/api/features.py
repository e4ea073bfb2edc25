"""Online feature reads: ``POST /api/v1/features/online``.

The body names a feature service (``"feature_service": "churn"``) or feature references
(``"features": ["customer_stats:spend", ...]``) and the entity rows (``"entities": [{"customer_id":
7}, ...]``, with the request fields on-demand features need); the answer holds one list per
column. It is what :func:`shipyard.features.get_online_features` calls when the tracking URI is
a server. Reading needs the ``read`` action on ``features:*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard.errors import InvalidInput
from shipyard.server._http_util import json_response, optional_bool, read_json_object
from shipyard.server.api.schemas import BOOLEAN, STRING, array, obj
from shipyard.server.routing import ApiRouter

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="features")

_ROW = {"type": "object", "additionalProperties": True}


def routes(ws: Workspace) -> list[BaseRoute]:
    """The feature-store endpoints bound to ``ws``."""
    return router.routes(ws)


@router.post(
    "/api/v1/features/online",
    action="read",
    resource="features",
    summary="Read online feature values",
    request=obj(
        {
            "feature_service": STRING,
            "features": array(STRING),
            "entities": array(_ROW),
            "full_feature_names": BOOLEAN,
        },
        ("entities",),
    ),
    response=obj(
        {"features": {"type": "object", "additionalProperties": array({})}}, ("features",)
    ),
)
async def online_features(request: Request, ws: Workspace) -> Response:
    """The latest materialized feature values of each entity row (null where there is none or
    it is older than the view's TTL), one list per column: join keys, request fields, then the
    features in the order asked for."""
    from shipyard.features.api import feature_store

    body = await read_json_object(request)
    service = body.get("feature_service")
    refs = body.get("features")
    if (service is None) == (refs is None):
        raise InvalidInput(
            'give exactly one of "feature_service" (a name) and "features" (a list of '
            '"view:feature" references).'
        )
    if service is not None and not isinstance(service, str):
        raise InvalidInput('"feature_service" must be a string.')
    if refs is not None and (
        not isinstance(refs, list) or not all(isinstance(r, str) for r in refs)
    ):
        raise InvalidInput('"features" must be a list of "view:feature" strings.')
    entities = body.get("entities")
    if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
        raise InvalidInput('"entities" must be a list of objects such as {"customer_id": 7}.')
    features: Any = service if service is not None else refs
    full = optional_bool(body, "full_feature_names")
    fs = feature_store(ws)
    answer = await run_in_threadpool(
        fs.get_online_features, features, entities, full_feature_names=full
    )
    return json_response({"features": answer.to_dict()})
