"""Pipelines: pipeline runs, step runs (cache keys, outputs, logs), their lineage links,
schedules, firings and events.

Revision ID: 0005_pipelines
Revises: 0004_datasets
Created: 2026-12-12

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_pipelines"
down_revision: str | Sequence[str] | None = "0004_datasets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(250), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("cache_enabled", sa.Boolean(), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("resumed_from", sa.String(32), nullable=True),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_pipeline_runs"),
    )
    op.create_index(
        "ix_pipeline_runs_pipeline_start", "pipeline_runs", ["pipeline", "start_time"]
    )
    op.create_index("ix_pipeline_runs_start", "pipeline_runs", ["start_time"])
    op.create_table(
        "pipeline_step_runs",
        sa.Column("step_run_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cache_components", sa.Text(), nullable=False),
        sa.Column("cache_source", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("logs", sa.Text(), nullable=True),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("tracking_run_id", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.run_id"],
            name="fk_pipeline_step_runs_run_id_pipeline_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("step_run_id", name="pk_pipeline_step_runs"),
    )
    op.create_index(
        "ix_pipeline_step_runs_run", "pipeline_step_runs", ["run_id", "start_time"]
    )
    op.create_index("ix_pipeline_step_runs_cache_key", "pipeline_step_runs", ["cache_key"])
    op.create_index("ix_pipeline_step_runs_name", "pipeline_step_runs", ["name", "start_time"])
    op.create_table(
        "pipeline_step_links",
        sa.Column("step_run_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["step_run_id"],
            ["pipeline_step_runs.step_run_id"],
            name="fk_pipeline_step_links_step_run_id_pipeline_step_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "step_run_id", "kind", "name", "version", name="pk_pipeline_step_links"
        ),
    )
    op.create_index(
        "ix_pipeline_step_links_target", "pipeline_step_links", ["kind", "name", "version"]
    )
    op.create_table(
        "pipeline_schedules",
        sa.Column("schedule_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.String(250), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("event_filter", sa.String(500), nullable=True),
        sa.Column("missed", sa.String(16), nullable=False),
        sa.Column("executor", sa.String(32), nullable=False),
        sa.Column("next_fire_time", sa.BigInteger(), nullable=True),
        sa.Column("watermark", sa.BigInteger(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("schedule_id", name="pk_pipeline_schedules"),
        sa.UniqueConstraint("name", name="uq_pipeline_schedules_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "pipeline_firings",
        sa.Column("firing_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("schedule_name", sa.String(250), nullable=False),
        sa.Column("fire_time", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("firing_id", name="pk_pipeline_firings"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_pipeline_firings_schedule", "pipeline_firings", ["schedule_name", "firing_id"]
    )
    op.create_table(
        "pipeline_events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_pipeline_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pipeline_events_kind", "pipeline_events", ["kind", "event_id"])


def downgrade() -> None:
    for name in (
        "pipeline_events",
        "pipeline_firings",
        "pipeline_schedules",
        "pipeline_step_links",
        "pipeline_step_runs",
        "pipeline_runs",
    ):
        op.drop_table(name)
