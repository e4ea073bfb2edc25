"""MLflow's model registry, versions: ``model-versions/*`` create, get, update, delete, search,
transition-stage, get-download-uri and tags.

A version gets its own copy of its source's artifact-index entries (the bytes are shared by
content), so it outlives the run or logged model it came from. The sources a version can be
created from (:func:`parse_source`):

* ``models:/m-<id>``: a logged model's files (what MLflow 3's ``register_model`` and
  ``log_model(registered_model_name=...)`` send);
* ``runs:/<run_id>/<path>``: a run's files at ``path``, or, when the run has none there, the files
  of the logged model named ``path`` that the run produced (MLflow 3 keeps model files with the
  model, not the run);
* ``models:/<name>/<version>`` (or ``@alias``, ``/latest``): another version's files;
* ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path>`` and
  ``mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts``: what older clients send.

``get-download-uri`` answers ``mlflow-artifacts:/model-versions/<owner>/artifacts[/<path>]``: the
version's own files, served read-only by the artifact service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request

from shipyard import validation
from shipyard.entities import LoggedModelStatus
from shipyard.errors import InvalidInput, InvalidState, NotFound
from shipyard.registry import Registry, parse_model_uri, parse_runs_uri
from shipyard.server.auth import Action, authorize_stage_change
from shipyard.server.mlflow import _convert
from shipyard.server.mlflow._wire import Args, Endpoint
from shipyard.server.mlflow.artifacts import locate, version_download_uri
from shipyard.server.mlflow.registered_models import model_name, version_number
from shipyard.store.logged_models import check_model_id
from shipyard.workspace import Workspace

DEFAULT_SEARCH_RESULTS = 10000
MAX_SEARCH_RESULTS = 200000
MLFLOW_ARTIFACTS_SCHEME = "mlflow-artifacts:"
SOURCE_FORMS = (
    "models:/<logged model id>, runs:/<run_id>/<path>, models:/<name>/<version> or "
    "mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path>"
)

SourceKind = Literal["logged-model", "run", "model"]


@dataclass(frozen=True, slots=True)
class Source:
    """What a version's ``source`` names: a logged model (``ident`` = its id), a run's files at
    ``path`` (``ident`` = the run id), or another version (``ident`` = the model URI)."""

    kind: SourceKind
    ident: str
    path: str = ""

    @property
    def resource(self) -> str:
        """The resource a caller must be able to read to copy these files."""
        if self.kind == "model":
            return f"model:{parse_model_uri(self.ident).name}"
        return f"{self.kind}:{self.ident}"


def parse_source(source: str) -> Source:
    """Parse a version source (see the module docstring); ``InvalidInput`` for other forms."""
    if source.startswith("models:/"):
        rest = source[len("models:/") :].lstrip("/")
        if rest.startswith("m-") and "/" not in rest and "@" not in rest:
            return Source("logged-model", check_model_id(rest))
        parse_model_uri(source)
        return Source("model", source)
    if source.startswith("runs:/"):
        rid, path = parse_runs_uri(source)
        return Source("run", rid, path)
    if source.startswith(MLFLOW_ARTIFACTS_SCHEME):
        where = locate(source[len(MLFLOW_ARTIFACTS_SCHEME) :].lstrip("/"), allow_root=True)
        if where is not None and where.kind != "model-version":
            return Source(where.kind, where.owner, where.rel)
    raise InvalidInput(
        f"model version source {source!r} is not one Shipyard can register; use {SOURCE_FORMS}."
    )


@dataclass(frozen=True, slots=True)
class _Files:
    owner: str
    path: str
    run_id: str | None
    model_id: str | None = None


def _logged_model_files(ws: Workspace, mid: str, path: str = "") -> _Files:
    model = ws.logged_models.get_logged_model_files(mid)
    if model.status != LoggedModelStatus.READY:
        raise InvalidState(
            f"Logged model {mid} is {model.status}, not LOGGED_MODEL_READY, so its files may be "
            "incomplete. Finish uploading them and finalize it (PATCH logged-models/"
            f"{mid} with status LOGGED_MODEL_READY), or log the model again."
        )
    return _Files(model.model_id, path, model.source_run_id, mid)


def _run_files(ws: Workspace, rid: str, path: str) -> _Files:
    run = ws.store.get_run(rid)
    if not path or ws.artifacts.list(rid, path) or _is_file(ws, rid, path):
        return _Files(rid, path, rid)
    name, _, rest = path.partition("/")
    page = ws.logged_models.search_logged_models(
        [run.info.experiment_id],
        f"name = '{_quote(name)}' AND source_run_id = '{rid}'",
        max_results=1,
    )
    if page.items:
        return _logged_model_files(ws, page.items[0].model_id, rest)
    raise NotFound(
        f"Run {rid} has no files at {path!r} and produced no logged model named {name!r}; check "
        "the path the model was logged under (mlflow.<flavor>.log_model(..., name=...))."
    )


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _is_file(ws: Workspace, owner: str, path: str) -> bool:
    try:
        ws.artifacts.stat(owner, path)
    except NotFound:
        return False
    return True


def _files(ws: Workspace, source: Source) -> _Files:
    if source.kind == "logged-model":
        return _logged_model_files(ws, source.ident, source.path)
    if source.kind == "run":
        return _run_files(ws, source.ident, source.path)
    version = Registry(ws).resolve(source.ident)
    return _Files(version.storage_owner, version.storage_path, version.run_id)


def create_model_version(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST model-versions/create {name, source, run_id?, model_id?, tags[], description?}``
    -> ``{model_version}`` (``READY`` at once: the files are registered synchronously)."""
    name = model_name(args)
    source = args.require_string("source")
    files = _files(ws, parse_source(source))
    run_id = args.string("run_id") or None
    if run_id is not None:
        validation.run_id(run_id)
        if files.run_id is not None and run_id != files.run_id:
            raise InvalidInput(
                f"run_id {run_id!r} does not match the run that produced source {source!r} "
                f"({files.run_id}); send the source's run, or leave run_id out."
            )
    model_id = args.string("model_id") or None
    if model_id is not None and model_id != files.model_id:
        raise InvalidInput(
            f"model_id {model_id!r} does not match source {source!r}; send source "
            f"models:/{model_id} to register that logged model, or leave model_id out."
        )
    version = ws.registry.create_model_version(
        name,
        source,
        artifact_owner=files.owner,
        artifact_path=files.path,
        run_id=run_id or files.run_id,
        description=args.string("description"),
        tags=_convert.pairs(args.objects("tags")) or None,
        user_id=args.user,
    )
    return {"model_version": _convert.model_version(version)}


