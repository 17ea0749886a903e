"""The onboarding domain in the customers' words: deals, tiers, phases, milestones, playbooks.

Every message that crosses Temporal (workflow input, signals, updates, query results,
activity arguments) is one of these pydantic models, carried by the SDK's pydantic
data converter.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class Tier(StrEnum):
    HIGH_TOUCH = "high_touch"
    TECH_TOUCH = "tech_touch"
    SELF_SERVE = "self_serve"

    @property
    def rank(self) -> int:
        """Touch level: self_serve 0 < tech_touch 1 < high_touch 2."""
        return [Tier.SELF_SERVE, Tier.TECH_TOUCH, Tier.HIGH_TOUCH].index(self)

    def next_up(self) -> Tier:
        return [Tier.TECH_TOUCH, Tier.HIGH_TOUCH, Tier.HIGH_TOUCH][self.rank]


class Phase(StrEnum):
    KICKOFF = "kickoff"
    PILOT = "pilot"
    GO_LIVE = "go_live"
    VALIDATION = "validation"
    HANDOFF = "handoff"


PHASE_ORDER: tuple[Phase, ...] = tuple(Phase)


class Owner(StrEnum):
    """Who must act for a milestone to be reached."""

    CUSTOMER = "customer"
    CSM = "csm"
    IMPLEMENTATION = "implementation_specialist"
    PRODUCT = "product"


class ContactRole(StrEnum):
    CHAMPION = "champion"
    EXECUTIVE_SPONSOR = "executive_sponsor"
    ADMIN = "admin"
    END_USER = "end_user"


class OnboardingState(StrEnum):
    """The `OnboardingState` search attribute."""

    AWAITING_DEAL = "awaiting_deal"  # product events arrived before the closed-won deal
    ACTIVE = "active"
    PAUSED = "paused"
    AT_RISK = "at_risk"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class HealthBand(StrEnum):
    HEALTHY = "healthy"
    AT_RISK = "at_risk"
    CRITICAL = "critical"


def _utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC, so a CSV or CRM date never shifts by a zone."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable day
        raise ValueError("is outside the range of dates in UTC") from None


def _to_utc_datetime(value: object) -> object:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
ACCOUNT_ID = re.compile(_ID)  # a CRM account id: letters, digits, . _ : -
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


# --------------------------------------------------------------------------- limits
# What one onboarding may carry. Its deal, playbook and state travel in one payload at
# continue-as-new, which Temporal refuses above 2 MB; these bounds keep the worst case
# about 1.1 MB (README "Limits"; tests/test_limits.py runs the largest case to handoff).
NAME_CHARS = 200  # names, titles, who did something
TEXT_CHARS = 1_000  # reasons, success criteria, one-line notes
MAX_CONTACTS = 50
MAX_INTEGRATIONS = 50
MAX_SUCCESS_CRITERIA = 50
MAX_COMPLETED_MILESTONES = 50
MAX_MILESTONES = 50
MAX_LADDER_STEPS = 30  # per tier
MAX_TEMPLATES = 50
SUBJECT_CHARS = 200
TEMPLATE_CHARS = 10_000  # one message body
MAX_EVENT_NAMES = 10  # names that complete one milestone
MAX_PLAYBOOK_EVENT_NAMES = 50
MAX_EVENT_COUNT = 100  # events one milestone may need
PLAYBOOK_BYTES = 256_000  # the whole playbook as each onboarding carries it (JSON)
MAX_PLAN_DAYS = 3_650  # any day count of a playbook: deadlines stay inside the calendar
EARLIEST_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # dates a plan may be built on
LATEST_DATE = datetime(2999, 12, 31, tzinfo=UTC)


def _plannable(value: datetime) -> datetime:
    # Deadlines are counted from these dates: one at the calendar's edge would fail the
    # onboarding's date arithmetic after it was accepted.
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(
            f"must be between {EARLIEST_DATE.date().isoformat()} and "
            f"{LATEST_DATE.date().isoformat()}"
        )
    return value


PlanDatetime = Annotated[datetime, AfterValidator(_utc), AfterValidator(_plannable)]
Name = Annotated[str, Field(max_length=NAME_CHARS), AfterValidator(_nonblank)]
Text = Annotated[str, Field(max_length=TEXT_CHARS), AfterValidator(_nonblank)]


# --------------------------------------------------------------------------- the deal


class Contact(BaseModel):
    name: Name
    email: str = Field(max_length=254)
    role: ContactRole

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value.lower()


class CrmRef(BaseModel):
    source: Literal["hubspot", "salesforce", "generic", "manual"] = "manual"
    deal_id: str | None = Field(default=None, max_length=64)
    company_id: str | None = Field(default=None, max_length=64)


class FxRate(BaseModel):
    """The exchange rate a deal's ACV was converted to US dollars with: the rate in force
    on its close date, from the operator's rates file (`ONBOARDING_FX_RATES`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    per_usd: float = Field(gt=0, description="Units of the deal's currency per US dollar")
    effective: date = Field(description="The day this rate took effect")


