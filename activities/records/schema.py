"""The records store's tables (SQLAlchemy Core). Changes go through a new Alembic
migration in `migrations/versions/`, never by editing a released one.

`onboarding` holds one row per onboarding, keyed by the account and its onboarding
number (an expansion after an earlier onboarding here is the account's next, rules §2),
with the columns the reports filter and group by and the whole record as `document`;
`milestone`, `escalation`, `tier_change`, `program` (group programs: invitation and
attendance) and `role_activation` (activation by role) hold the record's lists as rows,
so drop-off, SLA, escalation, program and role
figures are SQL aggregates.
`customer_link` holds the customers' progress links (`activities.records.links`): one live
link per account at most, kept when revoked so a revoked link stays refused.
`assignment` holds who each onboarding's CSM and implementation specialist were given
to, written when they are picked (before the record says so), for the loads (rules §7).
`playbook_content` holds the content of every pinned playbook, by its sha256.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which keeps no time zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()


def _onboarding_key() -> tuple[sa.Column[Any], sa.Column[Any], sa.ForeignKeyConstraint]:
    """A child row's key: its onboarding's (account, onboarding number)."""
    return (
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("onboarding_number", sa.Integer, primary_key=True, server_default="1"),
        sa.ForeignKeyConstraint(
            ["account_id", "onboarding_number"],
            ["onboarding.account_id", "onboarding.onboarding_number"],
            ondelete="CASCADE",
        ),
    )


onboarding = sa.Table(
    "onboarding",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("onboarding_number", sa.Integer, primary_key=True, server_default="1"),
    sa.Column("workflow_id", sa.String(200), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("as_of", UtcDateTime, nullable=False),
    sa.Column("account_name", sa.String(200), nullable=False),
    sa.Column("acv_usd", sa.Float, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("closed_won_at", UtcDateTime, nullable=False),
    sa.Column("cohort", sa.String(7), nullable=False),
    sa.Column("playbook_version", sa.String(64), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("initial_tier", sa.String(16), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("tier_clause", sa.String(100), nullable=False),
    sa.Column("overridden", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(16)),
    sa.Column("health_score", sa.Float),
    sa.Column("health_band", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("next_deadline", UtcDateTime),
    sa.Column("completion_pct", sa.Float, nullable=False),
    sa.Column("handoff_delay_days", sa.Float),
    sa.Column("setup_days", sa.Float),
    sa.Column("activation_days", sa.Float),
    sa.Column("ttv_days", sa.Float),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("paused_days_total", sa.Float, nullable=False),
    sa.Column("decision_required", sa.Boolean, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Index("ix_onboarding_cohort_tier", "cohort", "tier"),
    sa.Index("ix_onboarding_state", "state"),
    sa.Index("ix_onboarding_owner", "owner"),
    # The skip net's peers (rules §6.4): support tickets of the open onboardings of a tier.
    sa.Column("support_tickets", sa.Integer, nullable=False, server_default="0"),
    # Team invitations and first-week retention (rules §8).
    sa.Column("team_invitations", sa.Integer),
    sa.Column("first_active_on", sa.Date),
    sa.Column("came_back_on", sa.Date),
    # Capacity-aware assignment (rules §7): the specialists' active implementations.
    sa.Column("specialist", sa.String(200)),
    sa.Index("ix_onboarding_specialist", "specialist"),
    # Activation by role (rules §7): when first value by roles was reached.
    sa.Column("first_value_by_roles_at", UtcDateTime),
    # A trial converted to paid (rules §2): the track, and the paid deal's key.
    sa.Column("deal_type", sa.String(16)),
    sa.Column("converted_to", sa.String(200)),
    # A digest of each list's child rows as last written ({table: hex}), the revision
    # they were written with, and the digests as they stood before the latest write,
    # which the write returns: a write rewrites only the lists that changed
    # (`RecordStore.save`). A migration that changes child rows sets `children` to
    # null, so the next write rewrites every list.
    sa.Column("children", sa.JSON),
    sa.Column("children_revision", sa.Integer),
    sa.Column("children_before", sa.JSON),
)

milestone = sa.Table(
    "milestone",
    metadata,
    *_onboarding_key(),
    sa.Column("milestone_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(32), nullable=False),
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("done_at", UtcDateTime),
    sa.Column("credit", sa.Float),
    sa.Index("ix_milestone_id", "milestone_id"),
    # The report's "moved again after an escalation": the next milestone done per account.
    sa.Index("ix_milestone_done", "account_id", "onboarding_number", "done_at"),
)

escalation = sa.Table(
    "escalation",
    metadata,
    *_onboarding_key(),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("milestone_id", sa.String(64)),
    sa.Column("superseded", sa.Boolean, nullable=False),
    sa.Column("repeats", sa.Integer, nullable=False),
    sa.Index("ix_escalation_step", "step_id"),
)

tier_change = sa.Table(
    "tier_change",
    metadata,
    *_onboarding_key(),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("from_tier", sa.String(16), nullable=False),
    sa.Column("to_tier", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

program = sa.Table(
    "program",
    metadata,
    *_onboarding_key(),
    sa.Column("program_id", sa.String(64), primary_key=True),
    sa.Column("invited_at", UtcDateTime),
    sa.Column("session_at", UtcDateTime),
    sa.Column("attended_at", UtcDateTime),
    sa.Column("attendances", sa.Integer, nullable=False),
)

role_activation = sa.Table(
    "role_activation",
    metadata,
    *_onboarding_key(),
    sa.Column("role", sa.String(64), primary_key=True),
    sa.Column("users", sa.Integer, nullable=False),
    sa.Column("needed", sa.Integer, nullable=False),
    sa.Column("activated_at", UtcDateTime),
)

# No foreign key to `onboarding`: the welcome email's link is issued before the
# onboarding's first record may be written.
_LIVE = sa.text("revoked_at IS NULL")
customer_link = sa.Table(
    "customer_link",
    metadata,
    sa.Column("link_id", sa.String(32), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("issued_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    sa.Index(
        "ux_customer_link_live",
        "account_id",
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    ),
)

# Capacity-aware assignment (rules §7): the person each onboarding's role was given to,
# claimed in the same transaction that read the loads, so an assignment made but not yet
# in a record counts. No foreign key to `onboarding`: the claim comes before the
# onboarding's first record.
assignment = sa.Table(
    "assignment",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("onboarding_number", sa.Integer, primary_key=True, server_default="1"),
    sa.Column("role", sa.String(32), primary_key=True),
    sa.Column("person", sa.String(200), nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("claimed_at", UtcDateTime, nullable=False),
    sa.Index("ix_assignment_person", "person"),
)

# The pinned playbooks' content (README *Where the pinned playbook lives*): Temporal keeps
# a reference (`workflows.models.playbook.PlaybookRef`) instead of each onboarding's own
# copy; `activities.pinning` stores the content here once per playbook and loads it where
# a reference arrives. Written once, never changed (the key is the content's sha256).
playbook_content = sa.Table(
    "playbook_content",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(200), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("stored_at", UtcDateTime, nullable=False),
)
