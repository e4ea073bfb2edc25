"""Shipyard entities <-> MLflow's proto-JSON shapes.

Outbound, entities become the dicts MLflow's client parses: experiment ids as strings, tags and
params as lists of ``{key, value}``, RunInfo with both ``run_id`` and the legacy ``run_uuid``,
``end_time`` and other unset optional fields left out, non-finite doubles as the strings
``"NaN"``/``"Infinity"``/``"-Infinity"``. Inbound, the repeated messages of a request (metrics,
``{key, value}`` pairs, dataset inputs) become entities, with messages that name the element.

These functions are on the hot path of logging and history reads, so they build plain dicts and
take a fast path when a value already has the expected JSON type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from shipyard.entities import (
    ArtifactInfo,
    Dataset,
    DatasetInput,
    Experiment,
    LoggedModel,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInfo,
    RunModels,
)
from shipyard.errors import InvalidInput
from shipyard.server.mlflow._wire import Args
from shipyard.store.base import HistoryRow
from shipyard.validation import INT64_MAX, INT64_MIN

_isfinite = math.isfinite


def double(value: float) -> float | str:
    """A double as proto-JSON writes it: finite numbers as numbers, others as strings."""
    if _isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def key_values(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"a": "1"}`` -> ``[{"key": "a", "value": "1"}]`` (tags, params)."""
    return [{"key": k, "value": v} for k, v in pairs.items()]


# ---------------------------------------------------------------------------- outbound


def experiment(exp: Experiment) -> dict[str, Any]:
    """An Experiment message."""
    out: dict[str, Any] = {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": str(exp.lifecycle_stage),
    }
    if exp.last_update_time:
        out["last_update_time"] = exp.last_update_time
    if exp.creation_time:
        out["creation_time"] = exp.creation_time
    if exp.tags:
        out["tags"] = key_values(exp.tags)
    return out


def run_info(info: RunInfo) -> dict[str, Any]:
    """A RunInfo message (``run_uuid`` repeats ``run_id`` for older clients)."""
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": str(info.status),
        "start_time": info.start_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": str(info.lifecycle_stage),
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def metric(m: Metric, run_id: str | None = None) -> dict[str, Any]:
    """A Metric message; ``run_id`` is added when given (history and bulk reads)."""
    value = m.value
    out: dict[str, Any] = {
        "key": m.key,
        "value": value if _isfinite(value) else double(value),
        "timestamp": m.timestamp,
        "step": m.step,
    }
    if m.dataset_name is not None:
        out["dataset_name"] = m.dataset_name
    if m.dataset_digest is not None:
        out["dataset_digest"] = m.dataset_digest
    if m.model_id is not None:
        out["model_id"] = m.model_id
    if run_id is not None:
        out["run_id"] = run_id
    return out


def metrics(items: Iterable[Metric], run_id: str | None = None) -> list[dict[str, Any]]:
    """Many Metric messages (history pages: tens of thousands of points, kept tight)."""
    out: list[dict[str, Any]] = []
    append = out.append
    for m in items:
        value = m.value
        if (
            m.dataset_name is None
            and m.dataset_digest is None
            and m.model_id is None
            and _isfinite(value)
        ):
            d: dict[str, Any] = {
                "key": m.key,
                "value": value,
                "timestamp": m.timestamp,
                "step": m.step,
            }
            if run_id is not None:
                d["run_id"] = run_id
            append(d)
        else:
            append(metric(m, run_id))
    return out


def history_rows(key: str, rows: Iterable[HistoryRow]) -> list[dict[str, Any]]:
    """Metric messages for the points of a history page (``TrackingStore.get_metric_history_rows``),
    built straight from the store's tuples: a page holds up to 25,000 points. Like MLflow's
    ``get-history``, a point carries no ``run_id`` (the request named the run), which keeps a
    10,000-point page near 0.6 MB instead of 1.1 MB."""
    out: list[dict[str, Any]] = []
    append = out.append
    for step, timestamp, value, links in rows:
        d: dict[str, Any] = {
            "key": key,
            # v - v == 0 only for finite floats (the common case, tested without a call).
            "value": "NaN" if value is None else (value if value - value == 0 else double(value)),
            "timestamp": timestamp,
            "step": step,
        }
        if links:
            for field, item in zip(_LINK_FIELDS, links, strict=True):
                if item is not None:
                    d[field] = item
        append(d)
    return out