class CompletedMilestone(BaseModel):
    """A milestone an account reached before this service tracked it (migration)."""

    milestone_id: str = Field(max_length=64)
    at: UtcDatetime


class ClosedWonDeal(BaseModel):
    """The closed-won deal that starts one onboarding; `account_id` is the CRM's id."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    account_id: str = Field(pattern=_ID)
    account_name: Name
    acv_usd: float = Field(ge=0, description="Annual contract value in US dollars")
    currency: str = Field(
        default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code the deal was sold in"
    )
    acv: float | None = Field(
        default=None, ge=0, description="The ACV in `currency` when that is not USD"
    )
    fx_rate: FxRate | None = Field(default=None, description="How `acv` became `acv_usd`")
    seats: int = Field(default=0, ge=0)
    integrations: list[Name] = Field(
        default_factory=list,
        max_length=MAX_INTEGRATIONS,
        description="Off-the-shelf integrations the customer will connect",
    )
    needs_api_integration: bool = False
    custom_data_migration: bool = False
    stakeholder_count: int = Field(default=1, ge=0)
    configuration_hours: float = Field(
        default=0, ge=0, description="Estimated hours of customer-side configuration"
    )
    contacts: list[Contact] = Field(default_factory=list, max_length=MAX_CONTACTS)
    close_date: PlanDatetime
    success_criteria: list[Text] = Field(default_factory=list, max_length=MAX_SUCCESS_CRITERIA)
    crm: CrmRef = Field(default_factory=CrmRef)
    completed_milestones: list[CompletedMilestone] = Field(
        default_factory=list, max_length=MAX_COMPLETED_MILESTONES
    )

    _coerce_close_date = field_validator("close_date", mode="before")(_to_utc_datetime)

    def contact(self, role: ContactRole) -> Contact | None:
        return next((c for c in self.contacts if c.role == role), None)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.account_id)


def workflow_id_for(account_id: str) -> str:
    return f"onboarding-{account_id}"


# --------------------------------------------------------------------------- the playbook


class TierRule(BaseModel):
    """Thresholds of RULES §1; the rule itself is `rules.assign_tier`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enterprise_acv_usd: float = Field(gt=0)
    smb_floor_acv_usd: float = Field(gt=0)
    high_touch_min_stakeholders: int = Field(ge=1)
    high_touch_config_hours_over: float = Field(ge=0)
    tech_touch_setup_hours_under: float = Field(gt=0)

    @model_validator(mode="after")
    def _bands(self) -> TierRule:
        if self.smb_floor_acv_usd >= self.enterprise_acv_usd:
            raise ValueError("smb_floor_acv_usd must be below enterprise_acv_usd")
        return self


Scalar = str | int | float | bool


