"""The model SDK: ``log_model`` into a run, ``load_model`` from a path, a run or the registry.

    with shipyard.start_run():
        info = shipyard.log_model(pipeline, "model", input_example=X_train[:5],
                                  registered_model_name="churn")
    model = shipyard.load_model(info.model_uri)        # runs:/<run_id>/model
    model = shipyard.load_model("models:/churn@champion")
    model.predict(X_test)                              # the signature is enforced

Packages loaded from a run or the registry are downloaded once into
``<SHIPYARD_HOME>/cache/models/<content sha256>/`` (checked against the manifest's content hash
when they arrive); a warm load reads only the manifest from the store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.paths import clean_path
from shipyard.errors import AlreadyExists, InvalidInput, MissingDependency, NotFound
from shipyard.models.flavors.base import Flavor
from shipyard.models.manifest import MANIFEST, Manifest, verify
from shipyard.models.package import LoadedModel, load_package, save_model
from shipyard.models.signature import Signature

if TYPE_CHECKING:
    from shipyard.tracking.client import Client
    from shipyard.workspace import Workspace

CACHE_FOLDER = "cache/models"
URI_FORMS = (
    "a local folder, runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>@<alias> "
    "or models:/<name>/latest"
)


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`log_model` logged: where, as what, and its registered version if any."""

    model_uri: str
    run_id: str
    artifact_path: str
    flavor: str
    signature: Signature | None
    content_hash: str
    size: int
    requirements: tuple[str, ...]
    registered_model_name: str | None = None
    registered_model_version: Any = None


def log_model(
    model: Any,
    name: str,
    signature: Signature | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    *,
    run_id: str | None = None,
    flavor: str | Flavor | None = None,
    metadata: Mapping[str, Any] | None = None,
    extra_requirements: Iterable[str] = (),
    client: Client | None = None,
    feature_service: str | None = None,
) -> ModelInfo:
    """Save ``model`` as a package and log it as artifacts ``<name>/`` of a run.

    The run is ``run_id``, else the active run; with no active run, one is started (through
    ``client`` when given: a run in experiment ``0``, ended once the model is logged). The
    manifest records the run id, the run's latest metrics and the datasets it used. With
    ``registered_model_name``, the package is also registered as a new version of that model.
    Returns a :class:`ModelInfo` whose ``model_uri`` is ``runs:/<run_id>/<name>``.

    ``feature_service`` names the feature service (:mod:`shipyard.features`) the model's inputs
    come from; it is recorded in the manifest (``metadata.feature_service``), and a model server
    then answers requests that carry only entity keys by fetching the features itself.
    """
    from shipyard.tracking import fluent

    if feature_service is not None:
        if not isinstance(feature_service, str) or not feature_service:
            raise InvalidInput("feature_service must be the name of a feature service.")
        metadata = {**dict(metadata or {}), "feature_service": feature_service}

    path = clean_path(name)
    own_run = False
    if run_id is None:
        active = fluent.active_run()
        if active is not None:
            run_id = active.run_id
        elif client is None:
            run_id = fluent.start_run().run_id
        else:
            # A client of its own, no active run: a run of that client's, ended once logged.
            run_id = client.create_run("0").info.run_id
            own_run = True
    client = client or fluent.get_client()
    run = client.get_run(run_id)
    ws = client.workspace
    if ws.artifacts.list(run_id, path):
        raise AlreadyExists(
            f"Run {run_id} already has artifacts at {path!r}; log the model under another name."
        )
    run_meta: dict[str, Any] = {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "artifact_path": path,
        "metrics": {k: m.value for k, m in sorted(run.data.metrics.items())},
        "datasets": [
            {
                "name": i.dataset.name,
                "digest": i.dataset.digest,
                "source": i.dataset.source,
                "context": i.tags.get("mlflow.data.context"),
            }
            for i in run.inputs
        ],
    }
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        folder = Path(tmp) / "model"
        manifest = save_model(
            model,
            folder,
            signature,
            input_example,
            flavor=flavor,
            metadata={**dict(metadata or {}), **run_meta},
            extra_requirements=extra_requirements,
        )
        client.log_artifacts(run_id, folder, path)
    if own_run:
        client.set_terminated(run_id)
    uri = f"runs:/{run_id}/{path}"
    version = None
    if registered_model_name:
        version = _register(ws, registered_model_name, uri, run_id)
    return ModelInfo(
        model_uri=uri,
        run_id=run_id,
        artifact_path=path,
        flavor=manifest.predict_flavor,
        signature=manifest.signature,
        content_hash=manifest.content_hash,
        size=manifest.size,
        requirements=manifest.requirements,
        registered_model_name=registered_model_name,
        registered_model_version=version,
    )


def _register(ws: Workspace, name: str, source: str, run_id: str) -> Any:
    try:
        from shipyard.registry import Registry  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise MissingDependency(
            "The model registry (shipyard.registry) is not available in this installation; the "
            f"model was logged as {source} but not registered as {name!r}."
        ) from exc
    return Registry(ws).register_model_version(name, source=source, run_id=run_id)


