"""The playbook schema: the tier rule, milestones and how product events complete them, the
escalation ladder, message templates and the health rule (`playbooks/*.toml`)."""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import weakref
from datetime import date, datetime, time
from datetime import time as LocalTime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WrapSerializer,
    WrapValidator,
    field_validator,
    model_validator,
)

from workflows.business_days import Calendar, Unit, known_country, known_time_zone
from workflows.models.limits import (
    MAX_EVENT_COUNT,
    MAX_EVENT_NAMES,
    MAX_LADDER_STEPS,
    MAX_MILESTONES,
    MAX_PLAN_DAYS,
    MAX_PLAYBOOK_EVENT_NAMES,
    MAX_TEMPLATES,
    SUBJECT_CHARS,
    TEMPLATE_CHARS,
    Name,
    Text,
    _nonblank,
)
from workflows.models.vocabulary import (
    PHASE_ORDER,
    Audience,
    DealType,
    HealthBand,
    MessageKind,
    Owner,
    Phase,
    Tier,
    Trigger,
)


class TierRule(BaseModel):
    """Thresholds of rules §1 (docs/rules.md); the rule itself is `rules.assign_tier`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

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

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

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


# The name a Segment identify call takes as a product event (its traits are its properties).
IDENTIFY = "identify"


class MilestoneSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    due_unit: Unit = Field(
        default="days",
        description="What `due_days` counts (rules §4): calendar `days`, or `business_days` "
        "/ `business_hours` in the account's calendar (`[business_calendar]`)",
    )

    @field_validator("due_days")
    @classmethod
    def _positive(cls, value: dict[Tier, int]) -> dict[Tier, int]:
        if not value:
            raise ValueError("must name at least one tier")
        for tier, days in value.items():
            if days < 0:
                raise ValueError(f"{tier.value}: days must be >= 0, got {days}")
        return value

    @model_validator(mode="after")
    def _counted(self) -> MilestoneSpec:
        if self.due_unit != "days":
            for tier, days in self.due_days.items():
                if days < 1:
                    raise ValueError(
                        f"due_days.{tier.value}: {self.due_unit} count from 1, got {days}"
                    )
        return self


class Action(BaseModel):
    """One thing an escalation step does; exactly one of the fields is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


EventName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
BEHAVIORAL = (Trigger.EVENT_WITHOUT_MILESTONE, Trigger.USAGE_DROP)
# Steps that come due `days` after closed-won (shifted by pauses) or the last progress:
# the ones that may count in business days or hours (rules §4 (docs/rules.md)).
CLOCK_TRIGGERS = (
    Trigger.NO_LOGIN,
    Trigger.NO_PROGRESS,
    Trigger.ACTIVATION_MISSED,
    Trigger.NO_SUCCESS_CRITERIA,
    Trigger.NO_HANDOFF,
    Trigger.NO_ENGAGEMENT,
)
# Steps on the first-engagement gate (rules §3): the sales-to-CS handoff and first engagement.
ENGAGEMENT_TRIGGERS = (Trigger.NO_HANDOFF, Trigger.NO_ENGAGEMENT)
# Steps on the health score (rules §2): the band each fires in (or a worse one).
HEALTH_BANDS = {
    Trigger.HEALTH_AT_RISK: HealthBand.AT_RISK,
    Trigger.HEALTH_CRITICAL: HealthBand.CRITICAL,
}


class EscalationStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    when: Trigger
    days: int = Field(default=0, ge=0, le=MAX_PLAN_DAYS)
    repeat_days: int | None = Field(
        default=None, ge=1, le=MAX_PLAN_DAYS, description="no_progress only"
    )
    actions: list[Action] = Field(min_length=1)
    # Behavioral triggers (rules §4 (docs/rules.md)): what the product events show.
    events: list[EventName] = Field(
        default_factory=list, max_length=MAX_EVENT_NAMES, description="Behavioral only"
    )
    count: int = Field(default=1, ge=1, le=MAX_EVENT_COUNT, description="Behavioral only")
    milestone: str | None = Field(default=None, description="event_without_milestone only")
    active_days: int | None = Field(
        default=None, ge=1, le=MAX_PLAN_DAYS, description="usage_drop only"
    )
    cooldown_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PLAN_DAYS,
        description="Behavioral only: the least time between two firings",
    )
    days_unit: Unit = Field(
        default="days",
        description="What `days` counts (rules §4): calendar `days`, or `business_days` / "
        "`business_hours` in the account's calendar; clock steps only, not repeating",
    )

    @model_validator(mode="after")
    def _shape(self) -> EscalationStep:
        if self.when is Trigger.CHAMPION_WINDOW_LAPSED:
            raise ValueError(
                "when: champion_window_lapsed is escalated by [champion_change] when its "
                "window lapses, not by a ladder step"
            )
        immediate = (Trigger.MILESTONE_OVERDUE, Trigger.EVENT_WITHOUT_MILESTONE, *HEALTH_BANDS)
        if self.when not in immediate and self.days == 0:
            raise ValueError(f"{self.when.value} needs days > 0")
        if self.when in HEALTH_BANDS and self.days:
            raise ValueError(
                f"days: {self.when.value} fires when the health enters its band, not days after"
            )
        if self.repeat_days is not None and self.when is not Trigger.NO_PROGRESS:
            raise ValueError("repeat_days is only for no_progress")
        if self.when in BEHAVIORAL:
            if not self.events:
                raise ValueError(f"events: {self.when.value} watches at least one event")
            if len(set(self.events)) != len(self.events):
                raise ValueError("events: an event name is listed twice")
            if self.cooldown_days is None:
                raise ValueError(
                    f"cooldown_days: {self.when.value} needs one, so that it never repeats "
                    "itself into spam"
                )
        elif self.events or self.count != 1 or self.cooldown_days is not None:
            raise ValueError("events, count and cooldown_days are only for behavioral triggers")
        if (self.milestone is None) == (self.when is Trigger.EVENT_WITHOUT_MILESTONE):
            raise ValueError("milestone: given for event_without_milestone, and only for it")
        if (self.active_days is None) == (self.when is Trigger.USAGE_DROP):
            raise ValueError("active_days: given for usage_drop, and only for it")
        if self.days_unit != "days":
            if self.when not in CLOCK_TRIGGERS:
                raise ValueError(
                    f"days_unit: {self.when.value} counts calendar days; {self.days_unit} is "
                    "for steps counted from closed-won or the last progress"
                )
            if self.repeat_days is not None:
                raise ValueError(
                    f"days_unit: a repeating step counts calendar days, not {self.days_unit}"
                )
        return self


class MessageTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: Annotated[Name, Field(max_length=SUBJECT_CHARS)]
    body: Annotated[str, Field(max_length=TEMPLATE_CHARS), AfterValidator(_nonblank)]
    kind: MessageKind = Field(
        default=MessageKind.NUDGE,
        description="What the message is; a template that does not say is a nudge, held "
        "back by a pause as every customer message was before kinds existed",
    )


class HealthRule(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    healthy: float = 80
    at_risk: float = 60
    credit_on_time: float = 1.0
    credit_late: float = 0.5
    late_window_multiple: float = Field(default=2.0, ge=1)
    credit_very_late: float = 0.25
    credit_in_progress_overdue: float = 0.25
    credit_not_started_overdue: float = 0.0


Range = tuple[float, float]


class Targets(BaseModel):
    """What the portfolio report (`starter/reports`) sets its figures against; the defaults
    are the numbers of rules §8, §3 and §7 (docs/rules.md). Rates are percentages."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    completion_rate_pct: dict[Tier, Range] = Field(
        default_factory=lambda: {
            Tier.HIGH_TOUCH: (85.0, 100.0),
            Tier.TECH_TOUCH: (65.0, 80.0),
            Tier.SELF_SERVE: (40.0, 60.0),
        },
        description="Onboarding completion rate per tier, [low, high] % (rules §8)",
    )
    activation_rate_pct: float = Field(default=85, ge=0, le=100)
    activation_window_days: int = Field(default=30, ge=1, le=MAX_PLAN_DAYS)
    first_engagement_good_hours: float = Field(default=48, gt=0)
    first_engagement_poor_days: float = Field(default=7, gt=0)
    drop_off_flag_pct: float = Field(default=15, ge=0, le=100)
    escalation_response_days: int = Field(default=7, ge=1, le=MAX_PLAN_DAYS)
    csm_high_touch_accounts: Range = Field(
        default=(8, 15), description="One CSM's high-touch load, [low, high] (rules §7)"
    )
    csm_low_touch_accounts: Range = Field(
        default=(40, 80), description="One CSM's tech-touch and self-serve load (rules §7)"
    )
    specialist_accounts: Range = Field(
        default=(8, 15), description="One implementation specialist's load (rules §7)"
    )
    start_rate_months: int = Field(default=3, ge=1, le=24)
    tier_boundary_pct: float = Field(default=20, gt=0, lt=100)

    @field_validator(
        "completion_rate_pct",
        "csm_high_touch_accounts",
        "csm_low_touch_accounts",
        "specialist_accounts",
    )
    @classmethod
    def _ranges(cls, value: Range | dict[Tier, Range]) -> Range | dict[Tier, Range]:
        for low, high in value.values() if isinstance(value, dict) else [value]:
            if not 0 <= low <= high:
                raise ValueError(f"[{low:g}, {high:g}] must be 0 <= low <= high")
        return value


WallTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class BusinessCalendar(BaseModel):
    """The calendar business days count in (rules §6.3 (docs/rules.md)) for a deal that
    names none: an IANA time zone and an ISO 3166 alpha-2 country (its weekend and public
    holidays); and the local working day business hours count in (rules §4), `HH:MM`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: Annotated[str, AfterValidator(known_time_zone)] = "UTC"
    country: Annotated[str, AfterValidator(known_country)] = "US"
    workday_start: WallTime = "09:00"
    workday_end: WallTime = "17:00"

    @model_validator(mode="after")
    def _workday(self) -> BusinessCalendar:
        if self.workday_end <= self.workday_start:
            raise ValueError(
                f"workday_end: {self.workday_end} is not after workday_start "
                f"{self.workday_start}; the working day is one local window"
            )
        return self

    def of(self, time_zone: str | None, country: str | None) -> Calendar:
        """The calendar of an account whose deal names `time_zone` and `country` (None:
        these defaults), with this working day."""
        zone, country = time_zone or self.time_zone, country or self.country
        return _calendar(zone, country, self.workday_start, self.workday_end)


@functools.lru_cache(maxsize=1024)
def _calendar(time_zone: str, country: str, workday_start: str, workday_end: str) -> Calendar:
    """One `Calendar` per account calendar the process meets: the ladder asks for it at
    every wake-up."""
    start, end = (time.fromisoformat(t) for t in (workday_start, workday_end))
    return Calendar(time_zone, country, start, end)


GateId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class ChampionChange(BaseModel):
    """The re-alignment window a champion change opens (rules §6.3 (docs/rules.md)):
    `window_business_days` business days in the account's calendar to settle every gate
    (id -> title); when it lapses with a gate open, the CSM and CS leadership are told
    with the two templates and the account gets the risk flag `flag`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_business_days: int = Field(default=10, ge=1, le=MAX_PLAN_DAYS)
    gates: dict[GateId, Name] = Field(
        default_factory=lambda: {
            "new_primary_contact": "New primary contact confirmed",
            "realignment_call": "Re-alignment call done",
            "milestone_plan": "Updated milestone plan agreed",
        },
        min_length=1,
        max_length=10,
    )
    csm_template: str = "champion_window_lapsed_csm"
    leadership_template: str = "champion_window_lapsed_leadership"
    flag: Name = "champion changed: re-alignment window lapsed"

    @field_validator("gates")
    @classmethod
    def _distinct_titles(cls, value: dict[str, str]) -> dict[str, str]:
        titles = list(value.values())
        if len(set(titles)) != len(titles):
            raise ValueError("two gates have the same title")
        return value


class Track(BaseModel):
    """How one deal type's onboarding differs from the plan of new business (rules §2
    and §1 (docs/rules.md)): milestone gates it leaves out, gates only it plans (before
    the others), how many touch levels above the tier rule's result it runs, and
    whether it is automated only (the free and trial track)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skip: list[str] = Field(
        default_factory=list, max_length=MAX_MILESTONES, description="Milestone ids not planned"
    )
    add: list[str] = Field(
        default_factory=list,
        max_length=MAX_MILESTONES,
        description="Milestone ids planned on this track only, first in its plan",
    )
    tier_bump: int = Field(default=0, ge=0, le=2, description="Touch levels up (rules §1)")
    automated_only: bool = Field(
        default=False,
        description="Automated onboarding only (rules §1): self_serve whatever the tier rule "
        "says, no CSM or specialist assigned, and no ladder action that needs a vendor "
        "person, until a person overrides the tier",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> Track:
        for field, named in (("skip", self.skip), ("add", self.add)):
            if twice := sorted({i for i in named if named.count(i) > 1}):
                raise ValueError(f"{field}: {', '.join(twice)} listed twice")
        if both := sorted(set(self.skip) & set(self.add)):
            raise ValueError(f"{', '.join(both)}: both skipped and added")
        if self.automated_only and self.tier_bump:
            raise ValueError(
                f"automated_only: an automated-only track runs self_serve, so tier_bump "
                f"{self.tier_bump} cannot move it up; set tier_bump = 0"
            )
        return self


class SuccessPlanRule(BaseModel):
    """Which tiers start with a provisional schedule, and from which phase on (rules §2
    (docs/rules.md)): its deadlines stand only once the customer confirms the success
    plan (`confirm_success_plan`); until then no ladder step runs on them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tiers: list[Tier] = Field(min_length=1, max_length=len(Tier))
    provisional_from: Phase = Field(
        default=Phase.PILOT, description="The first phase whose deadlines are provisional"
    )

    @model_validator(mode="after")
    def _shape(self) -> SuccessPlanRule:
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError("tiers: a tier is listed twice")
        if self.provisional_from is PHASE_ORDER[0]:
            raise ValueError(
                f"provisional_from: {PHASE_ORDER[0].value} would leave no firm gate to "
                "agree the success plan by"
            )
        return self


class SkipNet(BaseModel):
    """The safety net under a refused step (rules §6.4 (docs/rules.md)): a skipped gate
    is looked at again on day `check_day` after closed-won (shifted by pauses), or
    `after_skip_days` after the skip when that is later. It re-opens, due `reopen_days`
    later, when fewer than `min_usage_events` product events (any but support tickets)
    came since the skip, or when the account's support tickets (`support_events`) are
    above the median of the open onboardings of its tier; the owner is told
    (`template`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check_day: int = Field(default=14, ge=1, le=MAX_PLAN_DAYS)
    after_skip_days: int = Field(
        default=7,
        ge=1,
        le=MAX_PLAN_DAYS,
        description="A skip after check_day is checked this long after it: at the skip "
        "itself no usage since the skip can have been seen",
    )
    reopen_days: int = Field(default=7, ge=1, le=MAX_PLAN_DAYS)
    min_usage_events: int = Field(default=1, ge=1, le=MAX_EVENT_COUNT)
    usage_events: list[EventName] = Field(
        default_factory=lambda: ["user_logged_in", "Signed In", "core_workflow_completed"],
        max_length=MAX_EVENT_NAMES,
        description="Counted whenever they come, so that usage after their milestone is "
        "reached is still seen",
    )
    support_events: list[EventName] = Field(
        default_factory=lambda: ["support_ticket_opened"],
        min_length=1,
        max_length=MAX_EVENT_NAMES,
    )
    template: str = "skip_reopened"

    @model_validator(mode="after")
    def _distinct(self) -> SkipNet:
        both = sorted(set(self.usage_events) & set(self.support_events))
        if both:
            raise ValueError(
                f"support_events: {', '.join(both)} also listed in usage_events; a support "
                "ticket is not usage"
            )
        for key in ("usage_events", "support_events"):
            names = getattr(self, key)
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: an event name is listed twice")
        return self


class ProductRollout(BaseModel):
    """A multi-product deal's staggered rollout (rules §6.2 (docs/rules.md)): the
    milestone gates planned once per product (`per_product`, milestone ids), the
    adoption (active users over licensed seats, 0..1) a product's predecessors must
    reach before it passes a phase gate, and the templates the CSM gets when a product
    starts waiting (`waiting_template`) and when it goes on (`released_template`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    adoption_threshold: float = Field(default=0.60, gt=0, le=1)
    per_product: list[str] = Field(
        default_factory=list,
        max_length=MAX_MILESTONES,
        description="Milestone ids planned once per product; none: no product waits",
    )
    waiting_template: str | None = Field(
        default=None,
        description="Sent to the CSM once when a product starts waiting at a phase gate; "
        "None (playbooks pinned before it): nobody is told",
    )
    released_template: str | None = Field(
        default=None,
        description="Sent to the CSM when a waiting product goes on; None: nobody is told",
    )

    @field_validator("per_product")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if twice := sorted({i for i in value if value.count(i) > 1}):
            raise ValueError(f"{', '.join(twice)} listed twice")
        return value


class Measures(BaseModel):
    """The product events behind two account measures of rules §8 (docs/rules.md): team
    invitations (`invitation_events`, counted) and first-week retention (an
    `active_events` event on a day 7 to 13 days after the account's first active day, in
    its time zone). Both are counted whenever they come, whatever the plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invitation_events: list[EventName] = Field(
        default_factory=lambda: ["user_invited", "Invite Sent", "Account Added User"],
        min_length=1,
        max_length=MAX_EVENT_NAMES,
    )
    active_events: list[EventName] = Field(
        default_factory=lambda: ["user_logged_in", "Signed In", "core_workflow_completed"],
        min_length=1,
        max_length=MAX_EVENT_NAMES,
    )

    @model_validator(mode="after")
    def _distinct(self) -> Measures:
        for key in ("invitation_events", "active_events"):
            names = getattr(self, key)
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: an event name is listed twice")
        if both := sorted(set(self.invitation_events) & set(self.active_events)):
            raise ValueError(
                f"active_events: {', '.join(both)} also listed in invitation_events; an "
                "invitation is not the invited person's activity"
            )
        return self


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MAX_PROGRAMS = 10
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


def _web_address(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{value!r} is not a web address (https://...)")
    return value


def _mail_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


class Program(BaseModel):
    """A group program for the tiers it serves (rules §1 (docs/rules.md), *Group
    programs*): a session every week on `weekday` at `time` (local, 24-hour) in
    `time_zone` (IANA: the session keeps its local time across daylight saving),
    `duration_minutes` long, joined at `join_url`. An onboarding of a served tier is
    invited once, `invite_after_days` after closed-won (the SLA clock, shifted by pauses),
    to the first session starting at least `notice_hours` later: the `template` to the
    customer with an iCalendar invitation from `organizer`. Attendance is the product
    event `attended_event` (its `program` property names the program)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Name
    weekday: Weekday
    time: LocalTime = Field(description="Local start time, HH:MM")
    time_zone: Annotated[str, AfterValidator(known_time_zone)]
    duration_minutes: int = Field(default=60, ge=5, le=480)
    tiers: list[Tier] = Field(
        default_factory=lambda: [Tier.TECH_TOUCH], min_length=1, max_length=len(Tier)
    )
    invite_after_days: int = Field(default=1, ge=0, le=MAX_PLAN_DAYS)
    notice_hours: int = Field(
        default=24, ge=0, le=24 * 7, description="The least time between invitation and session"
    )
    template: str = "program_invitation"
    join_url: Annotated[str, Field(max_length=500), AfterValidator(_web_address)]
    organizer: Annotated[str, Field(max_length=254), AfterValidator(_mail_address)]
    attended_event: EventName = "program_attended"

    @field_validator("time")
    @classmethod
    def _minutes(cls, value: LocalTime) -> LocalTime:
        if value.tzinfo is not None:
            raise ValueError("a local time without an offset: the time_zone key gives the zone")
        if value.second or value.microsecond:
            raise ValueError("whole minutes only (HH:MM)")
        return value

    @field_validator("tiers")
    @classmethod
    def _distinct_tiers(cls, value: list[Tier]) -> list[Tier]:
        if len(set(value)) != len(value):
            raise ValueError("a tier is listed twice")
        return value


ProgramId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


# Far above any real team's load (the seeds: 8-15 high-touch or 40-80 low-touch accounts).
MAX_CAPACITY = 1_000


class Capacity(BaseModel):
    """Who is assigned to an onboarding, by segment and load (rules §7 (docs/rules.md)):
    how many open accounts one CSM carries in high_touch and in the low-touch tiers
    (tech_touch and self_serve together), and how many active implementations one
    implementation specialist carries (a roster entry may set its own numbers). A
    specialist is assigned in `specialist_tiers` when the plan holds one of
    `specialist_gates`; an implementation is active while one of them is open. When
    everyone eligible is full, CS leadership gets `leadership_template`; the specialist
    is told with `specialist_template`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    csm_high_touch_accounts: int = Field(default=15, ge=1, le=MAX_CAPACITY)
    csm_low_touch_accounts: int = Field(default=80, ge=1, le=MAX_CAPACITY)
    specialist_implementations: int = Field(default=15, ge=1, le=MAX_CAPACITY)
    specialist_tiers: list[Tier] = Field(
        default_factory=lambda: [Tier.HIGH_TOUCH], max_length=len(Tier)
    )
    specialist_gates: list[str] = Field(
        default_factory=lambda: ["technical_setup", "data_import"], max_length=MAX_MILESTONES
    )
    leadership_template: str = "leadership_over_capacity"
    specialist_template: str = "specialist_assigned"

    @model_validator(mode="after")
    def _shape(self) -> Capacity:
        for key in ("specialist_tiers", "specialist_gates"):
            named = getattr(self, key)
            if twice := sorted({str(i) for i in named if named.count(i) > 1}):
                raise ValueError(f"{key}: {', '.join(twice)} listed twice")
        if self.csm_low_touch_accounts < self.csm_high_touch_accounts:
            raise ValueError(
                f"csm_low_touch_accounts: {self.csm_low_touch_accounts} is below "
                f"csm_high_touch_accounts ({self.csm_high_touch_accounts}); a low-touch "
                "account takes less of a CSM than a high-touch one"
            )
        return self

    def of_tier(self, tier: Tier) -> int:
        """One CSM's capacity in `tier`'s band: high_touch, or the low-touch tiers."""
        if tier is Tier.HIGH_TOUCH:
            return self.csm_high_touch_accounts
        return self.csm_low_touch_accounts


RoleId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$")]
# A role's activation counts at most this many users, so each onboarding keeps few.
MAX_ROLE_USERS = 100
# An onboarding remembers at most this many users' roles (rules §7).
MAX_KNOWN_USERS = 500


def role_text(value: str) -> str:
    """A role as customers' systems write it, made comparable: `End User`, `end-user` and
    `end_user` are all `end_user` (case, spaces and hyphens aside)."""
    return "_".join(value.replace("-", " ").split()).casefold()


class ActivationRole(BaseModel):
    """One role's activation path (rules §7 (docs/rules.md), *Activation by role*): a
    user of the role is activated by one of `events`; the role is activated once `users`
    distinct users of it are. A user's role is the `[activation].role_property` of the
    event, else of their last identify call's traits; `values` are what that property
    says for this role (compared by `role_text`; none: the role's id). `title` names the
    role to people (`end user`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Name | None = None
    events: list[EventName] = Field(min_length=1, max_length=MAX_EVENT_NAMES)
    users: int = Field(default=1, ge=1, le=MAX_ROLE_USERS)
    values: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20
    )

    @model_validator(mode="after")
    def _distinct(self) -> ActivationRole:
        for key, named in (("events", self.events), ("values", list(map(role_text, self.values)))):
            if twice := sorted({x for x in named if named.count(x) > 1}):
                raise ValueError(f"{key}: {', '.join(twice)} listed twice")
        return self


class Activation(BaseModel):
    """Activation measured per role (rules §7 (docs/rules.md), *Activation by role*; seed
    003): each role's path (`roles`), where a user's role is read (`role_property`, a
    dotted path in a track call's properties or an identify call's traits), and the
    account-level rule: first value by roles is reached when every role of
    `first_value_when` is activated. It is reported beside the value milestone, which it
    does not complete."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role_property: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "role"
    roles: dict[RoleId, ActivationRole] = Field(min_length=1, max_length=10)
    first_value_when: list[RoleId] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _consistent(self) -> Activation:
        if unknown := [r for r in self.first_value_when if r not in self.roles]:
            raise ValueError(
                f"first_value_when: {', '.join(unknown)} is not a role of activation.roles"
            )
        if len(set(self.first_value_when)) != len(self.first_value_when):
            raise ValueError("first_value_when: a role is listed twice")
        meant: dict[str, str] = {}
        for role in self.roles:
            for value in self.values_of(role):
                if (other := meant.setdefault(value, role)) != role:
                    raise ValueError(
                        f"roles.{role}.values: {value!r} already means role {other}; one "
                        "value names one role"
                    )
        return self

    def values_of(self, role: str) -> list[str]:
        """What the role property says for `role` (`role_text` of each)."""
        return [role_text(v) for v in self.roles[role].values or [role]]

    def title(self, role: str) -> str:
        """`end user` for `end_user` unless the role has its own title."""
        return self.roles[role].title or role.replace("_", " ")

    def events(self) -> set[str]:
        """Every event name that activates a user of some role."""
        return {name for r in self.roles.values() for name in r.events}


# The track of a deal type a playbook does not describe (frozen: one for all).
NEW_BUSINESS_TRACK = Track()


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    targets: Targets = Field(default_factory=Targets)
    milestones: list[MilestoneSpec] = Field(min_length=1, max_length=MAX_MILESTONES)
    ladder: dict[Tier, Annotated[list[EscalationStep], Field(max_length=MAX_LADDER_STEPS)]]
    templates: dict[str, MessageTemplate] = Field(max_length=MAX_TEMPLATES)
    business_calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    champion_change: ChampionChange | None = Field(
        default=None,
        description="None in a playbook without the section (those pinned before it): "
        "a champion change then opens no window",
    )
    tracks: dict[DealType, Track] = Field(
        default_factory=dict,
        description="Per deal type, how its plan and tier differ; none: as new business",
    )
    success_plan: SuccessPlanRule | None = Field(
        default=None, description="Tiers whose schedule waits for the success plan; none: no tier"
    )
    skip_net: SkipNet | None = Field(
        default=None, description="None (playbooks pinned before it): no safety net"
    )
    products: ProductRollout = Field(
        default_factory=ProductRollout,
        description="A multi-product deal's per-product gates and adoption threshold",
    )
    measures: Measures | None = Field(
        default=None,
        description="None (playbooks pinned before it): no invitations or first-week "
        "retention gathered",
    )
    programs: dict[ProgramId, Program] = Field(
        default_factory=dict,
        max_length=MAX_PROGRAMS,
        description="Group programs (rules §1); none (playbooks pinned before them): no invitation",
    )
    capacity: Capacity | None = Field(
        default=None,
        description="Assignment by segment and load (rules §7); None (playbooks pinned "
        "before it): no specialist, no leadership alert, the CSM counted at the defaults",
    )
    activation: Activation | None = Field(
        default=None,
        description="Activation per role (rules §7); None (playbooks pinned before it): "
        "activation is the value milestone alone",
    )

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
                if not any(m.phase == phase for m in self.milestones_for(tier)):
                    raise ValueError(
                        f"milestones: tier {tier.value} has no milestone gate in phase "
                        f"{phase.value}"
                    )
        by_event: dict[str, MilestoneSpec] = {}
        for m in self.milestones:
            for tier, days in m.due_days.items():
                end = self.timeline[tier][m.phase]
                nominal, said = self._nominal_days(days, m.due_unit)
                if nominal > end:
                    raise ValueError(
                        f"milestones.{m.id}.due_days.{tier.value}: {said} is after "
                        f"phase {m.phase.value} ends (day {end})"
                    )
                start = self.phase_start_day(tier, m.phase)
                if nominal <= start:
                    raise ValueError(
                        f"milestones.{m.id}.due_days.{tier.value}: {said} is not after "
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
        if self.skip_net is not None and self.skip_net.template not in self.templates:
            raise ValueError(f"skip_net.template: no template {self.skip_net.template!r}")
        names = self.event_names_watched() | by_event.keys()
        if len(names) > MAX_PLAYBOOK_EVENT_NAMES:
            raise ValueError(
                f"milestones: {len(names)} product event names; at most "
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
                if s.milestone is not None and s.milestone not in ids:
                    raise ValueError(
                        f"ladder.{tier.value}.{s.id}.milestone: {s.milestone!r} is not a "
                        "milestone id"
                    )
        self._engagement_gates()
        if (change := self.champion_change) is not None:
            for key in ("csm_template", "leadership_template"):
                if getattr(change, key) not in self.templates:
                    raise ValueError(f"champion_change.{key}: no template {getattr(change, key)!r}")
        self._tracks_consistent(ids)
        self._products_consistent(ids)
        self._programs_consistent(by_event)
        self._capacity_consistent(ids)
        self._activation_consistent(by_event)
        return self

    def _nominal_days(self, amount: int, unit: Unit) -> tuple[float, str]:
        """A deadline's calendar days on a five-day week without holidays (what the
        phase bounds are checked against), and how to say it: `day 14`, `3 business
        days (about 4.2 days on a five-day week)`."""
        if unit == "days":
            return amount, f"day {amount}"
        calendar = self.business_calendar.of(None, None)
        start, end = (
            datetime.combine(date.min, t) for t in (calendar.workday_start, calendar.workday_end)
        )
        per_day = (end - start).total_seconds() / 3600
        workdays = amount if unit == "business_days" else amount / per_day
        nominal = workdays * 7 / 5
        words = unit.replace("_", " ")
        return nominal, f"{amount} {words} (about {nominal:.1f} days on a five-day week)"

    def _engagement_gates(self) -> None:
        """A tier whose ladder watches the first-engagement gate (rules §3) plans one."""
        for tier, steps in self.ladder.items():
            for s in steps:
                if s.when in ENGAGEMENT_TRIGGERS and not any(
                    m.ttv == "first_engagement" for m in self.milestones_for(tier)
                ):
                    raise ValueError(
                        f"ladder.{tier.value}.{s.id}: tier {tier.value} plans no "
                        'first-engagement gate (a milestone with ttv = "first_engagement") '
                        f"for {s.when.value} to watch"
                    )

    def event_names_watched(self) -> set[str]:
        """Event names counted beyond the milestones' own (the skip net's usage and
        support tickets, the behavioral ladder steps' events, the `[measures]`, programs'
        attendance, the events that activate a role): always worth signalling while the
        onboarding runs."""
        net, measures = self.skip_net, self.measures
        names = set(net.usage_events) | set(net.support_events) if net else set()
        if measures is not None:
            names |= set(measures.invitation_events) | set(measures.active_events)
        roles = self.activation.events() if self.activation else set()
        return names | set(self.recent_times_kept()) | self.attendance_events() | roles

    def attendance_events(self) -> set[str]:
        """The product events that say a program was attended (rules §1)."""
        return {p.attended_event for p in self.programs.values()}

    def _programs_consistent(self, by_event: dict[str, MilestoneSpec]) -> None:
        """Each program's template is there, and its attendance event is its own: one a
        milestone counts, or the skip net's, would credit attendance for other facts."""
        net = self.skip_net
        others = set(net.usage_events) | set(net.support_events) if net else set()
        for key, program in self.programs.items():
            if program.template not in self.templates:
                raise ValueError(f"programs.{key}.template: no template {program.template!r}")
            name = program.attended_event
            if (spec := by_event.get(name)) is not None:
                raise ValueError(
                    f"programs.{key}.attended_event: {name!r} completes milestone {spec.id}; "
                    "attendance needs an event of its own"
                )
            if name in others:
                raise ValueError(
                    f"programs.{key}.attended_event: {name!r} is one of the skip net's "
                    "events; attendance needs an event of its own"
                )

    def recent_times_kept(self) -> dict[str, int]:
        """Per event name a behavioral ladder step watches, how many of its latest times
        an onboarding keeps (the most any such step counts)."""
        kept: dict[str, int] = {}
        for steps in self.ladder.values():
            for s in steps:
                for name in s.events:
                    kept[name] = max(kept.get(name, 0), s.count)
        return kept

    def _products_consistent(self, ids: list[str]) -> None:
        """Per-product gates are known milestones, and not the login or value milestone:
        the ladder's no_login and activation_missed steps watch one gate of the plan; the
        CSM's templates for a product that waits and goes on are there."""
        for key in ("waiting_template", "released_template"):
            name = getattr(self.products, key)
            if name is not None and name not in self.templates:
                raise ValueError(f"products.{key}: no template {name!r}")
        for i in self.products.per_product:
            if i not in ids:
                raise ValueError(f"products.per_product: {i} is not a milestone id")
            for key in ("login_milestone", "value_milestone"):
                if i == getattr(self, key):
                    raise ValueError(
                        f"products.per_product: {i} is the {key}; the ladder watches it "
                        "once for the whole plan"
                    )

    def _capacity_consistent(self, ids: list[str]) -> None:
        """The specialist's gates are milestones, and the templates are there."""
        if (c := self.capacity) is None:
            return
        if unknown := [i for i in c.specialist_gates if i not in ids]:
            raise ValueError(
                f"capacity.specialist_gates: {', '.join(unknown)} is not a milestone id"
            )
        for key in ("leadership_template", "specialist_template"):
            if getattr(c, key) not in self.templates:
                raise ValueError(f"capacity.{key}: no template {getattr(c, key)!r}")

    def _activation_consistent(self, by_event: dict[str, MilestoneSpec]) -> None:
        """A role's events reach the workflow whole: not `identify` (it says who a user
        is, not what they did), nor an event a milestone completes only under conditions
        (the ingress drops those that miss them), nor a program's attendance."""
        if (a := self.activation) is None:
            return
        attendance = self.attendance_events()
        for role, path in a.roles.items():
            for name in path.events:
                spec = by_event.get(name)
                if name == IDENTIFY:
                    why = "an identify call says who a user is, not what they did"
                elif spec is not None and spec.completed_by and spec.completed_by.where:
                    why = (
                        f"milestone {spec.id} counts it only under conditions, so the "
                        "others never arrive"
                    )
                elif name in attendance:
                    why = "it is a group program's attendance"
                else:
                    continue
                raise ValueError(f"activation.roles.{role}.events: {name!r}: {why}")

    def _tracks_consistent(self, ids: list[str]) -> None:
        """Each track names known milestones, keeps the value milestone (activation and
        time to value count on it) and leaves every tier a gate in every phase."""
        for deal_type, track in self.tracks.items():
            key = f"tracks.{deal_type.value}"
            for field, named in (("skip", track.skip), ("add", track.add)):
                if unknown := [i for i in named if i not in ids]:
                    raise ValueError(f"{key}.{field}: {', '.join(unknown)} is not a milestone id")
            if self.value_milestone in track.skip:
                raise ValueError(
                    f"{key}.skip: {self.value_milestone} is the value milestone; activation "
                    "and time to value count on it"
                )
            for tier in Tier:
                planned = self.milestones_for(tier, deal_type)
                for phase in Phase:
                    if not any(m.phase == phase for m in planned):
                        raise ValueError(
                            f"{key}: leaves tier {tier.value} no milestone gate in phase "
                            f"{phase.value}"
                        )

    def milestones_for(
        self, tier: Tier, deal_type: DealType = DealType.NEW_BUSINESS
    ) -> list[MilestoneSpec]:
        """The gates a tier plans for a deal type: a track's own gates first, then the
        others it does not skip (gates some track adds are planned on that track only)."""
        track = self.track(deal_type)
        track_only = {i for t in self.tracks.values() for i in t.add}
        own = [m for i in track.add if (m := self.milestone(i)) and tier in m.due_days]
        rest = [
            m
            for m in self.milestones
            if tier in m.due_days and m.id not in track_only and m.id not in track.skip
        ]
        return own + rest

    def track(self, deal_type: DealType) -> Track:
        """The deal type's track; one the playbook does not describe is new business's."""
        return self.tracks.get(deal_type) or NEW_BUSINESS_TRACK

    def milestone(self, milestone_id: str) -> MilestoneSpec | None:
        return next((m for m in self.milestones if m.id == milestone_id), None)

    def phase_start_day(self, tier: Tier, phase: Phase) -> int:
        i = PHASE_ORDER.index(phase)
        return 0 if i == 0 else self.timeline[tier][PHASE_ORDER[i - 1]]


# Every pinned playbook the process holds, by content: the onboardings pinned to one
# playbook share one (frozen) object instead of a copy each (README *Worker cost*).
_PINNED: weakref.WeakValueDictionary[str, Playbook] = weakref.WeakValueDictionary()
# The same objects by `id()`, with their key: a playbook that is already the shared one is
# known at once, and so is the key its reference names (no JSON dump, no hash).
_KEYS: dict[int, tuple[weakref.ref[Playbook], str]] = {}
# Reentrant: a weakref callback (`_forget`) may run inside the lock when a collection
# happens there.
_PINNED_LOCK = threading.RLock()

# The `info.context` a payload converter serializes with to send pinned playbooks by
# reference (`PinnedPlaybook`): `activities.client.data_converter` does.
BY_REFERENCE = {"playbook": "reference"}
# The key of a pinned playbook's reference in JSON: `{"playbook_ref": {...}}`.
PLAYBOOK_REF = "playbook_ref"


class PlaybookRef(BaseModel):
    """A pinned playbook by content address, as Temporal keeps it:
    `{"playbook_ref": {"version": "2026.12.3", "sha256": "<64 hex>"}}`. `sha256` is the
    hash of the playbook's JSON (`Playbook.model_dump_json()`), the key of
    `shared_playbook` and of the records store's `playbook_content` table; not the file's
    `content_hash`. Content-addressed, a reference never changes meaning: replay reads
    the same playbook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PlaybookNotHeld(ValueError):
    """A reference names a playbook whose content this process does not hold; the
    message names its version and hash and what to do."""

    def __init__(self, ref: PlaybookRef) -> None:
        self.ref = ref
        super().__init__(
            f"playbook {ref.version} (sha256 {ref.sha256}) is pinned by reference and this "
            "process does not hold its content: connect through "
            "activities.client.data_converter(), whose codec loads it from the records store "
            "(ONBOARDING_RECORDS_URL), where the process that started the onboarding stored it"
        )


def _key_of(playbook: Playbook) -> str | None:
    entry = _KEYS.get(id(playbook))
    return entry[1] if entry is not None and entry[0]() is playbook else None


def _forget(ref: weakref.ref[Playbook], ident: int) -> None:
    with _PINNED_LOCK:
        if (entry := _KEYS.get(ident)) is not None and entry[0] is ref:
            del _KEYS[ident]


def _register(playbook: Playbook, key: str) -> Playbook:
    """The process's one playbook under `key` (`playbook` when it is the first)."""
    with _PINNED_LOCK:
        shared = _PINNED.setdefault(key, playbook)
        if _key_of(shared) is None:
            ident = id(shared)
            _KEYS[ident] = (weakref.ref(shared, lambda r: _forget(r, ident)), key)
        return shared


def shared_playbook(playbook: Playbook) -> Playbook:
    """The process's one `Playbook` with exactly `playbook`'s content (`playbook` itself
    when it is the first): keyed by the sha256 of its JSON, so that two playbooks are
    shared only when every value is the same, whatever their `content_hash` says; kept
    while some onboarding holds it. Safe to share: a `Playbook` is frozen (assigning
    a field raises `pydantic.ValidationError`), and no rule changes one."""
    if _key_of(playbook) is not None:
        return playbook
    key = hashlib.sha256(playbook.model_dump_json().encode()).hexdigest()
    return _register(playbook, key)


def playbook_ref(playbook: Playbook) -> PlaybookRef:
    """`playbook`'s reference (it becomes the shared one when no equal one is)."""
    shared = shared_playbook(playbook)
    key = _key_of(shared)
    assert key is not None  # registered by shared_playbook, and alive
    return PlaybookRef(version=shared.version, sha256=key)


def held_playbook(sha256: str) -> Playbook | None:
    """The playbook this process holds under `sha256` (`PlaybookRef.sha256`), if any."""
    return _PINNED.get(sha256)


def pin_content(sha256: str, content: str) -> Playbook:
    """The shared playbook of `content` (a `Playbook.model_dump_json()`, as the records
    store keeps it) under its key `sha256`. Raises ValueError naming the hash when the
    content is not what the hash says, or not a playbook (the reason)."""
    if (held := held_playbook(sha256)) is not None:
        return held
    actual = hashlib.sha256(content.encode()).hexdigest()
    if actual != sha256:
        raise ValueError(f"playbook content stored under sha256 {sha256} hashes to {actual}")
    return _register(Playbook.model_validate_json(content), sha256)


def _pinned(value: object, validate: ValidatorFunctionWrapHandler) -> Playbook:
    """`shared_playbook` of the validated `value`; the shared playbook itself passes as
    it is (it was validated when it was pinned, and it is frozen): an ingress pins its
    one playbook into every start without checking and hashing it each time. A reference
    (`PlaybookRef`) is the shared playbook it names; raises `PlaybookNotHeld` when this
    process does not hold it."""
    if isinstance(value, Playbook) and _key_of(value) is not None:
        return value
    if isinstance(value, dict) and PLAYBOOK_REF in value:
        ref = PlaybookRef.model_validate(value[PLAYBOOK_REF])
        if len(value) > 1:
            raise ValueError(f"{PLAYBOOK_REF}: a reference has no other keys beside it")
        held = held_playbook(ref.sha256)
        if held is None:
            raise PlaybookNotHeld(ref)
        return held
    return shared_playbook(validate(value))


def _by_reference(
    playbook: Playbook, serialize: SerializerFunctionWrapHandler, info: SerializationInfo
) -> object:
    """Under the `BY_REFERENCE` context, `{"playbook_ref": {...}}` (`PlaybookRef`);
    otherwise the whole playbook."""
    if info.context != BY_REFERENCE:
        return serialize(playbook)
    # The shared playbook's key is known (no dump, no hash): the usual case, every start.
    key = _key_of(playbook) or playbook_ref(playbook).sha256
    return {PLAYBOOK_REF: {"version": playbook.version, "sha256": key}}


# A playbook pinned in a workflow's input or message: shared as `shared_playbook` says,
# and sent by reference when serialized under `BY_REFERENCE`.
PinnedPlaybook = Annotated[
    Playbook, WrapValidator(_pinned), WrapSerializer(_by_reference, when_used="json")
]
"""The worker keeps one copy of each pinned playbook, whatever the number of onboardings
pinned to it (README *Worker cost*): a cached onboarding costs the worker a fraction of
what it did when each held its own. The pin holds: a changed file is another playbook,
and the onboardings that run keep theirs; nobody can change a shared one.

Serialized for Temporal by `activities.client.data_converter`, it is a reference
(`PlaybookRef`), resolved from this process's shared playbooks; its codec stores and
loads the content in the records store's `playbook_content` (README *Where the pinned
playbook lives*). Why a serialization context rather than a serializer that always
writes the reference: only a process with that codec can make sure the content is
stored, so a converter without it (`pydantic_data_converter`: the tests' workers, the
recorded histories, other starters) keeps writing the whole playbook and its histories
stay self-contained; and every other dump of these models (CLI output, HTTP answers,
`model_dump_json()`) stays the readable playbook. Validation takes either form."""
