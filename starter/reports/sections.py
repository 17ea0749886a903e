"""The portfolio-wide sections of the report (rules §8, §1, §4, §7, docs/rules.md):
milestone drop-off, escalations and what followed them, tier changes and the tier rule's
misclassification, the at-risk list, CSM load, headcount, the tier-boundary review, and
group programs' attendees against non-attendees.
Pure functions of the rows (with their verdicts where a rate needs them), the playbook and
the report time `now` (POSIX seconds).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from starter.reports.figures import Tally, Verdict, percentile, share
from starter.reports.model import (
    AcvBand,
    AtRisk,
    CsmLoad,
    CsmRole,
    DropOff,
    EscalationFigure,
    Headcount,
    Misclassification,
    ProgramFigure,
    ProgramGroup,
    Role,
    RoleFigure,
    Share,
    Threshold,
    TierBoundary,
    TierChangeFigure,
    TierChangeKind,
)
from starter.reports.rows import DAY_S, LadderStep, Onboarding, Seconds, seconds, utc
from workflows.formats import day_text
from workflows.models import OnboardingState, Playbook, Tier
from workflows.models.playbook import Range

# An average month in days, for durations in months.
MONTH_DAYS = 365.25 / 12


def drop_off(rows: Sequence[Onboarding], playbook: Playbook) -> list[DropOff]:
    """Each tier's milestone funnel in the playbook's plan order (accounts by current
    tier; a milestone is passed when done or skipped): per milestone, of the accounts whose
    plan has it and that passed the previous one (the first: all), those for which it is
    passed or due by the report time; lost, those for which it is due and not passed
    (late or gone). Flagged above targets.drop_off_flag_pct (rules §8)."""
    limit = playbook.targets.drop_off_flag_pct
    bit = {m.id: 1 << i for i, m in enumerate(playbook.milestones)}
    # Accounts with the same milestones in the same states count alike: count them once.
    kinds = Counter((r.tier, r.planned, r.passed, r.due_now) for r in rows)
    out = []
    for tier in Tier:
        counts = [
            (n, planned, passed, due) for (t, planned, passed, due), n in kinds.items() if t is tier
        ]
        if not counts:
            continue
        before = 0  # the previous milestone's bit; 0 for the first
        for spec in playbook.milestones_for(tier):
            this = bit[spec.id]
            eligible = lost = 0
            for n, planned, passed, due in counts:
                if not planned & this or (before and not passed & before):
                    continue
                if passed & this:
                    eligible += n
                elif due & this:
                    eligible += n
                    lost += n
            lost_share = share(lost, eligible)
            flagged = lost_share.pct is not None and lost_share.pct > limit
            out.append(DropOff(tier=tier, milestone_id=spec.id, lost=lost_share, flagged=flagged))
            before = this
    return out


def escalations(ladder: Sequence[LadderStep]) -> list[EscalationFigure]:
    """Escalations by tier, ladder step and trigger (rules §4; §8 "by reason"), from
    `rows.LadderStep`: firings, accounts, and the share of firings the customer answered
    by moving again (a milestone done within targets.escalation_response_days). In tier
    order (high_touch first), most fired first."""
    return [
        EscalationFigure(
            tier=s.tier,
            step_id=s.step_id,
            trigger=s.trigger,
            fired=s.fired,
            accounts=s.accounts,
            followed_by_progress=share(s.answered, s.counted),
        )
        for s in sorted(ladder, key=lambda s: (-s.tier.rank, -s.fired, s.step_id, s.trigger))
    ]


def tier_changes(rows: Sequence[Onboarding]) -> list[TierChangeFigure]:
    """Tier changes (`automatic`: the ladder's) and overrides (a person's), by
    from -> to (rules §1, §4, §8); most first."""
    counts: dict[tuple[TierChangeKind, Tier, Tier], int] = defaultdict(int)
    for r in rows:
        for c in r.tier_changes:
            counts[c.kind, c.from_tier, c.to_tier] += 1
    return [
        TierChangeFigure(kind=kind, from_tier=a, to_tier=b, count=n)
        for (kind, a, b), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def acv_band(acv_usd: float, playbook: Playbook) -> AcvBand:
    """The tier rule's ACV band (rules §1): under the SMB floor, from the floor up to (not
    including) the enterprise line, from the enterprise line up."""
    rule = playbook.tier_rule
    if acv_usd < rule.smb_floor_acv_usd:
        return "below_smb_floor"
    return "enterprise" if acv_usd >= rule.enterprise_acv_usd else "smb_floor_to_enterprise"


def misclassification(rows: Sequence[Onboarding], playbook: Playbook) -> list[Misclassification]:
    """The tier rule's misclassification rate (rules §1) per ACV band: onboardings whose
    tier changed after the start (by the ladder or an override) / all in the band, and
    those overridden by a person."""
    bands: dict[AcvBand, list[Onboarding]] = {
        "below_smb_floor": [],
        "smb_floor_to_enterprise": [],
        "enterprise": [],
    }
    for r in rows:
        bands[acv_band(r.acv_usd, playbook)].append(r)
    return [
        Misclassification(
            acv_band=band,
            changed=share(sum(bool(r.tier_changes) for r in group), len(group)),
            overridden=share(
                sum(any(c.kind == "override" for c in r.tier_changes) for r in group), len(group)
            ),
        )
        for band, group in bands.items()
    ]


def at_risk(rows: Sequence[Onboarding]) -> list[AtRisk]:
    """Running onboardings at risk or waiting for a decision, with why (risk flags, the
    decision, the milestones overdue and since when) and the next deadline; by owner
    (unassigned last), then next deadline (none last)."""
    out = []
    for r in rows:
        if not r.needs_attention:
            continue
        reasons = list(r.risk_flags)
        if r.decision_required:
            reasons.append("decision required: revised timeline or formal pause")
        if r.overdue:
            names = ", ".join(m.milestone_id for m in r.overdue)
            reasons.append(f"overdue since {day_text(utc(r.overdue[0].due_at))}: {names}")
        out.append(
            AtRisk(
                owner=r.owner,
                account_id=r.account_id,
                account_name=r.account_name,
                tier=r.tier,
                state=r.state,
                health_band=r.health_band,
                reasons=reasons,
                next_deadline=r.next_deadline,
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(out, key=lambda a: (a.owner is None, a.owner or "", a.next_deadline or far))


def csm_role(r: Onboarding) -> CsmRole | None:
    """Which CSM load an onboarding is (rules §7): high_touch ones high-touch; tech_touch
    ones (a CSM is assigned at the start) and any other with an owner low-touch; a
    self_serve one nobody owns none."""
    if r.tier is Tier.HIGH_TOUCH:
        return "csm_high_touch"
    return "csm_low_touch" if r.tier is Tier.TECH_TOUCH or r.owner is not None else None


def csm_load(rows: Sequence[Onboarding], playbook: Playbook) -> list[CsmLoad]:
    """Running onboardings per owner, high-touch and low-touch (`csm_role`), against a
    CSM's capacity (rules §7: 8-15 high-touch or 40-80 low-touch): load_pct = 100 x
    (high / 15 + low / 80), over capacity above 100. Busiest first; the unassigned
    (owner null) are listed, never flagged."""
    high_cap = playbook.targets.csm_high_touch_accounts[1]
    low_cap = playbook.targets.csm_low_touch_accounts[1]
    loads: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        role = csm_role(r) if r.running else None
        if role is not None:
            loads[r.owner][0 if role == "csm_high_touch" else 1] += 1
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


def _headcount(
    role: Role,
    capacity: Range,
    active: int,
    starts: float,
    durations: list[float],
) -> Headcount:
    midpoint = (capacity[0] + capacity[1]) / 2
    average = sum(durations) / len(durations) / (MONTH_DAYS * DAY_S) if durations else None
    return Headcount(
        role=role,
        capacity=capacity,
        active=active,
        needed_now=round(active / midpoint, 2),
        starts_per_month=round(starts, 2),
        average_duration_months=None if average is None else round(average, 2),
        needed_for_start_rate=None if average is None else round(starts * average / midpoint, 2),
    )


def headcount(rows: Sequence[Onboarding], playbook: Playbook, now: Seconds) -> list[Headcount]:
    """People each role needs (rules §7), at the midpoint of its capacity: now, for the
    running onboardings it carries, and for the recent start rate (starts per month over
    the last targets.start_rate_months full months x the average months it carries one).

    - CSMs, high-touch and low-touch (`csm_role`): they carry an onboarding from its start
      to its end; the duration is that of the completed ones.
    - Implementation specialists: they carry an onboarding while a milestone the playbook
      gives them (owner `implementation_specialist`) is open; the duration runs from the
      start to the last of those milestones done, over the onboardings that passed them.
      Only the onboardings that have a specialist or should have one (a tier of
      `[capacity].specialist_tiers`; none without `[capacity]`) count; when none of them
      has one, the row's note says `no specialists assigned`.
    """
    targets = playbook.targets
    months = targets.start_rate_months
    since, until = _month_start(utc(now), months), _month_start(utc(now))
    csms: tuple[tuple[CsmRole, Range], ...] = (
        ("csm_high_touch", targets.csm_high_touch_accounts),
        ("csm_low_touch", targets.csm_low_touch_accounts),
    )
    out = []
    for role, capacity in csms:
        group = [r for r in rows if csm_role(r) == role]
        out.append(
            _headcount(
                role,
                capacity,
                active=sum(r.running for r in group),
                starts=sum(since <= r.started_at < until for r in group) / months,
                durations=[
                    r.finished_at - r.started_at
                    for r in group
                    if r.state is OnboardingState.COMPLETED and r.finished_at is not None
                ],
            )
        )
    tiers = playbook.capacity.specialist_tiers if playbook.capacity is not None else []
    carried = [
        r for r in rows if r.specialist_gates and (r.specialist is not None or r.tier in tiers)
    ]
    durations = [
        r.specialist_done_at - r.started_at
        for r in carried
        if not r.specialist_open and r.specialist_done_at is not None
    ]
    active = sum(r.running and r.specialist_open > 0 for r in carried)
    started = sum(since <= r.started_at < until for r in carried)
    specialists = _headcount(
        "implementation_specialist",
        targets.specialist_accounts,
        active,
        started / months,
        durations,
    )
    if not any(r.specialist is not None for r in carried):
        specialists.note = "no specialists assigned"
    out.append(specialists)
    return out


def tier_boundaries(
    rows: Sequence[Onboarding], verdicts: Sequence[Verdict], playbook: Playbook
) -> list[TierBoundary]:
    """Accounts whose ACV is within targets.tier_boundary_pct of a tier-rule threshold
    (rules §1: enterprise_acv_usd, smb_floor_acv_usd), per the tier the rule gave them:
    count, completion and activation rates and median TTV (as in the group figures), and
    the share whose tier changed after the start. `verdicts` are the rows' own."""
    rule, pct = playbook.tier_rule, playbook.targets.tier_boundary_pct
    thresholds: tuple[tuple[Threshold, float], ...] = (
        ("enterprise_acv_usd", rule.enterprise_acv_usd),
        ("smb_floor_acv_usd", rule.smb_floor_acv_usd),
    )
    out = []
    for name, threshold in thresholds:
        near: dict[Tier, Tally] = defaultdict(Tally)
        for r, v in zip(rows, verdicts, strict=True):
            if abs(r.acv_usd - threshold) <= threshold * pct / 100:
                near[r.initial_tier].add(r, v)
        for tier in Tier:
            if (tally := near.get(tier)) is None:
                continue
            out.append(
                TierBoundary(
                    threshold=name,
                    threshold_usd=threshold,
                    initial_tier=tier,
                    onboardings=tally.onboardings,
                    completion=share(tally.completed, tally.completion_judged),
                    activation=share(tally.activated, tally.activation_judged),
                    ttv_median_days=percentile(tally.ttv, 0.5),
                    changed_tier=share(tally.tier_changed, tally.onboardings),
                )
            )
    return out


