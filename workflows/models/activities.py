"""Activity arguments and results: notifications, CSM assignment, deal handoff, HubSpot
intake."""

from __future__ import annotations

from pydantic import BaseModel, Field

from workflows.models.deal import Contact
from workflows.models.messages import ContactChange, DealDelivery, DealLost
from workflows.models.playbook import Capacity, MessageTemplate
from workflows.models.vocabulary import Audience, DealStage, StaffRole, Tier, UtcDatetime


class CalendarInvite(BaseModel):
    """A group program's session as an iCalendar invitation (METHOD:REQUEST) attached to
    an email (rules §1 (docs/rules.md), *Group programs*): `starts_at` is shown in
    `time_zone` (IANA)."""

    uid: str = Field(description="Stable: the same session of the same onboarding")
    summary: str
    starts_at: UtcDatetime
    time_zone: str
    duration_minutes: int
    url: str = Field(description="Where to join; also the event's location")
    organizer: str = Field(description="Email address")


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
    invite: CalendarInvite | None = Field(
        default=None, description="A calendar invitation the email carries (group programs)"
    )


class NotificationReceipt(BaseModel):
    idempotency_key: str
    subject: str
    channels: list[str]


class OwnerRequest(BaseModel):
    """Activity `assign_owner` (rules §7 (docs/rules.md)): who of `role` gets the account,
    in its tier and calendar, at the pinned playbook's `capacity` (None: its defaults),
    never `leaving` (a reassignment). Histories recorded before roles asked for a CSM
    with the three first fields only; those recorded before claims (rules §7) without
    `onboarding_number`."""

    account_id: str
    workflow_id: str
    tier: Tier
    role: StaffRole = StaffRole.CSM
    country: str | None = Field(default=None, description="The account's ISO 3166 alpha-2")
    time_zone: str | None = Field(default=None, description="The account's IANA time zone")
    capacity: Capacity | None = None
    leaving: str | None = Field(default=None, description="Who leaves it: never picked")
    onboarding_number: int = Field(
        default=1, ge=1, description="The account's onboarding (rules §2): the claim's key"
    )


class OwnerAssignment(BaseModel):
    """Who was assigned and why; `over_capacity` > 0: everyone eligible was full, and
    CS leadership must be told the gap. `owner` None: nobody, because the roster has no
    implementation specialists at all (a team without them, not a failure; rules §7)."""

    owner: str | None
    reason: str
    role: StaffRole = StaffRole.CSM
    over_capacity: int = Field(default=0, ge=0)


class StartOptions(BaseModel):
    """How the service starts onboardings (`ONBOARDING_DEAL_WAIT_DAYS`,
    `ONBOARDING_MAX_HISTORY_EVENTS`); pinned in each onboarding's input."""

    deal_wait_days: int = Field(default=30, ge=1)
    max_history_events: int = Field(default=2_000, ge=100)


class DealHandoff(BaseModel):
    """Activity `deliver_deal`: a fetched CRM deal, to start (or reach) its onboarding."""

    delivery: DealDelivery
    options: StartOptions = Field(default_factory=StartOptions)


class DealLostReport(BaseModel):
    """Activity `report_deal_lost`: a lost deal, for its account's onboarding.
    `delivery_id` is the update's id, so a retried delivery is applied once."""

    account_id: str
    lost: DealLost
    delivery_id: str


class HubSpotDealRef(BaseModel):
    """A HubSpot `deal.propertyChange` to closed-won: HubSpot sends only ids."""

    portal_id: int
    deal_id: str = Field(pattern=r"^[0-9]{1,20}$")
    event_id: str
    occurred_at: UtcDatetime | None = None


class HubSpotDealStage(BaseModel):
    """Activity `fetch_hubspot_deal_stage`: where a HubSpot deal stands now, and its
    account (the deal's primary company)."""

    deal_id: str
    account_id: str
    stage: str = Field(description="The `dealstage` id, e.g. `closedlost` or `1187654322`")
    meaning: DealStage
    label: str = Field(description="The stage and pipeline by name, for people")


class PeerSupportRequest(BaseModel):
    """Activity `peer_support_tickets`: the peers of `account_id` are the other open
    onboardings of `tier` (rules §6.4 (docs/rules.md))."""

    account_id: str
    tier: Tier


class PeerSupport(BaseModel):
    """Support tickets of the peers, as the records store has them: their median (None
    without peers) and how many peers there are."""

    tier: Tier
    median: float | None
    peers: int = Field(ge=0)


class HubSpotContactRef(BaseModel):
    """A HubSpot `contact.propertyChange` of the buying-role property to a champion
    value: HubSpot sends only ids (rules §6.3 (docs/rules.md))."""

    portal_id: int
    contact_id: str = Field(pattern=r"^[0-9]{1,20}$")
    event_id: str
    occurred_at: UtcDatetime | None = None


class HubSpotChampion(BaseModel):
    """Activity `fetch_hubspot_champion`: the contact as HubSpot has it now. `contact` is
    set (role champion) only when it is still a champion with an email and a company
    (`account_id`, its primary one); otherwise `detail` says which is missing."""

    contact_id: str
    account_id: str | None
    contact: Contact | None
    detail: str


class ChampionChangeReport(BaseModel):
    """Activity `report_champion_change`: a new champion for the account's onboarding.
    `delivery_id` is the update's id, so a retried delivery is applied once."""

    account_id: str
    change: ContactChange
    delivery_id: str