class PropertyCondition(BaseModel):
    """A test on one event property; `{ gte = 3 }`, or a bare value meaning `eq`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_value(cls, value: object) -> object:
        return value if isinstance(value, dict) else {"eq": value}

    @model_validator(mode="after")
    def _not_empty(self) -> PropertyCondition:
        if not self.model_fields_set:
            raise ValueError("give at least one of eq, ne, gt, gte, lt, lte")
        return self


class EventMatch(BaseModel):
    """Product events that complete a milestone: `count` events named any of `events`
    whose properties (Segment `properties`, or `traits` of identify / group) meet `where`.

    The playbook may write `event = "Signed In"` for one name; several names (the
    product's own and Segment's B2B SaaS spec names for the same fact) count together.
    """

    model_config = ConfigDict(extra="forbid")

    events: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]] = Field(
        min_length=1, max_length=MAX_EVENT_NAMES
    )
    count: int = Field(default=1, ge=1, le=MAX_EVENT_COUNT)
    where: dict[str, PropertyCondition] = Field(default_factory=dict, max_length=20)

    @model_validator(mode="before")
    @classmethod
    def _one_or_several(cls, value: object) -> object:
        # `event` is the one-name form (and how playbooks pinned before 2026-12 say it).
        if isinstance(value, dict) and "event" in value:
            value = dict(value)
            names = value.pop("event")
            value["events"] = [names] if isinstance(names, str) else names
        return value

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an event name is listed twice")
        return value


TtvMark = Literal["first_engagement", "system_ready", "first_value"]


class MilestoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    title: Name
    phase: Phase
    weight: int = Field(ge=1, le=3)
    owner: Owner
    due_days: dict[Tier, int] = Field(
        description="Days after closed-won it is due, per tier; a tier not listed skips it"
    )
    completed_by: EventMatch | None = None
    ttv: TtvMark | None = None
    on_done: str | None = Field(default=None, description="Template sent when it is reached")

    @field_validator("due_days")
    @classmethod
    def _positive(cls, value: dict[Tier, int]) -> dict[Tier, int]:
        if not value:
            raise ValueError("must name at least one tier")
        for tier, days in value.items():
            if days < 0:
                raise ValueError(f"{tier.value}: days must be >= 0, got {days}")
        return value


class Trigger(StrEnum):
    MILESTONE_OVERDUE = "milestone_overdue"  # once per milestone deadline
    NO_LOGIN = "no_login"  # `days` after closed-won, login milestone not reached
    NO_PROGRESS = "no_progress"  # `days` after the last milestone progress
    ACTIVATION_MISSED = "activation_missed"  # `days` after closed-won, no first value
    NO_SUCCESS_CRITERIA = "no_success_criteria"  # `days` after closed-won, none agreed


class Audience(StrEnum):
    CUSTOMER = "customer"  # the champion, else the admin
    EXECUTIVE_SPONSOR = "executive_sponsor"
    CSM = "csm"  # the assigned owner
    CS_LEADERSHIP = "cs_leadership"


class Action(BaseModel):
    """One thing an escalation step does; exactly one of the fields is set."""

    model_config = ConfigDict(extra="forbid")

    notify: Audience | None = None
    template: str | None = None
    change_tier: Tier | None = None
    require_decision: bool = False
    flag: str | None = Field(default=None, description="A risk flag for human follow-up")
    adopt_fallback_criteria: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        kinds = [
            self.notify is not None,
            self.change_tier is not None,
            self.require_decision,
            self.flag is not None,
            self.adopt_fallback_criteria,
        ]
        if sum(kinds) != 1:
            raise ValueError(
                "set exactly one of notify, change_tier, require_decision, flag, "
                "adopt_fallback_criteria"
            )
        if (self.notify is None) != (self.template is None):
            raise ValueError("notify and template go together")
        return self

    def describe(self) -> str:
        if self.notify is not None:
            return f"notify {self.notify.value} ({self.template})"
        if self.change_tier is not None:
            return f"change tier to {self.change_tier.value}"
        if self.require_decision:
            return "decision required: revised timeline or formal pause"
        if self.flag is not None:
            return f"flag: {self.flag}"
        return "adopt fallback success criteria"


class EscalationStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    when: Trigger
    days: int = Field(default=0, ge=0, le=MAX_PLAN_DAYS)
    repeat_days: int | None = Field(
        default=None, ge=1, le=MAX_PLAN_DAYS, description="no_progress only"
    )
    actions: list[Action] = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> EscalationStep:
        if self.when is not Trigger.MILESTONE_OVERDUE and self.days == 0:
            raise ValueError(f"{self.when.value} needs days > 0")
        if self.repeat_days is not None and self.when is not Trigger.NO_PROGRESS:
            raise ValueError("repeat_days is only for no_progress")
        return self


class MessageTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Annotated[Name, Field(max_length=SUBJECT_CHARS)]
    body: Annotated[str, Field(max_length=TEMPLATE_CHARS), AfterValidator(_nonblank)]


class HealthRule(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    healthy: float = 80
    at_risk: float = 60
    credit_on_time: float = 1.0
    credit_late: float = 0.5
    late_window_multiple: float = Field(default=2.0, ge=1)
    credit_very_late: float = 0.25
    credit_in_progress_overdue: float = 0.25
    credit_not_started_overdue: float = 0.0


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Name
    name: Name
    content_hash: str = Field(default="", description="Set by the loader: sha256 of the file")
    tier_rule: TierRule
    timeline: dict[Tier, dict[Phase, Annotated[int, Field(le=MAX_PLAN_DAYS)]]] = Field(
        description="Day each phase ends, counted from closed-won, per tier"
    )
    login_milestone: str
    value_milestone: str
    fallback_success_criterion: Text
    pause_reminder_days: int = Field(ge=1, le=MAX_PLAN_DAYS)
    ttv_target_days: dict[Tier, tuple[int, int]]
    health: HealthRule = Field(default_factory=HealthRule)
    milestones: list[MilestoneSpec] = Field(min_length=1, max_length=MAX_MILESTONES)
    ladder: dict[Tier, Annotated[list[EscalationStep], Field(max_length=MAX_LADDER_STEPS)]]
    templates: dict[str, MessageTemplate] = Field(max_length=MAX_TEMPLATES)

    @model_validator(mode="after")
    def _consistent(self) -> Playbook:
        ids = [m.id for m in self.milestones]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"milestones: duplicate id(s) {', '.join(dupes)}")
        for key in ("login_milestone", "value_milestone"):
            if getattr(self, key) not in ids:
                raise ValueError(f"{key}: {getattr(self, key)!r} is not a milestone id")
        for tier in Tier:
            phases = self.timeline.get(tier)
            if phases is None or set(phases) != set(Phase):
                raise ValueError(f"timeline.{tier.value}: must give the end day of every phase")
            ends = [phases[p] for p in PHASE_ORDER]
            if ends != sorted(ends) or ends[0] <= 0:
                raise ValueError(f"timeline.{tier.value}: phase end days must increase")
            if tier not in self.ladder:
                raise ValueError(f"ladder.{tier.value}: missing")
            if tier not in self.ttv_target_days:
                raise ValueError(f"ttv_target_days.{tier.value}: missing")
            for phase in Phase:
                if not any(m.phase == phase and tier in m.due_days for m in self.milestones):
                    raise ValueError(
                        f"milestones: tier {tier.value} has no milestone gate in phase "
                        f"{phase.value}"
                    )
        by_event: dict[str, MilestoneSpec] = {}
        for m in self.milestones:
            for tier, days in m.due_days.items():
                end = self.timeline[tier][m.phase]
                if days > end:
                    raise ValueError(
                        f"milestones.{m.id}.due_days.{tier.value}: day {days} is after "
                        f"phase {m.phase.value} ends (day {end})"
                    )
                start = self.phase_start_day(tier, m.phase)
                if days <= start:
                    raise ValueError(
                        f"milestones.{m.id}.due_days.{tier.value}: day {days} is not after "
                        f"phase {m.phase.value} starts (day {start})"
                    )
            for event in m.completed_by.events if m.completed_by else ():
                first = by_event.setdefault(event, m)
                if (
                    first.completed_by is not None
                    and m.completed_by is not None
                    and (first.completed_by.where != m.completed_by.where)
                ):
                    raise ValueError(
                        f"milestones.{m.id}.completed_by.where: event {event!r} is matched "
                        f"with other conditions by {first.id}; one event name needs one set "
                        "of conditions"
                    )
            if m.on_done and m.on_done not in self.templates:
                raise ValueError(f"milestones.{m.id}.on_done: no template {m.on_done!r}")
        if len(by_event) > MAX_PLAYBOOK_EVENT_NAMES:
            raise ValueError(
                f"milestones: {len(by_event)} product event names; at most "
                f"{MAX_PLAYBOOK_EVENT_NAMES} (each onboarding keeps their times)"
            )
        for tier, steps in self.ladder.items():
            step_ids = [s.id for s in steps]
            if len(set(step_ids)) != len(step_ids):
                raise ValueError(f"ladder.{tier.value}: duplicate step ids")
            for s in steps:
                for a in s.actions:
                    if a.template and a.template not in self.templates:
                        raise ValueError(f"ladder.{tier.value}.{s.id}: no template {a.template!r}")
        return self

    def milestones_for(self, tier: Tier) -> list[MilestoneSpec]:
        return [m for m in self.milestones if tier in m.due_days]

    def milestone(self, milestone_id: str) -> MilestoneSpec | None:
        return next((m for m in self.milestones if m.id == milestone_id), None)

    def phase_start_day(self, tier: Tier, phase: Phase) -> int:
        i = PHASE_ORDER.index(phase)
        return 0 if i == 0 else self.timeline[tier][PHASE_ORDER[i - 1]]


# --------------------------------------------------------------------------- plan and state


class MilestoneStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    SKIPPED = "skipped"


class Milestone(BaseModel):
    """One milestone gate of an account's plan, with its deadline."""

    id: str
    title: str
    phase: Phase
    weight: int
    owner: Owner
    starts_at: datetime
    due_at: datetime
    status: MilestoneStatus = MilestoneStatus.NOT_STARTED
    started_at: datetime | None = None
    done_at: datetime | None = None
    skip_reason: str | None = None
    revision: int = Field(default=0, description="Bumped when the deadline is re-planned")

    @property
    def is_open(self) -> bool:
        return self.status in (MilestoneStatus.NOT_STARTED, MilestoneStatus.IN_PROGRESS)


