"""Security: users, API tokens, role grants and the security audit log.

Revision ID: 0008_auth
Revises: 0007_features
Created: 2026-12-04

Written by hand to match ``shipyard/store/schema.py``; ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_auth"
down_revision: str | Sequence[str] | None = "0007_features"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("user_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_auth_users"),
        sa.UniqueConstraint("username", name="uq_auth_users_username"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("expiry_time", sa.BigInteger(), nullable=True),
        sa.Column("revoked_time", sa.BigInteger(), nullable=True),
        sa.Column("last_used_time", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_users.user_id"],
            name="fk_auth_tokens_user_id_auth_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", name="pk_auth_tokens"),
        sa.UniqueConstraint("secret_hash", name="uq_auth_tokens_secret_hash"),
    )
    op.create_index("ix_auth_tokens_user", "auth_tokens", ["user_id"])
    op.create_table(
        "auth_grants",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(600), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_users.user_id"],
            name="fk_auth_grants_user_id_auth_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "scope", name="pk_auth_grants"),
    )
    op.create_index("ix_auth_grants_scope", "auth_grants", ["scope"])
    op.create_table(
        "auth_audit",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_time", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("scope", sa.String(600), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_auth_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_auth_audit_time", "auth_audit", ["event_time"])


def downgrade() -> None:
    op.drop_index("ix_auth_audit_time", table_name="auth_audit")
    op.drop_table("auth_audit")
    op.drop_index("ix_auth_grants_scope", table_name="auth_grants")
    op.drop_table("auth_grants")
    op.drop_index("ix_auth_tokens_user", table_name="auth_tokens")
    op.drop_table("auth_tokens")
    op.drop_table("auth_users")
