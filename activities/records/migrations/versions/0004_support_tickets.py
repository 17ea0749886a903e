"""Each onboarding's support tickets, for the skip net's peer median (rules §6.4).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Records written before it had no tickets counted: 0 (the next write corrects it).
    op.add_column(
        "onboarding",
        sa.Column("support_tickets", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("onboarding") as batch:
        batch.drop_column("support_tickets")
