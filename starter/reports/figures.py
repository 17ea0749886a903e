"""The figures of one group of onboardings (rules §8, docs/rules.md): counts, completion
and activation rates, time to first value, first CS engagement, milestones within SLA and
health bands. Pure functions of the rows, the playbook's targets and the report time `now`
(POSIX seconds, like every time in the rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from starter.reports.model import GroupFigures, Share
from starter.reports.rows import DAY_S, ENDED, Onboarding, Seconds
from workflows.models import HealthBand, OnboardingState, Playbook, Tier


def share(count: int, of: int) -> Share:
    """`count` of `of` with its percentage rounded to 0.1 (None when `of` is 0)."""
    return Share(count=count, of=of, pct=None if of == 0 else round(100 * count / of, 1))


def percentile(values: Iterable[float], q: float) -> float | None:
    """The `q` quantile (0..1) of `values` by linear interpolation between the closest
    ranks (numpy's default), rounded to 0.01; None for no values. q=0.5 is the median."""
    ordered = sorted(values)
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    value = ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
    return round(value, 2)


def median(values: Iterable[float | None]) -> float | None:
    return percentile((v for v in values if v is not None), 0.5)


def completion(rows: Sequence[Onboarding], now: Seconds) -> Share:
    """Onboarding completion rate (rules §8): completed / onboardings that ended
    (completed or cancelled) or whose last milestone's due date has passed."""
    eligible = [
        r
        for r in rows
        if r.state in ENDED or (r.milestones and max(m.due_at for m in r.milestones) <= now)
    ]
    return share(sum(r.state is OnboardingState.COMPLETED for r in eligible), len(eligible))


def activation(rows: Sequence[Onboarding], now: Seconds, window_days: int) -> Share:
    """Activation rate within the window (rules §8, 30 days by default): reached first
    value (TTV known) within `window_days` of closed-won / onboardings at least that long
    past closed-won or already activated."""
    activated = eligible = 0
    for r in rows:
        if r.ttv_days is not None or r.closed_won_at + window_days * DAY_S <= now:
            eligible += 1
            activated += r.ttv_days is not None and r.ttv_days <= window_days
    return share(activated, eligible)


def first_engagement(
    rows: Sequence[Onboarding], now: Seconds, good_hours: float, poor_days: float
) -> tuple[Share, Share]:
    """First CS engagement (rules §3, the handoff delay): (good, poor) shares. Good: under
    `good_hours` after closed-won; poor: `poor_days` or later, or still none after that
    long. Accounts younger than `poor_days` with no engagement yet are not counted."""
    good = poor = measured = 0
    for r in rows:
        delay = r.handoff_delay_days
        if delay is None:
            if r.closed_won_at + poor_days * DAY_S <= now:
                measured += 1
                poor += 1
            continue
        measured += 1
        good += delay * 24 < good_hours
        poor += delay >= poor_days
    return share(good, measured), share(poor, measured)


def milestones_on_time(rows: Sequence[Onboarding], now: Seconds) -> Share:
    """Milestone completion within SLA (rules §8): milestones done by their due date /
    milestones due by `now` or done."""
    on_time = due = 0
    for r in rows:
        for m in r.milestones:
            if m.done_at is not None or m.due_at <= now:
                due += 1
                on_time += m.done_at is not None and m.done_at <= m.due_at
    return share(on_time, due)


def group_figures(
    rows: Sequence[Onboarding],
    playbook: Playbook,
    now: Seconds,
    *,
    tier: Tier | None = None,
    cohort: str | None = None,
) -> GroupFigures:
    """Every per-group figure of `rows` (already the group's rows); `tier` names the group's
    tier, which brings its completion and TTV targets."""
    targets = playbook.targets
    states = [r.state for r in rows]
    running = [r for r in rows if r.running]
    good, poor = first_engagement(
        rows, now, targets.first_engagement_good_hours, targets.first_engagement_poor_days
    )
    ttv = [r.ttv_days for r in rows if r.ttv_days is not None]
    figures = GroupFigures(
        tier=tier,
        cohort=cohort,
        onboardings=len(rows),
        running=len(running),
        at_risk=states.count(OnboardingState.AT_RISK),
        paused=states.count(OnboardingState.PAUSED),
        completed=states.count(OnboardingState.COMPLETED),
        cancelled=states.count(OnboardingState.CANCELLED),
        completion=completion(rows, now),
        completion_target_pct=targets.completion_rate_pct.get(tier) if tier else None,
        activation=activation(rows, now, targets.activation_window_days),
        activation_target_pct=targets.activation_rate_pct,
        ttv_median_days=percentile(ttv, 0.5),
        ttv_p75_days=percentile(ttv, 0.75),
        ttv_target_days=playbook.ttv_target_days.get(tier) if tier else None,
        handoff_delay_median_days=median(r.handoff_delay_days for r in rows),
        setup_median_days=median(r.setup_days for r in rows),
        activation_median_days=median(r.activation_days for r in rows),
        first_engagement_good=good,
        first_engagement_poor=poor,
        milestones_on_time=milestones_on_time(rows, now),
        health={band: sum(r.health_band == band.value for r in running) for band in HealthBand},
        below_target=[],
    )
    figures.below_target = _misses(figures)
    return figures


def _misses(f: GroupFigures) -> list[str]:
    misses = []
    low = f.completion_target_pct[0] if f.completion_target_pct else None
    if low is not None and f.completion.pct is not None and f.completion.pct < low:
        misses.append("completion")
    if f.activation.pct is not None and f.activation.pct < f.activation_target_pct:
        misses.append("activation")
    high = f.ttv_target_days[1] if f.ttv_target_days else None
    if high is not None and f.ttv_median_days is not None and f.ttv_median_days > high:
        misses.append("ttv_median")
    return misses