def load_model(
    uri: str | os.PathLike[str], *, workspace: Workspace | None = None, check_content: bool = False
) -> LoadedModel:
    """Load a model package from a local folder, ``runs:/<run_id>/<path>`` or ``models:/...``.

    Returns a :class:`~shipyard.models.LoadedModel` whose ``predict`` enforces the signature.
    Pickle-based flavors (sklearn, PyTorch modules, Python functions) **run code when loaded**:
    load only models you trust. ``workspace`` defaults to the SDK's (``SHIPYARD_*`` settings).
    """
    text = os.fspath(uri)
    if text.startswith("runs:/"):
        run_id, _, path = text[len("runs:/") :].lstrip("/").partition("/")
        if not run_id or not path:
            raise InvalidInput(f"Model URI {text!r} is incomplete; write runs:/<run_id>/<path>.")
        return _load_from_store(_workspace(workspace), run_id, clean_path(path), text)
    if text.startswith("models:/"):
        ws = _workspace(workspace)
        try:
            from shipyard.registry import (  # type: ignore[attr-defined,unused-ignore]
                resolve_model_uri,
            )
        except ImportError as exc:
            raise MissingDependency(
                f"Cannot resolve {text!r}: the model registry (shipyard.registry) is not "
                "available in this installation."
            ) from exc
        owner, path = resolve_model_uri(ws, text)
        return _load_from_store(ws, owner, path, text)
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        raise InvalidInput(f"Model URI {text!r} has an unknown scheme; pass {URI_FORMS}.")
    return load_package(Path(text), check_content=check_content, uri=os.fspath(uri))


def _workspace(workspace: Workspace | None) -> Workspace:
    if workspace is not None:
        return workspace
    from shipyard.tracking import fluent

    return fluent.get_client().workspace


def _load_from_store(ws: Workspace, owner: str, path: str, uri: str) -> LoadedModel:
    manifest_path = f"{path}/{MANIFEST}" if path else MANIFEST
    try:
        with ws.artifacts.open(owner, manifest_path) as f:
            manifest = Manifest.parse(f.read(), f"{uri}/{MANIFEST}")
    except NotFound:
        converted = _load_mlflow_folder(ws, owner, path, uri)
        if converted is not None:
            return converted
        raise NotFound(
            f"{uri} holds no Shipyard model package (no {MANIFEST} at {path!r} of {owner}). "
            "Check the run id and the name the model was logged under."
        ) from None
    digest = manifest.content_hash
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput(
            f"{uri}/{MANIFEST} has no valid content hash; the package is damaged, log it again."
        )
    cache = ws.settings.home / CACHE_FOLDER
    folder = cache / digest
    if not folder.is_dir():
        _download(ws, owner, path, folder, manifest, uri)
    return load_package(folder, manifest=manifest, uri=uri)


def _load_mlflow_folder(ws: Workspace, owner: str, path: str, uri: str) -> LoadedModel | None:
    """Load an MLflow model folder (``MLmodel`` at ``path``), as ``mlflow.<flavor>.log_model``
    writes them through Shipyard's MLflow API, converted into a Shipyard package in the cache
    (see :mod:`shipyard.models.mlflow_import`). ``None`` when there is no ``MLmodel`` there."""
    from shipyard.models.mlflow_import import MLMODEL, convert_mlflow_model

    try:
        mlmodel = ws.artifacts.stat(owner, f"{path}/{MLMODEL}" if path else MLMODEL)
    except NotFound:
        return None
    if not mlmodel.digest:  # pragma: no cover - every store records digests
        return None
    # An MLmodel file names its model (model_uuid, utc_time_created): its digest keys the cache.
    folder = ws.settings.home / CACHE_FOLDER / f"mlflow-{mlmodel.digest}"
    if not folder.is_dir():

        def convert(staging: Path) -> Path:
            root = ws.artifacts.download(owner, path, staging / "src")
            convert_mlflow_model(root, staging / "package")
            return staging / "package"

        _fill_cache(folder, convert)
    return load_package(folder, uri=uri)


def _download(
    ws: Workspace, owner: str, path: str, folder: Path, manifest: Manifest, uri: str
) -> None:
    """Fetch the package into the cache: download beside it, verify, rename into place."""

    def fetch(staging: Path) -> Path:
        root = ws.artifacts.download(owner, path, staging)
        try:
            verify(root, manifest)
        except InvalidInput as exc:
            raise InvalidInput(f"{uri}: {exc.message}") from None
        return root

    _fill_cache(folder, fetch)


def _fill_cache(folder: Path, build: Callable[[Path], Path]) -> None:
    """Create cache entry ``folder`` atomically: ``build`` makes it in a staging folder beside
    it (and returns it there), which is then renamed into place. A concurrent fill of the same
    entry wins harmlessly; a failure leaves nothing behind."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name[:12]}.", dir=folder.parent))
    try:
        built = build(staging)
        try:
            os.rename(built, folder)
        except OSError:
            if not folder.is_dir():  # not a concurrent fill of the same entry
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


__all__ = ["ModelInfo", "load_model", "log_model"]
