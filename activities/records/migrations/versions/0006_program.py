"""Each onboarding's group programs (rules §1 (docs/rules.md), *Group programs*): the
invitation and the first attendance, so the report compares attendees' activation with
non-attendees'.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Records written before it had no programs: none (the next write adds any).
    op.create_table(
        "program",
        sa.Column(
            "account_id",
            sa.String(64),
            sa.ForeignKey("onboarding.account_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("invited_at", TIME),
        sa.Column("session_at", TIME),
        sa.Column("attended_at", TIME),
        sa.Column("attendances", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("program")
