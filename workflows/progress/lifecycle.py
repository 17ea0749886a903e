"""An onboarding's life outside the ladder and the pause (rules §1-§2, §6 (docs/rules.md)):
begin (tier, plan, credit of what came before tracking), progress on milestones
(reports, product events, skips), what the customer changes (success criteria,
contacts), the end of the deal (cancelled, lost), and the state it is in."""

from __future__ import annotations

from datetime import datetime

from workflows import assignment, event_mapping, rules
from workflows.formats import day_text
from workflows.models import (
    Audience,
    CancelRequest,
    ClosedWonDeal,
    ConfirmedSuccessPlan,
    ContactChange,
    DealLost,
    DealType,
    EarlyFacts,
    HealthBand,
    Milestone,
    MilestoneReport,
    MilestoneStatus,
    OnboardingProgress,
    OnboardingState,
    Playbook,
    SkipRequest,
    StaffRole,
    SuccessCriteriaRequest,
    SuccessPlanConfirmation,
    Tier,
)
from workflows.progress import measures, products, skipnet
from workflows.progress.changes import (
    AssignOwner,
    Changes,
    KeepTimes,
    Onboarding,
    milestone,
    notify,
    reject,
)
from workflows.progress.pause import shift_milestone

# ------------------------------------------------------------------ §1-§2 begin


def begin(
    deal: ClosedWonDeal,
    playbook: Playbook,
    early: EarlyFacts | None,
    now: datetime,
    keep_times: KeepTimes,
) -> tuple[Onboarding, Changes]:
    """Assign the tier, build the plan, credit milestones reached before we tracked
    (the deal's `completed_milestones`, then the facts that came before the deal)."""
    decision = rules.decide_tier(deal, playbook)
    closed = deal.close_date
    calendar = playbook.business_calendar.of(deal.time_zone, deal.country)
    plan = rules.build_plan(
        playbook, decision.tier, closed, deal.deal_type, deal.products, calendar
    )
    progress = OnboardingProgress(
        tier=decision.tier,
        tier_decision=decision,
        milestones=rules.mark_provisional(playbook, plan, decision.tier, confirmed=False),
        contacts=deal.contacts,
        success_criteria=deal.success_criteria,
        started_at=now,
        clock_start=closed,
        last_progress_at=closed,
    )
    o, out = Onboarding(deal, playbook, progress), Changes()
    out.log(now, "started", f"playbook {playbook.version} ({playbook.content_hash})")
    out.log(now, "tier_assigned", f"{decision.tier.value}: {decision.reason}")
    if deal.deal_type is not DealType.NEW_BUSINESS:
        out.log(now, "track", _track_text(deal, playbook))
    for done in deal.completed_milestones:
        m = milestone(progress, done.milestone_id)
        if m is None:
            reject(out, now, "completed_milestones", done.milestone_id, "not in this plan")
        else:
            reach(o, out, m, MilestoneStatus.DONE, min(done.at, now), "import", now)
    if early is not None:
        _apply_early(o, out, early, now, keep_times)
    out.phase = rules.current_phase(progress.milestones)
    # An automated-only track (rules §1) runs self_serve, and no one is assigned to it.
    people = not rules.automated_only(progress, playbook, deal.deal_type)
    if decision.tier is not Tier.SELF_SERVE:
        out.effects.append(AssignOwner(f"new {decision.tier.value} onboarding"))
    if people and assignment.needs_specialist(playbook, decision.tier, progress.milestones):
        reason = f"new {decision.tier.value} onboarding with implementation gates"
        out.effects.append(AssignOwner(reason, StaffRole.IMPLEMENTATION_SPECIALIST))
    notify(o, out, "welcome", Audience.CUSTOMER, "welcome")
    return o, out


def _track_text(deal: ClosedWonDeal, playbook: Playbook) -> str:
    """`win_back: adds churn_reason_addressed; one touch level up; churn reason: ...`."""
    track = playbook.track(deal.deal_type)
    parts = [f"adds {', '.join(track.add)}" if track.add else ""]
    parts += [f"skips {', '.join(track.skip)}" if track.skip else ""]
    parts += [f"{track.tier_bump} touch level(s) up" if track.tier_bump else ""]
    parts += ["automated only" if track.automated_only else ""]
    parts += [f"churn reason: {deal.churn_reason}" if deal.churn_reason else ""]
    return f"{deal.deal_type.value}: {'; '.join(p for p in parts if p) or 'as new business'}"


