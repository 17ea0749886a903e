"""Onboarding records: one row per account, its milestones, escalations and tier changes.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def _account() -> sa.Column[str]:
    return sa.Column(
        "account_id",
        sa.String(64),
        sa.ForeignKey("onboarding.account_id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "onboarding",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("as_of", TIME, nullable=False),
        sa.Column("account_name", sa.String(200), nullable=False),
        sa.Column("acv_usd", sa.Float, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("closed_won_at", TIME, nullable=False),
        sa.Column("cohort", sa.String(7), nullable=False),
        sa.Column("playbook_version", sa.String(64), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("initial_tier", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("tier_clause", sa.String(100), nullable=False),
        sa.Column("overridden", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16)),
        sa.Column("health_score", sa.Float),
        sa.Column("health_band", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("next_deadline", TIME),
        sa.Column("completion_pct", sa.Float, nullable=False),
        sa.Column("handoff_delay_days", sa.Float),
        sa.Column("setup_days", sa.Float),
        sa.Column("activation_days", sa.Float),
        sa.Column("ttv_days", sa.Float),
        sa.Column("finished_at", TIME),
        sa.Column("cancel_reason", sa.Text),
        sa.Column("paused_days_total", sa.Float, nullable=False),
        sa.Column("decision_required", sa.Boolean, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_index("ix_onboarding_cohort_tier", "onboarding", ["cohort", "tier"])
    op.create_index("ix_onboarding_state", "onboarding", ["state"])
    op.create_index("ix_onboarding_owner", "onboarding", ["owner"])
    op.create_table(
        "milestone",
        _account(),
        sa.Column("milestone_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("done_at", TIME),
        sa.Column("credit", sa.Float),
    )
    op.create_index("ix_milestone_id", "milestone", ["milestone_id"])
    op.create_table(
        "escalation",
        _account(),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("milestone_id", sa.String(64)),
        sa.Column("superseded", sa.Boolean, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
    )
    op.create_index("ix_escalation_step", "escalation", ["step_id"])
    op.create_table(
        "tier_change",
        _account(),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("from_tier", sa.String(16), nullable=False),
        sa.Column("to_tier", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("tier_change", "escalation", "milestone", "onboarding"):
        op.drop_table(table)
