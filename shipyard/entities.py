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

from shipyard.errors import InvalidInput

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


# ---------------------------------------------------------------------------- model registry


class ModelVersionStatus(StrEnum):
    """MLflow's registration states; Shipyard registers synchronously, so versions are READY."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class ModelStage(StrEnum):
    """MLflow's deprecated stages, kept only for compatibility (use aliases instead)."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class RegistryAction(StrEnum):
    """What an audit event records (:class:`RegistryEvent`)."""

    MODEL_CREATED = "model_created"
    MODEL_RENAMED = "model_renamed"
    MODEL_DELETED = "model_deleted"
    VERSION_CREATED = "version_created"
    VERSION_DELETED = "version_deleted"
    STATUS_CHANGED = "status_changed"
    STAGE_CHANGED = "stage_changed"
    ALIAS_SET = "alias_set"
    ALIAS_DELETED = "alias_deleted"
    APPROVED = "approved"
    POLICY_CHANGED = "policy_changed"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a model.

    Its package files live in the artifact index under ``storage_owner`` (an id of the form
    ``mv-<32 hex>``) at ``storage_path``: a copy of the source run's index entries, so the bytes
    are shared, not copied, and the version outlives the run. ``content_digest`` is the sha256
    of the package's sorted ``path digest`` lines (equal packages have equal digests).
    """

    name: str
    version: int
    source: str
    run_id: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    description: str | None = None
    user_id: str = ""
    creation_timestamp: int = 0
    last_updated_timestamp: int = 0
    current_stage: str = ModelStage.NONE
    storage_owner: str = ""
    storage_path: str = ""
    content_digest: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelVersion:
        kw = {k: d[k] for k in _FIELDS[cls] if k in d}
        kw["version"] = int(kw["version"])
        kw["tags"] = dict(kw.get("tags", {}))
        kw["aliases"] = tuple(kw.get("aliases", ()))
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """A named pointer (``champion``, ``challenger``...) from a model to one of its versions."""

    alias: str
    version: int

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelAlias:
        return cls(alias=d["alias"], version=int(d["version"]))


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model: its versions are listed separately; ``latest_versions`` holds the newest
    version per stage (MLflow's shape) and ``approval_policy`` maps an alias (``"*"`` for every
    alias) to the number of distinct approvals a version needs before that alias moves to it."""

    name: str
    description: str | None = None
    user_id: str = ""
    creation_timestamp: int = 0
    last_updated_timestamp: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[ModelAlias, ...] = ()
    latest_versions: tuple[ModelVersion, ...] = ()
    approval_policy: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RegisteredModel:
        kw = {k: d[k] for k in _FIELDS[cls] if k in d}
        kw["tags"] = dict(kw.get("tags", {}))
        kw["aliases"] = tuple(ModelAlias.from_json(a) for a in kw.get("aliases", ()))
        kw["latest_versions"] = tuple(
            ModelVersion.from_json(v) for v in kw.get("latest_versions", ())
        )
        kw["approval_policy"] = {k: int(v) for k, v in kw.get("approval_policy", {}).items()}
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Approval:
    """One approver's sign-off on a model version."""

    name: str
    version: int
    approver: str
    comment: str | None = None
    timestamp: int = 0

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Approval:
        kw = {k: d[k] for k in _FIELDS[cls] if k in d}
        kw["version"] = int(kw["version"])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One entry of a model's append-only audit trail: who did what, when, why, from -> to.

    ``from_value`` / ``to_value`` depend on the action: version numbers for alias moves, stage or
    status names for transitions, the old and new name for a rename.
    """

    event_id: int
    name: str
    action: str
    timestamp: int
    version: int | None = None
    alias: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    user_id: str = ""
    reason: str | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RegistryEvent:
        kw = {k: d[k] for k in _FIELDS[cls] if k in d}
        if kw.get("version") is not None:
            kw["version"] = int(kw["version"])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class ModelLineage:
    """Where a model version came from: its run (``None`` once the run is deleted for good), the
    run's experiment, and the datasets the run recorded as inputs."""

    model_version: ModelVersion
    run: RunInfo | None = None
    experiment: Experiment | None = None
    datasets: tuple[DatasetInput, ...] = ()

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelLineage:
        return cls(
            model_version=ModelVersion.from_json(d["model_version"]),
            run=RunInfo.from_json(d["run"]) if d.get("run") else None,
            experiment=Experiment.from_json(d["experiment"]) if d.get("experiment") else None,
            datasets=tuple(DatasetInput.from_json(i) for i in d.get("datasets", [])),
        )


