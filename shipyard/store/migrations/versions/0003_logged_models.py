"""MLflow 3 logged models: logged models, their tags and params, the runs that used or produced
them, and an index of the metric points logged with a model's id.

Revision ID: 0003_logged_models
Revises: 0002_registry
Created: 2026-12-09

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_logged_models"
down_revision: str | Sequence[str] | None = "0002_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_MODEL = sa.text("model_id IS NOT NULL")


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"],
        ["logged_models.model_id"],
        name=f"fk_{table}_model_id_logged_models",
        ondelete="CASCADE",
    )


def _key_value_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _model_fk(name),
        sa.PrimaryKeyConstraint("model_id", "key", name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("creator_id", sa.String(256), nullable=False),
        sa.Column("model_type", sa.String(500), nullable=True),
        sa.Column("source_run_id", sa.String(32), nullable=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("deleted_time", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_logged_models_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
    )
    op.create_index(
        "ix_logged_models_experiment_order",
        "logged_models",
        ["experiment_id", "lifecycle_stage", "creation_time", "model_id"],
    )
    op.create_index("ix_logged_models_experiment_name", "logged_models", ["experiment_id", "name"])
    op.create_index("ix_logged_models_source_run", "logged_models", ["source_run_id"])
    _key_value_table("logged_model_tags")
    _key_value_table("logged_model_params")
    op.create_table(
        "run_logged_models",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name="fk_run_logged_models_run_id_runs",
            ondelete="CASCADE",
        ),
        _model_fk("run_logged_models"),
        sa.PrimaryKeyConstraint("run_id", "model_id", "direction", name="pk_run_logged_models"),
    )
    op.create_index("ix_run_logged_models_model", "run_logged_models", ["model_id"])
    op.create_index(
        "ix_metrics_model",
        "metrics",
        ["model_id", "key"],
        sqlite_where=_HAS_MODEL,
        postgresql_where=_HAS_MODEL,
    )


def downgrade() -> None:
    op.drop_index("ix_metrics_model", table_name="metrics")
    for name in ("run_logged_models", "logged_model_params", "logged_model_tags", "logged_models"):
        op.drop_table(name)
