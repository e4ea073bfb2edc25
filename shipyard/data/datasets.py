"""The module-level datasets API (``shipyard.datasets.register(...)``): thin wrappers over a
:class:`~shipyard.data.Datasets` on the default client's workspace (``shipyard.get_client()``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.data.profile import Profile, ProfileDiff
    from shipyard.data.schema import Schema
    from shipyard.data.service import Datasets
    from shipyard.data.validate import ValidationReport
    from shipyard.entities import DatasetVersion


def service() -> Datasets:
    """The :class:`~shipyard.data.Datasets` of the default client's workspace."""
    from shipyard.data.service import Datasets
    from shipyard.tracking.fluent import get_client

    return Datasets(get_client().workspace)


def register(
    name: str,
    data: Any,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> DatasetVersion:
    """Register a table or file as a version of ``name`` (the existing version if the content
    is already registered). Inside a run, the run is recorded as the version's creator."""
    from shipyard.tracking.fluent import active_run

    if run_id is None and (run := active_run()) is not None:
        run_id = run.info.run_id
    return service().register(name, data, description=description, tags=tags, run_id=run_id)[0]


def get(name: str, version: int | None = None) -> DatasetVersion:
    """A version (the latest when ``version`` is None)."""
    return service().get(name, version)


def load(name: str, version: int | None = None) -> Any:
    """A version's rows as a lazy ``pyarrow.dataset.Dataset``."""
    return service().open(name, version)


def profile(name: str, version: int | None = None) -> Profile:
    """The stored profile of a version."""
    return service().profile(name, version)


def schema(name: str, version: int | None = None) -> Schema:
    """The dataset's schema (user-edited if set, else inferred from the version)."""
    return service().schema(name, version)


def set_schema(name: str, schema: str | Path | Schema | None) -> None:
    """Keep a user-edited schema (YAML file, YAML text or Schema), or forget it with None."""
    service().set_schema(name, schema)


def validate(
    name: str, data: Any, *, version: int | None = None, environment: str | None = None
) -> ValidationReport:
    """Validate a table or file against the dataset's schema; ``.check()`` makes it a gate."""
    return service().validate(name, data, version=version, environment=environment)


def skew(name: str, serving: Any, *, version: int | None = None) -> ProfileDiff:
    """Training-serving skew of a serving window (data or a Profile) against a version."""
    return service().skew(name, serving, version=version)


def log_input(
    name: str, version: int | None = None, *, context: str | None = None
) -> DatasetVersion:
    """Record that the active run read a version (lineage)."""
    from shipyard.tracking.fluent import _active_run_id

    return service().log_input(_active_run_id(), name, version, context=context)