class TierDecision(BaseModel):
    tier: Tier
    clause: str = Field(description="Which clause of the tier rule decided, e.g. high_touch.acv")
    reason: str


class TierChange(BaseModel):
    at: datetime
    from_tier: Tier
    to_tier: Tier
    kind: Literal["automatic", "override"]
    by: str
    reason: str


class AuditEntry(BaseModel):
    """One line of the onboarding's audit trail, shown by `status`."""

    at: datetime
    kind: str
    detail: str
    by: str | None = None


class Pause(BaseModel):
    by: str
    reason: str
    since: datetime
    resume_on: datetime | None = None
    last_reminder_at: datetime | None = None


class TtvBreakdown(BaseModel):
    """RULES §3, in days from closed-won; None until the mark is reached."""

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


# --------------------------------------------------------------------------- messages


class MilestoneReport(BaseModel):
    """Signal `milestone_reached`: a person or system reports progress on a milestone."""

    milestone_id: str
    event_id: str = Field(min_length=1, description="Deduplication key")
    status: Literal["done", "in_progress"] = "done"
    at: UtcDatetime | None = Field(default=None, description="When it happened; default now")
    reported_by: str = Field(default="unknown", max_length=NAME_CHARS)


class ProductEvent(BaseModel):
    event_id: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=NAME_CHARS)
    at: UtcDatetime | None = None
    user_id: str | None = None