def _program_group(tally: Tally) -> ProgramGroup:
    return ProgramGroup(
        onboardings=tally.onboardings,
        activation=share(tally.activated, tally.activation_judged),
        ttv_median_days=percentile(tally.ttv, 0.5),
    )


def programs(
    rows: Sequence[Onboarding], verdicts: Sequence[Verdict], playbook: Playbook
) -> list[ProgramFigure]:
    """Each group program of the playbook, then any other the records name (rules §1,
    *Group programs*): of the onboardings it invited, those that attended it against
    those that did not, each with its activation rate (first value within
    targets.activation_window_days, of those closed that long ago) and median TTV, the
    comparison the seeds ask for. `verdicts` are the rows' own."""
    named = list(playbook.programs)
    seen = {p for r in rows for p in r.invited | r.attended}
    out = []
    for key in named + sorted(seen - set(named)):
        went, missed = Tally(), Tally()
        uninvited = 0
        for r, v in zip(rows, verdicts, strict=True):
            if key in r.invited:
                (went if key in r.attended else missed).add(r, v)
            elif key in r.attended:
                uninvited += 1
        spec = playbook.programs.get(key)
        out.append(
            ProgramFigure(
                program=key,
                title=spec.title if spec else key,
                invited=went.onboardings + missed.onboardings,
                attended=share(went.onboardings, went.onboardings + missed.onboardings),
                attendees=_program_group(went),
                non_attendees=_program_group(missed),
                attended_uninvited=uninvited,
            )
        )
    return out