_LINK_FIELDS = ("dataset_name", "dataset_digest", "model_id")


def dataset_input(di: DatasetInput) -> dict[str, Any]:
    """A DatasetInput message: ``{tags: [...], dataset: {...}}``."""
    ds = di.dataset
    dataset: dict[str, Any] = {
        "name": ds.name,
        "digest": ds.digest,
        "source_type": ds.source_type,
        "source": ds.source,
    }
    if ds.schema is not None:
        dataset["schema"] = ds.schema
    if ds.profile is not None:
        dataset["profile"] = ds.profile
    out: dict[str, Any] = {"dataset": dataset}
    if di.tags:
        out["tags"] = key_values(di.tags)
    return out


def run(r: Run, models: RunModels | None = None) -> dict[str, Any]:
    """A Run message: info, data (latest metrics, params, tags), inputs (datasets and logged
    models) and outputs (logged models)."""
    data: dict[str, Any] = {}
    if r.data.metrics:
        data["metrics"] = metrics(r.data.metrics.values())
    if r.data.params:
        data["params"] = key_values(r.data.params)
    if r.data.tags:
        data["tags"] = key_values(r.data.tags)
    inputs: dict[str, Any] = {}
    if r.inputs:
        inputs["dataset_inputs"] = [dataset_input(d) for d in r.inputs]
    out: dict[str, Any] = {"info": run_info(r.info), "data": data, "inputs": inputs}
    if models is not None:
        if models.inputs:
            inputs["model_inputs"] = [{"model_id": m} for m in models.inputs]
        if models.outputs:
            out["outputs"] = {
                "model_outputs": [{"model_id": m, "step": step} for m, step in models.outputs]
            }
    return out


def logged_model(m: LoggedModel) -> dict[str, Any]:
    """A LoggedModel message: ``{info, data}`` (``creator_id`` is an int64 in MLflow's proto
    and Shipyard's creators are names, so it is left out; ``mlflow.user`` tags carry them)."""
    info: dict[str, Any] = {
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp,
        "last_updated_timestamp_ms": m.last_updated_timestamp,
        "artifact_uri": m.artifact_uri,
        "status": m.status,
    }
    if m.model_type is not None:
        info["model_type"] = m.model_type
    if m.source_run_id is not None:
        info["source_run_id"] = m.source_run_id
    if m.status_message is not None:
        info["status_message"] = m.status_message
    if m.tags:
        info["tags"] = key_values(m.tags)
    if m.registrations:
        info["registrations"] = [
            {"name": r.name, "version": str(r.version)} for r in m.registrations
        ]
    data: dict[str, Any] = {}
    if m.params:
        data["params"] = key_values(m.params)
    if m.metrics:
        data["metrics"] = [metric(x) for x in m.metrics]
    return {"info": info, "data": data}


MODEL_SOURCE_PREFIX = "models:/"


def logged_model_id_of(source: str) -> str | None:
    """The logged model a version's ``source`` names (``models:/m-...``), if it names one."""
    if source.startswith(MODEL_SOURCE_PREFIX + "m-"):
        rest = source[len(MODEL_SOURCE_PREFIX) :]
        if "/" not in rest and "@" not in rest:
            return rest
    return None


def model_version(v: ModelVersion) -> dict[str, Any]:
    """A ModelVersion message (``version`` as a string, MLflow's spelling)."""
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "user_id": v.user_id,
        "current_stage": v.current_stage,
        "source": v.source,
        "status": v.status,
    }
    if v.description is not None:
        out["description"] = v.description
    if v.run_id is not None:
        out["run_id"] = v.run_id
    if v.status_message is not None:
        out["status_message"] = v.status_message
    if v.tags:
        out["tags"] = key_values(v.tags)
    if v.aliases:
        out["aliases"] = list(v.aliases)
    model_id = logged_model_id_of(v.source)
    if model_id is not None:
        out["model_id"] = model_id
    return out


