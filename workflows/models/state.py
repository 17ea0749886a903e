"""An onboarding's plan and state: milestones with deadlines, tier decisions, pauses,
escalations, the audit trail, and the workflow input that carries them across
continue-as-new."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic.dataclasses import dataclass

from workflows.business_days import Unit
from workflows.models.activities import HubSpotContactRef, HubSpotDealRef, StartOptions
from workflows.models.deal import ClosedWonDeal, Contact
from workflows.models.messages import CancelRequest, DealLostAction, MilestoneReport
from workflows.models.playbook import PinnedPlaybook, Playbook
from workflows.models.vocabulary import MilestoneStatus, Owner, Phase, Tier, Trigger

# An onboarding's state (`OnboardingProgress` and all it keeps) is slotted dataclasses,
# validated and serialized by pydantic as models are, in the same JSON: an instance has
# no per-instance `__dict__` and set of the fields set, so costs a fraction of a model's
# memory (a milestone about a seventh), and the worker keeps the state of every cached
# onboarding (README, *Worker cost*). Copy one with `dataclasses.replace` (or
# `copy.deepcopy`). Inputs and messages stay models.


@dataclass(slots=True, kw_only=True)
class Milestone:
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
    provisional: bool = Field(
        default=False, description="Its deadline waits for the success plan's confirmation"
    )
    product: str | None = Field(
        default=None, description="The deal's product this gate is for (rules §6.2)"
    )
    template: str | None = Field(
        default=None, description="The playbook milestone a per-product gate repeats"
    )
    held: bool = Field(
        default=False, description="Its product waits at a phase gate: the deadline does not run"
    )
    due_unit: Unit = Field(
        default="days",
        description="What its deadline counts in (rules §4): calendar days, or business days "
        "or hours in the account's calendar; a date a person set is calendar days",
    )

    @property
    def is_open(self) -> bool:
        # By identity: the ladder asks it of every milestone at every wake-up.
        status = self.status
        return status is MilestoneStatus.NOT_STARTED or status is MilestoneStatus.IN_PROGRESS

    @property
    def spec_id(self) -> str:
        """The id of the playbook milestone this gate is planned from."""
        return self.template or self.id


@dataclass(slots=True, kw_only=True)
class TierDecision:
    tier: Tier
    clause: str = Field(description="Which clause of the tier rule decided, e.g. high_touch.acv")
    reason: str


@dataclass(slots=True, kw_only=True)
class TierChange:
    at: datetime
    from_tier: Tier
    to_tier: Tier
    kind: Literal["automatic", "override"]
    by: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One line of the onboarding's audit trail, shown by `status`. Never changed once
    written: the trail only grows (the record's digest relies on it,
    `workflows.records.what_it_says`)."""

    at: datetime
    kind: str
    detail: str
    by: str | None = None


@dataclass(slots=True, kw_only=True)
class Pause:
    by: str
    reason: str
    since: datetime
    resume_on: datetime | None = None
    last_reminder_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class RejectedMessage:
    at: datetime
    kind: str
    ref: str
    reason: str


@dataclass(slots=True, kw_only=True)
class Escalation:
    """An escalation-ladder step that fired, or was recorded without firing
    (`superseded`): its time had passed when a tier change started a new ladder, it is
    a recurring step's occurrences that came due together (`repeats`), sent once, or
    every action it has needs a vendor person on an automated-only track (rules §1
    (docs/rules.md)). `not_applicable`: the actions left out for that reason."""

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
    not_applicable: list[str] = Field(
        default_factory=list,
        description="Actions not run: they need a vendor person, and the track is "
        "automated only (rules §1)",
    )


@dataclass(slots=True, kw_only=True)
class ChampionWindow:
    """A re-alignment window opened by a champion change (rules §6.3 (docs/rules.md)):
    every gate must be done by `due_at`, the end of the `business_days`-th business day
    in the account's calendar (shifted by a pause). `outcome`: `open`; `aligned` (every
    gate done in time); `lapsed` (escalated with a gate open); `superseded` (the champion
    changed again, which opened a new window)."""

    opened_at: datetime
    due_at: datetime
    business_days: int
    time_zone: str
    country: str
    previous: str = Field(description="The champion who left (email)")
    champion: str = Field(description="The new champion (email)")
    gates: dict[str, datetime | None] = Field(description="Gate id -> when it was done")
    outcome: Literal["open", "aligned", "lapsed", "superseded"] = "open"
    closed_at: datetime | None = None

    @property
    def open_gates(self) -> list[str]:
        return [gate for gate, done in self.gates.items() if done is None]


