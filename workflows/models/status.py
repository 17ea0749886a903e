"""The `status` query's answer: one onboarding's whole state, explained."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from workflows.business_days import Unit
from workflows.models.deal import FxRate
from workflows.models.state import (
    AuditEntry,
    ChampionWindow,
    ConfirmedSuccessPlan,
    Escalation,
    Pause,
    RejectedMessage,
    TierChange,
    TierDecision,
)
from workflows.models.vocabulary import (
    DealType,
    HealthBand,
    MilestoneStatus,
    OnboardingState,
    Owner,
    Phase,
    Tier,
    Trigger,
)


class TtvBreakdown(BaseModel):
    """rules §3 (docs/rules.md), in days from closed-won; None until the mark is reached."""

    handoff_delay_days: float | None = None
    setup_days: float | None = None
    activation_days: float | None = None
    total_days: float | None = None
    target_days: tuple[int, int] | None = None


class Health(BaseModel):
    score: float | None = Field(description="None until a milestone is due or done")
    band: HealthBand
    earned: float
    possible: float


class MilestoneView(BaseModel):
    id: str
    title: str
    phase: Phase
    weight: int
    owner: Owner
    status: MilestoneStatus
    due_at: datetime
    done_at: datetime | None
    overdue: bool
    credit: float | None = Field(description="Health credit now; None while not yet due")
    provisional: bool = Field(
        default=False, description="The deadline waits for the success plan's confirmation"
    )
    product: str | None = Field(default=None, description="The deal's product it is for")
    held: bool = Field(
        default=False, description="Its product waits at a phase gate: the deadline does not run"
    )
    due_unit: Unit = Field(
        default="days", description="What its deadline counts in: days, business days or hours"
    )
    due_local: str | None = Field(
        default=None,
        description="The deadline in the account's zone, saying its unit: `end of 2026-12-08 "
        "America/New_York, in business days` (rules §4)",
    )


class SlaStep(BaseModel):
    """A ladder step still to come on an SLA the customer's calendar or the first CS
    engagement sets (rules §3-§4 (docs/rules.md)): one counted in business days or hours,
    or one on the sales-to-CS handoff or the first engagement."""

    step_id: str
    trigger: Trigger
    due_at: datetime
    due_local: str = Field(description="In the account's zone, saying its unit")
    days: int
    days_unit: Unit


class ProductView(BaseModel):
    """One product of a multi-product deal now (rules §6.2): its adoption, and the phase
    gate it waits at, if it does, with its predecessors' adoption and the threshold."""

    id: str
    name: str
    licensed_seats: int
    active_users: int
    adoption: float = Field(description="Active users over licensed seats, 0..1")
    depends_on: list[str]
    waiting_at: Phase | None = Field(
        default=None, description="The phase gate it waits at; None when it does not wait"
    )
    waiting_since: datetime | None = None
    predecessor_adoption: dict[str, float] = Field(
        default_factory=dict, description="Predecessor id -> its adoption now (0..1)"
    )
    threshold: float


class QueuedDealView(BaseModel):
    """An expansion deal waiting for the running onboarding to finish."""

    deal: str = Field(description="The CRM deal key, `source:deal_id`")
    account_name: str
    queued_at: datetime


class SkipCheckView(BaseModel):
    """A check of the skip net still to come (rules §6.4): which skipped gate, when it was
    skipped, the day it is due now, the day it was first due (later only after a pause
    moved it) and whether a pause holds it now (then it moves by the time paused)."""

    milestone_id: str
    title: str
    skipped_at: datetime
    due_at: datetime
    planned_at: datetime | None = Field(
        default=None, description="When it was first due; None for a check planned before"
    )
    held: bool = Field(default=False, description="A pause holds it: its day moves on resume")


class ProgramView(BaseModel):
    """A group program the onboarding was invited to or attended (rules §1
    (docs/rules.md), *Group programs*)."""

    program: str
    title: str
    invited_at: datetime | None = Field(description="When the invitation was sent")
    session_at: datetime | None = Field(description="The session it invited to")
    attended_at: datetime | None = Field(description="First attendance; None: not yet")
    attendances: int


class RoleActivationView(BaseModel):
    """One role's activation path now (rules §7 (docs/rules.md), *Activation by role*):
    how many of the users it needs are activated, and when it was (None: not yet)."""

    role: str
    title: str
    users: int = Field(description="Users of the role activated so far (at most `needed`)")
    needed: int
    activated_at: datetime | None


