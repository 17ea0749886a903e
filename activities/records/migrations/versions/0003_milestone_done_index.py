"""An index for the report's escalation follow-up: each account's milestones by done time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_milestone_done", "milestone", ["account_id", "done_at"])


def downgrade() -> None:
    op.drop_index("ix_milestone_done", table_name="milestone")