def _within_window(r: Onboarding, at: Seconds | None, window_days: int) -> bool:
    return at is not None and at - r.closed_won_at <= window_days * DAY_S


def roles(rows: Sequence[Onboarding], playbook: Playbook, now: Seconds) -> list[RoleFigure]:
    """Each role of the playbook's `[activation]`, then any other the records name (rules
    §7, *Activation by role*): of the onboardings measuring the role and closed-won at
    least targets.activation_window_days ago, the share whose role was activated within
    that window; and the median days from closed-won to the role's activation."""
    window = playbook.targets.activation_window_days
    spec = playbook.activation
    named = list(spec.roles) if spec else []
    seen = {role for r in rows for role in r.roles}
    out = []
    for role in named + sorted(seen - set(named)):
        judged = activated = 0
        days: list[float] = []
        for r in rows:
            if role not in r.roles:
                continue
            at = r.roles[role]
            if at is not None:
                days.append((at - r.closed_won_at) / DAY_S)
            if r.closed_won_at + window * DAY_S <= now:
                judged += 1
                activated += _within_window(r, at, window)
        out.append(
            RoleFigure(
                role=role,
                title=spec.title(role) if spec and role in spec.roles else role,
                activation=share(activated, judged),
                activation_median_days=percentile(days, 0.5),
                activated=len(days),
            )
        )
    return out


def first_value_by_roles(
    rows: Sequence[Onboarding], playbook: Playbook, now: Seconds
) -> Share | None:
    """First value by roles (`[activation].first_value_when`, rules §7) within
    targets.activation_window_days, of the onboardings measuring roles and closed-won at
    least that long ago; None when no onboarding measures roles."""
    window = playbook.targets.activation_window_days
    measured = [r for r in rows if r.roles]
    if not measured:
        return None
    judged = [r for r in measured if r.closed_won_at + window * DAY_S <= now]
    reached = sum(_within_window(r, r.first_value_by_roles_at, window) for r in judged)
    return share(reached, len(judged))
