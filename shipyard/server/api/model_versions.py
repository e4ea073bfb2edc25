"""Model versions: register, read, describe, status, stage, delete, tags, approvals, search and
lineage by dataset. A version's files are served by :mod:`.model_files`.

Conventions (who is recorded, resources) are those of :mod:`.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from shipyard import validation
from shipyard.entities import to_json
from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.registry.uris import RUNS_SCHEME, parse_runs_uri
from shipyard.server._http_util import (
    can_write_inline,
    json_response,
    optional_bool,
    optional_str,
    optional_str_dict,
    optional_str_list,
    query,
    read_json_object,
    require_str,
    run_short_write,
)
from shipyard.server.api.models import (
    AUDIT_FIELDS,
    AUDIT_QUERY,
    FREED,
    MODEL,
    freed,
    max_results_of,
    name_of,
    reason_of,
    user_of,
)
from shipyard.server.api.schemas import (
    BOOLEAN,
    EMPTY,
    INTEGER,
    MODEL_STAGE,
    MODEL_VERSION_STATUS,
    NULLABLE_STRING,
    STRING,
    STRING_MAP,
    array,
    obj,
    page,
    ref,
)
from shipyard.server.auth import authorize, authorize_stage_change, principal_of
from shipyard.server.routing import ApiRouter, QueryParam
from shipyard.store.registry import STORAGE_OWNER_PREFIX

if TYPE_CHECKING:
    from shipyard.workspace import Workspace

router = ApiRouter(tag="model-versions")

VERSIONS = MODEL + "/versions"
VERSION = VERSIONS + "/{version}"
DEFAULT_MAX_VERSIONS = 10000

_VERSION = obj({"model_version": ref("ModelVersion")}, ("model_version",))
_VERSIONS = obj({"model_versions": array(ref("ModelVersion"))}, ("model_versions",))


def routes(ws: Workspace) -> list[BaseRoute]:
    """The model-version endpoints bound to ``ws``."""
    return router.routes(ws)


def version_of(request: Request) -> int:
    """The ``version`` path parameter: a whole number (the store checks its range)."""
    raw = str(request.path_params["version"])
    if raw.isascii() and raw.isdigit():
        return int(raw)
    raise InvalidInput(
        f"model version {raw!r} is not valid; versions are whole numbers from 1, as in "
        "models:/churn/3."
    )


# ------------------------------------------------------------------------------ register


def _source_files(body: Mapping[str, Any], source: str) -> tuple[str, str, str | None]:
    """Whose files to register, at which path, and the run to record: ``artifact_owner``,
    ``artifact_path`` and ``run_id``, by default the run and path of a ``runs:/<run_id>/<path>``
    source (an explicit ``"run_id": null`` records no run)."""
    owner = optional_str(body, "artifact_owner")
    path = optional_str(body, "artifact_path")
    run_id = optional_str(body, "run_id")
    if owner is None or path is None or ("run_id" not in body and source.startswith(RUNS_SCHEME)):
        source_run, source_path = parse_runs_uri(source)
        owner = source_run if owner is None else owner
        path = source_path if path is None else path
        run_id = source_run if "run_id" not in body else run_id
    if owner.startswith(STORAGE_OWNER_PREFIX):
        raise InvalidInput(
            f"artifact_owner {owner!r} holds another model version's files; register from the "
            "run the files were logged to (source runs:/<run_id>/<path>)."
        )
    return validation.run_id(owner), path, run_id


@router.post(
    VERSIONS,
    action="write",
    resource="model",
    resource_param="name",
    summary="Register a model version",
    request=obj(
        {
            "source": {**STRING, "description": "Recorded as given: runs:/<run_id>/<path>."},
            "artifact_owner": {
                **STRING,
                "description": "The run whose files are registered (default: the run of source).",
            },
            "artifact_path": {
                **STRING,
                "description": "The package's folder or file in that "
                "run (default: the path of source).",
            },
            "run_id": {
                **NULLABLE_STRING,
                "description": "The run recorded for lineage (default: the run of source; "
                "null: none).",
            },
            "description": STRING,
            "tags": STRING_MAP,
            "user_id": AUDIT_FIELDS["user_id"],
        },
        ("source",),
    ),
    response=_VERSION,
    status=201,
)
async def create_model_version(request: Request, ws: Workspace) -> Response:
    """Register a run's files as the next version of the model, creating the model if needed.
    The version gets its own copy of the files' index entries (the bytes are shared), so it
    outlives the run. Needs ``write`` on the model and ``read`` on the run."""
    name = name_of(request)
    body = await read_json_object(request)
    source = require_str(body, "source")
    owner, path, run_id = _source_files(body, source)
    await authorize(request, "read", f"run:{owner}")
    description = optional_str(body, "description")
    tags = optional_str_dict(body, "tags") or None
    user_id = user_of(request, body)
    # One atomic store write of about a millisecond: on a SQLite file, on the event loop.
    version = await run_short_write(
        can_write_inline(ws.store),
        lambda: ws.registry.create_model_version(
            name,
            source,
            artifact_owner=owner,
            artifact_path=path,
            run_id=run_id,
            description=description,
            tags=tags,
            user_id=user_id,
        ),
    )
    return json_response({"model_version": to_json(version)}, 201)


# ------------------------------------------------------------------------------ one version


@router.get(
    VERSION,
    action="read",
    resource="model",
    resource_param="name",
    summary="Get a model version",
    response=_VERSION,
)
async def get_model_version(request: Request, ws: Workspace) -> Response:
    """One version with its tags and aliases."""
    version = await run_in_threadpool(
        ws.registry.get_model_version, name_of(request), version_of(request)
    )
    return json_response({"model_version": to_json(version)})


@router.patch(
    VERSION,
    action="write",
    resource="model",
    resource_param="name",
    summary="Describe a model version",
    request=obj({"description": NULLABLE_STRING}, ("description",)),
    response=_VERSION,
)
async def update_model_version(request: Request, ws: Workspace) -> Response:
    """Replace the version's description (``null`` clears it)."""
    name, number = name_of(request), version_of(request)
    body = await read_json_object(request)
    if "description" not in body:
        raise InvalidInput(
            "Missing value for required parameter 'description'. Send "
            '{"description": "..."}, or {"description": null} to clear it.'
        )
    description = optional_str(body, "description")
    version = await run_in_threadpool(
        lambda: ws.registry.update_model_version(name, number, description=description)
    )
    return json_response({"model_version": to_json(version)})


