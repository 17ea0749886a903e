"""The portfolio-wide sections of the report (rules §8, §1, §4, §7, docs/rules.md):
milestone drop-off, escalations and what followed them, tier changes and the tier rule's
misclassification, the at-risk list, CSM load and headcount, and the tier-boundary review.
Pure functions of the rows, the playbook and the report time `now`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from starter.reports.figures import completion, median, share
from starter.reports.model import (
    AtRisk,
    CsmLoad,
    DropOff,
    EscalationFigure,
    Headcount,
    Misclassification,
    TierBoundary,
    TierChangeFigure,
)
from starter.reports.rows import DAY_S, Onboarding, Seconds, seconds, utc
from workflows.formats import day_text
from workflows.models import MilestoneStatus, OnboardingState, Playbook, Tier

# An average month in days, for durations in months.
MONTH_DAYS = 365.25 / 12


def drop_off(rows: Sequence[Onboarding], playbook: Playbook, now: Seconds) -> list[DropOff]:
    """Each tier's milestone funnel in the playbook's plan order (accounts by current
    tier): per milestone, of the accounts that reached the previous one (the first: all)
    and for which this one is due by `now` or done, the share that did not reach it."""
    limit = playbook.targets.drop_off_flag_pct
    out = []
    for tier in Tier:
        plans = [{m.milestone_id: m for m in r.milestones} for r in rows if r.tier is tier]
        if not plans:
            continue
        previous: str | None = None
        for spec in playbook.milestones_for(tier):
            lost = eligible = 0
            for plan in plans:
                this = plan.get(spec.id)
                before = plan.get(previous) if previous else None
                if this is None or (previous and (before is None or before.done_at is None)):
                    continue
                if this.done_at is not None or this.due_at <= now:
                    eligible += 1
                    lost += this.done_at is None
            lost_share = share(lost, eligible)
            flagged = lost_share.pct is not None and lost_share.pct > limit
            out.append(DropOff(tier=tier, milestone_id=spec.id, lost=lost_share, flagged=flagged))
            previous = spec.id
    return out


def escalations(
    rows: Sequence[Onboarding], playbook: Playbook, now: Seconds
) -> list[EscalationFigure]:
    """Escalations by ladder step and trigger (rules §4, §8 "by reason"): occurrences
    (superseded ones left out), accounts, and how many firings were followed by the
    customer moving again (a milestone done) within targets.escalation_response_days.
    Most fired first."""
    window = playbook.targets.escalation_response_days * DAY_S
    fired: dict[tuple[str, str], int] = defaultdict(int)
    accounts: dict[tuple[str, str], set[str]] = defaultdict(set)
    followed: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in rows:
        done = [m.done_at for m in r.milestones if m.done_at is not None]
        for e in r.escalations:
            if e.superseded:
                continue
            key = (e.step_id, e.trigger)
            fired[key] += e.repeats
            accounts[key].add(r.account_id)
            moved = any(e.at < at <= e.at + window for at in done)
            if moved or e.at + window <= now:
                followed[key].append(moved)
    return [
        EscalationFigure(
            step_id=step,
            trigger=trigger,
            fired=n,
            accounts=len(accounts[step, trigger]),
            followed_by_progress=share(sum(followed[step, trigger]), len(followed[step, trigger])),
        )
        for (step, trigger), n in sorted(fired.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def tier_changes(rows: Sequence[Onboarding]) -> list[TierChangeFigure]:
    """Tier changes (the ladder's, `automatic`) and overrides (a person's), by
    from -> to (rules §1, §4, §8); most first."""
    counts: dict[tuple[str, Tier, Tier], int] = defaultdict(int)
    for r in rows:
        for c in r.tier_changes:
            counts[c.kind, c.from_tier, c.to_tier] += 1
    return [
        TierChangeFigure(kind=kind, from_tier=a, to_tier=b, count=n)
        for (kind, a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def acv_band(acv_usd: float, playbook: Playbook) -> str:
    """The tier rule's ACV band (rules §1): below_smb_floor, between, enterprise."""
    rule = playbook.tier_rule
    if acv_usd < rule.smb_floor_acv_usd:
        return "below_smb_floor"
    return "enterprise" if acv_usd >= rule.enterprise_acv_usd else "between"


def misclassification(rows: Sequence[Onboarding], playbook: Playbook) -> list[Misclassification]:
    """The tier rule's misclassification rate (rules §1): onboardings whose tier changed
    after the start / all, per ACV band."""
    bands: dict[str, list[bool]] = {"below_smb_floor": [], "between": [], "enterprise": []}
    for r in rows:
        bands[acv_band(r.acv_usd, playbook)].append(bool(r.tier_changes))
    return [
        Misclassification(acv_band=band, changed=share(sum(v), len(v))) for band, v in bands.items()
    ]


