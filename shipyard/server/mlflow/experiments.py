"""MLflow ``experiments/*`` endpoints: create, get, get-by-name, search, update (rename), delete,
restore, and experiment tags.

Each handler parses its fields, makes one store call and returns the MLflow answer. Experiment ids
are decimal strings; anything else is a 400 ``INVALID_PARAMETER_VALUE`` before the store is
touched.
"""

from __future__ import annotations

from typing import Any

from shipyard import validation
from shipyard.entities import ViewType
from shipyard.errors import NotFound
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.workspace import Workspace

VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
"""MLflow's ViewType enum, in proto order (numbers 1, 2, 3)."""

DEFAULT_SEARCH_RESULTS = 1000


def experiment_id(args: Args, name: str = "experiment_id") -> str:
    """A required experiment id: a whole number, sent as a string (or a JSON number)."""
    value = args.raw(name)
    if value is None or value == "":
        raise args.missing(name)
    return validation.experiment_id(value)


def create_experiment(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST experiments/create {name, artifact_location?, tags?}`` -> ``{experiment_id}``."""
    name = args.require_string("name")
    location = args.string("artifact_location") or None
    tags = _convert.pairs(args.objects("tags"))
    return {"experiment_id": ws.store.create_experiment(name, location, tags or None)}


def get_experiment(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET experiments/get?experiment_id=`` -> ``{experiment}``."""
    return {"experiment": _convert.experiment(ws.store.get_experiment(experiment_id(args)))}


def get_experiment_by_name(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET experiments/get-by-name?experiment_name=`` -> ``{experiment}``; 404 when absent
    (the client's ``set_experiment`` then creates it)."""
    name = args.require_string("experiment_name")
    exp = ws.store.get_experiment_by_name(name)
    if exp is None:
        raise NotFound(
            f"Could not find experiment with name '{name}'. Check the spelling, or create it "
            "with mlflow.set_experiment() / experiments/create."
        )
    return {"experiment": _convert.experiment(exp)}


def search_experiments(ws: Workspace, args: Args) -> dict[str, Any]:
    """``experiments/search {max_results, page_token, filter, order_by[], view_type}``."""
    max_results = args.integer("max_results", DEFAULT_SEARCH_RESULTS)
    validation.max_results(max_results, validation.MAX_SEARCH_RESULTS)
    page = ws.store.search_experiments(
        view_type=ViewType(args.enum("view_type", VIEW_TYPES, "ACTIVE_ONLY")),
        max_results=max_results,
        filter_string=args.string("filter", ""),
        order_by=args.strings("order_by") or None,
        page_token=args.string("page_token") or None,
    )
    out: dict[str, Any] = {}
    if page.items:
        out["experiments"] = [_convert.experiment(e) for e in page.items]
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def update_experiment(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST experiments/update {experiment_id, new_name?}``: rename (no-op without a name)."""
    exp_id = experiment_id(args)
    new_name = args.string("new_name")
    if new_name:
        ws.store.rename_experiment(exp_id, new_name)
    else:
        ws.store.get_experiment(exp_id)  # still answer 404 for an unknown id
    return {}


def delete_experiment(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST experiments/delete {experiment_id}``: soft delete, runs included."""
    ws.store.delete_experiment(experiment_id(args))
    return {}


def restore_experiment(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST experiments/restore {experiment_id}``."""
    ws.store.restore_experiment(experiment_id(args))
    return {}


def set_experiment_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST experiments/set-experiment-tag {experiment_id, key, value}``."""
    exp_id = experiment_id(args)
    key = args.require_string("key")
    ws.store.set_experiment_tag(exp_id, key, args.require_string("value", allow_empty=True))
    return {}


def delete_experiment_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST experiments/delete-experiment-tag {experiment_id, key}``."""
    ws.store.delete_experiment_tag(experiment_id(args), args.require_string("key"))
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("/experiments/get-by-name", ("GET",), get_experiment_by_name, "read", "experiment:*"),
    Endpoint("/experiments/get", ("GET",), get_experiment, "read", "experiment"),
    Endpoint("/experiments/create", ("POST",), create_experiment, "write", "experiment:*"),
    Endpoint("/experiments/search", ("GET", "POST"), search_experiments, "read", "experiment:*"),
    Endpoint("/experiments/update", ("POST",), update_experiment, "write", "experiment"),
    Endpoint("/experiments/delete", ("POST",), delete_experiment, "write", "experiment"),
    Endpoint("/experiments/restore", ("POST",), restore_experiment, "write", "experiment"),
    Endpoint(
        "/experiments/set-experiment-tag", ("POST",), set_experiment_tag, "write", "experiment"
    ),
    Endpoint(
        "/experiments/delete-experiment-tag",
        ("POST",),
        delete_experiment_tag,
        "write",
        "experiment",
    ),
]
"""The specs of every experiment endpoint."""
