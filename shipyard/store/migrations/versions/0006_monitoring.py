"""Monitoring: monitors, monitor results, alert rules and alert history.

Revision ID: 0006_monitoring
Revises: 0005_pipelines
Created: 2026-12-04

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_monitoring"
down_revision: str | Sequence[str] | None = "0005_pipelines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("monitor_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("endpoint", sa.String(250), nullable=False),
        sa.Column("model", sa.String(500), nullable=True),
        sa.Column("deployment", sa.String(250), nullable=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("reference_profile", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_run_time", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("monitor_id", name="pk_monitors"),
        sa.UniqueConstraint("name", name="uq_monitors_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "monitor_results",
        sa.Column("result_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("monitor_id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("num_rows", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("computed_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.monitor_id"],
            name="fk_monitor_results_monitor_id_monitors",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_id", name="pk_monitor_results"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_monitor_results_monitor_window", "monitor_results", ["monitor_id", "window_end"]
    )
    op.create_table(
        "alert_rules",
        sa.Column("rule_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("monitor", sa.String(250), nullable=False),
        sa.Column("metric", sa.String(250), nullable=False),
        sa.Column("operator", sa.String(4), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column("sinks", sa.Text(), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_result_id", sa.Integer(), nullable=True),
        sa.Column("breach_count", sa.Integer(), nullable=False),
        sa.Column("in_breach", sa.Boolean(), nullable=False),
        sa.Column("last_fired_time", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("rule_id", name="pk_alert_rules"),
        sa.UniqueConstraint("name", name="uq_alert_rules_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alert_rules_monitor", "alert_rules", ["monitor"])
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(250), nullable=False),
        sa.Column("monitor", sa.String(250), nullable=False),
        sa.Column("metric", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fired_time", sa.BigInteger(), nullable=False),
        sa.Column("resolved_time", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(256), nullable=True),
        sa.Column("acknowledged_time", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alerts_rule", "alerts", ["rule", "alert_id"])
    op.create_index("ix_alerts_status", "alerts", ["status", "alert_id"])


def downgrade() -> None:
    for name in ("alerts", "alert_rules", "monitor_results", "monitors"):
        op.drop_table(name)