class ProductEventBatch(BaseModel):
    """Signal `product_events`: facts from the product, batched per account."""

    events: list[ProductEvent] = Field(max_length=1000)


class PauseRequest(BaseModel):
    by: Name
    reason: Text
    resume_on: PlanDatetime | None = None


class ResumeRequest(BaseModel):
    by: Name
    revised_due: dict[str, PlanDatetime] = Field(
        default_factory=dict,
        description="New deadlines by milestone id; other open deadlines shift by the pause",
    )
    reason: str = Field(default="", max_length=TEXT_CHARS)


class TierOverride(BaseModel):
    tier: Tier
    approver: Name
    reason: Text


class SkipRequest(BaseModel):
    milestone_id: str
    by: Name
    reason: Text


class SuccessCriteriaRequest(BaseModel):
    criteria: list[Text] = Field(min_length=1, max_length=MAX_SUCCESS_CRITERIA)
    by: Name


class ContactChange(BaseModel):
    contact: Contact
    by: Name
    reason: str = Field(default="", max_length=TEXT_CHARS)


class CancelRequest(BaseModel):
    by: Name
    reason: Text


class DealDelivery(BaseModel):
    """Update `provide_deal`: a CRM's closed-won deal for this account.

    `delivery_id` is the delivery's idempotency key (the webhook id, the Salesforce
    notification id, the HubSpot event id): delivering it again changes nothing.
    """

    deal: ClosedWonDeal
    playbook: Playbook
    delivery_id: str = Field(min_length=1)


