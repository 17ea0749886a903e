"""A trial converted to paid (rules §2 (docs/rules.md), *Tracks*): each onboarding's
deal type (its track) and, for a trial ended by its conversion, the paid deal's key, so
the report leaves a converted trial out of the completion rate and gives the share of
trials converted (rules §8).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("onboarding", sa.Column("deal_type", sa.String(16)))
    op.add_column("onboarding", sa.Column("converted_to", sa.String(200)))
    # The deal type was not kept before: a trial's is known by the clause its automated-
    # only track gives (`self_serve.trial`, rules §1); the others stay unknown (null)
    # until the onboarding's next write.
    onboarding = sa.table("onboarding", sa.column("deal_type"), sa.column("tier_clause"))
    op.execute(
        onboarding.update()
        .where(onboarding.c.tier_clause == "self_serve.trial")
        .values(deal_type="trial")
    )


def downgrade() -> None:
    with op.batch_alter_table("onboarding") as batch:
        batch.drop_column("converted_to")
        batch.drop_column("deal_type")
