"""Capacity-aware assignment claims (rules §7 (docs/rules.md)): who each onboarding's CSM
and implementation specialist were given to, written in the transaction that read the
loads, so two onboardings assigned in the same moment see each other.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Onboardings assigned before it have no claim: their records' owner and specialist
    # are their load, as before.
    op.create_table(
        "assignment",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("onboarding_number", sa.Integer, primary_key=True, server_default="1"),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_assignment_person", "assignment", ["person"])


def downgrade() -> None:
    op.drop_index("ix_assignment_person", table_name="assignment")
    op.drop_table("assignment")