def _apply_early(
    o: Onboarding, out: Changes, early: EarlyFacts, now: datetime, keep_times: KeepTimes
) -> None:
    """Facts that arrived before the deal count as if they had come after it."""
    p = o.progress
    p.seen_event_ids = early.seen_event_ids
    for name, count in early.event_counts.items():
        p.event_counts[name] = p.event_counts.get(name, 0) + count
    p.event_times = early.event_times
    for name, times in early.event_times.items():
        for at in times:  # the earliest, as kept for the milestones
            measures.note_activity(p, o.playbook.measures, name, at, o.calendar.time_zone)
    p.rejected[:0] = early.rejected
    if early.event_counts:
        total = sum(early.event_counts.values())
        out.log(now, "early_events", f"{total} product events from before the deal")
    credit_observed_events(o, out, now, keep_times)
    for report in early.reports:
        record_report(o, out, report, now)


# ------------------------------------------------------------------ §2 milestones


def reach(
    o: Onboarding,
    out: Changes,
    m: Milestone,
    status: MilestoneStatus,
    at: datetime,
    by: str,
    now: datetime,
) -> None:
    """Record progress on a milestone, in whatever order it arrives: it is movement (the
    stall clock restarts at `at`) and settles a pending stall decision. Reached during a
    pause, its deadline first moves by the time paused before `at` (rules §5
    (docs/rules.md)), as every open one does at the resume."""
    p = o.progress
    if not m.is_open or (status is MilestoneStatus.IN_PROGRESS and m.started_at):
        return
    done = status is MilestoneStatus.DONE
    if done and p.pause is not None and at > p.pause.since and o.pause_stops_scoring:
        shift_milestone(m, p.pause.since, at, o.calendar)  # while it is still open
    m.started_at = m.started_at or at
    m.status = status
    if done:
        m.done_at = at
        out.log(now, "milestone_reached", f"{m.title} ({day_text(at)})", by)
        spec = o.playbook.milestone(m.spec_id)
        if spec is not None and spec.on_done:
            notify(o, out, f"reached-{m.id}", Audience.CUSTOMER, spec.on_done, about=m)
    else:
        out.log(now, "milestone_started", m.title, by)
    p.last_progress_at = max(p.last_progress_at, at)
    p.progress_epoch += 1
    p.decision_required = False


def record_report(o: Onboarding, out: Changes, report: MilestoneReport, now: datetime) -> None:
    """A `milestone_reached` report (done or in progress), at its own time (never later
    than now); an unknown milestone is rejected."""
    m = milestone(o.progress, report.milestone_id)
    if m is None:
        known = ", ".join(x.id for x in o.progress.milestones)
        reason = f"unknown milestone (plan: {known})"
        reject(out, now, "milestone_reached", report.milestone_id, reason)
        return
    status = MilestoneStatus(report.status)
    reach(o, out, m, status, min(report.at or now, now), report.reported_by, now)


def credit_observed_events(
    o: Onboarding, out: Changes, now: datetime, keep_times: KeepTimes
) -> None:
    """Milestones whose completing product events have all been seen are reached, at
    the time the last event needed happened: not before closed-won, not after now. A
    product's own gate counts only the events that product sent (rules §6.2)."""
    p = o.progress
    for m in p.milestones:
        spec = o.playbook.milestone(m.spec_id)
        rule = spec.completed_by if spec else None
        if not (m.is_open and rule):
            continue
        counts, times = p.event_counts, p.event_times
        if m.product is not None:
            counts, times = products.of_product(p, m.product)
        if not event_mapping.reached(rule, counts):
            continue
        at = now
        if keep_times():
            happened = event_mapping.reached_at(rule, times) or now
            at = min(max(happened, o.deal.close_date), now)
        names = ", ".join(n for n in rule.events if counts.get(n))
        reach(o, out, m, MilestoneStatus.DONE, at, f"product events ({names})", now)


