"""Lineage of registered models, both ways: version -> run -> experiment and dataset inputs, and
dataset -> the versions trained on it.

The run side comes from the tracking store, so a version whose run was deleted for good still
answers (with ``run=None``): the version keeps its ``run_id`` and its own copy of the files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.entities import ModelLineage, ModelVersion
from shipyard.errors import NotFound
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


def versions_trained_on(
    workspace: Workspace, dataset_name: str, dataset_digest: str | None = None
) -> list[ModelVersion]:
    """The versions whose run recorded dataset ``dataset_name`` (of ``dataset_digest``, when
    given) as an input, by model name then version."""
    return workspace.registry.versions_trained_on(dataset_name, dataset_digest)
