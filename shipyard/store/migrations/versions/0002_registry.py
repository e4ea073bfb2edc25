"""The model registry: registered models, versions, tags, aliases, approvals and the audit trail.

Revision ID: 0002_registry
Revises: 0001_initial
Created: 2026-12-04

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_registry"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"],
        ["registered_models.model_id"],
        name=f"fk_{table}_model_id_registered_models",
        ondelete="CASCADE",
    )


def _version_fk(table: str, ondelete: str | None = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        name=f"fk_{table}_model_id_model_versions",
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("model_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("next_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _model_fk("registered_model_tags"),
        sa.PrimaryKeyConstraint("model_id", "key", name="pk_registered_model_tags"),
    )
    op.create_index(
        "ix_registered_model_tags_key_model", "registered_model_tags", ["key", "model_id"]
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.Column("current_stage", sa.String(20), nullable=False),
        sa.Column("storage_owner", sa.String(64), nullable=False),
        sa.Column("storage_path", sa.String(1024), nullable=False),
        sa.Column("content_digest", sa.String(64), nullable=True),
        _model_fk("model_versions"),
        sa.PrimaryKeyConstraint("model_id", "version", name="pk_model_versions"),
        sa.UniqueConstraint("storage_owner", name="uq_model_versions_storage_owner"),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _version_fk("model_version_tags"),
        sa.PrimaryKeyConstraint("model_id", "version", "key", name="pk_model_version_tags"),
    )
    op.create_index(
        "ix_model_version_tags_key_model",
        "model_version_tags",
        ["key", "model_id", "version"],
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _model_fk("model_aliases"),
        _version_fk("model_aliases", ondelete=None),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
    )
    op.create_index("ix_model_aliases_version", "model_aliases", ["model_id", "version"])
    op.create_table(
        "model_version_approvals",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("approval_time", sa.BigInteger(), nullable=False),
        _version_fk("model_version_approvals"),
        sa.PrimaryKeyConstraint(
            "model_id", "version", "approver", name="pk_model_version_approvals"
        ),
    )
    op.create_table(
        "approval_policies",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        _model_fk("approval_policies"),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_approval_policies"),
    )
    op.create_table(
        "registry_events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("alias", sa.String(255), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_value", sa.Text(), nullable=True),
        sa.Column("to_value", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_registry_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_registry_events_model", "registry_events", ["model_id", "event_id"])
    op.create_index("ix_registry_events_name", "registry_events", ["model_name", "event_id"])


def downgrade() -> None:
    for name in (
        "registry_events",
        "approval_policies",
        "model_version_approvals",
        "model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        op.drop_table(name)
