"""JSON Schemas of the values Shipyard's API sends and receives (OpenAPI 3.1 components).

They describe :func:`shipyard.entities.to_json` output; route modules refer to them with
:func:`ref` when declaring request and response bodies.
"""

from __future__ import annotations

from typing import Any

from shipyard.entities import ModelStage, ModelVersionStatus, RegistryAction

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer", "format": "int64"}
BOOLEAN: Schema = {"type": "boolean"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_INTEGER: Schema = {"type": ["integer", "null"], "format": "int64"}
NUMBER_OR_NON_FINITE: Schema = {
    "oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}],
    "description": 'A number; non-finite values travel as "NaN", "Infinity" or "-Infinity".',
}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
VIEW_TYPE: Schema = {"type": "string", "enum": ["ACTIVE_ONLY", "DELETED_ONLY", "ALL"]}
RUN_STATUS: Schema = {
    "type": "string",
    "enum": ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"],
}
EMPTY: Schema = {"type": "object", "properties": {}}
MODEL_STAGE: Schema = {"type": "string", "enum": [s.value for s in ModelStage]}
MODEL_VERSION_STATUS: Schema = {"type": "string", "enum": [s.value for s in ModelVersionStatus]}


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """An object schema with the given properties."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def page(key: str, item: Schema) -> Schema:
    """One page of a listing: ``{key: [...], "next_page_token": ...}``."""
    return obj({key: array(item), "next_page_token": NULLABLE_STRING}, (key,))


COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        {
            "error_code": {"type": "string", "examples": ["RESOURCE_DOES_NOT_EXIST"]},
            "message": {"type": "string", "description": "What happened, why, and what to do."},
            "details": {"type": "object"},
        },
        ("error_code", "message"),
    ),
    "Experiment": obj(
        {
            "experiment_id": STRING,
            "name": STRING,
            "artifact_location": STRING,
            "lifecycle_stage": {"type": "string", "enum": ["active", "deleted"]},
            "creation_time": INTEGER,
            "last_update_time": INTEGER,
            "tags": STRING_MAP,
        },
        ("experiment_id", "name", "artifact_location", "lifecycle_stage"),
    ),
    "Metric": obj(
        {
            "key": STRING,
            "value": NUMBER_OR_NON_FINITE,
            "timestamp": INTEGER,
            "step": INTEGER,
            "dataset_name": NULLABLE_STRING,
            "dataset_digest": NULLABLE_STRING,
            "model_id": NULLABLE_STRING,
        },
        ("key", "value", "timestamp"),
    ),
    "RunInfo": obj(
        {
            "run_id": STRING,
            "experiment_id": STRING,
            "run_name": STRING,
            "user_id": STRING,
            "status": RUN_STATUS,
            "start_time": INTEGER,
            "end_time": NULLABLE_INTEGER,
            "lifecycle_stage": {"type": "string", "enum": ["active", "deleted"]},
            "artifact_uri": STRING,
            "parent_run_id": NULLABLE_STRING,
        },
        ("run_id", "experiment_id", "status", "lifecycle_stage"),
    ),
    "RunData": obj(
        {
            "metrics": {"type": "object", "additionalProperties": ref("Metric")},
            "params": STRING_MAP,
            "tags": STRING_MAP,
        }
    ),
    "Dataset": obj(
        {
            "name": STRING,
            "digest": STRING,
            "source_type": STRING,
            "source": STRING,
            "schema": NULLABLE_STRING,
            "profile": NULLABLE_STRING,
        },
        ("name", "digest"),
    ),
    "DatasetInput": obj({"dataset": ref("Dataset"), "tags": STRING_MAP}, ("dataset",)),
    "Run": obj(
        {"info": ref("RunInfo"), "data": ref("RunData"), "inputs": array(ref("DatasetInput"))},
        ("info",),
    ),
    "ArtifactInfo": obj(
        {
            "path": STRING,
            "is_dir": BOOLEAN,
            "file_size": NULLABLE_INTEGER,
            "digest": NULLABLE_STRING,
        },
        ("path", "is_dir"),
    ),
    "ModelVersion": obj(
        {
            "name": STRING,
            "version": INTEGER,
            "source": STRING,
            "run_id": NULLABLE_STRING,
            "status": MODEL_VERSION_STATUS,
            "status_message": NULLABLE_STRING,
            "description": NULLABLE_STRING,
            "user_id": STRING,
            "creation_timestamp": INTEGER,
            "last_updated_timestamp": INTEGER,
            "current_stage": MODEL_STAGE,
            "storage_owner": {
                **STRING,
                "description": "Owner of the version's files (mv- and 32 hex digits); read "
                "them at /api/v1/model-versions/{storage_owner}/artifacts.",
            },
            "storage_path": {**STRING, "description": "The package's folder or file."},
            "content_digest": NULLABLE_STRING,
            "tags": STRING_MAP,
            "aliases": array(STRING),
        },
        ("name", "version", "source", "status", "storage_owner", "storage_path"),
    ),
    "ModelAlias": obj({"alias": STRING, "version": INTEGER}, ("alias", "version")),
    "RegisteredModel": obj(
        {
            "name": STRING,
            "description": NULLABLE_STRING,
            "user_id": STRING,
            "creation_timestamp": INTEGER,
            "last_updated_timestamp": INTEGER,
            "tags": STRING_MAP,
            "aliases": array(ref("ModelAlias")),
            "latest_versions": {
                **array(ref("ModelVersion")),
                "description": "The newest version in each stage.",
            },
            "approval_policy": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
                "description": 'Distinct approvals required per alias ("*": every alias).',
            },
        },
        ("name",),
    ),
    "Approval": obj(
        {
            "name": STRING,
            "version": INTEGER,
            "approver": STRING,
            "comment": NULLABLE_STRING,
            "timestamp": INTEGER,
        },
        ("name", "version", "approver"),
    ),
    "RegistryEvent": obj(
        {
            "event_id": INTEGER,
            "name": STRING,
            "action": {
                "type": "string",
                "enum": [a.value for a in RegistryAction],
            },
            "timestamp": INTEGER,
            "version": NULLABLE_INTEGER,
            "alias": NULLABLE_STRING,
            "from_value": NULLABLE_STRING,
            "to_value": NULLABLE_STRING,
            "user_id": STRING,
            "reason": NULLABLE_STRING,
        },
        ("event_id", "name", "action", "timestamp"),
    ),
}