class StartOptions(BaseModel):
    """How the service starts onboardings (`ONBOARDING_DEAL_WAIT_DAYS`,
    `ONBOARDING_MAX_HISTORY_EVENTS`); pinned in each onboarding's input."""

    deal_wait_days: int = Field(default=30, ge=1)
    max_history_events: int = Field(default=2_000, ge=100)


class DealHandoff(BaseModel):
    """Activity `deliver_deal`: a fetched CRM deal, to start (or reach) its onboarding."""

    delivery: DealDelivery
    options: StartOptions = Field(default_factory=StartOptions)


class AwaitedEvents(BaseModel):
    """Memo `awaited`: the product events the open milestones still need (the ingress
    drops the others before they reach Temporal)."""

    events: list[str]


class DealAcceptance(BaseModel):
    """What `provide_deal` did: `started` is true when this delivery began the onboarding."""

    account_id: str
    workflow_id: str
    started: bool
    detail: str
    state: OnboardingState


class HubSpotDealRef(BaseModel):
    """A HubSpot `deal.propertyChange` to closed-won: HubSpot sends only ids."""

    portal_id: int
    deal_id: str = Field(pattern=r"^[0-9]{1,20}$")
    event_id: str
    occurred_at: UtcDatetime | None = None


class RejectedMessage(BaseModel):
    at: datetime
    kind: str
    ref: str
    reason: str


# --------------------------------------------------------------------------- activity I/O


class Notification(BaseModel):
    """One message for one audience; `idempotency_key` = workflow id + trigger."""

    idempotency_key: str
    account_id: str
    workflow_id: str
    audience: Audience
    recipient: str | None = Field(
        default=None, description="Email address; None: the channel's default for the audience"
    )
    template_id: str
    template: MessageTemplate
    variables: dict[str, str] = Field(default_factory=dict)


class NotificationReceipt(BaseModel):
    idempotency_key: str
    subject: str
    channels: list[str]


class OwnerRequest(BaseModel):
    account_id: str
    workflow_id: str
    tier: Tier


class OwnerAssignment(BaseModel):
    owner: str
    reason: str


# --------------------------------------------------------------------------- workflow I/O


class Escalation(BaseModel):
    """An escalation-ladder step that fired (or was superseded by a tier change)."""

    at: datetime
    due_at: datetime = Field(description="When the step came due; `at` is when it ran")
    tier: Tier
    step_id: str
    trigger: Trigger
    milestone_id: str | None = None
    actions: list[str]
    superseded: bool = False
    repeats: int = Field(
        default=1, description="Occurrences of a recurring step this record stands for"
    )


class OnboardingProgress(BaseModel):
    """Everything the workflow knows; carried whole across continue-as-new."""

    tier: Tier
    tier_decision: TierDecision
    tier_changes: list[TierChange] = Field(default_factory=list)
    milestones: list[Milestone]
    owner: str | None = None
    contacts: list[Contact] = Field(default_factory=list)
    success_criteria: list[str] = Field(default_factory=list)
    started_at: datetime
    clock_start: datetime = Field(description="Closed-won, shifted by every pause")
    last_progress_at: datetime
    progress_epoch: int = Field(default=0, description="Bumped on every milestone progress")
    pause: Pause | None = None
    paused_days_total: float = 0
    decision_required: bool = False
    risk_flags: list[str] = Field(default_factory=list)
    fired: list[str] = Field(default_factory=list, description="Keys of ladder steps done")
    escalations: list[Escalation] = Field(default_factory=list)
    event_counts: dict[str, int] = Field(default_factory=dict)
    event_times: dict[str, list[datetime]] = Field(
        default_factory=dict,
        description="Per event name, the earliest times it happened (as many as a "
        "milestone needs): milestones are credited when they happened, not when told",
    )
    seen_event_ids: list[str] = Field(default_factory=list)
    rejected: list[RejectedMessage] = Field(default_factory=list)
    audit: list[AuditEntry] = Field(default_factory=list)
    finished_at: datetime | None = None
    cancelled: CancelRequest | None = None


