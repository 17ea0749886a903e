"""How an onboarding's state changes (rules §2-§6 (docs/rules.md)), as plain functions.

Each function changes `OnboardingProgress` in place and returns the rest of what must
happen as data (`Changes`): audit entries to record, effects to run in order (a
notification to send, an owner to assign), messages rejected, ladder steps fired. The
workflow (`workflows/onboarding.py`) applies them; nothing here reads the clock, does
I/O or calls the SDK. `now` is always an argument, and whether product events credit
a milestone when they happened (a `workflow.patched` rule) is asked through
`keep_times`, only when a milestone is credited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from workflows import event_mapping, rules

# `day`: a date as the messages and audit show it (workflows/onboarding.py says `rule.day`).
from workflows.formats import day_text as day
from workflows.models import (
    Action,
    Audience,
    AuditEntry,
    CancelRequest,
    ClosedWonDeal,
    ContactRole,
    EarlyFacts,
    Escalation,
    HealthBand,
    Milestone,
    MilestoneReport,
    MilestoneStatus,
    OnboardingProgress,
    OnboardingState,
    Phase,
    Playbook,
    RejectedMessage,
    ResumeRequest,
    SkipRequest,
    Tier,
    TierChange,
    Trigger,
)

DAY = timedelta(days=1)
KeepTimes = Callable[[], bool]


@dataclass
class Notify:
    """Send `template_id` to `audience`; `trigger` makes the idempotency key."""

    trigger: str
    audience: Audience
    template_id: str
    variables: dict[str, str]


@dataclass
class AssignOwner:
    """Assign a CSM (rules §1 (docs/rules.md)), for `reason`."""

    reason: str


Effect = Notify | AssignOwner


@dataclass
class Changes:
    """What a state change asks of the workflow, in the order it happened."""

    audit: list[AuditEntry] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    rejected: list[RejectedMessage] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)  # ladder step keys, for the log
    phase: Phase | None = None  # the phase after `advance`

    def log(self, at: datetime, kind: str, detail: str, by: str | None = None) -> None:
        self.audit.append(AuditEntry(at=at, kind=kind, detail=detail, by=by))


@dataclass(frozen=True)
class Onboarding:
    """The state and what it is read with: the deal and its pinned playbook."""

    deal: ClosedWonDeal
    playbook: Playbook
    progress: OnboardingProgress


def milestone(p: OnboardingProgress, milestone_id: str | None) -> Milestone | None:
    return next((m for m in p.milestones if m.id == milestone_id), None)


def notify(
    o: Onboarding,
    out: Changes,
    trigger: str,
    audience: Audience,
    template_id: str,
    variables: dict[str, str] | None = None,
    about: Milestone | None = None,
) -> None:
    """A notification, its variables taken from the state now (`about`: the milestone it
    names, by default the next one due)."""
    p = o.progress
    about = about or rules.next_milestone(p.milestones)
    base = {
        "account_name": o.deal.account_name,
        "account_id": o.deal.account_id,
        "tier": p.tier.value,
        "phase": phase.value if (phase := rules.current_phase(p.milestones)) else "handoff",
        "milestone": about.title if about else "-",
        "due": day(about.due_at) if about else "-",
        "days": "0",
        "reason": "",
    }
    out.effects.append(Notify(trigger, audience, template_id, base | (variables or {})))


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
    decision = rules.assign_tier(deal, playbook.tier_rule)
    closed = deal.close_date
    progress = OnboardingProgress(
        tier=decision.tier,
        tier_decision=decision,
        milestones=rules.build_plan(playbook, decision.tier, closed),
        contacts=deal.contacts,
        success_criteria=deal.success_criteria,
        started_at=now,
        clock_start=closed,
        last_progress_at=closed,
    )
    o, out = Onboarding(deal, playbook, progress), Changes()
    out.log(now, "started", f"playbook {playbook.version} ({playbook.content_hash})")
    out.log(now, "tier_assigned", f"{decision.tier.value}: {decision.reason}")
    for done in deal.completed_milestones:
        m = milestone(progress, done.milestone_id)
        if m is None:
            reject(out, now, "completed_milestones", done.milestone_id, "not in this plan")
        else:
            reach(o, out, m, MilestoneStatus.DONE, min(done.at, now), "import", now)
    if early is not None:
        _apply_early(o, out, early, now, keep_times)
    out.phase = rules.current_phase(progress.milestones)
    if decision.tier is not Tier.SELF_SERVE:
        out.effects.append(AssignOwner(f"new {decision.tier.value} onboarding"))
    notify(o, out, "welcome", Audience.CUSTOMER, "welcome")
    return o, out


def _apply_early(
    o: Onboarding, out: Changes, early: EarlyFacts, now: datetime, keep_times: KeepTimes
) -> None:
    """Facts that arrived before the deal count as if they had come after it."""
    p = o.progress
    p.seen_event_ids = early.seen_event_ids
    for name, count in early.event_counts.items():
        p.event_counts[name] = p.event_counts.get(name, 0) + count
    p.event_times = early.event_times
    p.rejected[:0] = early.rejected
    if early.event_counts:
        total = sum(early.event_counts.values())
        out.log(now, "early_events", f"{total} product events from before the deal")
    credit_observed_events(o, out, now, keep_times)
    for report in early.reports:
        record_report(o, out, report, now)


def reject(out: Changes, at: datetime, kind: str, ref: str, reason: str) -> None:
    out.rejected.append(RejectedMessage(at=at, kind=kind, ref=ref, reason=reason))


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
    stall clock restarts at `at`) and settles a pending stall decision."""
    p = o.progress
    if not m.is_open or (status is MilestoneStatus.IN_PROGRESS and m.started_at):
        return
    m.started_at = m.started_at or at
    m.status = status
    if status is MilestoneStatus.DONE:
        m.done_at = at
        out.log(now, "milestone_reached", f"{m.title} ({day(at)})", by)
        spec = o.playbook.milestone(m.id)
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
    the time the last event needed happened: not before closed-won, not after now."""
    p = o.progress
    for m in p.milestones:
        spec = o.playbook.milestone(m.id)
        rule = spec.completed_by if spec else None
        if not (m.is_open and rule and event_mapping.reached(rule, p.event_counts)):
            continue
        at = now
        if keep_times():
            happened = event_mapping.reached_at(rule, p.event_times) or now
            at = min(max(happened, o.deal.close_date), now)
        names = ", ".join(n for n in rule.events if p.event_counts.get(n))
        reach(o, out, m, MilestoneStatus.DONE, at, f"product events ({names})", now)


def skip(o: Onboarding, req: SkipRequest, now: datetime) -> Changes:
    """The customer refuses a step: recorded with a risk flag (rules §6.4 (docs/rules.md));
    it is movement."""
    p, out = o.progress, Changes()
    m = milestone(p, req.milestone_id)
    assert m is not None, "validated by the update"
    m.status, m.skip_reason = MilestoneStatus.SKIPPED, req.reason
    p.risk_flags.append(f"{day(now)}: skipped {m.id}: {req.reason}")
    p.progress_epoch += 1
    p.last_progress_at = now
    out.log(now, "milestone_skipped", f"{m.title}: {req.reason}", req.by)
    return out


# ------------------------------------------------------------------ §3-§4 ladder and tier


def advance(o: Onboarding, phase: Phase | None, now: datetime, keep_times: KeepTimes) -> Changes:
    """Everything that has come due by `now`, in the order it came due: the pause's own
    duties, the ladder's steps (one passed over repeatedly is recorded once, not fired),
    the next phase (`phase`: the one last seen), and the handoff when none is left."""
    p, out = o.progress, Changes(phase=phase)
    if p.finished_at is not None:
        return out
    if p.pause is not None:
        _paused_duties(o, out, now)
    while due := [s for s in rules.ladder_steps(p, o.playbook) if s.at <= now]:
        step = due[0]
        if stale := rules.passed_over(step, now):
            _record_step(p, step, now, superseded=True, repeats=stale)
        else:
            _escalate(o, out, step, now, keep_times)
    current = rules.current_phase(p.milestones)
    if current != out.phase:
        out.phase = current
        if current is not None:
            out.log(now, "phase_started", current.value)
    if current is None:
        _finish(o, out, now)
    return out


def _finish(o: Onboarding, out: Changes, now: datetime) -> None:
    p = o.progress
    p.finished_at = now
    ttv = rules.time_to_value(o.playbook, p.tier, p.milestones, o.deal.close_date, p.started_at)
    health = rules.health_score(p.milestones, now, o.playbook.health)
    out.log(
        now,
        "completed",
        f"handoff done; health {health.score}, TTV {ttv.total_days} days, "
        f"completion {rules.completion_pct(p.milestones)}%",
    )
    variables = {"days": str(ttv.total_days if ttv.total_days is not None else "n/a")}
    notify(o, out, "handoff", Audience.CUSTOMER, "handoff_complete", variables)
    if p.owner:
        notify(o, out, "handoff", Audience.CSM, "handoff_complete", variables)


def _escalate(
    o: Onboarding, out: Changes, due: rules.DueStep, now: datetime, keep_times: KeepTimes
) -> None:
    p, step = o.progress, due.step
    _record_step(p, due, now, superseded=False)
    subject = milestone(p, due.milestone_id) if due.milestone_id else None
    what = f"{step.when.value} ({subject.title})" if subject else step.when.value
    out.log(now, "escalation", f"{p.tier.value}.{step.id}: {what}")
    out.fired.append(due.key)
    days = str(step.days) if step.when is not Trigger.MILESTONE_OVERDUE else "0"
    for action in step.actions:
        _act(o, out, action, due, days, now, keep_times)


def _act(
    o: Onboarding,
    out: Changes,
    action: Action,
    due: rules.DueStep,
    days: str,
    now: datetime,
    keep_times: KeepTimes,
) -> None:
    p = o.progress
    if action.notify is not None and action.template is not None:
        about = milestone(p, due.milestone_id) if due.milestone_id else None
        notify(o, out, due.key, action.notify, action.template, {"days": days}, about)
    elif action.change_tier is not None and action.change_tier is not p.tier:
        reason = f"ladder {due.step.id}: {due.step.when.value} after {days} days"
        _change_tier(
            o, out, action.change_tier, "automatic", "escalation ladder", reason, now, keep_times
        )
    elif action.require_decision:
        p.decision_required = True
        out.log(now, "decision_required", "stalled: resume with a revised timeline, or pause")
    elif action.flag is not None:
        suffix = f" ({due.milestone_id})" if due.milestone_id else ""
        p.risk_flags.append(f"{day(now)}: {action.flag}{suffix}")
    elif action.adopt_fallback_criteria:
        p.success_criteria = [o.playbook.fallback_success_criterion]
        out.log(now, "success_criteria", f"fallback adopted: {p.success_criteria[0]}")


def change_tier(
    o: Onboarding,
    tier: Tier,
    kind: Literal["automatic", "override"],
    by: str,
    reason: str,
    now: datetime,
    keep_times: KeepTimes,
) -> Changes:
    """A designed transition (rules §4 (docs/rules.md)): re-plan what is left, keep
    earned credit; the new ladder's passed steps are recorded, not fired."""
    out = Changes()
    _change_tier(o, out, tier, kind, by, reason, now, keep_times)
    return out


