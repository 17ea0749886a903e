"""A champion who leaves (rules §6.3 (docs/rules.md)): replacing the champion opens a
re-alignment window of `[champion_change].window_business_days` business days in the
account's calendar (`workflows.business_days`) with the playbook's gates (by default: new
primary contact confirmed, re-alignment call done, updated milestone plan agreed). Every
gate done in time closes it; a gate still open when it ends escalates to the CSM and CS
leadership and flags the account. A pause stops its clock like every SLA's (rules §5)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from workflows import business_days
from workflows.formats import day_text
from workflows.models import (
    Action,
    Audience,
    ChampionWindow,
    Contact,
    ContactChange,
    ContactRole,
    Escalation,
    OnboardingProgress,
    RealignmentGateDone,
    Trigger,
)
from workflows.progress.changes import DAY, Changes, Onboarding, notify
from workflows.progress.lifecycle import change_contact

# The step a lapse is counted under in the onboarding's escalations (and so in the
# portfolio report's escalations by step and trigger): the playbook section that raises it.
LAPSE_STEP = "champion_change"


def open_window(p: OnboardingProgress) -> ChampionWindow | None:
    """The re-alignment window still open, if any (only the latest can be)."""
    last = p.champion_windows[-1] if p.champion_windows else None
    return last if last is not None and last.outcome == "open" else None


def last_day(w: ChampionWindow) -> str:
    """The window's last business day, in the account's zone: `2026-12-15 America/New_York`."""
    end = w.due_at.astimezone(ZoneInfo(w.time_zone)) - DAY
    return f"{end.date().isoformat()} {w.time_zone}"


def _champion(p: OnboardingProgress) -> Contact | None:
    return next((c for c in p.contacts if c.role is ContactRole.CHAMPION), None)


def change_champion(o: Onboarding, req: ContactChange, now: datetime) -> Changes:
    """`change_contact`, and when it replaces the champion with someone else (and the
    playbook has a `[champion_change]` section) a re-alignment window opens; one still
    open is superseded by it. The account's calendar is the deal's `time_zone` and
    `country`, else the playbook's `[business_calendar]`."""
    p, rule = o.progress, o.playbook.champion_change
    previous = _champion(p)
    out = change_contact(p, req, now)
    new = req.contact
    if (
        rule is None
        or new.role is not ContactRole.CHAMPION
        or previous is None
        or previous.email == new.email
    ):
        return out
    if (current := open_window(p)) is not None:
        current.outcome, current.closed_at = "superseded", now
        out.log(now, "champion_window_superseded", "the champion changed again", req.by)
    time_zone, country = o.time_zone, o.country
    days = rule.window_business_days
    window = ChampionWindow(
        opened_at=now,
        due_at=business_days.business_days_end(now, days, time_zone, country),
        business_days=days,
        time_zone=time_zone,
        country=country,
        previous=previous.email,
        champion=new.email,
        gates=dict.fromkeys(rule.gates),
    )
    p.champion_windows.append(window)
    gates = "; ".join(rule.gates.values())
    detail = (
        f"{previous.email} -> {new.email}: {gates}, by the end of {last_day(window)} "
        f"({days} business days, {country} holidays)"
    )
    out.log(now, "champion_window_opened", detail, req.by)
    return out


def gate_done(o: Onboarding, req: RealignmentGateDone, now: datetime) -> Changes:
    """One gate of the open window is done; the last one closes it as `aligned`."""
    p, rule, out = o.progress, o.playbook.champion_change, Changes()
    w = open_window(p)
    assert w is not None and rule is not None, "validated by the update"
    w.gates[req.gate] = now
    note = f": {req.note}" if req.note else ""
    out.log(now, "realignment_gate_done", f"{rule.gates[req.gate]}{note}", req.by)
    if not w.open_gates:
        w.outcome, w.closed_at = "aligned", now
        detail = f"every gate done by {day_text(now)}, within {w.business_days} business days"
        out.log(now, "champion_window_closed", detail)
    return out


def lapse_due(o: Onboarding, out: Changes, now: datetime) -> None:
    """The open window has ended with a gate open (not while paused): the CSM and CS
    leadership are told, the account is flagged, the window is closed as `lapsed`, and
    the lapse is an escalation of the onboarding (step `champion_change`, trigger
    `champion_window_lapsed`, in the current tier), counted as the ladder's are."""
    p, rule = o.progress, o.playbook.champion_change
    w = open_window(p)
    if w is None or rule is None or p.pause is not None or now < w.due_at:
        return
    w.outcome, w.closed_at = "lapsed", now
    missing = [rule.gates[g] for g in w.open_gates]
    p.risk_flags.append(f"{day_text(now)}: {rule.flag} ({', '.join(w.open_gates)})")
    out.log(
        now,
        "champion_window_lapsed",
        f"open at the end of {last_day(w)}: {'; '.join(missing)}; CSM and CS leadership told",
    )
    variables = {"reason": "; ".join(missing), "days": str(w.business_days), "due": last_day(w)}
    trigger = f"champion-window-{len(p.champion_windows)}-lapsed"
    notify(o, out, trigger, Audience.CSM, rule.csm_template, variables)
    notify(o, out, trigger, Audience.CS_LEADERSHIP, rule.leadership_template, variables)
    actions = [
        Action(notify=Audience.CSM, template=rule.csm_template),
        Action(notify=Audience.CS_LEADERSHIP, template=rule.leadership_template),
        Action(flag=rule.flag),
    ]
    p.escalations.append(
        Escalation(
            at=now,
            due_at=w.due_at,
            tier=p.tier,
            step_id=LAPSE_STEP,
            trigger=Trigger.CHAMPION_WINDOW_LAPSED,
            actions=[a.describe() for a in actions],
        )
    )


def next_lapse(p: OnboardingProgress) -> tuple[datetime, str] | None:
    """When the open window lapses, and the timer's summary; None without one."""
    w = open_window(p)
    if w is None:
        return None
    return w.due_at, f"Champion change: re-alignment window ends {last_day(w)}"
