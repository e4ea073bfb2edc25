"""MLflow 3 logged models: ``logged-models`` create, get, finalize, delete, search, tags, params
and file listing, and ``runs/outputs`` (a run produced a model).

``mlflow.<flavor>.log_model`` creates a model (``LOGGED_MODEL_PENDING``), links it to the run as an
output, uploads its files below the model's ``artifact_uri`` through the artifact service, and
finalizes it ``LOGGED_MODEL_READY``; loading ``runs:/<run>/<name>`` finds it again with a search by
name. Handlers parse, make one call to :attr:`Workspace.logged_models
<shipyard.workspace.Workspace.logged_models>` and serialize the answer.
"""

from __future__ import annotations

from typing import Any

from shipyard import validation
from shipyard.artifacts.paths import clean_path
from shipyard.entities import LoggedModelStatus
from shipyard.server.auth import Action
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.server.mlflow.experiments import experiment_id
from shipyard.server.mlflow.runs import run_id
from shipyard.store.logged_models import (
    DEFAULT_SEARCH_RESULTS,
    DatasetScope,
    LoggedModelOrder,
    check_model_id,
)
from shipyard.workspace import Workspace

STATUSES = tuple(s.value for s in LoggedModelStatus)
"""MLflow's LoggedModelStatus enum in proto order (PENDING=1, READY=2, UPLOAD_FAILED=3)."""


def model_id(args: Args) -> str:
    """The logged model a request names (the path's ``model_id``), checked for shape."""
    return check_model_id(args.require_string("model_id"))


def create_logged_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST logged-models {experiment_id, name?, model_type?, source_run_id?, params[],
    tags[]}`` -> ``{model}`` (status ``LOGGED_MODEL_PENDING``)."""
    model = ws.logged_models.create_logged_model(
        experiment_id(args),
        name=args.string("name") or None,
        model_type=args.string("model_type") or None,
        source_run_id=args.string("source_run_id") or None,
        params=_convert.param_pairs(args.objects("params"), "logged-models create"),
        tags=_convert.pairs(args.objects("tags")),
        creator_id=args.user,
    )
    return {"model": _convert.logged_model(model)}


def get_logged_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET logged-models/{model_id}?allow_deleted=`` -> ``{model}``."""
    model = ws.logged_models.get_logged_model(
        model_id(args), allow_deleted=args.boolean("allow_deleted")
    )
    return {"model": _convert.logged_model(model)}


def finalize_logged_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``PATCH logged-models/{model_id} {status}`` -> ``{model}``: ``LOGGED_MODEL_READY`` once
    the files are uploaded (or ``LOGGED_MODEL_UPLOAD_FAILED``)."""
    mid = model_id(args)
    status = args.enum("status", STATUSES, "")
    if not status:
        raise args.missing("status")
    model = ws.logged_models.finalize_logged_model(
        mid, status, status_message=args.string("status_message")
    )
    return {"model": _convert.logged_model(model)}


def delete_logged_model(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE logged-models/{model_id}``: mark it deleted (its files stay)."""
    ws.logged_models.delete_logged_model(model_id(args))
    return {}


def set_logged_model_tags(ws: Workspace, args: Args) -> dict[str, Any]:
    """``PATCH logged-models/{model_id}/tags {tags[]}``: set (or overwrite) tags."""
    ws.logged_models.set_logged_model_tags(
        model_id(args), _convert.pairs(args.objects("tags"), value_required=True)
    )
    return {}


def delete_logged_model_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE logged-models/{model_id}/tags/{tag_key}``."""
    ws.logged_models.delete_logged_model_tag(model_id(args), args.require_string("tag_key"))
    return {}


def log_logged_model_params(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST logged-models/{model_id}/params {params[]}``: record params (write-once)."""
    ws.logged_models.log_logged_model_params(
        model_id(args), _convert.param_pairs(args.objects("params"), "logged-models params")
    )
    return {}