class EarlyFacts(BaseModel):
    """What arrived before the closed-won deal (PLG sign-ups): kept, applied at start."""

    since: datetime
    event_counts: dict[str, int] = Field(default_factory=dict)
    event_times: dict[str, list[datetime]] = Field(default_factory=dict)
    rejected: list[RejectedMessage] = Field(default_factory=list)
    seen_event_ids: list[str] = Field(default_factory=list)
    reports: list[MilestoneReport] = Field(default_factory=list)


class OnboardingInput(BaseModel):
    """Start an onboarding with its deal, or (product events first) wait for the deal."""

    account_id: str = Field(default="", description="Taken from the deal when empty")
    deal: ClosedWonDeal | None = None
    playbook: Playbook
    delivery_id: str | None = Field(
        default=None, description="Idempotency key of the delivery that brought the deal"
    )
    deal_wait_days: int = Field(
        default=30, ge=1, description="Without a deal: how long to wait for one before ending"
    )
    max_history_events: int = Field(
        default=2_000,
        ge=100,
        description="Continue-as-new once the run's history is this long (or when the "
        "server suggests it, at 4,096 events by default)",
    )
    early: EarlyFacts | None = Field(default=None, description="Set only by continue-as-new")
    progress: OnboardingProgress | None = Field(
        default=None, description="Set only by continue-as-new"
    )

    @model_validator(mode="after")
    def _account(self) -> OnboardingInput:
        if not self.account_id:
            if self.deal is None:
                raise ValueError("account_id: needed when there is no deal")
            self.account_id = self.deal.account_id
        elif self.deal is not None and self.deal.account_id != self.account_id:
            raise ValueError(
                f"deal.account_id: {self.deal.account_id!r} is not the onboarding's "
                f"account {self.account_id!r}"
            )
        return self


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


class OnboardingStatus(BaseModel):
    """The `status` query: the whole state of one onboarding, explained."""

    account_id: str
    account_name: str
    workflow_id: str
    acv_usd: float
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
    awaiting_deal_until: datetime | None = Field(
        default=None,
        description="Product events came first: the onboarding ends then without a deal",
    )
    rejected: list[RejectedMessage]
    audit: list[AuditEntry]


# --------------------------------------------------------------------------- closed-won or lost


class DealStage(StrEnum):
    """What a CRM deal stage means: closed-won starts an onboarding, closed-lost ends or
    flags one (`DealLost`), any other stage does neither."""

    CLOSED_WON = "closed_won"
    CLOSED_LOST = "closed_lost"
    OPEN = "open"


DealLostAction = Literal["cancel", "flag"]


class DealLost(BaseModel):
    """Update `deal_lost`: the account's CRM deal was lost after its onboarding started.

    `action` is the rule in force (`ONBOARDING_DEAL_LOST`): `cancel` ends the onboarding
    as `cancel` does, with the reason; `flag` keeps it running with a risk flag and a
    required decision (resume with a revised timeline, pause, or cancel). Either way the
    audit trail records it. Refused, like every update, once the onboarding has finished.
    """

    source: Literal["hubspot", "salesforce", "generic", "manual"]
    deal_id: Text
    reason: Text = Field(description="The CRM's words, e.g. `StageName 'Closed Lost'`")
    action: DealLostAction = "cancel"


class DealLostReport(BaseModel):
    """Activity `report_deal_lost`: a lost deal, for its account's onboarding.
    `delivery_id` is the update's id, so a retried delivery is applied once."""

    account_id: str
    lost: DealLost
    delivery_id: str


class DealLostOutcome(BaseModel):
    """What a lost deal did: `applied` is true when the onboarding was cancelled or
    flagged (`action`); otherwise `detail` says why nothing changed ("no onboarding")."""

    account_id: str
    workflow_id: str
    deal_id: str
    applied: bool
    action: DealLostAction | None = None
    state: OnboardingState | None = None
    detail: str


class HubSpotDealStage(BaseModel):
    """Activity `fetch_hubspot_deal_stage`: where a HubSpot deal stands now, and its
    account (the deal's primary company)."""

    deal_id: str
    account_id: str
    stage: str = Field(description="The `dealstage` id, e.g. `closedlost` or `1187654322`")
    meaning: DealStage
    label: str = Field(description="The stage and pipeline by name, for people")