@dataclass(slots=True, kw_only=True)
class ConfirmedSuccessPlan:
    """The success plan the customer confirmed (rules §2 (docs/rules.md)): the target
    dates it set, by milestone id; the criteria are `OnboardingProgress.success_criteria`."""

    at: datetime
    by: str
    target_dates: dict[str, datetime] = Field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class SkipCheck:
    """The safety net's look at a skipped gate (rules §6.4 (docs/rules.md)), pending until
    `due_at` (shifted by pauses). `usage_at_skip`: product events counted by the skip,
    support tickets aside; usage since the skip is the count now less this."""

    milestone_id: str
    skipped_at: datetime
    due_at: datetime
    usage_at_skip: int
    planned_at: datetime | None = Field(
        default=None,
        description="When it was first due, before a pause moved it (None: planned before "
        "this was kept)",
    )


@dataclass(slots=True, kw_only=True)
class ProductFacts:
    """What one product of a multi-product deal's events showed (rules §6.2
    (docs/rules.md)): counts and times as `OnboardingProgress` keeps them for the whole
    account, and its distinct active users (`products.user_key` of their ids), at most
    its licensed seats."""

    event_counts: dict[str, int] = Field(default_factory=dict)
    event_times: dict[str, list[datetime]] = Field(default_factory=dict)
    users: list[str] = Field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ProductGate:
    """A product's phase gate (rules §6.2 (docs/rules.md)), decided when its phase was due
    to start (`gate_at`): passed, or held until its predecessors' adoption reached the
    threshold (`released_at`; then its gates' deadlines were re-based on that moment)."""

    product: str
    phase: Phase
    gate_at: datetime = Field(description="When the product's phase was planned to start")
    decided_at: datetime
    adoption: dict[str, float] = Field(description="Predecessor id -> its adoption (0..1) then")
    threshold: float
    outcome: Literal["passed", "held"]
    released_at: datetime | None = None

    @property
    def waiting(self) -> bool:
        return self.outcome == "held" and self.released_at is None


@dataclass(slots=True, kw_only=True)
class QueuedDeal:
    """An expansion deal that came while the account's onboarding ran, or the paid deal its
    trial converted to: its own onboarding starts when this one finishes (rules §2
    (docs/rules.md), *Tracks*)."""

    deal: ClosedWonDeal
    playbook: PinnedPlaybook = Field(description="The playbook it was delivered with")
    delivery_id: str
    queued_at: datetime


@dataclass(slots=True, kw_only=True)
class ProgramParticipation:
    """One group program of an onboarding (rules §1 (docs/rules.md), *Group programs*):
    the invitation sent (`invited_at`, to the session starting at `session_at`) and
    attendance (`attended_at`: the first time, as its product event dated it)."""

    program: str
    invited_at: datetime | None = None
    session_at: datetime | None = None
    attended_at: datetime | None = None
    attendances: int = 0