class OnboardingStatus(BaseModel):
    """The `status` query: the whole state of one onboarding, explained."""

    account_id: str
    account_name: str
    workflow_id: str
    acv_usd: float
    currency: str = Field(default="USD", description="The deal's currency (ISO 4217)")
    acv: float | None = Field(default=None, description="The ACV in `currency`, if not USD")
    fx_rate: FxRate | None = Field(default=None, description="How `acv` became `acv_usd`")
    state: OnboardingState
    tier: Tier | None = Field(description="None while waiting for the closed-won deal")
    tier_decision: TierDecision | None
    tier_changes: list[TierChange]
    phase: Phase | None
    playbook_version: str
    playbook_hash: str
    owner: str | None
    closed_won_at: datetime | None
    as_of: datetime
    next_deadline: datetime | None
    milestones: list[MilestoneView]
    health: Health
    ttv: TtvBreakdown
    completion_pct: float
    success_criteria: list[str]
    pause: Pause | None
    decision_required: bool
    risk_flags: list[str]
    escalations: list[Escalation]
    event_counts: dict[str, int] = Field(
        default_factory=dict, description="Product events seen, by name"
    )
    started_at: datetime | None = Field(default=None, description="When tracking began")
    finished_at: datetime | None = Field(
        default=None, description="When it completed (handoff done) or was cancelled"
    )
    cancel_reason: str | None = None
    paused_days_total: float = Field(default=0, description="Days spent paused, all pauses")
    awaiting_deal_until: datetime | None = Field(
        default=None,
        description="Product events came first: the onboarding ends then without a deal",
    )
    rejected: list[RejectedMessage]
    audit: list[AuditEntry]
    champion_windows: list[ChampionWindow] = Field(
        default_factory=list,
        description="Re-alignment windows opened by champion changes, oldest first",
    )
    deal_type: DealType = Field(
        default=DealType.NEW_BUSINESS, description="What was sold: the onboarding's track"
    )
    churn_reason: str | None = Field(default=None, description="Why a win-back customer left")
    success_plan: ConfirmedSuccessPlan | None = Field(
        default=None, description="The confirmed success plan; None while none is"
    )
    schedule_provisional: bool = Field(
        default=False, description="Some open deadline waits for the success plan"
    )
    support_tickets: int = Field(
        default=0, description="Support tickets opened (the skip net's `support_events`)"
    )
    products: list[ProductView] = Field(
        default_factory=list, description="A multi-product deal's products (rules §6.2)"
    )
    onboarding_number: int = Field(
        default=1, description="The account's n-th onboarding here (expansions add one)"
    )
    deals_onboarded: list[str] = Field(
        default_factory=list,
        description="CRM deal keys (`source:deal_id`) of the account's onboardings here: "
        "the earlier ones and this one's",
    )
    queued_deals: list[QueuedDealView] = Field(
        default_factory=list,
        description="Expansion deals whose onboardings start when this one finishes",
    )
    team_invitations: int | None = Field(
        default=None,
        description="Teammates invited; None: not counted (a playbook without `[measures]`, "
        "rules §8)",
    )
    first_active_on: date | None = Field(
        default=None, description="The account's first day with an active event (its time zone)"
    )
    came_back_on: date | None = Field(
        default=None,
        description="Its first active day 7 to 13 days after that one: retained through "
        "the first week (rules §8)",
    )
    skip_checks: list[SkipCheckView] = Field(
        default_factory=list,
        description="The skip net's checks still to come, earliest first (rules §6.4)",
    )
    programs: list[ProgramView] = Field(
        default_factory=list, description="Group programs invited to or attended (rules §1)"
    )
    specialist: str | None = Field(
        default=None, description="The implementation specialist assigned (rules §7)"
    )
    time_zone: str | None = Field(
        default=None, description="The account's IANA time zone, that local times are in"
    )
    sla_steps: list[SlaStep] = Field(
        default_factory=list,
        description="Ladder steps to come on the handoff and first-engagement SLAs, or counted "
        "in business time, earliest first (rules §3-§4)",
    )
    roles: list[RoleActivationView] = Field(
        default_factory=list,
        description="Activation per role, in the playbook's order (rules §7); none without "
        "`[activation]`",
    )
    first_value_by_roles_at: datetime | None = Field(
        default=None,
        description="When every role of `[activation].first_value_when` was activated",
    )
    converted_to: str | None = Field(
        default=None,
        description="A trial converted to paid (cancelled as converted): the paid deal's key "
        "(`source:deal_id`), whose onboarding followed it (rules §2)",
    )
