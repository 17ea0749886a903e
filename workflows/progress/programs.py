"""Group programs (rules §1 (docs/rules.md), *Group programs*): an onboarding of a tier a
program serves is invited once to its next session, `invite_after_days` after closed-won
on the SLA clock (shifted by pauses; none is sent while paused), with an iCalendar
invitation; attendance, a product event, is recorded for the reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows import programs
from workflows.formats import day_text
from workflows.models import (
    Audience,
    CalendarInvite,
    OnboardingProgress,
    ProductEvent,
    Program,
    ProgramParticipation,
)
from workflows.progress.changes import DAY, Changes, Onboarding, notify, reject

HOUR = timedelta(hours=1)


def participation(p: OnboardingProgress, program: str) -> ProgramParticipation:
    """The onboarding's participation in `program`, added when it has none yet."""
    found = next((x for x in p.programs if x.program == program), None)
    if found is None:
        found = ProgramParticipation(program=program)
        p.programs.append(found)
    return found


def _invited(p: OnboardingProgress, program: str) -> bool:
    return any(x.program == program and x.invited_at is not None for x in p.programs)


def _waiting(o: Onboarding) -> list[tuple[str, Program, datetime]]:
    """The programs still to invite the onboarding to, with when: those serving its tier
    now that have not invited it (none once it is finished, or while it is paused)."""
    p = o.progress
    if p.finished_at is not None or p.pause is not None:
        return []
    return [
        (key, program, p.clock_start + program.invite_after_days * DAY)
        for key, program in o.playbook.programs.items()
        if p.tier in program.tiers and not _invited(p, key)
    ]


def invite_due(o: Onboarding, out: Changes, now: datetime) -> None:
    """Invite the onboarding to each program whose invitation has come due by `now`: to
    the first session starting at least `notice_hours` after `now`. The notification's
    trigger names the program and the session, so its idempotency key is
    `<workflow id>:program-<program>-<session, UTC>:customer`."""
    p = o.progress
    for key, program, due_at in _waiting(o):
        if due_at > now:
            continue
        session = programs.next_session(program, now + program.notice_hours * HOUR)
        x = participation(p, key)
        x.invited_at, x.session_at = now, session
        when = programs.session_text(session, o.deal.time_zone)
        out.log(now, "program_invited", f"{program.title}: {when}, {program.join_url}")
        stamp = f"{session.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        invite = CalendarInvite(
            uid=f"{key}-{stamp}-{o.deal.account_id}@onboarding",
            summary=program.title,
            starts_at=session,
            time_zone=program.time_zone,
            duration_minutes=program.duration_minutes,
            url=program.join_url,
            organizer=program.organizer,
        )
        variables = {
            "program": program.title,
            "session": when,
            "join_url": program.join_url,
            "duration": str(program.duration_minutes),
        }
        trigger = f"program-{key}-{stamp}"
        notify(o, out, trigger, Audience.CUSTOMER, program.template, variables, invite=invite)


def next_invitation(o: Onboarding) -> tuple[datetime, str] | None:
    """When the next program invitation comes due, and why (the timer's summary)."""
    waiting = _waiting(o)
    if not waiting:
        return None
    _, program, at = min(waiting, key=lambda w: w[2])
    return at, f"Program: {program.title} invitation on {day_text(at)}"


def attend(o: Onboarding, out: Changes, event: ProductEvent, now: datetime) -> None:
    """Record an attendance event (`Program.attended_event`): its `program` property
    names the program, and may be left out when only one program is attended by that
    event name. Dated when it happened (never later than `now`); an event naming no
    such program is rejected with the reason."""
    named = [k for k, x in o.playbook.programs.items() if x.attended_event == event.name]
    if not named:
        return
    key = event.program or (named[0] if len(named) == 1 else "")
    if key not in named:
        reason = f"names no program attended by {event.name!r} (one of: {', '.join(named)})"
        reject(out, now, "product_events", f"{event.name} program={event.program}", reason)
        return
    at = min(event.at or now, now)
    x = participation(o.progress, key)
    x.attended_at = at if x.attended_at is None else min(x.attended_at, at)
    x.attendances += 1
    title = o.playbook.programs[key].title
    out.log(now, "program_attended", f"{title}: attended {day_text(at)}")
