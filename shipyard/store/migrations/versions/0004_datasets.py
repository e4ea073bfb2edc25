"""Datasets: registered datasets, their content-addressed versions (with inferred schema and
profile), version tags, and the lineage edge from runs to the versions they read.

Revision ID: 0004_datasets
Revises: 0003_logged_models
Created: 2026-12-12

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_datasets"
down_revision: str | Sequence[str] | None = "0003_logged_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["dataset_id", "version"],
        ["dataset_versions.dataset_id", "dataset_versions.version"],
        name=f"fk_{table}_dataset_id_dataset_versions",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "registered_datasets",
        sa.Column("dataset_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.Column("user_schema", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("dataset_id", name="pk_registered_datasets"),
        sa.UniqueConstraint("name", name="uq_registered_datasets_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=True),
        sa.Column("num_columns", sa.Integer(), nullable=True),
        sa.Column("num_bytes", sa.BigInteger(), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("storage_owner", sa.String(64), nullable=False),
        sa.Column("schema", sa.Text(), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["registered_datasets.dataset_id"],
            name="fk_dataset_versions_dataset_id_registered_datasets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "version", name="pk_dataset_versions"),
        sa.UniqueConstraint("storage_owner", name="uq_dataset_versions_storage_owner"),
    )
    op.create_index(
        "ix_dataset_versions_content",
        "dataset_versions",
        ["dataset_id", "content_digest"],
        unique=True,
    )
    op.create_index("ix_dataset_versions_run", "dataset_versions", ["run_id"])
    op.create_table(
        "dataset_version_tags",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _version_fk("dataset_version_tags"),
        sa.PrimaryKeyConstraint("dataset_id", "version", "key", name="pk_dataset_version_tags"),
    )
    op.create_table(
        "run_dataset_versions",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("context", sa.String(250), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name="fk_run_dataset_versions_run_id_runs",
            ondelete="CASCADE",
        ),
        _version_fk("run_dataset_versions"),
        sa.PrimaryKeyConstraint("run_id", "dataset_id", "version", name="pk_run_dataset_versions"),
    )
    op.create_index(
        "ix_run_dataset_versions_version", "run_dataset_versions", ["dataset_id", "version"]
    )


def downgrade() -> None:
    for name in (
        "run_dataset_versions",
        "dataset_version_tags",
        "dataset_versions",
        "registered_datasets",
    ):
        op.drop_table(name)
