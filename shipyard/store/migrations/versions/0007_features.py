"""Feature store: entities, sources, feature views and services, and their versions.

Revision ID: 0007_features
Revises: 0006_monitoring
Created: 2026-12-04

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_features"
down_revision: str | Sequence[str] | None = "0006_monitoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "version", name="pk_feature_definitions"),
    )
    op.create_table(
        "feature_materializations",
        sa.Column("materialization_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("online_store", sa.String(500), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("num_rows", sa.BigInteger(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("materialization_id", name="pk_feature_materializations"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_feature_materializations_view",
        "feature_materializations",
        ["view", "online_store", "materialization_id"],
    )
    op.create_table(
        "feature_training_sets",
        sa.Column("dataset", sa.String(256), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("view_version", sa.Integer(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "dataset", "dataset_version", "view", name="pk_feature_training_sets"
        ),
    )
    op.create_index(
        "ix_feature_training_sets_view", "feature_training_sets", ["view", "view_version"]
    )


def downgrade() -> None:
    op.drop_index("ix_feature_training_sets_view", table_name="feature_training_sets")
    op.drop_table("feature_training_sets")
    op.drop_index("ix_feature_materializations_view", table_name="feature_materializations")
    op.drop_table("feature_materializations")
    op.drop_table("feature_definitions")