@router.put(
    VERSION + "/status",
    action="write",
    resource="model",
    resource_param="name",
    summary="Set a model version's status",
    request=obj(
        {"status": MODEL_VERSION_STATUS, "status_message": STRING, **AUDIT_FIELDS}, ("status",)
    ),
    response=_VERSION,
)
async def set_model_version_status(request: Request, ws: Workspace) -> Response:
    """Change a version's registration status (MLflow's states; Shipyard registers
    synchronously, so versions start ``READY``)."""
    name, number = name_of(request), version_of(request)
    body = await read_json_object(request)
    status = require_str(body, "status")
    message = optional_str(body, "status_message")
    user_id, reason = user_of(request, body), reason_of(body)
    version = await run_in_threadpool(
        lambda: ws.registry.set_model_version_status(
            name, number, status, status_message=message, user_id=user_id, reason=reason
        )
    )
    return json_response({"model_version": to_json(version)})


@router.put(
    VERSION + "/stage",
    action="write",
    resource="model",
    resource_param="name",
    summary="Move a model version to a stage",
    request=obj(
        {
            "stage": {**MODEL_STAGE, "description": "Any case is accepted."},
            "archive_existing_versions": BOOLEAN,
            **AUDIT_FIELDS,
        },
        ("stage",),
    ),
    response=_VERSION,
)
async def transition_model_version_stage(request: Request, ws: Workspace) -> Response:
    """Move a version to an MLflow stage; ``archive_existing_versions`` archives the other
    versions in that stage. Kept for MLflow compatibility: prefer aliases."""
    name, number = name_of(request), version_of(request)
    body = await read_json_object(request)
    stage = require_str(body, "stage")
    await authorize_stage_change(request, name, stage, version=number)
    archive = optional_bool(body, "archive_existing_versions")
    user_id, reason = user_of(request, body), reason_of(body)
    version = await run_in_threadpool(
        lambda: ws.registry.transition_model_version_stage(
            name,
            number,
            stage,
            archive_existing_versions=archive,
            user_id=user_id,
            reason=reason,
        )
    )
    return json_response({"model_version": to_json(version)})


def _delete_version(
    ws: Workspace, name: str, number: int, user_id: str, reason: str | None
) -> dict[str, Any]:
    Registry(ws).refuse_if_referenced(ws.registry.get_model_version(name, number))
    digests = ws.registry.delete_model_version(name, number, user_id=user_id, reason=reason)
    return freed(ws, digests)


@router.delete(
    VERSION,
    action="write",
    resource="model",
    resource_param="name",
    summary="Delete a model version",
    query=AUDIT_QUERY,
    response=FREED,
)
async def delete_model_version(request: Request, ws: Workspace) -> Response:
    """Delete a version and its files, freeing the bytes nothing else references. Refused
    (409 ``INVALID_STATE``, ``details.references``) while an alias points at it or a
    deployment serves it. Its number is
    never reused."""
    name, number, q = name_of(request), version_of(request), query(request)
    user_id, reason = user_of(request, q), reason_of(q)
    answer = await run_in_threadpool(_delete_version, ws, name, number, user_id, reason)
    return json_response(answer)


