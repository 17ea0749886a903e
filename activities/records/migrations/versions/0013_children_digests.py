"""Each onboarding row keeps digests of its child rows as last written (`children`), the
revision they were written with (`children_revision`), and the digests as they stood
before the latest write (`children_before`), which the write returns: a record whose
milestones changed rewrites its milestone rows only, not its escalations, tier changes,
programs and role activations too (README *Onboarding records*).

Rows written before this migration have none, and a write by a worker still on the code
before it (a rolling deploy) moves the revision without the digests: either way the
next write rewrites every list. To make the next write rewrite every list by hand:
`UPDATE onboarding SET children = NULL`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("onboarding", sa.Column("children", sa.JSON))
    op.add_column("onboarding", sa.Column("children_revision", sa.Integer))
    op.add_column("onboarding", sa.Column("children_before", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("onboarding") as batch:
        batch.drop_column("children_before")
        batch.drop_column("children_revision")
        batch.drop_column("children")
