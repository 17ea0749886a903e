"""A formal pause (rules §5 (docs/rules.md)): starting one, its duties while it lasts (a scheduled
resume, the owner's reminders), the arithmetic of resuming (every SLA clock and open
deadline moves by the time paused) and the messages it holds back."""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows import business_days
from workflows.business_days import Calendar
from workflows.formats import day_text
from workflows.models import (
    Audience,
    AuditEntry,
    MessageKind,
    Milestone,
    OnboardingProgress,
    Pause,
    PauseRequest,
    ResumeRequest,
)
from workflows.progress.changes import (
    DAY,
    Changes,
    Notify,
    NudgesOnly,
    Onboarding,
    milestone,
    notify,
)


def start_pause(p: OnboardingProgress, req: PauseRequest, now: datetime) -> Changes:
    """Formal pause: every SLA clock stops; events are still recorded; no nudges. It
    settles a pending stall decision."""
    p.pause = Pause(by=req.by, reason=req.reason, since=now, resume_on=req.resume_on)
    p.decision_required = False
    until = f" until {day_text(req.resume_on)}" if req.resume_on else ""
    out = Changes()
    out.log(now, "paused", f"{req.reason}{until}", req.by)
    return out


def _reminder_at(o: Onboarding) -> datetime:
    """An open-ended pause reminds its owner every `pause_reminder_days`."""
    pause = o.progress.pause
    assert pause is not None
    return (pause.last_reminder_at or pause.since) + o.playbook.pause_reminder_days * DAY


def paused_duties(o: Onboarding, out: Changes, now: datetime) -> None:
    """A scheduled resume comes due, or the owner is reminded every
    `pause_reminder_days` of an open-ended pause."""
    pause = o.progress.pause
    assert pause is not None
    if pause.resume_on is not None:
        if now >= pause.resume_on:
            out.audit += resume(o, ResumeRequest(by="schedule", reason="scheduled resume"), now)
        return
    if now >= _reminder_at(o):
        pause.last_reminder_at = now
        variables = {"due": day_text(pause.since), "reason": pause.reason}
        trigger = f"pause-reminder@{now.isoformat()}"
        notify(o, out, trigger, Audience.CSM, "pause_reminder", variables)


def next_paused_duty(o: Onboarding) -> tuple[datetime, str]:
    """When a paused onboarding must wake, and why: its scheduled resume, else the
    owner's next reminder."""
    pause = o.progress.pause
    assert pause is not None
    if pause.resume_on is not None:
        return pause.resume_on, f"Paused: resumes {day_text(pause.resume_on)}"
    at = _reminder_at(o)
    return at, f"Paused: owner reminder {day_text(at)}"


def shift_for_pause(p: OnboardingProgress, now: datetime, calendar: Calendar) -> timedelta:
    """End the pause: the SLA clock, the stall clock (unless progress came during the
    pause), every open milestone's dates, an open re-alignment window's end (rules §6.3)
    and the skip net's pending checks move by the time paused, which is returned. An open
    deadline counted in business days or hours is counted again instead: what was left
    of it when the pause began runs from `now` in the account's `calendar`
    (`business_days.recount`, rules §5); its start moves by the time paused, never past
    it."""
    assert p.pause is not None
    since = p.pause.since
    paused_for = now - since
    p.paused_days_total += paused_for / DAY
    p.clock_start += paused_for
    if p.last_progress_at <= since:
        p.last_progress_at += paused_for
    for m in p.milestones:
        if m.is_open:
            shift_milestone(m, since, now, calendar)
    for w in p.champion_windows:
        if w.outcome == "open":
            w.due_at += paused_for
    for check in p.skip_checks:
        check.due_at += paused_for
    p.pause = None
    return paused_for


def shift_milestone(m: Milestone, since: datetime, until: datetime, calendar: Calendar) -> None:
    """Move an open milestone's dates by the time paused from `since` to `until`: a
    deadline in days by that time, one in business days or hours counted again (what
    was left of it at `since` runs from `until`); its start moves with it, never past
    its deadline."""
    m.starts_at += until - since
    if m.due_unit == "days":
        m.due_at += until - since
    else:
        m.due_at = business_days.recount(since, m.due_at, until, m.due_unit, calendar)
        m.starts_at = min(m.starts_at, m.due_at)


def resume(o: Onboarding, req: ResumeRequest, now: datetime) -> list[AuditEntry]:
    """Resume a pause (deadlines shift by the paused time), settle a stall decision
    (movement: the stall clock restarts), and apply `req.revised_due`."""
    p, out = o.progress, Changes()
    if p.pause is not None:
        paused_for = shift_for_pause(p, now, o.calendar)
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
        revised.due_unit = "days"  # a date a person set
        out.log(now, "deadline_revised", f"{revised.title}: due {day_text(due)}", req.by)
    return out.audit


# Who a pause keeps quiet towards: the customer's people, not the vendor's.
_CUSTOMER_SIDE = frozenset({Audience.CUSTOMER, Audience.EXECUTIVE_SPONSOR})
# What it holds back: messages that press for action, not good news.
_HELD_KINDS = frozenset({MessageKind.NUDGE, MessageKind.ESCALATION})


def held_back(o: Onboarding, effect: Notify, nudges_only: NudgesOnly) -> bool:
    """Whether a formal pause holds `effect` back (rules §5 (docs/rules.md)): a nudge or an
    escalation (the template's `kind`) to the customer or the executive sponsor is held;
    celebrations and information still go out, and nothing to the CSM or CS leadership
    is held. Runs begun before template kinds held back every message to the customer
    and nothing else (`nudges_only` false: a `workflow.patched` rule, asked only when the
    two rules disagree)."""
    if o.progress.pause is None:
        return False
    kind = o.playbook.templates[effect.template_id].kind
    by_kind = effect.audience in _CUSTOMER_SIDE and kind in _HELD_KINDS
    by_audience = effect.audience is Audience.CUSTOMER
    if by_kind == by_audience:
        return by_kind
    return by_kind if nudges_only() else by_audience
