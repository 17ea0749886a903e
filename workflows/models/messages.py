"""What people and systems send a running onboarding (signals, updates) and what it answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from workflows.models.deal import ClosedWonDeal, Contact
from workflows.models.limits import (
    MAX_SIGNAL_EVENTS,
    MAX_SUCCESS_CRITERIA,
    NAME_CHARS,
    TEXT_CHARS,
    Name,
    PlanDatetime,
    Text,
)
from workflows.models.playbook import PinnedPlaybook
from workflows.models.vocabulary import OnboardingState, StaffRole, Tier, UtcDatetime


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
    product: str | None = Field(
        default=None,
        max_length=NAME_CHARS,
        description="The deal's product it happened in (its `product` property; rules §6.2)",
    )
    program: str | None = Field(
        default=None,
        max_length=NAME_CHARS,
        description="The group program attended (its `program` property; rules §1)",
    )
    role: str | None = Field(
        default=None,
        max_length=NAME_CHARS,
        description="The user's role as the call says it (`[activation].role_property`)",
    )


class ProductEventBatch(BaseModel):
    """Signal `product_events`: facts from the product, batched per account."""

    events: list[ProductEvent] = Field(max_length=MAX_SIGNAL_EVENTS)


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
    playbook: PinnedPlaybook
    delivery_id: str = Field(min_length=1)


class DealAcceptance(BaseModel):
    """What `provide_deal` did: `started` is true when this delivery began the onboarding."""

    account_id: str
    workflow_id: str
    started: bool
    detail: str
    state: OnboardingState
    queued: bool = Field(
        default=False,
        description="An expansion deal for a running onboarding: its own onboarding starts "
        "when this one finishes",
    )


class AwaitedEvents(BaseModel):
    """Memo `awaited`: the product events the open milestones still need (the ingress
    drops the others before they reach Temporal)."""

    events: list[str]


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


class RealignmentGateDone(BaseModel):
    """Update `realignment_gate_done`: one gate of the open re-alignment window (rules
    §6.3 (docs/rules.md)) is done, e.g. `realignment_call`; the playbook's
    `[champion_change].gates` names them."""

    gate: str = Field(max_length=NAME_CHARS)
    by: Name
    note: str = Field(default="", max_length=TEXT_CHARS)


class SuccessPlanConfirmation(BaseModel):
    """Update `confirm_success_plan`: the customer confirms the success plan, its
    criteria and the target dates of milestones whose deadlines were provisional (by
    milestone id; none: the proposed dates stand). The plan's remaining deadlines are
    re-based on them (rules §2 (docs/rules.md))."""

    criteria: list[Text] = Field(min_length=1, max_length=MAX_SUCCESS_CRITERIA)
    target_dates: dict[str, PlanDatetime] = Field(default_factory=dict, max_length=50)
    by: Name


class ChampionChangeOutcome(BaseModel):
    """What a CRM's report of a new champion did to the account's onboarding (rules §6.3
    (docs/rules.md)): `applied` when `change_contact` took it (`window_opened` when it
    replaced the champion with someone else), otherwise `detail` says why nothing
    changed ("no onboarding", "already the champion", "no longer the champion")."""

    account_id: str | None = Field(description="None when the CRM names no account")
    workflow_id: str | None
    champion: str | None = Field(description="The champion's email, as the CRM has it")
    applied: bool
    window_opened: bool = False
    state: OnboardingState | None = None
    detail: str


class OwnerReassignment(BaseModel):
    """Update `reassign_owner` (rules §7 (docs/rules.md)): `person`, the onboarding's
    `role` (its CSM or its implementation specialist), leaves it (they left the roster or
    the team); the assignment runs again without them. `by` asked, for `reason`."""

    person: Name
    role: StaffRole = StaffRole.CSM
    by: Name
    reason: str = Field(default="", max_length=TEXT_CHARS)


class PlaybookMigration(BaseModel):
    """Update `migrate_playbook` (rules §2 (docs/rules.md), *Migrating to a new playbook
    version*): move the running onboarding to `playbook` (as the loader reads it, with
    its content hash). `mapping`: a milestone of the onboarding's playbook -> the one of
    the new playbook it becomes (by playbook milestone id), for gates the new version
    renames; every open milestone must be in the new plan or mapped. `by` decided, for
    `reason`. The playbook is the worker's shared copy of that content, as a start's is."""

    playbook: PinnedPlaybook
    mapping: dict[str, Name] = Field(default_factory=dict, max_length=50)
    by: Name
    reason: Text
