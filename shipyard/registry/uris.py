"""Model URIs: ``models:/name/3``, ``models:/name@alias``, ``models:/name/latest`` (and MLflow's
``models:/name/Staging``), and the ``runs:/<run_id>/<path>`` sources versions are registered from.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard import validation
from shipyard.errors import InvalidInput

MODELS_SCHEME = "models:/"
RUNS_SCHEME = "runs:/"
URI_FORMS = "models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/latest"
_STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}


@dataclass(frozen=True, slots=True)
class ModelUri:
    """A parsed ``models:/`` URI: exactly one of ``version``, ``alias``, ``stage`` is set, or
    none of them for ``latest``."""

    name: str
    version: int | None = None
    alias: str | None = None
    stage: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.version is None and self.alias is None and self.stage is None


def parse_model_uri(uri: str) -> ModelUri:
    """Parse a ``models:/`` URI; ``InvalidInput`` names the accepted forms otherwise.

    >>> parse_model_uri("models:/churn@champion")
    ModelUri(name='churn', version=None, alias='champion', stage=None)
    """
    if not isinstance(uri, str) or not uri.startswith(MODELS_SCHEME):
        raise InvalidInput(f"{uri!r} is not a model URI; write {URI_FORMS}.")
    rest = uri[len(MODELS_SCHEME) :].lstrip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if not name or not alias or "/" in name or "/" in alias:
            raise InvalidInput(f"Model URI {uri!r} is malformed; write models:/<name>@<alias>.")
        return ModelUri(name=name, alias=alias)
    name, sep, ref = rest.partition("/")
    if not name or not sep or not ref or "/" in ref:
        raise InvalidInput(
            f"Model URI {uri!r} is malformed; write {URI_FORMS}. (Logged models, "
            "models:/m-<id>, are not registry versions.)"
        )
    if ref.isascii() and ref.isdigit():
        version = int(ref)
        if version < 1:
            raise InvalidInput(f"Model URI {uri!r} names version {ref}; versions start at 1.")
        return ModelUri(name=name, version=version)
    if ref.lower() == "latest":
        return ModelUri(name=name)
    if ref.lower() in _STAGES:
        return ModelUri(name=name, stage=_STAGES[ref.lower()])
    raise InvalidInput(
        f"Model URI {uri!r} ends in {ref!r}, which is neither a version number, 'latest' nor a "
        f"stage; write {URI_FORMS}."
    )


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run_id>/<path>`` -> ``(run_id, path)`` (``path`` may be ``""``: the whole run)."""
    if not isinstance(uri, str) or not uri.startswith(RUNS_SCHEME):
        raise InvalidInput(
            f"model source {uri!r} is not supported; register files logged to a run, as in "
            "runs:/<run_id>/model."
        )
    run_id, _, path = uri[len(RUNS_SCHEME) :].lstrip("/").partition("/")
    if not run_id:
        raise InvalidInput(f"model source {uri!r} names no run; write runs:/<run_id>/<path>.")
    validation.run_id(run_id)
    return run_id, validation.artifact_path(path, allow_root=True)
