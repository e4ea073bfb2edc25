"""The nouns of experiment tracking, as plain immutable values.

Stores return these; the SDK hands them to users; the REST layers serialize them with
:func:`to_json` / rebuild them with the ``from_json`` class methods. They carry no behaviour that
touches storage.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LifecycleStage(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class ViewType(StrEnum):
    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    creation_time: int = 0
    last_update_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Experiment:
        return cls(**{k: d[k] for k in _FIELDS[cls] if k in d})


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0
    dataset_name: str | None = None
    dataset_digest: str | None = None
    model_id: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Metric:
        kw = {k: d[k] for k in _FIELDS[cls] if k in d}
        kw["value"] = float(kw["value"])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str
    parent_run_id: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunInfo:
        return cls(**{k: d.get(k) for k in _FIELDS[cls]})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RunData:
    metrics: dict[str, Metric] = field(default_factory=dict)
    """Latest value per key (highest step, then latest timestamp, then largest value)."""
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunData:
        return cls(
            metrics={k: Metric.from_json(m) for k, m in d.get("metrics", {}).items()},
            params=dict(d.get("params", {})),
            tags=dict(d.get("tags", {})),
        )


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str | None = None
    profile: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Dataset:
        return cls(**{k: d[k] for k in _FIELDS[cls] if k in d})


@dataclass(frozen=True, slots=True)
class DatasetInput:
    dataset: Dataset
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DatasetInput:
        return cls(dataset=Dataset.from_json(d["dataset"]), tags=dict(d.get("tags", {})))


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)
    inputs: tuple[DatasetInput, ...] = ()

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Run:
        return cls(
            info=RunInfo.from_json(d["info"]),
            data=RunData.from_json(d.get("data", {})),
            inputs=tuple(DatasetInput.from_json(i) for i in d.get("inputs", [])),
        )


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """One entry of an artifact listing: ``path`` is relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: int | None = None
    digest: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ArtifactInfo:
        return cls(**{k: d[k] for k in _FIELDS[cls] if k in d})


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is ``None`` on the last page."""

    items: list[T]
    next_page_token: str | None = None

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> T:
        return self.items[i]


_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (Experiment, Metric, RunInfo, Dataset, ArtifactInfo)
}


def to_json(value: Any) -> Any:
    """Turn entities (nested in dicts/lists) into JSON-ready values.

    Non-finite floats become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` so the
    output is strict JSON.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Page):
            return {"items": to_json(value.items), "next_page_token": value.next_page_token}
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
