"""Activation by role (rules §7 (docs/rules.md), *Activation by role*): each onboarding's
roles with their users activated and when each role was, and when first value by roles
was reached, so the report gives per-role activation rates.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Records written before it had no roles: none (the next write adds any).
    op.create_table(
        "role_activation",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("onboarding_number", sa.Integer, primary_key=True, server_default="1"),
        sa.Column("role", sa.String(64), primary_key=True),
        sa.Column("users", sa.Integer, nullable=False),
        sa.Column("needed", sa.Integer, nullable=False),
        sa.Column("activated_at", TIME),
        sa.ForeignKeyConstraint(
            ["account_id", "onboarding_number"],
            ["onboarding.account_id", "onboarding.onboarding_number"],
            ondelete="CASCADE",
        ),
    )
    op.add_column("onboarding", sa.Column("first_value_by_roles_at", TIME))


def downgrade() -> None:
    with op.batch_alter_table("onboarding") as batch:
        batch.drop_column("first_value_by_roles_at")
    op.drop_table("role_activation")
