"""Registered models: create, read, search, describe, rename, delete, tags, aliases, approval
policies and the audit trail.

Every handler parses the request, makes one call to the registry store
(:class:`~shipyard.store.registry.RegistryStore`, the store enforces the registry's invariants) in
the threadpool, and serializes the answer. Versions live in :mod:`.model_versions`.

Who did it: the audit trail records the request's principal when the server authenticated one,
otherwise the ``user_id`` the client sent (the SDK sends its operating-system user). Resources
are ``model:<name>``. Changing an approval policy needs ``admin`` on the model, so that whoever
may move an alias can't lift the approvals that gate it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard.entities import to_json
from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.server._http_util import (
    json_response,
    optional_int,
    optional_str,
    optional_str_dict,
    optional_str_list,
    query,
    read_json_object,
    require_int,
    require_str,
)
from shipyard.server.api.schemas import (
    EMPTY,
    INTEGER,
    NULLABLE_INTEGER,
    NULLABLE_STRING,
    STRING,
    STRING_MAP,
    array,
    obj,
    page,
    ref,
)
from shipyard.server.auth import authorize, authorize_alias_move, principal_of
from shipyard.server.routing import ApiRouter, QueryParam
from shipyard.store.registry import ALL_ALIASES

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="registered-models")

MODELS = "/api/v1/registered-models"
MODEL = MODELS + "/{name}"
DEFAULT_MAX_MODELS = 100
DEFAULT_MAX_EVENTS = 1000

_MODEL = obj({"registered_model": ref("RegisteredModel")}, ("registered_model",))
_VERSION = obj({"model_version": ref("ModelVersion")}, ("model_version",))
_SHA256 = re.compile(r"[0-9a-f]{64}")

AUDIT_FIELDS = {
    "user_id": {
        **STRING,
        "description": "Who did it, for the audit trail (ignored when the server "
        "authenticated the caller: the principal is recorded).",
    },
    "reason": {**STRING, "description": "Why, for the audit trail."},
}
"""Request fields of every change that appends an audit event."""
AUDIT_QUERY = (
    QueryParam("user_id", STRING, AUDIT_FIELDS["user_id"]["description"]),
    QueryParam("reason", STRING, "Why, for the audit trail."),
)
"""The same, as query parameters of DELETE requests."""
FREED = obj(
    {
        "digests": {
            **array(STRING),
            "description": "Content digests the deleted versions' files referenced.",
        },
        "bytes_freed": INTEGER,
    },
    ("digests", "bytes_freed"),
)
"""The answer of deleting a model or a version."""

_SEARCH_FIELDS = {
    "filter": STRING,
    "max_results": INTEGER,
    "order_by": array(STRING),
    "page_token": STRING,
}


def routes(ws: Workspace) -> list[BaseRoute]:
    """The registered-model endpoints bound to ``ws``."""
    return router.routes(ws)


# ------------------------------------------------------------------------------ shared parsing


def name_of(request: Request) -> str:
    """The ``name`` path parameter (the store checks it)."""
    return str(request.path_params["name"])


def user_of(request: Request, fields: Mapping[str, Any]) -> str:
    """The user to record: the authenticated principal, else the ``user_id`` field."""
    principal = principal_of(request)
    if principal.authenticated:
        return principal.name
    return optional_str(fields, "user_id", "") or ""


def reason_of(fields: Mapping[str, Any]) -> str | None:
    return optional_str(fields, "reason")


def freed(ws: Workspace, digests: Iterable[str]) -> dict[str, Any]:
    """Free the bytes nothing references any more; the answer of the delete endpoints.

    Index entries recorded through the admin API may name digests that are not sha256 (no blob
    can hold them); they are skipped, as :func:`~shipyard.server.api.experiments.purge` does."""
    found = set(digests)
    bytes_freed = ws.artifacts.free({d for d in found if _SHA256.fullmatch(d)})
    return {"digests": sorted(found), "bytes_freed": bytes_freed}


def max_results_of(fields: Mapping[str, Any], default: int) -> int:
    """The ``max_results`` field (the store checks its range)."""
    n = optional_int(fields, "max_results", default)
    assert n is not None
    return n


# ------------------------------------------------------------------------------ models


@router.post(
    MODELS,
    action="write",
    resource="model",
    summary="Create a registered model",
    request=obj(
        {"name": STRING, "description": STRING, "tags": STRING_MAP, "user_id": STRING},
        ("name",),
    ),
    response=_MODEL,
    status=201,
    authorized_by_handler=True,
)
async def create_registered_model(request: Request, ws: Workspace) -> Response:
    """Create an empty model (versions are registered into it later). Names are unique and
    may not contain ``/`` or ``@``."""
    body = await read_json_object(request)
    name = require_str(body, "name")
    await authorize(request, "write", f"model:{name}")
    description = optional_str(body, "description")
    tags = optional_str_dict(body, "tags") or None
    user_id = user_of(request, body)
    model = await run_in_threadpool(
        lambda: ws.registry.create_registered_model(
            name, description=description, tags=tags, user_id=user_id
        )
    )
    return json_response({"registered_model": to_json(model)}, 201)


@router.get(
    MODEL,
    action="read",
    resource="model",
    resource_param="name",
    summary="Get a registered model",
    response=_MODEL,
)
async def get_registered_model(request: Request, ws: Workspace) -> Response:
    """The model with its tags, aliases, newest version per stage and approval policy."""
    model = await run_in_threadpool(ws.registry.get_registered_model, name_of(request))
    return json_response({"registered_model": to_json(model)})


async def _search(fields: Mapping[str, Any], ws: Workspace) -> Response:
    filter_string = optional_str(fields, "filter", "") or ""
    max_results = max_results_of(fields, DEFAULT_MAX_MODELS)
    order_by = optional_str_list(fields, "order_by") or None
    page_token = optional_str(fields, "page_token") or None
    result = await run_in_threadpool(
        ws.registry.search_registered_models, filter_string, max_results, order_by, page_token
    )
    return json_response(
        {"registered_models": to_json(result.items), "next_page_token": result.next_page_token}
    )


@router.post(
    MODELS + "/search",
    action="read",
    resource="model",
    summary="Search registered models",
    request=obj(_SEARCH_FIELDS),
    response=page("registered_models", ref("RegisteredModel")),
)
async def search_registered_models(request: Request, ws: Workspace) -> Response:
    """Models matching a filter such as ``name LIKE 'churn%' AND tags.team = 'risk'``, by name
    unless ``order_by`` says otherwise (at most 1000 per page, 100 by default)."""
    return await _search(await read_json_object(request), ws)


@router.get(
    MODELS,
    action="read",
    resource="model",
    summary="List registered models",
    query=tuple(QueryParam(k, v) for k, v in _SEARCH_FIELDS.items()),
    response=page("registered_models", ref("RegisteredModel")),
)
async def list_registered_models(request: Request, ws: Workspace) -> Response:
    """The same as the search endpoint, with its fields in the query string."""
    return await _search(query(request), ws)


@router.patch(
    MODEL,
    action="write",
    resource="model",
    resource_param="name",
    summary="Describe a registered model",
    request=obj({"description": NULLABLE_STRING}, ("description",)),
    response=_MODEL,
)
async def update_registered_model(request: Request, ws: Workspace) -> Response:
    """Replace the model's description (``null`` clears it)."""
    name = name_of(request)
    body = await read_json_object(request)
    if "description" not in body:
        raise InvalidInput(
            "Missing value for required parameter 'description'. Send "
            '{"description": "..."}, or {"description": null} to clear it.'
        )
    description = optional_str(body, "description")
    model = await run_in_threadpool(
        lambda: ws.registry.update_registered_model(name, description=description)
    )
    return json_response({"registered_model": to_json(model)})


