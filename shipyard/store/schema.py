"""The metadata tables, defined once (SQLAlchemy Core). Alembic migrations must produce exactly
these tables; ``tests/store/test_migrations.py`` checks it.

Change a table here, then add a migration under ``shipyard/store/migrations/versions`` and move
:data:`HEAD_REVISION` to it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

HEAD_REVISION = "0009_deployments"
"""The Alembic revision this code expects (kept equal to the migration head by a test)."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    Column("deleted_time", BigInteger, nullable=True),
    # Ids of permanently deleted experiments are never handed out again (SQLite would reuse them).
    sqlite_autoincrement=True,
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("run_name", String(250), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    # The default listing order (newest first) and keyset pagination walk this index.
    Index("ix_runs_experiment_order", "experiment_id", "lifecycle_stage", "start_time", "run_id"),
    Index("ix_runs_parent", "parent_run_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_params_key_run", "key", "run_id"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key_run", "key", "run_id"),
)

# Every logged point. NaN is stored as value 0 with is_nan set (SQLite turns NaN into NULL).
metrics = Table(
    "metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(36), nullable=True),
    Column("model_id", String(64), nullable=True),
    Index("ix_metrics_run_key_step", "run_id", "key", "step", "timestamp"),
    # The points logged with a logged model's id (a partial index: most points have none).
    Index(
        "ix_metrics_model",
        "model_id",
        "key",
        sqlite_where=text("model_id IS NOT NULL"),
        postgresql_where=text("model_id IS NOT NULL"),
    ),
)

# The latest point per (run, key): what run listings, search and ordering read.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False),
    # Metric filters scan it by range, and an order by a metric walks it in value order
    # (real values first: is_nan comes before value).
    Index("ix_latest_metrics_key_value", "key", "is_nan", "value", "run_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("digest", String(36), nullable=False),
    Column("source_type", String(36), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    Index("ix_datasets_identity", "experiment_id", "name", "digest", unique=True),
    sqlite_autoincrement=True,
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column(
        "dataset_id",
        Integer,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tags", Text, nullable=False),  # JSON object of input tags (e.g. mlflow.data.context)
    # Dataset filters in run search, and deleting datasets (the foreign key check), look runs up
    # by dataset.
    Index("ix_run_inputs_dataset", "dataset_id"),
)

# The artifact index: which path of which owner (a run id today) holds which content digest.
# Folders are implied by "/" in paths. Bytes live in the artifact store under the digest.
artifacts = Table(
    "artifacts",
    metadata,
    Column("owner_id", String(64), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_time", BigInteger, nullable=False),
    Index("ix_artifacts_digest", "digest"),
)


# ---------------------------------------------------------------------------- model registry
# Models are keyed by a surrogate id so a rename is one UPDATE. Versions point at runs by id
# without a foreign key: a version outlives its run (its files are its own artifact index rows,
# owner ``storage_owner``). The audit trail (registry_events) has no foreign keys at all: it is
# append-only and outlives the models it describes.

registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    # The number the next version gets: version numbers are never reused after a delete.
    Column("next_version", Integer, nullable=False),
    sqlite_autoincrement=True,
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_registered_model_tags_key_model", "key", "model_id"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("current_stage", String(20), nullable=False),
    Column("storage_owner", String(64), nullable=False, unique=True),
    Column("storage_path", String(1024), nullable=False),
    Column("content_digest", String(64), nullable=True),
    # Lineage: "which versions came from this run" (and so from this dataset).
    Index("ix_model_versions_run", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
    Index("ix_model_version_tags_key_model", "key", "model_id", "version"),
)

# No ON DELETE action: a version an alias points at can't be deleted (the store says so first).
model_aliases = Table(
    "model_aliases",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"], ["model_versions.model_id", "model_versions.version"]
    ),
    Index("ix_model_aliases_version", "model_id", "version"),
)

model_version_approvals = Table(
    "model_version_approvals",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("approver", String(256), primary_key=True),
    Column("comment", Text, nullable=True),
    Column("approval_time", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# How many distinct approvals a version needs before an alias moves to it ("*": every alias).
approval_policies = Table(
    "approval_policies",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(255), primary_key=True),
    Column("required_approvals", Integer, nullable=False),
)

registry_events = Table(
    "registry_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("version", Integer, nullable=True),
    Column("alias", String(255), nullable=True),
    Column("action", String(32), nullable=False),
    Column("from_value", Text, nullable=True),
    Column("to_value", Text, nullable=True),
    Column("user_id", String(256), nullable=False),
    Column("reason", Text, nullable=True),
    Column("event_time", BigInteger, nullable=False),
    Index("ix_registry_events_model", "model_id", "event_id"),
    Index("ix_registry_events_name", "model_name", "event_id"),
    sqlite_autoincrement=True,
)


# ---------------------------------------------------------------------------- logged models
# MLflow 3's logged models: a model logged into an experiment, with files of its own (artifact
# index owner = model_id). ``source_run_id`` has no foreign key: a logged model outlives its run.
# Purging the experiment removes its logged models (and the store frees their files first).

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(500), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_message", Text, nullable=True),
    Column("creator_id", String(256), nullable=False),
    Column("model_type", String(500), nullable=True),
    Column("source_run_id", String(32), nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False),
    Column("deleted_time", BigInteger, nullable=True),
    # The default listing (newest first per experiment) and keyset pagination walk this index;
    # resolving runs:/<run>/<name> looks a model up by experiment and name.
    Index(
        "ix_logged_models_experiment_order",
        "experiment_id",
        "lifecycle_stage",
        "creation_time",
        "model_id",
    ),
    Index("ix_logged_models_experiment_name", "experiment_id", "name"),
    Index("ix_logged_models_source_run", "source_run_id"),
)

logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Which logged models a run used (direction "input") or produced ("output", at a step).
run_logged_models = Table(
    "run_logged_models",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column(
        "model_id",
        String(64),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("direction", String(8), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Index("ix_run_logged_models_model", "model_id"),
)


# ---------------------------------------------------------------------------- datasets
# Registered datasets and their content-addressed versions. A version's files are its own
# artifact index rows (owner ``storage_owner``), like a model version's. ``run_id`` has no
# foreign key: a version outlives the run that created it. ``run_dataset_versions`` is the
# lineage edge "this run read this version" (it goes with the run and with the version).

registered_datasets = Table(
    "registered_datasets",
    metadata,
    Column("dataset_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    # The number the next version gets: version numbers are never reused after a delete.
    Column("next_version", Integer, nullable=False),
    # The user-edited schema (YAML text, as kept in git), when one was set.
    Column("user_schema", Text, nullable=True),
    sqlite_autoincrement=True,
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "dataset_id",
        Integer,
        ForeignKey("registered_datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("content_digest", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("num_rows", BigInteger, nullable=True),
    Column("num_columns", Integer, nullable=True),
    Column("num_bytes", BigInteger, nullable=False),
    Column("source_uri", Text, nullable=True),
    Column("run_id", String(32), nullable=True),
    Column("description", Text, nullable=True),
    Column("user_id", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("storage_owner", String(64), nullable=False, unique=True),
    Column("schema", Text, nullable=True),  # JSON: the schema inferred from the version
    Column("profile", Text, nullable=True),  # JSON: the version's mergeable profile
    # Identical content is one version: registering it again finds it here.
    Index("ix_dataset_versions_content", "dataset_id", "content_digest", unique=True),
    Index("ix_dataset_versions_run", "run_id"),
)

dataset_version_tags = Table(
    "dataset_version_tags",
    metadata,
    Column("dataset_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["dataset_id", "version"],
        ["dataset_versions.dataset_id", "dataset_versions.version"],
        ondelete="CASCADE",
    ),
)

run_dataset_versions = Table(
    "run_dataset_versions",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("context", String(250), nullable=True),
    ForeignKeyConstraint(
        ["dataset_id", "version"],
        ["dataset_versions.dataset_id", "dataset_versions.version"],
        ondelete="CASCADE",
    ),
    # "Which runs read this version".
    Index("ix_run_dataset_versions_version", "dataset_id", "version"),
)


# ---------------------------------------------------------------------------- pipelines
# Pipeline runs and their step runs. A step run's output files are artifact index rows of owner
# ``ps-<step_run_id>``; a cache hit points at the owner of the execution it reused. Schedules
# fire pipelines; firings and events are append-only and have no foreign keys (they outlive the
# schedules and runs they describe).

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("pipeline", String(250), nullable=False),
    Column("reference", Text, nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("status", String(16), nullable=False),
    Column("executor", String(32), nullable=False),
    Column("cache_enabled", Boolean, nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("resumed_from", String(32), nullable=True),
    Column("trigger", Text, nullable=False),  # JSON object: what started the run
    Column("error", Text, nullable=True),
    Index("ix_pipeline_runs_pipeline_start", "pipeline", "start_time"),
    Index("ix_pipeline_runs_start", "start_time"),
)

pipeline_step_runs = Table(
    "pipeline_step_runs",
    metadata,
    Column("step_run_id", String(32), primary_key=True),
    Column(
        "run_id",
        String(32),
        ForeignKey("pipeline_runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("cache_key", String(64), nullable=True),
    Column("cache_components", Text, nullable=False),  # JSON object
    Column("cache_source", String(32), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=True),
    Column("inputs", Text, nullable=False),  # JSON object
    Column("output", Text, nullable=True),  # JSON object
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("logs", Text, nullable=True),
    Column("executor", String(32), nullable=False),
    Column("tracking_run_id", String(32), nullable=True),
    Index("ix_pipeline_step_runs_run", "run_id", "start_time"),
    # Cache lookups, and `cache why` (the history of a step by name).
    Index("ix_pipeline_step_runs_cache_key", "cache_key"),
    Index("ix_pipeline_step_runs_name", "name", "start_time"),
)

pipeline_step_links = Table(
    "pipeline_step_links",
    metadata,
    Column(
        "step_run_id",
        String(32),
        ForeignKey("pipeline_step_runs.step_run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kind", String(32), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("version", String(64), primary_key=True),
    # "Which step produced this model/dataset version".
    Index("ix_pipeline_step_links_target", "kind", "name", "version"),
)

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("schedule_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("reference", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("spec", String(250), nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("event_filter", String(500), nullable=True),
    Column("missed", String(16), nullable=False),
    Column("executor", String(32), nullable=False),
    Column("next_fire_time", BigInteger, nullable=True),
    Column("watermark", BigInteger, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

pipeline_firings = Table(
    "pipeline_firings",
    metadata,
    Column("firing_id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", Integer, nullable=False),
    Column("schedule_name", String(250), nullable=False),
    Column("fire_time", BigInteger, nullable=False),
    Column("cause", Text, nullable=False),  # JSON object
    Column("status", String(16), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_pipeline_firings_schedule", "schedule_name", "firing_id"),
    sqlite_autoincrement=True,
)

pipeline_events = Table(
    "pipeline_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(500), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("event_time", BigInteger, nullable=False),
    Index("ix_pipeline_events_kind", "kind", "event_id"),
    sqlite_autoincrement=True,
)

# ---------------------------------------------------------------------------- security
# Users (argon2 password hashes; NULL for users who only sign in through a trusted proxy), API
# tokens (only the SHA-256 of the secret is stored), role grants per scope ("*" for the whole
# workspace, "experiment:<id>", "model:<name>") and the append-only security audit log (no
# foreign keys: it outlives the users it names).

auth_users = Table(
    "auth_users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(256), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("disabled", Boolean, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column(
        "user_id",
        Integer,
        ForeignKey("auth_users.user_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("expiry_time", BigInteger, nullable=True),
    Column("revoked_time", BigInteger, nullable=True),
    Column("last_used_time", BigInteger, nullable=True),
    Index("ix_auth_tokens_user", "user_id"),
)

auth_grants = Table(
    "auth_grants",
    metadata,
    Column(
        "user_id",
        Integer,
        ForeignKey("auth_users.user_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("scope", String(600), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("granted_by", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Index("ix_auth_grants_scope", "scope"),
)

auth_audit = Table(
    "auth_audit",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("event_time", BigInteger, nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("subject", String(256), nullable=True),
    Column("scope", String(600), nullable=True),
    Column("role", String(16), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("remote_addr", String(64), nullable=True),
    Column("detail", Text, nullable=True),  # JSON object
    Index("ix_auth_audit_time", "event_time"),
    sqlite_autoincrement=True,
)


# ---------------------------------------------------------------------------- deployments
# Continuous deployment: one row per deployment (its policy, the controller's persisted state
# machine and the traffic it wants served), and its append-only decision log (every transition
# with the evidence: gate values and thresholds, analysis windows). ``revision`` increases with
# every state write (compare-and-set between controllers); ``traffic_revision`` with every change
# of the desired arms, which model servers poll.

deployments = Table(
    "deployments",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("policy", Text, nullable=False),  # JSON object: the deployment spec
    Column("state", String(32), nullable=False),
    Column("environment", String(64), nullable=True),
    Column("stable_version", Integer, nullable=True),
    Column("candidate_version", Integer, nullable=True),
    Column("step", Integer, nullable=False),
    Column("step_started", BigInteger, nullable=True),
    Column("paused_state", String(32), nullable=True),
    Column("context", Text, nullable=False),  # JSON object: watermarks, baselines, reasons
    Column("traffic", Text, nullable=False),  # JSON object: {"arms": [...], "shadow": [...]}
    Column("traffic_revision", Integer, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

deployment_events = Table(
    "deployment_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(250), nullable=False),
    Column("event_time", BigInteger, nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=True),
    Column("version", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON object
    Column("user_id", String(256), nullable=False),
    Index("ix_deployment_events_deployment", "deployment", "event_id"),
    sqlite_autoincrement=True,
)


# ---------------------------------------------------------------------------- features
# Feature-store definitions, versioned: every apply that changes an entity, feature view,
# on-demand view or feature service writes a new version (numbered from 1 per kind and name);
# a version with a NULL spec records a removal. Materializations (append-only) hold each run's
# window and the watermark incremental runs continue from. ``feature_training_sets`` is the
# lineage edge "this dataset version is a training set built from this feature-view version"
# (no foreign keys: the lineage outlives both).

feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("spec", Text, nullable=True),  # JSON object; NULL: removed in this version
    Column("digest", String(64), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
)

feature_materializations = Table(
    "feature_materializations",
    metadata,
    Column("materialization_id", Integer, primary_key=True, autoincrement=True),
    Column("view", String(200), nullable=False),
    Column("view_version", Integer, nullable=False),
    Column("online_store", String(500), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=True),
    Column("end_time", BigInteger, nullable=False),
    Column("watermark", BigInteger, nullable=False),
    Column("num_rows", BigInteger, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Index("ix_feature_materializations_view", "view", "online_store", "materialization_id"),
    sqlite_autoincrement=True,
)

feature_training_sets = Table(
    "feature_training_sets",
    metadata,
    Column("dataset", String(256), primary_key=True),
    Column("dataset_version", Integer, primary_key=True),
    Column("view", String(200), primary_key=True),
    Column("view_version", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Index("ix_feature_training_sets_view", "view", "view_version"),
)

# ---------------------------------------------------------------------------- monitoring
# Monitors (reference + windows of one endpoint's prediction log), their per-window results,
# alert rules over those results and the alert history. ``spec`` and ``metrics`` are JSON; the
# reference profile is stored once so the reference is never rescanned. Results go with their
# monitor; alerts have no foreign keys (the history outlives rules and monitors).

monitors = Table(
    "monitors",
    metadata,
    Column("monitor_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("endpoint", String(250), nullable=False),
    Column("model", String(500), nullable=True),
    Column("deployment", String(250), nullable=True),
    Column("spec", Text, nullable=False),  # JSON object: reference, window, task, tests...
    Column("reference_profile", Text, nullable=True),  # JSON Profile
    Column("enabled", Boolean, nullable=False),
    Column("watermark", BigInteger, nullable=True),  # end (ms) of the last window computed
    Column("creation_time", BigInteger, nullable=False),
    Column("last_run_time", BigInteger, nullable=True),
    sqlite_autoincrement=True,
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("result_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "monitor_id",
        Integer,
        ForeignKey("monitors.monitor_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("num_rows", Integer, nullable=False),
    Column("metrics", Text, nullable=False),  # JSON object: metric name -> number
    Column("details", Text, nullable=False),  # JSON object: drift report, performance, health
    Column("computed_time", BigInteger, nullable=False),
    Index("ix_monitor_results_monitor_window", "monitor_id", "window_end"),
    sqlite_autoincrement=True,
)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("rule_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(250), nullable=False, unique=True),
    Column("monitor", String(250), nullable=False),
    Column("metric", String(250), nullable=False),
    Column("operator", String(4), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("consecutive", Integer, nullable=False),
    Column("cooldown_s", Integer, nullable=False),
    Column("sinks", Text, nullable=False),  # JSON list of {"kind": ..., ...}
    Column("action", String(16), nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    # Evaluation state, moved under compare-and-set on ``last_result_id``.
    Column("last_result_id", Integer, nullable=True),
    Column("breach_count", Integer, nullable=False),
    Column("in_breach", Boolean, nullable=False),
    Column("last_fired_time", BigInteger, nullable=True),
    Index("ix_alert_rules_monitor", "monitor"),
    sqlite_autoincrement=True,
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),
    Column("rule", String(250), nullable=False),
    Column("monitor", String(250), nullable=False),
    Column("metric", String(250), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("result_id", Integer, nullable=True),
    Column("status", String(16), nullable=False),  # open, acknowledged, resolved
    Column("fired_time", BigInteger, nullable=False),
    Column("resolved_time", BigInteger, nullable=True),
    Column("acknowledged_by", String(256), nullable=True),
    Column("acknowledged_time", BigInteger, nullable=True),
    Column("note", Text, nullable=True),
    Column("payload", Text, nullable=False),  # JSON object sent to the sinks
    Column("deliveries", Text, nullable=False),  # JSON list: each sink's outcome
    Index("ix_alerts_rule", "rule", "alert_id"),
    Index("ix_alerts_status", "status", "alert_id"),
    sqlite_autoincrement=True,
)
