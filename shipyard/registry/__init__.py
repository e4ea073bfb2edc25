"""The model registry service (a services-layer package over the registry store).

* :class:`Registry`: models, versions, aliases, approvals, audit trail, deletion that frees bytes.
* :func:`resolve_model_uri`: ``models:/name/3`` / ``@alias`` / ``/latest`` -> where the package
  files are in ``workspace.artifacts``.
* :func:`lineage_of` / :func:`versions_trained_on` / :func:`training_dataset`: version <-> run
  <-> datasets.
* :func:`render_model_card` / :func:`model_card`: one version's model card (Markdown, HTML).
"""

from __future__ import annotations

from shipyard.registry.card import ModelCard, model_card, render_model_card
from shipyard.registry.lineage import lineage_of, training_dataset, versions_trained_on
from shipyard.registry.registry import ReferenceCheck, Registry, resolve_model_uri
from shipyard.registry.uris import ModelUri, parse_model_uri, parse_runs_uri
from shipyard.store.registry import ALL_ALIASES

__all__ = [
    "ALL_ALIASES",
    "ModelCard",
    "ModelUri",
    "ReferenceCheck",
    "Registry",
    "lineage_of",
    "model_card",
    "parse_model_uri",
    "parse_runs_uri",
    "render_model_card",
    "resolve_model_uri",
    "training_dataset",
    "versions_trained_on",
]