@router.post(
    MODEL + "/rename",
    action="write",
    resource="model",
    resource_param="name",
    summary="Rename a registered model",
    request=obj({"new_name": STRING, **AUDIT_FIELDS}, ("new_name",)),
    response=_MODEL,
    authorized_by_handler=True,
)
async def rename_registered_model(request: Request, ws: Workspace) -> Response:
    """Give a model a new, unused name; its versions, aliases and history follow it. Needs
    ``write`` on both names."""
    name = name_of(request)
    await authorize(request, "write", f"model:{name}")
    body = await read_json_object(request)
    new_name = require_str(body, "new_name")
    await authorize(request, "write", f"model:{new_name}")
    user_id, reason = user_of(request, body), reason_of(body)
    model = await run_in_threadpool(
        lambda: ws.registry.rename_registered_model(name, new_name, user_id=user_id, reason=reason)
    )
    return json_response({"registered_model": to_json(model)})


def _delete_model(ws: Workspace, name: str, user_id: str, reason: str | None) -> dict[str, Any]:
    Registry(ws).refuse_if_model_referenced(name)
    digests = ws.registry.delete_registered_model(name, user_id=user_id, reason=reason)
    return freed(ws, digests)


@router.delete(
    MODEL,
    action="write",
    resource="model",
    resource_param="name",
    summary="Delete a registered model",
    query=AUDIT_QUERY,
    response=FREED,
)
async def delete_registered_model(request: Request, ws: Workspace) -> Response:
    """Delete a model with all its versions for good, freeing the bytes nothing else
    references. Refused (409 ``INVALID_STATE``) while an alias points at one of its versions or a
    deployment serves one. The audit trail is kept."""
    name, q = name_of(request), query(request)
    user_id, reason = user_of(request, q), reason_of(q)
    return json_response(await run_in_threadpool(_delete_model, ws, name, user_id, reason))