def registered_model(m: RegisteredModel) -> dict[str, Any]:
    """A RegisteredModel message, with the newest version per stage and every alias."""
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "user_id": m.user_id,
    }
    if m.description is not None:
        out["description"] = m.description
    if m.latest_versions:
        out["latest_versions"] = [model_version(v) for v in m.latest_versions]
    if m.tags:
        out["tags"] = key_values(m.tags)
    if m.aliases:
        out["aliases"] = [{"alias": a.alias, "version": str(a.version)} for a in m.aliases]
    return out


def file_info(info: ArtifactInfo, *, basename: bool) -> dict[str, Any]:
    """A FileInfo message; ``basename`` keeps only the last path segment (artifact service)."""
    path = info.path.rsplit("/", 1)[-1] if basename else info.path
    out: dict[str, Any] = {"path": path, "is_dir": info.is_dir}
    if not info.is_dir and info.file_size is not None:
        out["file_size"] = info.file_size
    return out


# ---------------------------------------------------------------------------- inbound


def pairs(items: list[Args], *, value_required: bool = False) -> dict[str, str]:
    """Repeated ``{key, value}`` messages -> a dict (a later duplicate key wins).

    A missing value is the empty string (proto default) unless ``value_required``."""
    out: dict[str, str] = {}
    for item in items:
        k = item.require_string("key")
        v = (
            item.require_string("value", allow_empty=True)
            if value_required
            else item.string("value", "")
        )
        out[k] = v
    return out


def param_pairs(items: list[Args], request: str = "log-batch") -> dict[str, str]:
    """Params of a batch: like :func:`pairs`, but a key sent twice is an error (as in MLflow)."""
    out: dict[str, str] = {}
    for item in items:
        k = item.require_string("key")
        if k in out:
            raise InvalidInput(
                f"Duplicate parameter key {k!r} in one {request} request; send each param "
                "once per batch (params are write-once)."
            )
        out[k] = item.string("value", "")
    return out


def metric_from(item: Args) -> Metric:
    """One Metric message of a request (log-metric body or a log-batch element)."""
    return Metric(
        key=item.require_string("key"),
        value=item.require_double("value"),
        timestamp=item.require_integer("timestamp"),
        step=item.integer("step", 0),
        dataset_name=item.string("dataset_name") or None,
        dataset_digest=item.string("dataset_digest") or None,
        model_id=item.string("model_id") or None,
    )


def _is_int64(v: Any) -> TypeGuard[int]:
    return type(v) is int and INT64_MIN <= v <= INT64_MAX


def batch_metrics(raw: list[Any] | None, args: Args) -> list[Metric]:
    """The ``metrics`` of a log-batch: plain elements take a fast path, anything unusual (strings
    for numbers, "NaN", dataset links, errors) goes through the validating getters."""
    if not raw:
        return []
    out: list[Metric] = []
    append = out.append
    for i, item in enumerate(raw):
        # Only the four plain fields: a model or dataset link takes the slow path.
        if type(item) is dict and len(item) == 3 + ("step" in item):
            k = item.get("key")
            v = item.get("value")
            ts = item.get("timestamp")
            step = item.get("step", 0)
            if (
                type(k) is str
                and k
                and (type(v) is float or type(v) is int)
                and _is_int64(ts)
                and _is_int64(step)
            ):
                append(Metric(k, float(v), ts, step))
                continue
        if not isinstance(item, dict):
            raise args.invalid(f"metrics[{i}]", item, "an object")
        append(metric_from(Args(item, where=f"metrics[{i}]")))
    return out


def dataset_input_from(item: Args) -> DatasetInput:
    """One DatasetInput message of a log-inputs request."""
    ds = item.message("dataset")
    if ds is None:
        raise item.missing("dataset")
    dataset = Dataset(
        name=ds.require_string("name"),
        digest=ds.require_string("digest"),
        source_type=ds.string("source_type", ""),
        source=ds.string("source", ""),
        schema=ds.string("schema"),
        profile=ds.string("profile"),
    )
    return DatasetInput(dataset=dataset, tags=pairs(item.objects("tags")))