def skip(o: Onboarding, req: SkipRequest, now: datetime) -> Changes:
    """The customer refuses a step: recorded with a risk flag (rules §6.4 (docs/rules.md));
    it is movement. The playbook's safety net, if it has one, plans its check of the
    skip (`skipnet.plan`)."""
    p, out = o.progress, Changes()
    m = milestone(p, req.milestone_id)
    assert m is not None, "validated by the update"
    m.status, m.skip_reason = MilestoneStatus.SKIPPED, req.reason
    p.risk_flags.append(f"{day_text(now)}: skipped {m.id}: {req.reason}")
    p.progress_epoch += 1
    p.last_progress_at = now
    out.log(now, "milestone_skipped", f"{m.title}: {req.reason}", req.by)
    skipnet.plan(o, m, now)
    return out


# ------------------------------------------------------------------ §6 ending, state


def set_success_criteria(
    p: OnboardingProgress, req: SuccessCriteriaRequest, now: datetime
) -> Changes:
    """The customer's own success criteria replace the ones known so far."""
    p.success_criteria = list(req.criteria)
    out = Changes()
    out.log(now, "success_criteria", "; ".join(req.criteria), req.by)
    return out


def change_contact(p: OnboardingProgress, req: ContactChange, now: datetime) -> Changes:
    """A new contact for a role (e.g. the champion left), replacing the old one."""
    contacts = [c for c in p.contacts if c.role is not req.contact.role]
    p.contacts = [*contacts, req.contact]
    detail = f"{req.contact.role.value}: {req.contact.name} <{req.contact.email}>"
    out = Changes()
    out.log(now, "contact_changed", f"{detail} {req.reason}".strip(), req.by)
    return out


def cancel(p: OnboardingProgress, req: CancelRequest, now: datetime) -> Changes:
    """The deal churned or was cancelled: the onboarding ends (no more messages)."""
    p.cancelled = req
    p.finished_at = now
    out = Changes()
    out.log(now, "cancelled", req.reason, req.by)
    return out


def deal_lost(p: OnboardingProgress, lost: DealLost, now: datetime) -> Changes:
    """The CRM deal was lost after the onboarding started; `lost.action` is the rule
    (`ONBOARDING_DEAL_LOST`): `cancel` ends it as `cancel` does, `flag` raises a risk
    flag and requires a decision (as a stall does). Audited either way."""
    by = f"{lost.source} deal {lost.deal_id}"
    reason = f"deal lost: {lost.reason}"
    if lost.action == "cancel":
        return cancel(p, CancelRequest(by=by, reason=reason), now)
    p.risk_flags.append(f"{day_text(now)}: {reason}")
    p.decision_required = True
    out = Changes()
    out.log(now, "deal_lost", f"{reason}; decision required: cancel or resume", by)
    return out


def state(o: Onboarding, now: datetime) -> OnboardingState:
    """Cancelled, completed, paused; at risk when a decision is pending or health is not
    healthy (rules §2 (docs/rules.md)); otherwise active."""
    p = o.progress
    if p.cancelled is not None:
        return OnboardingState.CANCELLED
    if p.finished_at is not None:
        return OnboardingState.COMPLETED
    if p.pause is not None:
        return OnboardingState.PAUSED
    if p.decision_required or o.health(now).band is not HealthBand.HEALTHY:
        return OnboardingState.AT_RISK
    return OnboardingState.ACTIVE


# ------------------------------------------------------------------ §2 the success plan


def confirm_success_plan(
    p: OnboardingProgress, req: SuccessPlanConfirmation, now: datetime
) -> Changes:
    """The customer confirms the success plan (rules §2 (docs/rules.md)): its criteria
    replace the ones known so far, and the remaining plan is re-based on its target
    dates; no deadline is provisional from then on."""
    p.success_criteria = list(req.criteria)
    p.milestones = rules.rebase_on_success_plan(p.milestones, req.target_dates, now)
    p.success_plan = ConfirmedSuccessPlan(at=now, by=req.by, target_dates=dict(req.target_dates))
    dates = ", ".join(f"{i} {day_text(d)}" for i, d in req.target_dates.items())
    out = Changes()
    detail = f"{'; '.join(req.criteria)}; target dates: {dates or 'as proposed'}"
    out.log(now, "success_plan_confirmed", detail, req.by)
    return out
