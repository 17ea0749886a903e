"""The portfolio report's shape (rules §8, docs/rules.md): what `onboarding report --format
json` prints and `GET /reports/portfolio` answers. Rates are percentages rounded to 0.1,
durations days (or months) rounded to 0.01, times UTC; a figure with nothing to measure is
null. Each figure's target sits beside it; the README's *Reports* section defines them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from workflows.models import HealthBand, OnboardingState, Tier
from workflows.models.playbook import Range, Targets

# "automatic" (the ladder) or "override" (a person, with an approver and a reason)
TierChangeKind = Literal["automatic", "override"]
# The tier rule's ACV bands (rules §1)
AcvBand = Literal["below_smb_floor", "smb_floor_to_enterprise", "enterprise"]
CsmRole = Literal["csm_high_touch", "csm_low_touch"]
Role = Literal["csm_high_touch", "csm_low_touch", "implementation_specialist"]
Threshold = Literal["enterprise_acv_usd", "smb_floor_acv_usd"]


class Share(BaseModel):
    """`count` of `of`, and `pct` = 100 x count / of (null when `of` is 0)."""

    count: int
    of: int
    pct: float | None


class GroupFigures(BaseModel):
    """The figures of one group of onboardings: all of them, one tier, one closed-won month
    (cohort), or one tier in one cohort; `tier`/`cohort` say which (null: any)."""

    tier: Tier | None = None
    cohort: str | None = None
    onboardings: int
    running: int = Field(description="active, at_risk or paused")
    at_risk: int
    paused: int
    completed: int
    cancelled: int
    completion: Share = Field(
        description="completed / past their last milestone's due date (rules §8)"
    )
    completion_target_pct: Range | None = Field(description="The tier's [low, high] %")
    activation: Share = Field(
        description="first value within the window / closed-won at least the window ago"
    )
    activation_target_pct: float
    ttv_median_days: float | None = Field(description="closed-won -> first value (rules §3)")
    ttv_p75_days: float | None
    ttv_target_days: tuple[int, int] | None = Field(description="The tier's [low, high] days")
    handoff_delay_median_days: float | None = Field(description="closed-won -> first engagement")
    setup_median_days: float | None = Field(description="first engagement -> system ready")
    activation_median_days: float | None = Field(description="system ready -> first value")
    first_engagement_good: Share = Field(
        description="first CS engagement under the good hours / tiers with an engagement "
        "gate, closed-won at least the poor days ago"
    )
    first_engagement_poor: Share = Field(description="the poor days or later, or none yet")
    milestones_on_time: Share = Field(
        description="milestones done by their due date / due or done (skipped left out)"
    )
    health: dict[HealthBand, int] = Field(description="Running onboardings per health band")
    escalated: Share = Field(description="onboardings with an escalation that fired / all")
    tier_changed: Share = Field(description="onboardings whose tier changed after the start")
    overridden: Share = Field(description="onboardings with a tier override")
    setup_completion: Share = Field(
        description="system-ready gate done / done or past its due date (skipped left out)"
    )
    team_invited: Share = Field(
        description="at least one teammate invited / closed-won at least the activation "
        "window ago, where invitations are counted"
    )
    team_invitations_median: float | None = Field(
        description="Teammates invited per onboarding of team_invited's `of`"
    )
    first_week_retention: Share = Field(
        description="active again 7 to 13 days after the first active day / first active "
        "day at least 14 days ago"
    )
    below_target: list[str] = Field(
        description="The figures that miss their target: completion, activation, ttv_median"
    )
    trials_converted: Share = Field(
        description="trials whose customer converted to paid / trials past their last "
        "milestone's due date (rules §2, §8)"
    )


class DropOff(BaseModel):
    """One step of a tier's milestone funnel, in the playbook's plan order."""

    tier: Tier
    milestone_id: str
    lost: Share = Field(
        description="not passed (done or skipped) / passed the previous step and this one "
        "due or passed"
    )
    flagged: bool = Field(description="lost.pct above targets.drop_off_flag_pct")


class EscalationFigure(BaseModel):
    """One ladder step of one tier: how often it fired and how often the customer moved
    again (a milestone done) within targets.escalation_response_days."""

    tier: Tier
    step_id: str
    trigger: str
    fired: int = Field(description="Firings (superseded steps, which did not run, left out)")
    accounts: int
    followed_by_progress: Share = Field(
        description="firings followed by a milestone done within the window / firings whose "
        "window has passed or that were followed"
    )


class TierChangeFigure(BaseModel):
    kind: TierChangeKind
    from_tier: Tier
    to_tier: Tier
    count: int


class Misclassification(BaseModel):
    """The tier rule's misclassification (rules §1) in one ACV band of its thresholds:
    onboardings whose tier changed after the start (by the ladder or an override)."""

    acv_band: AcvBand
    changed: Share
    overridden: Share


class AtRisk(BaseModel):
    owner: str | None
    account_id: str
    account_name: str
    tier: Tier
    state: OnboardingState
    health_band: HealthBand
    reasons: list[str] = Field(description="Risk flags, a required decision, overdue milestones")
    next_deadline: datetime | None


class CsmLoad(BaseModel):
    """The running onboardings one CSM owns against rules §7's capacity: load_pct =
    100 x (high_touch / the high end of csm_high_touch_accounts + low_touch / the high end
    of csm_low_touch_accounts). `owner` null: running high/tech-touch ones nobody owns."""

    owner: str | None
    high_touch: int
    low_touch: int = Field(description="tech_touch and self_serve")
    load_pct: float
    over_capacity: bool


class Headcount(BaseModel):
    """People one role needs (rules §7): now, for the onboardings it carries, and for the
    recent start rate (Little's law: starts per month x average months it carries one),
    both at the midpoint of its capacity."""

    role: Role
    capacity: Range = Field(description="Onboardings one person carries, [low, high]")
    active: int = Field(description="Running onboardings this role carries now")
    needed_now: float = Field(description="active / capacity midpoint")
    starts_per_month: float
    average_duration_months: float | None = Field(
        description="How long it carries one, over those it finished; null: none yet"
    )
    needed_for_start_rate: float | None = Field(
        description="starts_per_month x average_duration_months / capacity midpoint"
    )
    note: str | None = Field(
        default=None,
        description="`no specialists assigned`: none of the onboardings counted has one",
    )


class TierBoundary(BaseModel):
    """Accounts whose ACV is within targets.tier_boundary_pct of a tier-rule threshold,
    per the tier the rule gave them (rules §1), for the six-monthly review."""

    threshold: Threshold
    threshold_usd: float
    initial_tier: Tier
    onboardings: int
    completion: Share
    activation: Share
    ttv_median_days: float | None
    changed_tier: Share


class ProgramGroup(BaseModel):
    """The onboardings invited to a group program that attended it, or did not: how many,
    their activation (first value within the window, as in the group figures) and
    median TTV."""

    onboardings: int
    activation: Share
    ttv_median_days: float | None


class ProgramFigure(BaseModel):
    """A group program (rules §1): of the onboardings it invited, how many attended, and
    attendees' activation against non-attendees'. `attended_uninvited`: onboardings that
    attended without an invitation (another tier, or a link passed on), left out of both
    groups."""

    program: str
    title: str
    invited: int
    attended: Share
    attendees: ProgramGroup
    non_attendees: ProgramGroup
    attended_uninvited: int


class RoleFigure(BaseModel):
    """A role's activation (rules §7, *Activation by role*): of the onboardings that
    measure it and closed-won at least the activation window ago, those whose role was
    activated within the window; and the median days from closed-won to the role's
    activation, of the `activated` onboardings whose role was activated (young ones
    too, so it may stand beside a rate that does not count them yet)."""

    role: str
    title: str
    activation: Share
    activation_median_days: float | None
    activated: int = Field(description="Onboardings whose role was activated, at any age")


class PortfolioReport(BaseModel):
    """Every figure of the portfolio as of `as_of`, over the onboardings that match the
    filters `tier` (now in that tier) and `cohort` (closed-won month). `by_cohort` is the
    trend: one entry per month from the first to the last, in order, gaps filled."""

    as_of: datetime
    tier: Tier | None
    cohort: str | None
    playbook_version: str
    targets: Targets
    overall: GroupFigures
    by_tier: list[GroupFigures]
    by_cohort: list[GroupFigures]
    by_tier_cohort: list[GroupFigures]
    drop_off: list[DropOff]
    escalations: list[EscalationFigure]
    tier_changes: list[TierChangeFigure]
    misclassification: list[Misclassification]
    at_risk: list[AtRisk]
    csm_load: list[CsmLoad]
    headcount: list[Headcount]
    tier_boundaries: list[TierBoundary]
    programs: list[ProgramFigure] = Field(
        default_factory=list, description="Group programs: attendees' activation (rules §1)"
    )
    roles: list[RoleFigure] = Field(
        default_factory=list, description="Activation rate per role (rules §7)"
    )
    first_value_by_roles: Share | None = Field(
        default=None,
        description="First value by roles within the activation window, of the onboardings "
        "measuring roles and closed-won at least the window ago (rules §7); null: none does",
    )
