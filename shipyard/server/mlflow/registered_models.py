"""MLflow's model registry, registered models: ``registered-models/*`` create, get, update,
rename, delete, search, get-latest-versions, tags and aliases.

Handlers call the registry service (:class:`shipyard.registry.Registry`) over the workspace's
registry store, which enforces Shipyard's invariants whoever calls: an alias moves only to a
version with the approvals the model's policy requires (``ApprovalRequired``, answered as MLflow's
400 ``INVALID_PARAMETER_VALUE`` with the store's explanation), a model whose versions an alias
points at can't be deleted, and every creation, rename, alias move and deletion lands in the
audit trail with the request's user (:attr:`Args.user <shipyard.server.mlflow._wire.Args.user>`).

MLflow's prompt registry shares these tables (a model tagged ``mlflow.prompt.is_prompt = 'true'``
is a prompt): a search that says nothing about that tag leaves prompts out, as MLflow's server
does, and ``tags.`mlflow.prompt.is_prompt` != 'true'`` keeps every model without the tag.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from shipyard import validation
from shipyard.errors import InvalidInput
from shipyard.registry import Registry
from shipyard.server.auth import Action, authorize_alias_move
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.store import filters
from shipyard.workspace import Workspace

PROMPT_TAG = "mlflow.prompt.is_prompt"
NOT_A_PROMPT = f"tags.`{PROMPT_TAG}` != 'true'"
DEFAULT_SEARCH_RESULTS = 100
MAX_SEARCH_RESULTS = 1000


def model_name(args: Args, field: str = "name") -> str:
    """A required model name."""
    return args.require_string(field)


def version_number(args: Args) -> int:
    """A required version number: MLflow sends it as a string (``"3"``)."""
    raw = args.raw("version")
    if raw is None or raw == "":
        raise args.missing("version")
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise args.invalid("version", raw, "a version number (1, 2, ...) as a string")
    return raw


def create_registered_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST registered-models/create {name, tags[], description}`` -> ``{registered_model}``;
    400 ``RESOURCE_ALREADY_EXISTS`` if the name is taken (the client then adds a version)."""
    model = Registry(ws).create_model(
        model_name(args),
        description=args.string("description"),
        tags=_convert.pairs(args.objects("tags")) or None,
        user=args.user,
    )
    return {"registered_model": _convert.registered_model(model)}


def get_registered_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET registered-models/get?name=`` -> ``{registered_model}``."""
    model = ws.registry.get_registered_model(model_name(args))
    return {"registered_model": _convert.registered_model(model)}


def update_registered_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``PATCH registered-models/update {name, description}`` -> ``{registered_model}``."""
    name = model_name(args)
    if args.has("description"):
        model = ws.registry.update_registered_model(name, description=args.string("description"))
    else:  # nothing to change, but an unknown model is still a 404
        model = ws.registry.get_registered_model(name)
    return {"registered_model": _convert.registered_model(model)}


def rename_registered_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST registered-models/rename {name, new_name}`` -> ``{registered_model}``."""
    model = Registry(ws).rename_model(
        model_name(args), model_name(args, "new_name"), user=args.user
    )
    return {"registered_model": _convert.registered_model(model)}


def delete_registered_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE registered-models/delete {name}``: delete the model and its versions for good,
    freeing the bytes nothing else uses. Refused while an alias points at a version."""
    Registry(ws).delete_model(model_name(args), user=args.user)
    return {}