def _change_tier(
    o: Onboarding,
    out: Changes,
    tier: Tier,
    kind: Literal["automatic", "override"],
    by: str,
    reason: str,
    now: datetime,
    keep_times: KeepTimes,
) -> None:
    p = o.progress
    old = p.tier
    p.tier_changes.append(
        TierChange(at=now, from_tier=old, to_tier=tier, kind=kind, by=by, reason=reason)
    )
    p.tier = tier
    p.milestones = rules.replan(o.playbook, p.milestones, tier, now)
    credit_observed_events(o, out, now, keep_times)
    out.log(now, "tier_changed", f"{old.value} -> {tier.value} ({kind}): {reason}", by)
    # A tier change is movement: the new ladder's stall clock starts now, and its
    # steps whose time had already passed are recorded, not fired.
    p.last_progress_at = now
    p.progress_epoch += 1
    while passed := [s for s in rules.ladder_steps(p, o.playbook) if s.at <= now]:
        for due in passed:
            _record_step(p, due, now, superseded=True)
    if tier.rank > old.rank and p.owner is None:
        out.effects.append(AssignOwner(f"upgraded to {tier.value}"))
    trigger = f"tier-change-{len(p.tier_changes)}"
    notify(o, out, trigger, Audience.CUSTOMER, "tier_changed", {"reason": reason})


