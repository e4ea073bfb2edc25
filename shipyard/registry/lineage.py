"""Lineage of registered models, both ways: version -> run -> experiment and dataset inputs, and
dataset -> the versions trained on it.

The run side comes from the tracking store, so a version whose run was deleted for good still
answers (with ``run=None``): the version keeps its ``run_id`` and its own copy of the files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.entities import DatasetInput, ModelLineage, ModelVersion, parse_dataset_uri
from shipyard.errors import InvalidInput, NotFound
from shipyard.registry.registry import Registry
from shipyard.registry.uris import parse_model_uri

if TYPE_CHECKING:  # pragma: no cover
    from shipyard.workspace import Workspace


def lineage_of(workspace: Workspace, model: str | ModelVersion) -> ModelLineage:
    """Where a version came from: ``model`` is a ``models:/`` URI or a version.

    >>> lineage_of(ws, "models:/churn/3").datasets[0].dataset.name  # doctest: +SKIP
    'customers'
    """
    version = (
        Registry(workspace).resolve(parse_model_uri(model)) if isinstance(model, str) else model
    )
    if version.run_id is None:
        return ModelLineage(model_version=version)
    try:
        run = workspace.store.get_run(version.run_id)
    except NotFound:  # the run was deleted for good; the version lives on
        return ModelLineage(model_version=version)
    try:
        experiment = workspace.store.get_experiment(run.info.experiment_id)
    except NotFound:  # pragma: no cover - a run's experiment is purged with it
        experiment = None
    return ModelLineage(
        model_version=version, run=run.info, experiment=experiment, datasets=run.inputs
    )


TRAINING = "training"


def training_dataset(workspace: Workspace, model: str | ModelVersion) -> tuple[str, int]:
    """``(name, version)`` of the dataset version a model version was trained on: the input of
    its run whose source is a Shipyard dataset version (``datasets:/NAME/VERSION``), the one
    with context ``training`` when there are several. ``InvalidInput`` says why there is none
    (no run, no dataset version among its inputs, several training ones) and what to give
    instead."""
    lineage = lineage_of(workspace, model)
    mv = lineage.model_version
    what = f"model {mv.name!r} version {mv.version}"
    fix = "name the dataset version itself (--reference-dataset NAME:VERSION)"
    if lineage.run is None:
        raise InvalidInput(f"{what} has no run, so its training data is not known; {fix}.")
    found = [(i, ref) for i in lineage.datasets if (ref := _dataset_version(i)) is not None]
    training = [(i, ref) for i, ref in found if i.tags.get("mlflow.data.context") == TRAINING]
    chosen = training or (found if len(found) == 1 else [])
    if len(chosen) == 1:
        return chosen[0][1]
    if not found:
        raise InvalidInput(
            f"run {lineage.run.run_id} of {what} recorded no Shipyard dataset version as an "
            f"input (Datasets(ws).log_input(run_id, NAME, context='training') records one); {fix}."
        )
    named = ", ".join(f"{n}:{v}" for _, (n, v) in (training or found))
    raise InvalidInput(
        f"run {lineage.run.run_id} of {what} recorded several dataset versions "
        f"({named}) and {'several' if training else 'none'} with context 'training'; {fix}."
    )


def _dataset_version(item: DatasetInput) -> tuple[str, int] | None:
    """The dataset version an input names (``datasets:/NAME/VERSION``), else ``None``."""
    try:
        name, version = parse_dataset_uri(item.dataset.source)
    except InvalidInput:  # another source: a file, a table, MLflow's own datasets
        return None
    return None if version is None else (name, version)


def versions_trained_on(
    workspace: Workspace, dataset_name: str, dataset_digest: str | None = None
) -> list[ModelVersion]:
    """The versions whose run recorded dataset ``dataset_name`` (of ``dataset_digest``, when
    given) as an input, by model name then version."""
    return workspace.registry.versions_trained_on(dataset_name, dataset_digest)
