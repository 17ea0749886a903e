"""The figures of one group of onboardings (rules §8, §3, docs/rules.md). Each onboarding
is judged once (`judge`: what it counts for in each rate, or None while it cannot count
yet) and added to a `Tally`; a group's figures are its tally's. Pure functions of the
rows, the playbook and the report time `now` (POSIX seconds, like every time in the rows).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Literal, NamedTuple

from starter.reports.model import GroupFigures, Share
from starter.reports.rows import DAY_S, RUNNING, Onboarding, Seconds, utc
from workflows.models import HealthBand, OnboardingState, Playbook, Tier

Engagement = Literal["good", "fair", "poor"]
# First-week retention is judged once the week after the first has passed.
RETENTION_JUDGED = timedelta(days=14)


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


def completed(r: Onboarding, now: Seconds) -> bool | None:
    """Onboarding completion (rules §8), once its plan has run its course (its last
    milestone's due date has passed): True if completed, False if cancelled or still
    running. None before that, whatever its state, so a young cohort is not judged by its
    early cancellations (or early completions) alone; and None for a trial that converted
    to paid without completing (rules §2): it ended in a sale, not a failure."""
    if r.last_due_at is None or r.last_due_at > now:
        return None
    if r.converted and r.state is not OnboardingState.COMPLETED:
        return None
    return r.state is OnboardingState.COMPLETED


def trial_converted(r: Onboarding, now: Seconds) -> bool | None:
    """Trials converted (rules §2, §8): a trial's customer converted to paid (`converted`);
    None for any other onboarding and until the trial's plan has run its course (its last
    milestone's due date has passed), as completion is judged."""
    if not r.trial or r.last_due_at is None or r.last_due_at > now:
        return None
    return r.converted


def activated(r: Onboarding, now: Seconds, window_days: int) -> bool | None:
    """Activation within the window (rules §8, 30 days): first value reached (TTV known)
    within `window_days` of closed-won; None until closed-won is that long ago, so a
    young cohort is not flattered by its early activations."""
    if r.closed_won_at + window_days * DAY_S > now:
        return None
    return r.ttv_days is not None and r.ttv_days <= window_days


def engagement(
    r: Onboarding, now: Seconds, good_hours: float, poor_days: float, engaged: frozenset[Tier]
) -> Engagement | None:
    """First CS engagement (rules §3, the handoff delay): good under `good_hours` after
    closed-won, poor at `poor_days` or later (or none yet by then), fair between. None for
    a tier without an engagement gate in the playbook (`engaged`: self_serve is engaged by
    the automated welcome) and until closed-won is `poor_days` ago."""
    if r.tier not in engaged or r.closed_won_at + poor_days * DAY_S > now:
        return None
    delay = r.handoff_delay_days
    if delay is None or delay >= poor_days:
        return "poor"
    return "good" if delay * 24 < good_hours else "fair"


def setup_completed(r: Onboarding) -> bool | None:
    """Setup completion (rules §8): its system-ready gate (rules §3) done; None until the
    gate is done or past its due date, and for a skipped one."""
    return r.setup_done if r.setup_judged else None


def invited_team(r: Onboarding, now: Seconds, window_days: int) -> bool | None:
    """Team invitations (rules §8): at least one teammate invited; None until closed-won
    is `window_days` (the activation window) ago, and where invitations were not counted
    (a playbook without `[measures]`)."""
    if r.team_invitations is None or r.closed_won_at + window_days * DAY_S > now:
        return None
    return r.team_invitations > 0


def retained_first_week(r: Onboarding, now: Seconds) -> bool | None:
    """First-week retention (rules §8): active again 7 to 13 days after its first active
    day; None for an account never active, and until two weeks after that day."""
    first = r.first_active_on
    if first is None or first + RETENTION_JUDGED > utc(now).date():
        return None
    return r.came_back_on is not None


class Verdict(NamedTuple):
    """What one onboarding counts for in the rates of every group it is in."""

    completed: bool | None
    activated: bool | None
    engagement: Engagement | None
    setup: bool | None
    invited: bool | None
    retained: bool | None
    converted: bool | None


def engaged_tiers(playbook: Playbook) -> frozenset[Tier]:
    """The tiers whose plan has a first-engagement gate (rules §3)."""
    return frozenset(
        t for t in Tier if any(m.ttv == "first_engagement" for m in playbook.milestones_for(t))
    )


def judge(rows: Sequence[Onboarding], playbook: Playbook, now: Seconds) -> list[Verdict]:
    """Each row's verdict, in the order of `rows`."""
    targets, engaged = playbook.targets, engaged_tiers(playbook)
    good_hours, poor_days = targets.first_engagement_good_hours, targets.first_engagement_poor_days
    return [
        Verdict(
            completed(r, now),
            activated(r, now, targets.activation_window_days),
            engagement(r, now, good_hours, poor_days, engaged),
            setup_completed(r),
            invited_team(r, now, targets.activation_window_days),
            retained_first_week(r, now),
            trial_converted(r, now),
        )
        for r in rows
    ]


@dataclass(slots=True)
class Tally:
    """What a group's figures add up, so each onboarding is counted once, in its tier x
    cohort cell, and a wider group is the sum of its cells (`merge`). `*_judged`: the
    onboardings a rate counts (its verdict is not None)."""

    onboardings: int = 0
    states: Counter[OnboardingState] = field(default_factory=Counter)
    health: Counter[HealthBand] = field(default_factory=Counter)
    completion_judged: int = 0
    completed: int = 0
    activation_judged: int = 0
    activated: int = 0
    engagement_judged: int = 0
    good: int = 0
    poor: int = 0
    milestones_due: int = 0
    milestones_on_time: int = 0
    escalated: int = 0
    tier_changed: int = 0
    overridden: int = 0
    ttv: list[float] = field(default_factory=list)
    handoff: list[float] = field(default_factory=list)
    setup: list[float] = field(default_factory=list)
    activation: list[float] = field(default_factory=list)
    setup_judged: int = 0
    setup_done: int = 0
    invite_judged: int = 0
    invited: int = 0
    invitations: list[float] = field(default_factory=list)
    retention_judged: int = 0
    retained: int = 0
    trials_judged: int = 0
    converted: int = 0

    def add(self, r: Onboarding, v: Verdict) -> None:
        self.onboardings += 1
        self.states[r.state] += 1
        if r.running:
            self.health[r.health_band] += 1
        if v.completed is not None:
            self.completion_judged += 1
            self.completed += v.completed
        if v.activated is not None:
            self.activation_judged += 1
            self.activated += v.activated
        if v.engagement is not None:
            self.engagement_judged += 1
            self.good += v.engagement == "good"
            self.poor += v.engagement == "poor"
        if v.setup is not None:
            self.setup_judged += 1
            self.setup_done += v.setup
        if v.invited is not None:
            self.invite_judged += 1
            self.invited += v.invited
            self.invitations.append(r.team_invitations or 0)
        if v.retained is not None:
            self.retention_judged += 1
            self.retained += v.retained
        if v.converted is not None:
            self.trials_judged += 1
            self.converted += v.converted
        self.milestones_due += r.milestones_due
        self.milestones_on_time += r.milestones_on_time
        self.escalated += r.escalated
        if r.tier_changes:
            self.tier_changed += 1
            self.overridden += any(c.kind == "override" for c in r.tier_changes)
        for values, value in (
            (self.ttv, r.ttv_days),
            (self.handoff, r.handoff_delay_days),
            (self.setup, r.setup_days),
            (self.activation, r.activation_days),
        ):
            if value is not None:
                values.append(value)

    @classmethod
    def merge(cls, tallies: Iterable[Tally]) -> Tally:
        """One tally of every onboarding in `tallies`."""
        out = cls()
        for t in tallies:
            for f in fields(cls):
                mine, theirs = getattr(out, f.name), getattr(t, f.name)
                if isinstance(mine, Counter):
                    mine.update(theirs)
                elif isinstance(mine, list):
                    mine.extend(theirs)
                else:
                    setattr(out, f.name, mine + theirs)
        return out

    def figures(
        self, playbook: Playbook, *, tier: Tier | None = None, cohort: str | None = None
    ) -> GroupFigures:
        """The group's figures; `tier` names the group's tier, which brings its completion
        and TTV targets."""
        targets, states = playbook.targets, self.states
        figures = GroupFigures(
            tier=tier,
            cohort=cohort,
            onboardings=self.onboardings,
            running=sum(states[s] for s in RUNNING),
            at_risk=states[OnboardingState.AT_RISK],
            paused=states[OnboardingState.PAUSED],
            completed=states[OnboardingState.COMPLETED],
            cancelled=states[OnboardingState.CANCELLED],
            completion=share(self.completed, self.completion_judged),
            completion_target_pct=targets.completion_rate_pct.get(tier) if tier else None,
            activation=share(self.activated, self.activation_judged),
            activation_target_pct=targets.activation_rate_pct,
            ttv_median_days=percentile(self.ttv, 0.5),
            ttv_p75_days=percentile(self.ttv, 0.75),
            ttv_target_days=playbook.ttv_target_days.get(tier) if tier else None,
            handoff_delay_median_days=percentile(self.handoff, 0.5),
            setup_median_days=percentile(self.setup, 0.5),
            activation_median_days=percentile(self.activation, 0.5),
            first_engagement_good=share(self.good, self.engagement_judged),
            first_engagement_poor=share(self.poor, self.engagement_judged),
            milestones_on_time=share(self.milestones_on_time, self.milestones_due),
            health={band: self.health[band] for band in HealthBand},
            escalated=share(self.escalated, self.onboardings),
            tier_changed=share(self.tier_changed, self.onboardings),
            overridden=share(self.overridden, self.onboardings),
            setup_completion=share(self.setup_done, self.setup_judged),
            team_invited=share(self.invited, self.invite_judged),
            team_invitations_median=percentile(self.invitations, 0.5),
            first_week_retention=share(self.retained, self.retention_judged),
            below_target=[],
            trials_converted=share(self.converted, self.trials_judged),
        )
        figures.below_target = below_target(figures)
        return figures


def below_target(f: GroupFigures) -> list[str]:
    """The figures of `f` that miss their target: completion under the low end of the
    tier's range, activation under its target, median TTV over the high end of the tier's
    range. Nothing to measure misses nothing."""
    misses = []
    completion, target = f.completion.pct, f.completion_target_pct
    if target is not None and completion is not None and completion < target[0]:
        misses.append("completion")
    if f.activation.pct is not None and f.activation.pct < f.activation_target_pct:
        misses.append("activation")
    ttv, days = f.ttv_median_days, f.ttv_target_days
    if days is not None and ttv is not None and ttv > days[1]:
        misses.append("ttv_median")
    return misses