def at_risk(rows: Sequence[Onboarding], now: Seconds) -> list[AtRisk]:
    """Running onboardings at risk or waiting for a decision, with why (risk flags, the
    decision, overdue milestones) and the next deadline; by owner, then deadline."""
    out = []
    for r in rows:
        if not r.needs_attention:
            continue
        overdue = [
            f"{m.milestone_id} overdue since {day_text(utc(m.due_at))}"
            for m in r.milestones
            if m.done_at is None and m.status != MilestoneStatus.SKIPPED and m.due_at <= now
        ]
        decision = ["decision required: revised timeline or formal pause"]
        reasons = r.risk_flags + (decision if r.decision_required else []) + overdue
        out.append(
            AtRisk(
                owner=r.owner,
                account_id=r.account_id,
                account_name=r.account_name,
                tier=r.tier,
                state=r.state,
                health_band=r.health_band,
                reasons=reasons,
                next_deadline=None if r.next_deadline is None else utc(r.next_deadline),
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda a: (a.owner is None, a.owner or "", a.next_deadline or far))


def csm_load(rows: Sequence[Onboarding], playbook: Playbook) -> list[CsmLoad]:
    """Running onboardings per owner, high_touch vs low-touch, against a CSM's capacity
    (rules §7: 8-15 high-touch or 40-80 low-touch): over capacity above 100 % of the
    high ends. Busiest first; the unassigned (owner null) are listed, never flagged."""
    high_cap = playbook.targets.csm_high_touch_accounts[1]
    low_cap = playbook.targets.csm_low_touch_accounts[1]
    loads: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r.running:
            loads[r.owner][0 if r.tier is Tier.HIGH_TOUCH else 1] += 1
    out = []
    for owner, (high, low) in loads.items():
        pct = round(100 * (high / high_cap + low / low_cap), 1)
        over = owner is not None and pct > 100
        out.append(
            CsmLoad(owner=owner, high_touch=high, low_touch=low, load_pct=pct, over_capacity=over)
        )
    return sorted(out, key=lambda c: (-c.load_pct, c.owner or ""))


def _month_start(at: datetime, back: int = 0) -> Seconds:
    """The start of `at`'s month (UTC), `back` months earlier."""
    index = at.year * 12 + at.month - 1 - back
    return seconds(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC))


def headcount(rows: Sequence[Onboarding], playbook: Playbook, now: Seconds) -> list[Headcount]:
    """CSMs the recent start rate needs (rules §7), per segment (high_touch; low_touch =
    tech_touch and self_serve, by current tier) and in all: starts per month over the last
    targets.start_rate_months full months x the average duration in months of completed
    onboardings / the midpoint of the segment's capacity."""
    targets = playbook.targets
    months = targets.start_rate_months
    since, until = _month_start(utc(now), months), _month_start(utc(now))
    out = []
    for segment, capacity in (
        ("high_touch", targets.csm_high_touch_accounts),
        ("low_touch", targets.csm_low_touch_accounts),
    ):
        group = [r for r in rows if (r.tier is Tier.HIGH_TOUCH) == (segment == "high_touch")]
        starts = sum(since <= r.started_at < until for r in group) / months
        durations = [
            (r.finished_at - r.started_at) / (MONTH_DAYS * DAY_S)
            for r in group
            if r.state is OnboardingState.COMPLETED and r.finished_at is not None
        ]
        average = sum(durations) / len(durations) if durations else None
        midpoint = (capacity[0] + capacity[1]) / 2
        needed = None if average is None else round(starts * average / midpoint, 2)
        out.append(
            Headcount(
                segment=segment,
                starts_per_month=round(starts, 2),
                average_duration_months=None if average is None else round(average, 2),
                capacity_midpoint=midpoint,
                csms_needed=needed,
            )
        )
    parts = [h.csms_needed for h in out]
    total = None if None in parts else round(sum(p or 0 for p in parts), 2)
    out.append(
        Headcount(
            segment="all",
            starts_per_month=round(sum(h.starts_per_month for h in out), 2),
            average_duration_months=None,
            capacity_midpoint=None,
            csms_needed=total,
        )
    )
    return out


def tier_boundaries(
    rows: Sequence[Onboarding], playbook: Playbook, now: Seconds
) -> list[TierBoundary]:
    """Accounts whose ACV is within targets.tier_boundary_pct of a tier-rule threshold
    (rules §1: enterprise_acv_usd, smb_floor_acv_usd), per the tier the rule gave them:
    count, completion rate, median TTV, share that changed tier."""
    rule, pct = playbook.tier_rule, playbook.targets.tier_boundary_pct
    out = []
    for name, threshold in (
        ("enterprise_acv_usd", rule.enterprise_acv_usd),
        ("smb_floor_acv_usd", rule.smb_floor_acv_usd),
    ):
        near = [r for r in rows if abs(r.acv_usd - threshold) <= threshold * pct / 100]
        for tier in Tier:
            group = [r for r in near if r.initial_tier is tier]
            if not group:
                continue
            out.append(
                TierBoundary(
                    threshold=name,
                    threshold_usd=threshold,
                    initial_tier=tier,
                    onboardings=len(group),
                    completion=completion(group, now),
                    ttv_median_days=median(r.ttv_days for r in group),
                    changed_tier=share(sum(bool(r.tier_changes) for r in group), len(group)),
                )
            )
    return out
