"""The pinned playbooks' content, by sha256 (README *Where the pinned playbook lives*):
Temporal keeps a reference to an onboarding's pinned playbook instead of its own copy.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Onboardings started before it carry their whole playbook: nothing to fill in.
    op.create_table(
        "playbook_content",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("playbook_content")