_FIELDS.update(
    {
        cls: tuple(f.name for f in dataclasses.fields(cls))
        for cls in (ModelVersion, RegisteredModel, Approval, RegistryEvent)
    }
)


# ---------------------------------------------------------------------------- logged models


class LoggedModelStatus(StrEnum):
    """MLflow 3's upload states of a logged model: created ``PENDING``, then finalized."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


@dataclass(frozen=True, slots=True)
class LoggedModelRegistration:
    """A registry version made from a logged model's files."""

    name: str
    version: int


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged into an experiment (MLflow 3's ``LoggedModel``), with files of its own.

    Its files live in the artifact index under ``storage_owner`` (the ``model_id``, ``m-`` and 32
    hex digits). ``metrics`` are the metric points runs logged with this ``model_id``;
    ``registrations`` the registry versions registered from it (``models:/<model_id>``).
    Deleting one only marks it ``deleted`` (``lifecycle_stage``); its files stay until the
    experiment is purged.
    """

    model_id: str
    experiment_id: str
    name: str
    artifact_uri: str
    status: str = LoggedModelStatus.PENDING
    status_message: str | None = None
    creator_id: str = ""
    model_type: str | None = None
    source_run_id: str | None = None
    creation_timestamp: int = 0
    last_updated_timestamp: int = 0
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: tuple[Metric, ...] = ()
    registrations: tuple[LoggedModelRegistration, ...] = ()

    @property
    def storage_owner(self) -> str:
        """The artifact-index owner of the model's files."""
        return self.model_id


@dataclass(frozen=True, slots=True)
class RunModels:
    """The logged models a run used (``inputs``) and produced (``outputs``: model id -> step)."""

    inputs: tuple[str, ...] = ()
    outputs: tuple[tuple[str, int], ...] = ()


# ---------------------------------------------------------------------------- datasets


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One content-addressed snapshot of a registered dataset.

    Its files live in the artifact index under ``storage_owner`` (``dv-<32 hex>``), their bytes
    kept once per sha256. ``content_digest`` is the sha256 of the single file, or of the sorted
    ``path digest`` lines of a folder: equal content, equal digest, same version. ``schema`` and
    ``profile`` are the JSON documents inferred and computed when the version was registered.
    """

    name: str
    version: int
    content_digest: str
    format: str
    num_rows: int | None = None
    num_columns: int | None = None
    num_bytes: int = 0
    source_uri: str | None = None
    run_id: str | None = None
    description: str | None = None
    user_id: str = ""
    creation_timestamp: int = 0
    storage_owner: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    schema: str | None = None
    profile: str | None = None

    @property
    def uri(self) -> str:
        """``datasets:/NAME/VERSION``, how runs and pipelines name this version."""
        return f"{DATASETS_URI}{self.name}/{self.version}"


DATASETS_URI = "datasets:/"


def parse_dataset_uri(uri: str) -> tuple[str, int | None]:
    """``(name, version)`` of ``datasets:/NAME/VERSION`` (``version`` ``None`` for
    ``datasets:/NAME``, the latest); ``InvalidInput`` for anything else."""
    parts = (
        uri.removeprefix(DATASETS_URI).strip("/").split("/") if uri.startswith(DATASETS_URI) else []
    )
    if len(parts) == 2 and parts[0] and parts[1].isascii() and parts[1].isdecimal():
        return parts[0], int(parts[1])
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    raise InvalidInput(
        f"{uri!r} is not datasets:/NAME or datasets:/NAME/VERSION; the version must be a "
        "number, as in datasets:/churn/3."
    )


@dataclass(frozen=True, slots=True)
class RegisteredDataset:
    """A named dataset: its versions are numbered from 1, never reused."""

    name: str
    description: str | None = None
    user_id: str = ""
    creation_timestamp: int = 0
    last_updated_timestamp: int = 0
    latest_version: int | None = None
    has_user_schema: bool = False