def search_registered_models(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET registered-models/search?filter=&max_results=&order_by=&page_token=`` ->
    ``{registered_models, next_page_token}`` (prompts left out unless the filter asks for
    them)."""
    filter_string = args.string("filter", "")
    max_results = args.integer("max_results", DEFAULT_SEARCH_RESULTS)
    validation.max_results(max_results, MAX_SEARCH_RESULTS)
    page = ws.registry.search_registered_models(
        without_prompts(filter_string),
        max_results,
        args.strings("order_by") or None,
        args.string("page_token") or None,
    )
    out: dict[str, Any] = {}
    if page.items:
        out["registered_models"] = [_convert.registered_model(m) for m in page.items]
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def without_prompts(filter_string: str) -> str:
    """``filter_string``, plus a clause leaving prompts out unless it mentions the prompt tag."""
    clauses = filters.parse_registered_model_filter(filter_string)
    if any(c.kind == "tag" and c.key == PROMPT_TAG for c in clauses):
        return filter_string
    return f"{filter_string} AND {NOT_A_PROMPT}" if clauses else NOT_A_PROMPT


def get_latest_versions(ws: Workspace, args: Args) -> dict[str, Any]:
    """``registered-models/get-latest-versions {name, stages[]}`` -> ``{model_versions}``: the
    newest version in each stage (every stage when ``stages`` is empty)."""
    versions = ws.registry.get_latest_versions(model_name(args), args.strings("stages") or None)
    return {"model_versions": [_convert.model_version(v) for v in versions]} if versions else {}


def set_registered_model_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST registered-models/set-tag {name, key, value}``."""
    ws.registry.set_registered_model_tag(
        model_name(args), args.require_string("key"), args.require_string("value", allow_empty=True)
    )
    return {}


def delete_registered_model_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE registered-models/delete-tag {name, key}``; 404 when the model has no such
    tag."""
    ws.registry.delete_registered_model_tag(model_name(args), args.require_string("key"))
    return {}


def set_alias(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST registered-models/alias {name, alias, version}``: point the alias at the version
    (refused without the approvals the model's policy requires)."""
    Registry(ws).set_alias(
        model_name(args), args.require_string("alias"), version_number(args), user=args.user
    )
    return {}


def delete_alias(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE registered-models/alias {name, alias}``."""
    Registry(ws).delete_alias(model_name(args), args.require_string("alias"), user=args.user)
    return {}


async def _alias_guard(request: Request, args: Args) -> None:
    """Moving or deleting a protected alias (production) needs ``deploy`` on the model."""
    name, alias = args.raw("name"), args.raw("alias")
    if isinstance(name, str) and isinstance(alias, str):
        await authorize_alias_move(request, name, alias)


def get_version_by_alias(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET registered-models/alias?name=&alias=`` -> ``{model_version}``. An alias that is not
    set is MLflow's 400 ``INVALID_PARAMETER_VALUE`` (an unknown model stays a 404)."""
    name, alias = model_name(args), args.require_string("alias")
    model = ws.registry.get_registered_model(name)
    if not any(a.alias == alias for a in model.aliases):
        held = ", ".join(a.alias for a in model.aliases)
        listed = f"its aliases are {held}" if held else "it has no aliases"
        raise InvalidInput(
            f"Registered model {name!r} has no alias {alias!r} ({listed}). Set it with "
            f"MlflowClient().set_registered_model_alias({name!r}, {alias!r}, <version>)."
        )
    version = ws.registry.get_model_version_by_alias(name, alias)
    return {"model_version": _convert.model_version(version)}


def _new_name_resource(args: Args) -> list[tuple[Action, str]]:
    """A rename needs ``write`` on the new name too, as ``/api/v1`` asks."""
    new_name = args.string("new_name")
    return [("write", f"model:{new_name}")] if new_name else []


ENDPOINTS: list[Endpoint] = [
    Endpoint("/registered-models/get", ("GET",), get_registered_model, "read", "model"),
    Endpoint("/registered-models/create", ("POST",), create_registered_model, "write", "model"),
    Endpoint("/registered-models/update", ("PATCH",), update_registered_model, "write", "model"),
    Endpoint(
        "/registered-models/rename",
        ("POST",),
        rename_registered_model,
        "write",
        "model",
        also=_new_name_resource,
    ),
    Endpoint("/registered-models/delete", ("DELETE",), delete_registered_model, "write", "model"),
    Endpoint(
        "/registered-models/search", ("GET", "POST"), search_registered_models, "read", "model:*"
    ),
    Endpoint(
        "/registered-models/get-latest-versions",
        ("POST", "GET"),
        get_latest_versions,
        "read",
        "model",
    ),
    Endpoint("/registered-models/set-tag", ("POST",), set_registered_model_tag, "write", "model"),
    Endpoint(
        "/registered-models/delete-tag", ("DELETE",), delete_registered_model_tag, "write", "model"
    ),
    Endpoint("/registered-models/alias", ("GET",), get_version_by_alias, "read", "model"),
    Endpoint(
        "/registered-models/alias", ("POST",), set_alias, "write", "model", guard=_alias_guard
    ),
    Endpoint(
        "/registered-models/alias", ("DELETE",), delete_alias, "write", "model", guard=_alias_guard
    ),
]
"""The specs of every registered-model endpoint."""