@router.put(
    MODEL + "/tags/{key:path}",
    action="write",
    resource="model",
    resource_param="name",
    summary="Set a registered model tag",
    request=obj({"value": STRING}, ("value",)),
    response=EMPTY,
)
async def set_registered_model_tag(request: Request, ws: Workspace) -> Response:
    """Set (or overwrite) one tag of a model."""
    name = name_of(request)
    value = require_str(await read_json_object(request), "value", allow_empty=True)
    key = request.path_params["key"]
    await run_in_threadpool(ws.registry.set_registered_model_tag, name, key, value)
    return json_response({})


@router.delete(
    MODEL + "/tags/{key:path}",
    action="write",
    resource="model",
    resource_param="name",
    summary="Delete a registered model tag",
    response=EMPTY,
)
async def delete_registered_model_tag(request: Request, ws: Workspace) -> Response:
    """Remove one tag from a model."""
    name, key = name_of(request), request.path_params["key"]
    await run_in_threadpool(ws.registry.delete_registered_model_tag, name, key)
    return json_response({})


@router.get(
    MODEL + "/latest-versions",
    action="read",
    resource="model",
    resource_param="name",
    summary="Get the newest version per stage",
    query=(QueryParam("stages", array(STRING), "Only these stages (repeat the parameter)."),),
    response=obj({"model_versions": array(ref("ModelVersion"))}, ("model_versions",)),
)
async def get_latest_versions(request: Request, ws: Workspace) -> Response:
    """The newest version in each stage (every stage unless ``stages`` is given), by stage
    name. Stages are MLflow's; prefer aliases."""
    name = name_of(request)
    stages = optional_str_list(query(request), "stages") or None
    found = await run_in_threadpool(ws.registry.get_latest_versions, name, stages)
    return json_response({"model_versions": to_json(found)})


# ------------------------------------------------------------------------------ aliases


_ALIAS = MODEL + "/aliases/{alias}"


@router.put(
    _ALIAS,
    action="write",
    resource="model",
    resource_param="name",
    summary="Point an alias at a version",
    request=obj({"version": INTEGER, **AUDIT_FIELDS}, ("version",)),
    response=EMPTY,
)
async def set_alias(request: Request, ws: Workspace) -> Response:
    """Point ``alias`` (letters, digits, ``_`` and ``-``; not ``latest`` or ``v<number>``) at a
    version, moving it if it points elsewhere. Refused with 409 ``APPROVAL_REQUIRED`` when the
    model's approval policy asks for more distinct approvals than the version has."""
    name, alias = name_of(request), request.path_params["alias"]
    await authorize_alias_move(request, name, alias)
    body = await read_json_object(request)
    version = require_int(body, "version")
    user_id, reason = user_of(request, body), reason_of(body)
    await run_in_threadpool(
        lambda: ws.registry.set_alias(name, alias, version, user_id=user_id, reason=reason)
    )
    return json_response({})