@router.put(
    VERSION + "/tags/{key:path}",
    action="write",
    resource="model",
    resource_param="name",
    summary="Set a model version tag",
    request=obj({"value": STRING}, ("value",)),
    response=EMPTY,
)
async def set_model_version_tag(request: Request, ws: Workspace) -> Response:
    """Set (or overwrite) one tag of a version."""
    name, number = name_of(request), version_of(request)
    value = require_str(await read_json_object(request), "value", allow_empty=True)
    key = request.path_params["key"]
    await run_in_threadpool(ws.registry.set_model_version_tag, name, number, key, value)
    return json_response({})


@router.delete(
    VERSION + "/tags/{key:path}",
    action="write",
    resource="model",
    resource_param="name",
    summary="Delete a model version tag",
    response=EMPTY,
)
async def delete_model_version_tag(request: Request, ws: Workspace) -> Response:
    """Remove one tag from a version."""
    name, number, key = name_of(request), version_of(request), request.path_params["key"]
    await run_in_threadpool(ws.registry.delete_model_version_tag, name, number, key)
    return json_response({})


@router.get(
    VERSION + "/references",
    action="read",
    resource="model",
    resource_param="name",
    summary="What refers to a model version",
    response=obj({"references": array(STRING)}, ("references",)),
)
async def version_references(request: Request, ws: Workspace) -> Response:
    """What forbids deleting the version, in words (``"alias 'champion'"``); empty when it
    may be deleted."""
    found = await run_in_threadpool(
        ws.registry.version_references, name_of(request), version_of(request)
    )
    return json_response({"references": found})


# ------------------------------------------------------------------------------ approvals


@router.post(
    VERSION + "/approvals",
    action="write",
    resource="model",
    resource_param="name",
    summary="Approve a model version",
    request=obj(
        {
            "approver": {
                **STRING,
                "description": "Who approves (required unless the server "
                "authenticated the caller, who is then the approver).",
            },
            "comment": STRING,
        }
    ),
    response=obj({"approval": ref("Approval")}, ("approval",)),
)
async def approve_model_version(request: Request, ws: Workspace) -> Response:
    """Record an approval of the version. Approving again keeps (and answers) the first
    approval; aliases gated by an approval policy count distinct approvers."""
    name, number = name_of(request), version_of(request)
    body = await read_json_object(request)
    principal = principal_of(request)
    approver = principal.name if principal.authenticated else require_str(body, "approver")
    comment = optional_str(body, "comment")
    approval = await run_in_threadpool(
        lambda: ws.registry.approve_model_version(name, number, approver, comment=comment)
    )
    return json_response({"approval": to_json(approval)})


@router.get(
    VERSION + "/approvals",
    action="read",
    resource="model",
    resource_param="name",
    summary="List a model version's approvals",
    response=obj({"approvals": array(ref("Approval"))}, ("approvals",)),
)
async def list_approvals(request: Request, ws: Workspace) -> Response:
    """The version's approvals, oldest first."""
    found = await run_in_threadpool(
        ws.registry.list_approvals, name_of(request), version_of(request)
    )
    return json_response({"approvals": to_json(found)})


# ------------------------------------------------------------------------------ across models


@router.post(
    "/api/v1/model-versions/search",
    action="read",
    resource="model",
    summary="Search model versions",
    request=obj(
        {
            "filter": STRING,
            "max_results": INTEGER,
            "order_by": array(STRING),
            "page_token": STRING,
        }
    ),
    response=page("model_versions", ref("ModelVersion")),
)
async def search_model_versions(request: Request, ws: Workspace) -> Response:
    """Versions matching a filter such as ``name = 'churn' AND version_number > 2``,
    ``run_id = '...'``, ``tags.k = 'v'`` or ``storage_owner = 'mv-...'``; by name, then
    newest first, unless ``order_by`` says otherwise."""
    body = await read_json_object(request)
    filter_string = optional_str(body, "filter", "") or ""
    max_results = max_results_of(body, DEFAULT_MAX_VERSIONS)
    order_by = optional_str_list(body, "order_by") or None
    page_token = optional_str(body, "page_token") or None
    result = await run_in_threadpool(
        ws.registry.search_model_versions, filter_string, max_results, order_by, page_token
    )
    return json_response(
        {"model_versions": to_json(result.items), "next_page_token": result.next_page_token}
    )


@router.get(
    "/api/v1/model-versions/trained-on",
    action="read",
    resource="model",
    summary="Model versions trained on a dataset",
    query=(
        QueryParam("dataset_name", STRING, "The dataset's name.", True),
        QueryParam("dataset_digest", STRING, "Only this digest of it (default: any)."),
    ),
    response=_VERSIONS,
)
async def versions_trained_on(request: Request, ws: Workspace) -> Response:
    """Versions whose run recorded the dataset as an input, by model name then version."""
    q = query(request)
    dataset_name = require_str(q, "dataset_name")
    dataset_digest = optional_str(q, "dataset_digest")
    found = await run_in_threadpool(ws.registry.versions_trained_on, dataset_name, dataset_digest)
    return json_response({"model_versions": to_json(found)})
