"""The portfolio report's shape (rules §8, docs/rules.md): what `onboarding report --format
json` prints and `GET /reports/portfolio` answers. Rates are percentages rounded to 0.1,
durations days rounded to 0.01, times UTC; a figure with nothing to measure is null."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from workflows.models import HealthBand, OnboardingState, Tier
from workflows.models.playbook import Targets


class Share(BaseModel):
    """`count` of `of`, and `pct` = 100 x count / of (null when `of` is 0)."""

    count: int
    of: int
    pct: float | None


class GroupFigures(BaseModel):
    """The figures of one group of onboardings: all of them, one tier, one closed-won month
    (cohort), or one tier in one cohort; `tier`/`cohort` say which (null: all)."""

    tier: Tier | None = None
    cohort: str | None = None
    onboardings: int
    running: int = Field(description="active, at_risk or paused")
    at_risk: int
    paused: int
    completed: int
    cancelled: int
    completion: Share = Field(
        description="completed / ended or past their last milestone's due date"
    )
    completion_target_pct: tuple[float, float] | None = Field(description="The tier's; rules §8")
    activation: Share = Field(
        description="first value within the window / at least that old or activated"
    )
    activation_target_pct: float
    ttv_median_days: float | None = Field(description="closed-won -> first value, rules §3")
    ttv_p75_days: float | None
    ttv_target_days: tuple[int, int] | None = Field(description="The tier's playbook target")
    handoff_delay_median_days: float | None
    setup_median_days: float | None
    activation_median_days: float | None
    first_engagement_good: Share = Field(
        description="first CS engagement under targets.first_engagement_good_hours"
    )
    first_engagement_poor: Share = Field(
        description="targets.first_engagement_poor_days or later, or none yet by then"
    )
    milestones_on_time: Share = Field(description="done by their due date / due or done")
    health: dict[HealthBand, int] = Field(description="Running onboardings per health band")
    below_target: list[str] = Field(description="The figures that miss their target")


class DropOff(BaseModel):
    """One step of a tier's milestone funnel (plan order): of the accounts that reached the
    previous milestone and for which this one is due or done, those that did not reach it."""

    tier: Tier
    milestone_id: str
    lost: Share
    flagged: bool = Field(description="lost.pct above targets.drop_off_flag_pct")


class EscalationFigure(BaseModel):
    step_id: str
    trigger: str
    fired: int = Field(description="Occurrences (repeats counted), superseded ones left out")
    accounts: int
    followed_by_progress: Share = Field(
        description="firings followed by a milestone done within escalation_response_days "
        "(of those whose window has passed or that were followed)"
    )


class TierChangeFigure(BaseModel):
    kind: Literal["automatic", "override"]
    from_tier: Tier
    to_tier: Tier
    count: int


class Misclassification(BaseModel):
    """The tier rule's misclassification (rules §1): onboardings whose tier changed after
    the start (automatically or by override), per ACV band of the rule's thresholds."""

    acv_band: Literal["below_smb_floor", "between", "enterprise"]
    changed: Share


class AtRisk(BaseModel):
    owner: str | None
    account_id: str
    account_name: str
    tier: Tier
    state: OnboardingState
    health_band: str
    reasons: list[str] = Field(description="Risk flags, decision required, overdue milestones")
    next_deadline: datetime | None


class CsmLoad(BaseModel):
    """Running onboardings of one owner against rules §7's capacity: load_pct = 100 x
    (high_touch / high end of csm_high_touch_accounts + low_touch / high end of
    csm_low_touch_accounts)."""

    owner: str | None
    high_touch: int
    low_touch: int = Field(description="tech_touch and self_serve")
    load_pct: float
    over_capacity: bool


class Headcount(BaseModel):
    """CSMs the recent start rate needs (Little's law): starts per month x average months
    an onboarding takes / capacity midpoint; null while nothing has completed."""

    segment: Literal["high_touch", "low_touch", "all"]
    starts_per_month: float
    average_duration_months: float | None
    capacity_midpoint: float | None
    csms_needed: float | None


class TierBoundary(BaseModel):
    """Accounts within targets.tier_boundary_pct of a tier-rule threshold, per the tier
    the rule gave them."""

    threshold: Literal["enterprise_acv_usd", "smb_floor_acv_usd"]
    threshold_usd: float
    initial_tier: Tier
    onboardings: int
    completion: Share
    ttv_median_days: float | None
    changed_tier: Share


class PortfolioReport(BaseModel):
    """Every figure of the portfolio as of `as_of`, over the onboardings that match the
    filters; `by_cohort` is the trend (one row per closed-won month, in order, gaps
    filled)."""

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