def _source_resources(args: Args) -> list[tuple[Action, str]]:
    source = args.string("source")
    return [("read", parse_source(source).resource)] if source else []


def get_model_version(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET model-versions/get?name=&version=`` -> ``{model_version}``."""
    version = ws.registry.get_model_version(model_name(args), version_number(args))
    return {"model_version": _convert.model_version(version)}


def update_model_version(ws: Workspace, args: Args) -> dict[str, Any]:
    """``PATCH model-versions/update {name, version, description}`` -> ``{model_version}``."""
    name, number = model_name(args), version_number(args)
    if args.has("description"):
        version = ws.registry.update_model_version(
            name, number, description=args.string("description")
        )
    else:  # nothing to change, but an unknown version is still a 404
        version = ws.registry.get_model_version(name, number)
    return {"model_version": _convert.model_version(version)}


def delete_model_version(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE model-versions/delete {name, version}``: delete it for good and free the bytes
    nothing else uses. Refused while an alias points at it."""
    Registry(ws).delete_version(model_name(args), version_number(args), user=args.user)
    return {}


def search_model_versions(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET model-versions/search?filter=&max_results=&order_by=&page_token=`` ->
    ``{model_versions, next_page_token}``."""
    max_results = args.integer("max_results", DEFAULT_SEARCH_RESULTS)
    validation.max_results(max_results, MAX_SEARCH_RESULTS)
    page = ws.registry.search_model_versions(
        args.string("filter", ""),
        max_results,
        args.strings("order_by") or None,
        args.string("page_token") or None,
    )
    out: dict[str, Any] = {}
    if page.items:
        out["model_versions"] = [_convert.model_version(v) for v in page.items]
    if page.next_page_token:
        out["next_page_token"] = page.next_page_token
    return out


def transition_stage(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST model-versions/transition-stage {name, version, stage,
    archive_existing_versions}`` -> ``{model_version}`` (stages are deprecated; prefer
    aliases)."""
    version = Registry(ws).transition_stage(
        model_name(args),
        version_number(args),
        args.require_string("stage"),
        archive_existing_versions=args.boolean("archive_existing_versions"),
        user=args.user,
    )
    return {"model_version": _convert.model_version(version)}


async def _stage_guard(request: Request, args: Args) -> None:
    """A transition to ``Production``, or of the Production version out of it, needs ``deploy``
    on the model."""
    name, stage = args.raw("name"), args.raw("stage")
    if isinstance(name, str) and isinstance(stage, str):
        await authorize_stage_change(request, name, stage, version=args.raw("version"))


def get_download_uri(ws: Workspace, args: Args) -> dict[str, Any]:
    """``GET model-versions/get-download-uri?name=&version=`` -> ``{artifact_uri}``: the
    version's own files, below ``mlflow-artifacts:/model-versions/...``."""
    version = ws.registry.get_model_version(model_name(args), version_number(args))
    return {"artifact_uri": version_download_uri(version.storage_owner, version.storage_path)}


def set_model_version_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``POST model-versions/set-tag {name, version, key, value}``."""
    ws.registry.set_model_version_tag(
        model_name(args),
        version_number(args),
        args.require_string("key"),
        args.require_string("value", allow_empty=True),
    )
    return {}


def delete_model_version_tag(ws: Workspace, args: Args) -> dict[str, Any]:
    """``DELETE model-versions/delete-tag {name, version, key}``."""
    ws.registry.delete_model_version_tag(
        model_name(args), version_number(args), args.require_string("key")
    )
    return {}


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "/model-versions/create",
        ("POST",),
        create_model_version,
        "write",
        "model",
        also=_source_resources,
        inline=True,
    ),
    Endpoint("/model-versions/get", ("GET",), get_model_version, "read", "model"),
    Endpoint("/model-versions/update", ("PATCH",), update_model_version, "write", "model"),
    Endpoint("/model-versions/delete", ("DELETE",), delete_model_version, "write", "model"),
    Endpoint("/model-versions/search", ("GET", "POST"), search_model_versions, "read", "model:*"),
    Endpoint(
        "/model-versions/transition-stage",
        ("POST",),
        transition_stage,
        "write",
        "model",
        guard=_stage_guard,
    ),
    Endpoint("/model-versions/get-download-uri", ("GET",), get_download_uri, "read", "model"),
    Endpoint("/model-versions/set-tag", ("POST",), set_model_version_tag, "write", "model"),
    Endpoint("/model-versions/delete-tag", ("DELETE",), delete_model_version_tag, "write", "model"),
]
"""The specs of every model-version endpoint."""
