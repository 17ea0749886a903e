"""The escalation ladder and tier changes (rules §3-§4 (docs/rules.md)): what has come
due by now and running it in order (the pause's duties, ladder steps, the next phase,
the handoff), a designed tier change, and when the loop must wake next."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from workflows import assignment, rules
from workflows.formats import day_text
from workflows.models import (
    Action,
    Audience,
    Escalation,
    OnboardingProgress,
    Phase,
    StaffRole,
    Tier,
    TierChange,
    Trigger,
)
from workflows.progress import products, programs, skipnet
from workflows.progress.champion import lapse_due, next_lapse
from workflows.progress.changes import (
    AssignOwner,
    Changes,
    CheckSkip,
    CustomerClock,
    KeepTimes,
    Onboarding,
    milestone,
    notify,
)
from workflows.progress.lifecycle import credit_observed_events
from workflows.progress.pause import next_paused_duty, paused_duties


def advance(
    o: Onboarding,
    phase: Phase | None,
    now: datetime,
    keep_times: KeepTimes,
    customer_clock: CustomerClock,
) -> Changes:
    """Everything that has come due by `now`, in the order it came due: the pause's own
    duties, the ladder's steps (one passed over repeatedly is recorded once, not fired),
    the skip net's checks (rules §6.4, run as effects), the next phase (`phase`: the one
    last seen), the handoff when none is left, and then group programs' invitations
    (rules §1). `keep_times` and `customer_clock` are the patched rules `change_tier`
    asks."""
    p, out = o.progress, Changes(phase=phase)
    if p.finished_at is not None:
        return out
    if p.pause is not None:
        paused_duties(o, out, now)
    # Before the ladder: a product that waits has no deadline for it to act on.
    products.check_gates(o, out, now)
    # The health's band entries as of now, so a health step fires once per entry.
    p.health_entries = rules.health_entries(p, o.playbook, now)
    while due := [s for s in o.steps() if s.at <= now]:
        step = due[0]
        if stale := rules.passed_over(step, now):
            _record_step(p, step, now, superseded=True, repeats=stale)
        else:
            _escalate(o, out, step, now, keep_times, customer_clock)
    lapse_due(o, out, now)
    out.effects += [CheckSkip(check) for check in skipnet.due(p, now)]
    current = rules.current_phase(p.milestones)
    if current != out.phase:
        out.phase = current
        if current is not None:
            out.log(now, "phase_started", current.value)
    if current is None:
        _finish(o, out, now)
    programs.invite_due(o, out, now)
    return out


def _finish(o: Onboarding, out: Changes, now: datetime) -> None:
    p = o.progress
    p.finished_at = now
    ttv, health = o.ttv(), o.health(now)
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
    o: Onboarding,
    out: Changes,
    due: rules.DueStep,
    now: datetime,
    keep_times: KeepTimes,
    customer_clock: CustomerClock,
) -> None:
    p, step = o.progress, due.step
    actions, left_out = step.actions, []
    if rules.automated_only(p, o.playbook, o.deal.deal_type):
        left_out = [a for a in actions if rules.needs_a_person(a)]
        actions = [a for a in actions if not rules.needs_a_person(a)]
    subject = milestone(p, due.milestone_id) if due.milestone_id else None
    what = f"{step.when.value} ({subject.title})" if subject else step.when.value
    why = ""
    if left_out:
        track = o.deal.deal_type.value
        why = f"; not applicable ({track} track is automated only): " + "; ".join(
            a.describe() for a in left_out
        )
    if not actions:
        _record_step(p, due, now, superseded=True, left_out=left_out)
        out.log(now, "escalation_not_applicable", f"{p.tier.value}.{step.id}: {what}{why}")
        return
    _record_step(p, due, now, superseded=False, ran=actions, left_out=left_out)
    out.log(now, "escalation", f"{p.tier.value}.{step.id}: {what}{why}")
    out.fired.append(due.key)
    days = str(step.days) if step.when is not Trigger.MILESTONE_OVERDUE else "0"
    for action in actions:
        _act(o, out, action, due, days, now, keep_times, customer_clock)


def _act(
    o: Onboarding,
    out: Changes,
    action: Action,
    due: rules.DueStep,
    days: str,
    now: datetime,
    keep_times: KeepTimes,
    customer_clock: CustomerClock,
) -> None:
    p = o.progress
    if action.notify is not None and action.template is not None:
        about = milestone(p, due.milestone_id) if due.milestone_id else None
        notify(o, out, due.key, action.notify, action.template, {"days": days}, about)
    elif action.change_tier is not None and action.change_tier is not p.tier:
        reason = f"ladder {due.step.id}: {due.step.when.value} after {days} days"
        change_tier(
            o,
            action.change_tier,
            "automatic",
            "escalation ladder",
            reason,
            now,
            keep_times,
            customer_clock,
            out,
        )
    elif action.require_decision:
        p.decision_required = True
        out.log(now, "decision_required", "stalled: resume with a revised timeline, or pause")
    elif action.flag is not None:
        suffix = f" ({due.milestone_id})" if due.milestone_id else ""
        p.risk_flags.append(f"{day_text(now)}: {action.flag}{suffix}")
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
    customer_clock: CustomerClock,
    out: Changes | None = None,
) -> Changes:
    """A designed transition (rules §4 (docs/rules.md)): re-plan what is left, keep
    earned credit; the new ladder's passed steps are recorded, not fired, and its steps
    still ahead count from the customer's last movement (`customer_clock`; false for
    runs begun before that rule, whose tier change restarted the stall clock). Recorded
    in `out` (a ladder step's own changes) or in new `Changes`, which are returned."""
    out = Changes() if out is None else out
    p = o.progress
    old = p.tier
    p.tier_changes.append(
        TierChange(at=now, from_tier=old, to_tier=tier, kind=kind, by=by, reason=reason)
    )
    p.tier = tier
    deal = o.deal
    plan = rules.replan(
        o.playbook, p.milestones, tier, now, deal.deal_type, deal.products, o.calendar
    )
    p.milestones = rules.mark_provisional(o.playbook, plan, tier, p.success_plan is not None)
    products.hold_again(p)
    credit_observed_events(o, out, now, keep_times)
    out.log(now, "tier_changed", f"{old.value} -> {tier.value} ({kind}): {reason}", by)
    # A tier change is the vendor's move, not the customer's: the stall goes on, so
    # `last_progress_at` and `progress_epoch` (the stall's part of a no_progress step's
    # key) stay. Keys stay unique: they carry the tier, and a step that already ran in
    # this stall in a tier visited before is in `fired`, so it does not run twice.
    # The new ladder's steps whose time had already passed are recorded, not fired.
    if not customer_clock():
        p.last_progress_at = now
        p.progress_epoch += 1
    supersede_passed(o, now)
    if tier.rank > old.rank and p.owner is None:
        out.effects.append(AssignOwner(f"upgraded to {tier.value}"))
    upgraded = tier.rank > old.rank and p.specialist is None
    if upgraded and assignment.needs_specialist(o.playbook, tier, p.milestones):
        reason = f"upgraded to {tier.value} with implementation gates open"
        out.effects.append(AssignOwner(reason, StaffRole.IMPLEMENTATION_SPECIALIST))
    trigger = f"tier-change-{len(p.tier_changes)}"
    notify(o, out, trigger, Audience.CUSTOMER, "tier_changed", {"reason": reason})
    return out


def supersede_passed(o: Onboarding, now: datetime) -> None:
    """A new ladder (a tier change's, or a new playbook version's): its steps whose time
    had already passed by `now` are recorded, not fired (rules §4 (docs/rules.md))."""
    while passed := [s for s in o.steps() if s.at <= now]:
        for due in passed:
            _record_step(o.progress, due, now, superseded=True)


def _record_step(
    p: OnboardingProgress,
    due: rules.DueStep,
    now: datetime,
    superseded: bool,
    repeats: int = 1,
    ran: list[Action] | None = None,
    left_out: list[Action] | None = None,
) -> None:
    """Mark a ladder step done (so it never runs twice) and keep it for the report;
    `repeats` occurrences of a recurring step from `due` on are recorded as one. A step
    that fired ran its actions (`ran`: those of them that did, on an automated-only
    track); `left_out`: the actions that track does not run (rules §1)."""
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
            actions=[] if superseded else [a.describe() for a in ran or due.step.actions],
            superseded=superseded,
            not_applicable=[a.describe() for a in left_out or []],
        )
    )