@dataclass(slots=True, kw_only=True)
class RolePath:
    """One role's activation so far (rules §7 (docs/rules.md), *Activation by role*): its
    users activated (`products.user_key` of their ids -> when their first activating
    event happened), at most as many as the role needs, and when the role was activated
    (when the last of them was; None: not yet)."""

    users: dict[str, datetime] = Field(default_factory=dict)
    activated_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class RoleActivation:
    """Activation by role (rules §7): each user's role as last seen (user key -> role id,
    at most `MAX_KNOWN_USERS`, the most recently seen last), each role's path, and when
    first value by roles (`[activation].first_value_when`) was reached."""

    user_roles: dict[str, str] = Field(default_factory=dict)
    roles: dict[str, RolePath] = Field(default_factory=dict)
    first_value_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class OnboardingProgress:
    """Everything the workflow knows; carried whole across continue-as-new."""

    tier: Tier
    tier_decision: TierDecision
    tier_changes: list[TierChange] = Field(default_factory=list)
    milestones: list[Milestone]
    owner: str | None = None
    specialist: str | None = Field(
        default=None, description="The implementation specialist assigned (rules §7)"
    )
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
    health_entries: dict[Trigger, int] = Field(
        default_factory=dict,
        description="Per health trigger, how often the health came back above its band "
        "after a step on it was done: the entry a health step's key carries (rules §4)",
    )
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
    record_revision: int = Field(
        default=0, description="Revision of the last record written to the records store"
    )
    champion_windows: list[ChampionWindow] = Field(
        default_factory=list, description="Re-alignment windows, oldest first (rules §6.3)"
    )
    success_plan: ConfirmedSuccessPlan | None = Field(
        default=None, description="Once confirmed: provisional deadlines stand from then on"
    )
    skip_checks: list[SkipCheck] = Field(
        default_factory=list, description="The skip net's checks still to come (one per skip)"
    )
    recent_times: dict[str, list[datetime]] = Field(
        default_factory=dict,
        description="Per event name a behavioral ladder step watches, the latest times it "
        "happened (as many as the step counts; `Playbook.recent_times_kept`)",
    )
    products: dict[str, ProductFacts] = Field(
        default_factory=dict, description="Per deal product, what its events showed (rules §6.2)"
    )
    product_gates: list[ProductGate] = Field(
        default_factory=list, description="Product phase gates decided, oldest first"
    )
    onboarding_number: int = Field(
        default=1, ge=1, description="The account's n-th onboarding here (expansions add one)"
    )
    earlier_deals: list[str] = Field(
        default_factory=list,
        description="CRM deal keys (`source:deal_id`) of the account's earlier onboardings",
    )
    queued_deals: list[QueuedDeal] = Field(
        default_factory=list,
        description="Deals whose onboardings wait for this one to finish: expansion deals, "
        "oldest first, behind the paid deal a trial converted to",
    )
    active_days: list[date] = Field(
        default_factory=list,
        description="The account's days with an active event (its time zone), sorted: "
        "the first and those up to two weeks after it (rules §8, first-week retention)",
    )
    programs: list[ProgramParticipation] = Field(
        default_factory=list, description="Group programs invited to or attended (rules §1)"
    )
    activation: RoleActivation | None = Field(
        default=None, description="Activation by role (rules §7); None until a role is seen"
    )
    converted_to: str | None = Field(
        default=None,
        description="A trial converted to paid: the paid deal's key (`source:deal_id`), "
        "whose onboarding follows this one (rules §2)",
    )


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
    playbook: PinnedPlaybook
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
    onboarding_number: int = Field(
        default=1, ge=1, description="The account's n-th onboarding here (expansions add one)"
    )
    earlier_deals: list[str] = Field(
        default_factory=list,
        description="CRM deal keys (`source:deal_id`) of the account's earlier onboardings",
    )
    queued_deals: list[QueuedDeal] = Field(
        default_factory=list,
        description="Expansion deals still queued behind this onboarding (set only when "
        "one onboarding continues into the next)",
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


class OnboardingSnapshot(BaseModel):
    """Query `snapshot`: what the rules read an onboarding with, as it stands at `as_of`:
    its deal, pinned playbook and progress (a migration's dry run runs the rules on it)."""

    as_of: datetime
    deal: ClosedWonDeal
    playbook: Playbook
    progress: OnboardingProgress


# The HubSpot intakes' inputs (workflows/intake.py): models, not the workflow's module,
# so the sandbox does not make them anew per intake.
class HubSpotIntake(BaseModel):
    ref: HubSpotDealRef
    playbook: PinnedPlaybook = Field(description="Pinned when the webhook arrived")
    options: StartOptions = Field(default_factory=StartOptions)


class HubSpotLostIntake(BaseModel):
    ref: HubSpotDealRef
    action: DealLostAction = Field(description="ONBOARDING_DEAL_LOST when the webhook arrived")


class HubSpotChampionIntakeInput(BaseModel):
    ref: HubSpotContactRef
