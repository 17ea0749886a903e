"""Each onboarding's implementation specialist, for capacity-aware assignment (rules §7).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Records written before it had no specialist: NULL (none was ever assigned).
    op.add_column("onboarding", sa.Column("specialist", sa.String(200)))
    op.create_index("ix_onboarding_specialist", "onboarding", ["specialist"])


def downgrade() -> None:
    op.drop_index("ix_onboarding_specialist", table_name="onboarding")
    with op.batch_alter_table("onboarding") as batch:
        batch.drop_column("specialist")