@router.get(
    _ALIAS,
    action="read",
    resource="model",
    resource_param="name",
    summary="Get the version an alias points at",
    response=_VERSION,
)
async def get_model_version_by_alias(request: Request, ws: Workspace) -> Response:
    """The version ``alias`` points at (what ``models:/<name>@<alias>`` loads)."""
    name, alias = name_of(request), request.path_params["alias"]
    version = await run_in_threadpool(ws.registry.get_model_version_by_alias, name, alias)
    return json_response({"model_version": to_json(version)})


@router.delete(
    _ALIAS,
    action="write",
    resource="model",
    resource_param="name",
    summary="Delete an alias",
    query=AUDIT_QUERY,
    response=EMPTY,
)
async def delete_alias(request: Request, ws: Workspace) -> Response:
    """Remove an alias (the version stays)."""
    name, alias, q = name_of(request), request.path_params["alias"], query(request)
    await authorize_alias_move(request, name, alias)
    user_id, reason = user_of(request, q), reason_of(q)
    await run_in_threadpool(
        lambda: ws.registry.delete_alias(name, alias, user_id=user_id, reason=reason)
    )
    return json_response({})


@router.get(
    _ALIAS + "/at",
    action="read",
    resource="model",
    resource_param="name",
    summary="Which version an alias pointed at, at a time",
    query=(QueryParam("timestamp", INTEGER, "The moment (ms since the epoch).", True),),
    response=obj({"version": NULLABLE_INTEGER}, ("version",)),
)
async def alias_at(request: Request, ws: Workspace) -> Response:
    """The version ``alias`` pointed at at ``timestamp``, from the audit trail; ``null`` if it
    pointed nowhere then."""
    name, alias = name_of(request), request.path_params["alias"]
    timestamp = require_int(query(request), "timestamp")
    version = await run_in_threadpool(ws.registry.alias_at, name, alias, timestamp)
    return json_response({"version": version})


# ------------------------------------------------------------------------------ policy and audit


@router.put(
    MODEL + "/approval-policy",
    action="admin",
    resource="model",
    resource_param="name",
    summary="Require approvals before an alias moves",
    request=obj(
        {
            "required_approvals": {**INTEGER, "description": "0 to 100; 0 removes the policy."},
            "alias": {
                **STRING,
                "description": 'The alias it applies to ("*", the default: '
                "every alias without a policy of its own).",
            },
            **AUDIT_FIELDS,
        },
        ("required_approvals",),
    ),
    response=_MODEL,
)
async def set_approval_policy(request: Request, ws: Workspace) -> Response:
    """Require ``required_approvals`` distinct approvals of a version before ``alias`` moves to
    it. Needs ``admin`` on the model."""
    name = name_of(request)
    body = await read_json_object(request)
    required = require_int(body, "required_approvals")
    alias = optional_str(body, "alias", ALL_ALIASES)
    assert alias is not None
    user_id, reason = user_of(request, body), reason_of(body)
    model = await run_in_threadpool(
        lambda: ws.registry.set_approval_policy(
            name, required, alias=alias, user_id=user_id, reason=reason
        )
    )
    return json_response({"registered_model": to_json(model)})


@router.get(
    MODEL + "/history",
    action="read",
    resource="model",
    resource_param="name",
    summary="Get a model's audit trail",
    query=(
        QueryParam("max_results", INTEGER, "Events per page (default 1000)."),
        QueryParam("page_token", STRING, "The next_page_token of the previous page."),
    ),
    response=page("events", ref("RegistryEvent")),
)
async def history(request: Request, ws: Workspace) -> Response:
    """Every change to the model now called ``name`` (or, once it is deleted, to every model
    that had the name), oldest first: who, when, why, from and to."""
    name, q = name_of(request), query(request)
    max_results = max_results_of(q, DEFAULT_MAX_EVENTS)
    page_token = optional_str(q, "page_token") or None
    result = await run_in_threadpool(
        lambda: ws.registry.history(name, max_results=max_results, page_token=page_token)
    )
    return json_response(
        {"events": to_json(result.items), "next_page_token": result.next_page_token}
    )
