"""Continuous deployment: deployment specs, controller state and decisions.

Revision ID: 0009_deployments
Revises: 0008_auth
Created: 2026-12-04

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_deployments"
down_revision: str | Sequence[str] | None = "0008_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("stable_version", sa.Integer(), nullable=True),
        sa.Column("candidate_version", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started", sa.BigInteger(), nullable=True),
        sa.Column("paused_state", sa.String(32), nullable=True),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("traffic", sa.Text(), nullable=False),
        sa.Column("traffic_revision", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_deployments"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment", sa.String(250), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_deployment_events"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_deployment_events_deployment", "deployment_events", ["deployment", "event_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_deployment_events_deployment", table_name="deployment_events")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