def next_wake(o: Onboarding) -> tuple[datetime, str] | None:
    """When the loop must wake next without a message, and why (the timer's summary):
    the pause's resume or reminder, else the earliest of the ladder's next step, a
    re-alignment window's end (rules §6.3), a skip-net check, a product's next phase
    gate (rules §6.2) and a group program's invitation (rules §1); None when done."""
    p = o.progress
    if p.finished_at is not None:
        return None
    if p.pause is not None:
        return next_paused_duty(o)
    wakes = (_next_step(o), next_lapse(p), products.next_gate_wake(o), programs.next_invitation(o))
    due = [w for w in wakes if w]
    # The earliest; at the same moment the first listed, as before gates existed.
    return min(due, key=lambda w: w[0]) if due else None


def _next_step(o: Onboarding) -> tuple[datetime, str] | None:
    p = o.progress
    steps = o.steps()
    check = skipnet.next_check(p)
    if check is not None and (not steps or check.due_at < steps[0].at):
        return check.due_at, f"Skip net: {check.milestone_id} checked {day_text(check.due_at)}"
    if not steps:
        return None
    step = steps[0]
    m = milestone(p, step.milestone_id)
    if step.step.when is Trigger.MILESTONE_OVERDUE and m is not None:
        return step.at, f"SLA: {m.phase.value} {m.title} due {day_text(step.at)}"
    return step.at, f"Ladder: {step.step.id} ({step.step.when.value}) on {day_text(step.at)}"
