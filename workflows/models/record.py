"""The onboarding record: what the records store keeps of one onboarding, so the portfolio
reports (rules §8, docs/rules.md) outlive Temporal's retention and work while it is down."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from workflows.models.state import AuditEntry, Escalation, TierChange
from workflows.models.status import (
    MilestoneView,
    ProgramView,
    RoleActivationView,
    SkipCheckView,
    TtvBreakdown,
)
from workflows.models.vocabulary import DealType, HealthBand, OnboardingState, Phase, Tier


class PauseSpan(BaseModel):
    """A formal pause (rules §5); `until` is None while it lasts."""

    since: datetime
    until: datetime | None = None
    by: str | None = None
    reason: str


class OnboardingRecord(BaseModel):
    """One onboarding as the records store keeps it: the deal's facts, tier (initial and
    current), cohort, state, plan against what happened, escalations, tier changes and
    overrides, pauses, TTV parts, completion, group programs, activation per role and the
    audit trail.

    `(as_of, revision)` orders the writes of one onboarding: the store keeps the latest it
    has seen, so a retried or late write never moves a record backwards. The workflow
    counts revisions from 1; a backfill from the status query writes revision 0.
    """

    account_id: str
    onboarding_number: int = Field(
        default=1, ge=1, description="The account's n-th onboarding here (rules §2: expansions)"
    )
    workflow_id: str
    revision: int = Field(ge=0, description="Bumped by the workflow on every change")
    as_of: datetime = Field(description="Workflow time of the change this record shows")
    account_name: str
    acv_usd: float
    currency: str
    closed_won_at: datetime
    cohort: str = Field(description="Closed-won month, YYYY-MM (UTC)")
    playbook_version: str
    started_at: datetime
    initial_tier: Tier
    tier: Tier
    tier_clause: str = Field(description="The tier rule's clause that decided the initial tier")
    state: OnboardingState
    phase: Phase | None
    health_score: float | None
    health_band: HealthBand
    owner: str | None
    next_deadline: datetime | None
    completion_pct: float
    ttv: TtvBreakdown
    finished_at: datetime | None = Field(description="Handoff done (completed) or cancelled")
    cancel_reason: str | None = None
    paused_days_total: float
    decision_required: bool
    risk_flags: list[str]
    milestones: list[MilestoneView]
    escalations: list[Escalation]
    tier_changes: list[TierChange]
    pauses: list[PauseSpan]
    audit: list[AuditEntry]
    team_invitations: int | None = Field(
        default=None, description="Teammates invited; None: not counted (rules §8)"
    )
    first_active_on: date | None = Field(
        default=None, description="The account's first day with an active event"
    )
    came_back_on: date | None = Field(
        default=None, description="Active again 7 to 13 days after it (first-week retention)"
    )
    support_tickets: int = Field(
        default=0, description="Support tickets opened; the skip net compares peers' (§6.4)"
    )
    skip_checks: list[SkipCheckView] = Field(
        default_factory=list, description="The skip net's checks still to come (§6.4)"
    )
    programs: list[ProgramView] = Field(
        default_factory=list,
        description="Group programs invited to or attended; the reports compare attendees' "
        "activation with non-attendees' (rules §1)",
    )
    specialist: str | None = Field(
        default=None, description="The implementation specialist assigned (rules §7)"
    )
    time_zone: str | None = Field(
        default=None, description="The account's IANA time zone; its deadlines show in it (§4)"
    )
    roles: list[RoleActivationView] = Field(
        default_factory=list,
        description="Activation per role with when each role was activated (rules §7)",
    )
    first_value_by_roles_at: datetime | None = Field(
        default=None, description="When first value by roles was reached (rules §7)"
    )
    deal_type: DealType | None = Field(
        default=None,
        description="What was sold: the onboarding's track (rules §2); None in records "
        "written before it was kept",
    )
    converted_to: str | None = Field(
        default=None,
        description="A trial converted to paid: the paid deal's key; the report does not "
        "count it as a failed onboarding (rules §2, §8)",
    )


class RecordSaved(BaseModel):
    """The `save_record` activity's answer: False when the store already had this
    revision or a later one (a retry, or a write overtaken by a newer one)."""

    account_id: str
    revision: int
    saved: bool