def _record_step(
    p: OnboardingProgress, due: rules.DueStep, now: datetime, superseded: bool, repeats: int = 1
) -> None:
    """Mark a ladder step done (so it never runs twice) and keep it for the report;
    `repeats` occurrences of a recurring step from `due` on are recorded as one."""
    p.fired.append(due.later(repeats - 1).key)
    p.escalations.append(
        Escalation(
            at=now,
            due_at=due.at,
            repeats=repeats,
            tier=p.tier,
            step_id=due.step.id,
            trigger=due.step.when,
            milestone_id=due.milestone_id,
            actions=[] if superseded else [a.describe() for a in due.step.actions],
            superseded=superseded,
        )
    )


# ------------------------------------------------------------------ §5 pause


def _paused_duties(o: Onboarding, out: Changes, now: datetime) -> None:
    """A scheduled resume comes due, or the owner is reminded every
    `pause_reminder_days` of an open-ended pause."""
    pause = o.progress.pause
    assert pause is not None
    if pause.resume_on is not None:
        if now >= pause.resume_on:
            out.audit += resume(o, ResumeRequest(by="schedule", reason="scheduled resume"), now)
        return
    last = pause.last_reminder_at or pause.since
    if now >= last + o.playbook.pause_reminder_days * DAY:
        pause.last_reminder_at = now
        variables = {"due": day(pause.since), "reason": pause.reason}
        trigger = f"pause-reminder@{now.isoformat()}"
        notify(o, out, trigger, Audience.CSM, "pause_reminder", variables)


