"""One row per onboarding, not per account: an expansion after an earlier onboarding here is
the account's next onboarding (rules §2), so every table is keyed by the account and its
onboarding number. The rows already stored are the accounts' first onboardings (1).

The tables are built afresh and the rows copied (the same steps on SQLite and
PostgreSQL, whose primary and foreign keys were created unnamed): new tables under a
temporary name, the rows copied, the old tables dropped, the new ones renamed, then the
indexes. The downgrade keeps the first onboardings only. `customer_link` stays as it
is: a progress link is the account's, whichever its onboarding, and names no onboarding.

The column lists are the tables as revision 0007 left them (the code's declaration in
`activities.records.schema` may move on; a released migration does not).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
NUMBER = "onboarding_number"
CHILDREN = ("milestone", "escalation", "tier_change", "program")


def _onboarding() -> list[sa.Column[object]]:
    return [
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
        sa.Column("support_tickets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("team_invitations", sa.Integer),
        sa.Column("first_active_on", sa.Date),
        sa.Column("came_back_on", sa.Date),
        sa.Column("specialist", sa.String(200)),
    ]


def _milestone() -> list[sa.Column[object]]:
    return [
        sa.Column("account_id", sa.String(64), primary_key=True),
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
    ]


def _escalation() -> list[sa.Column[object]]:
    return [
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("milestone_id", sa.String(64)),
        sa.Column("superseded", sa.Boolean, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False),
    ]


def _tier_change() -> list[sa.Column[object]]:
    return [
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("from_tier", sa.String(16), nullable=False),
        sa.Column("to_tier", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    ]


def _program() -> list[sa.Column[object]]:
    return [
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("program_id", sa.String(64), primary_key=True),
        sa.Column("invited_at", TIME),
        sa.Column("session_at", TIME),
        sa.Column("attended_at", TIME),
        sa.Column("attendances", sa.Integer, nullable=False),
    ]


TABLES: dict[str, Callable[[], list[sa.Column[object]]]] = {
    "onboarding": _onboarding,
    "milestone": _milestone,
    "escalation": _escalation,
    "tier_change": _tier_change,
    "program": _program,
}


def _table(name: str, numbered: bool) -> list[SchemaItem]:
    """The columns of `name`, with the onboarding number in its key when `numbered`
    (right after `account_id`), and a child's foreign key to its onboarding."""
    columns: list[SchemaItem] = list(TABLES[name]())
    key = ["account_id"]
    if numbered:
        columns.insert(1, sa.Column(NUMBER, sa.Integer, primary_key=True, server_default="1"))
        key.append(NUMBER)
    if name != "onboarding":
        columns.append(
            sa.ForeignKeyConstraint(key, [f"onboarding_next.{k}" for k in key], ondelete="CASCADE")
        )
    return columns


def _rebuild(numbered: bool) -> None:
    """Every table afresh, keyed with the onboarding number or without it; the rows of
    first onboardings copied (all of them upwards)."""
    for name in TABLES:
        op.create_table(f"{name}_next", *_table(name, numbered))
    for name in TABLES:
        names = [c.name for c in TABLES[name]()]
        columns = ", ".join(names)
        if numbered:
            op.execute(
                f"INSERT INTO {name}_next ({columns}, {NUMBER}) SELECT {columns}, 1 FROM {name}"
            )
        else:
            op.execute(
                f"INSERT INTO {name}_next ({columns}) SELECT {columns} FROM {name} "
                f"WHERE {NUMBER} = 1"
            )
    for name in (*CHILDREN, "onboarding"):
        op.drop_table(name)
    for name in TABLES:
        op.rename_table(f"{name}_next", name)
    number = [NUMBER] if numbered else []
    op.create_index("ix_onboarding_cohort_tier", "onboarding", ["cohort", "tier"])
    op.create_index("ix_onboarding_state", "onboarding", ["state"])
    op.create_index("ix_onboarding_owner", "onboarding", ["owner"])
    op.create_index("ix_onboarding_specialist", "onboarding", ["specialist"])
    op.create_index("ix_milestone_id", "milestone", ["milestone_id"])
    op.create_index("ix_milestone_done", "milestone", ["account_id", *number, "done_at"])
    op.create_index("ix_escalation_step", "escalation", ["step_id"])


def upgrade() -> None:
    _rebuild(numbered=True)


def downgrade() -> None:
    _rebuild(numbered=False)