def _experiment_ids(args: Args) -> list[str]:
    return [validation.experiment_id(e) for e in args.strings("experiment_ids", allow_numbers=True)]


def _dataset(item: Args, name_field: str, digest_field: str) -> DatasetScope:
    return DatasetScope(item.require_string(name_field), item.string(digest_field) or None)


def search_logged_models(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST logged-models/search {experiment_ids[], filter, datasets[], max_results,
    order_by[] {field_name, ascending, dataset_name, dataset_digest}, page_token}`` ->
    ``{models, next_page_token}``."""
    order = []
    for item in args.objects("order_by"):
        dataset = None
        if item.string("dataset_name"):
            dataset = _dataset(item, "dataset_name", "dataset_digest")
        elif item.string("dataset_digest"):
            raise item.missing("dataset_name")
        order.append(
            LoggedModelOrder(
                item.require_string("field_name"), item.boolean("ascending", True), dataset
            )
        )
    page = ws.logged_models.search_logged_models(
        _experiment_ids(args),
        args.string("filter", ""),
        datasets=[_dataset(d, "dataset_name", "dataset_digest") for d in args.objects("datasets")],
        max_results=args.integer("max_results", DEFAULT_SEARCH_RESULTS),
        order_by=order,
        page_token=args.string("page_token") or None,
    )
    out: dict[str, Any] = {}
    if page.items:
        out["models"] = [_convert.logged_model(m) for m in page.items]
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def _read_searched_experiments(args: Args) -> list[tuple[Action, str]]:
    return [("read", f"experiment:{e}") for e in _experiment_ids(args)]


def list_logged_model_artifacts(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET logged-models/{model_id}/artifacts/directories?artifact_directory_path=`` ->
    ``{root_uri, files}`` with paths relative to the model's artifact root (MLflow's web UI)."""
    model = ws.logged_models.get_logged_model(model_id(args), allow_deleted=True)
    rel = clean_path(args.string("artifact_directory_path", ""), allow_root=True)
    out: dict[str, Any] = {"root_uri": model.artifact_uri}
    files = ws.artifacts.list(model.storage_owner, rel)
    if files:
        out["files"] = [_convert.file_info(f, basename=False) for f in files]
    return out


def log_outputs(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST runs/outputs {run_id, models[] {model_id, step}}``: the run produced these
    models."""
    rid = run_id(args)
    outputs = [
        (check_model_id(m.require_string("model_id")), m.integer("step", 0))
        for m in args.objects("models")
    ]
    ws.logged_models.log_run_models(rid, outputs=outputs)
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint("/logged-models", ("POST",), create_logged_model, "write", "experiment"),
    Endpoint(
        "/logged-models/search",
        ("POST",),
        search_logged_models,
        "read",
        "experiment:*",
        also=_read_searched_experiments,
    ),
    Endpoint("/logged-models/{model_id}", ("GET",), get_logged_model, "read", "logged-model"),
    Endpoint(
        "/logged-models/{model_id}", ("PATCH",), finalize_logged_model, "write", "logged-model"
    ),
    Endpoint(
        "/logged-models/{model_id}", ("DELETE",), delete_logged_model, "write", "logged-model"
    ),
    Endpoint(
        "/logged-models/{model_id}/tags",
        ("PATCH",),
        set_logged_model_tags,
        "write",
        "logged-model",
    ),
    Endpoint(
        "/logged-models/{model_id}/tags/{tag_key:path}",
        ("DELETE",),
        delete_logged_model_tag,
        "write",
        "logged-model",
    ),
    Endpoint(
        "/logged-models/{model_id}/params",
        ("POST",),
        log_logged_model_params,
        "write",
        "logged-model",
    ),
    Endpoint(
        "/logged-models/{model_id}/artifacts/directories",
        ("GET",),
        list_logged_model_artifacts,
        "read",
        "logged-model",
    ),
    Endpoint("/runs/outputs", ("POST",), log_outputs, "write", "run"),
]
"""The specs of every logged-model endpoint."""