def shift_for_pause(p: OnboardingProgress, now: datetime) -> timedelta:
    """End the pause: the SLA clock, the stall clock (unless progress came during the
    pause) and every open milestone's dates move by the time paused, which is returned."""
    assert p.pause is not None
    paused_for = now - p.pause.since
    p.paused_days_total += paused_for / DAY
    p.clock_start += paused_for
    if p.last_progress_at <= p.pause.since:
        p.last_progress_at += paused_for
    for m in p.milestones:
        if m.is_open:
            m.starts_at += paused_for
            m.due_at += paused_for
    p.pause = None
    return paused_for


def resume(o: Onboarding, req: ResumeRequest, now: datetime) -> list[AuditEntry]:
    """Resume a pause (deadlines shift by the paused time), settle a stall decision
    (movement: the stall clock restarts), and apply `req.revised_due`."""
    p, out = o.progress, Changes()
    if p.pause is not None:
        paused_for = shift_for_pause(p, now)
        out.log(now, "resumed", f"after {paused_for / DAY:.1f} days paused", req.by)
    if p.decision_required:
        p.decision_required = False
        p.last_progress_at = now
        p.progress_epoch += 1
        out.log(now, "decision", "resume with a revised timeline", req.by)
    for milestone_id, due in req.revised_due.items():
        revised = milestone(p, milestone_id)
        assert revised is not None, "validated by the update"
        revised.due_at, revised.revision = due, revised.revision + 1
        out.log(now, "deadline_revised", f"{revised.title}: due {day(due)}", req.by)
    return out.audit


def held_back(p: OnboardingProgress, audience: Audience) -> bool:
    """A formal pause sends no nudges to the customer (rules §5 (docs/rules.md))."""
    return p.pause is not None and audience is Audience.CUSTOMER


# ------------------------------------------------------------------ §6 ending, state


def cancel(p: OnboardingProgress, req: CancelRequest, now: datetime) -> None:
    """The deal churned or was cancelled: the onboarding ends (no more messages)."""
    p.cancelled = req
    p.finished_at = now


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
    health = rules.health_score(p.milestones, now, o.playbook.health)
    if p.decision_required or health.band is not HealthBand.HEALTHY:
        return OnboardingState.AT_RISK
    return OnboardingState.ACTIVE


def recipient(p: OnboardingProgress, audience: Audience) -> str | None:
    """The customer is the champion (else the admin); the CSM is the owner."""
    by_role = {c.role: c.email for c in p.contacts}
    match audience:
        case Audience.CUSTOMER:
            return by_role.get(ContactRole.CHAMPION) or by_role.get(ContactRole.ADMIN)
        case Audience.EXECUTIVE_SPONSOR:
            return by_role.get(ContactRole.EXECUTIVE_SPONSOR)
        case Audience.CSM:
            return p.owner
    return None


def next_wake(o: Onboarding) -> tuple[datetime, str] | None:
    """When the loop must wake next without a message, and why (the timer's summary):
    the pause's resume or reminder, else the earliest ladder step; None when done."""
    p = o.progress
    if p.finished_at is not None:
        return None
    if p.pause is not None:
        if p.pause.resume_on is not None:
            return p.pause.resume_on, f"Paused: resumes {day(p.pause.resume_on)}"
        at = (p.pause.last_reminder_at or p.pause.since) + o.playbook.pause_reminder_days * DAY
        return at, f"Paused: owner reminder {day(at)}"
    steps = rules.ladder_steps(p, o.playbook)
    if not steps:
        return None
    step = steps[0]
    m = milestone(p, step.milestone_id)
    if step.step.when is Trigger.MILESTONE_OVERDUE and m is not None:
        return step.at, f"SLA: {m.phase.value} {m.title} due {day(step.at)}"
    return step.at, f"Ladder: {step.step.id} ({step.step.when.value}) on {day(step.at)}"
