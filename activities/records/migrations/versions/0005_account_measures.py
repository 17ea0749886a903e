"""Each onboarding's team invitations and first-week retention (rules §8).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Records written before it counted neither: unknown (the next write of an onboarding
    # whose playbook has `[measures]` fills them in).
    op.add_column("onboarding", sa.Column("team_invitations", sa.Integer))
    op.add_column("onboarding", sa.Column("first_active_on", sa.Date))
    op.add_column("onboarding", sa.Column("came_back_on", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("onboarding") as batch:
        batch.drop_column("came_back_on")
        batch.drop_column("first_active_on")
        batch.drop_column("team_invitations")
