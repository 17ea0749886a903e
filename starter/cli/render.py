"""The `status` query as text, and the plain tables and dates the reports print."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.business_days import UNIT_WORDS
from workflows.formats import day_text
from workflows.models import (
    Escalation,
    MilestoneStatus,
    MilestoneView,
    OnboardingStatus,
    ProductView,
    ProgramView,
    TtvBreakdown,
)
from workflows.presentation import skip_check_line
from workflows.progress import activation, products
from workflows.rules import acv_text


def date_text(at: datetime | None) -> str:
    """`YYYY-MM-DD` in UTC, `-` for none."""
    return day_text(at) if at else "-"


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g} d"


def _relative(at: datetime, now: datetime) -> str:
    days = (at - now) / timedelta(days=1)
    if abs(days) < 1:
        hours = (at - now) / timedelta(hours=1)
        return f"in {hours:.0f} h" if hours >= 0 else f"{-hours:.0f} h ago"
    return f"in {days:.0f} d" if days >= 0 else f"{-days:.0f} d overdue"


_MARK = {
    MilestoneStatus.DONE: "[x]",
    MilestoneStatus.SKIPPED: "[-]",
    MilestoneStatus.IN_PROGRESS: "[~]",
    MilestoneStatus.NOT_STARTED: "[ ]",
}


def table_lines(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Rows as lines of left-aligned columns two spaces apart."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _escalation_actions(e: Escalation) -> str:
    """What a ladder step did: its actions, `passed over (not sent)`, and the actions an
    automated-only track leaves out (rules §1 (docs/rules.md))."""
    if e.superseded and e.not_applicable:
        return "not applicable (automated only): " + "; ".join(e.not_applicable)
    done = "passed over (not sent)" if e.superseded else "; ".join(e.actions)
    if e.not_applicable:
        done += "; not applicable (automated only): " + "; ".join(e.not_applicable)
    return done


def _and(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]


def ttv_text(ttv: TtvBreakdown) -> str:
    """Time to value as it adds up (rules §3 (docs/rules.md)): `9.5 d = handoff 1 d +
    setup 5 d + activation 3.5 d (target 7-14 d)` once every mark is reached. A part
    whose marks are not both reached is left out and named with the mark missing:
    `1.42 d to first value (target 7-14 d); activation 0 d; handoff and setup not
    measured: first engagement not reached`; before first value, `first value not
    reached (target 7-14 d); so far handoff 1 d`. Marks reached out of order (a part
    counts 0 then) make the parts overlap, and the line says so."""
    target = f" (target {ttv.target_days[0]}-{ttv.target_days[1]} d)" if ttv.target_days else ""
    parts = {
        "handoff": ttv.handoff_delay_days,
        "setup": ttv.setup_days,
        "activation": ttv.activation_days,
    }
    measured = [f"{name} {_days(days)}" for name, days in parts.items() if days is not None]
    if ttv.total_days is None:
        so_far = f"; so far {' + '.join(measured)}" if measured else ""
        return f"first value not reached{target}{so_far}"
    known = [days for days in parts.values() if days is not None]
    if len(known) == len(parts):
        if abs(sum(known) - ttv.total_days) <= 0.025:  # each part rounded to 0.01 d
            return f"{_days(ttv.total_days)} = {' + '.join(measured)}{target}"
        return (
            f"{_days(ttv.total_days)} to first value{target}; {', '.join(measured)} "
            "(marks reached out of order: the parts overlap)"
        )
    missing: dict[str, list[str]] = {}  # the mark not reached -> the parts it leaves out
    for name, days in parts.items():
        if days is not None:
            continue
        engaged = ttv.handoff_delay_days is not None
        mark = "system ready" if name == "activation" or engaged else "first engagement"
        missing.setdefault(f"{mark} not reached", []).append(name)
    why = [f"{_and(names)} not measured: {mark}" for mark, names in missing.items()]
    return "; ".join([f"{_days(ttv.total_days)} to first value{target}", *measured, *why])


def _local(text: str, zone: str | None) -> str:
    """A time in the account's zone without the zone's name (the header names it)."""
    return text.replace(f" {zone}", "") if zone else text


def _due(m: MilestoneView, zone: str | None) -> str:
    """`due 2026-12-08` (UTC); with the account's zone known, its local deadline:
    `due end of 2026-12-08, in business days`, `due 2026-12-08 17:00` (rules §4)."""
    return f"due {_local(m.due_local, zone)}" if m.due_local else f"due {date_text(m.due_at)}"


def _program_text(v: ProgramView) -> str:
    """`Weekly onboarding webinar: invited 2026-12-02 to 2026-12-08 21:00, attended
    2026-12-08 (x2)` (rules §1, *Group programs*)."""
    text = v.title
    if v.invited_at is not None:
        session = f" to {_stamp(v.session_at)} UTC" if v.session_at else ""
        text += f": invited {date_text(v.invited_at)}{session}"
    if v.attended_at is not None:
        times = f" (x{v.attendances})" if v.attendances > 1 else ""
        text += f", attended {date_text(v.attended_at)}{times}"
    elif v.invited_at is not None:
        text += ", not attended yet"
    return text


def _product_row(v: ProductView) -> list[str]:
    """A product of a multi-product deal: its adoption, and the gate it waits at with
    why (rules §6.2)."""
    waits = ""
    if v.waiting_at is not None:
        since = f" since {date_text(v.waiting_since)}" if v.waiting_since else ""
        why = products.adoption_text(v.predecessor_adoption, v.threshold)
        waits = f"waits at the {v.waiting_at.value} gate{since}: {why}"
    seats = f"adoption {v.adoption * 100:.0f}% ({v.active_users}/{v.licensed_seats} seats)"
    return [v.id, v.name, seats, waits]


def _when_text(m: MilestoneView, now: datetime) -> str:
    """A milestone's standing: done (late), skipped, or how its deadline stands; a
    provisional or held deadline is never overdue (rules §2, §6.2)."""
    if m.status is MilestoneStatus.DONE:
        late = m.done_at is not None and m.done_at > m.due_at
        return f"done {date_text(m.done_at)}" + (" (late)" if late else "")
    if m.status is MilestoneStatus.SKIPPED:
        return "skipped"
    if m.provisional:
        return "provisional: waits for the success plan"
    if m.held:
        return "held: its product waits"
    return "OVERDUE" if m.overdue else _relative(m.due_at, now)


def render_waiting(s: OnboardingStatus) -> str:
    """An onboarding that product events started, still waiting for its deal."""
    counts = ", ".join(f"{k} x{v}" for k, v in sorted(s.event_counts.items())) or "none"
    until = date_text(s.awaiting_deal_until) if s.awaiting_deal_until else "-"
    return "\n".join(
        [
            f"Account        {s.account_id}  {s.workflow_id}",
            f"State          {s.state.value}: product events came before the closed-won deal",
            f"Events so far  {counts}",
            f"Ends           {until} if no deal arrives",
        ]
    )


def render_status(s: OnboardingStatus, *, recent: int = 8) -> str:
    """The `status` query as plain text: header, plan checklist, escalations, audit."""
    now = s.as_of
    if s.tier is None or s.tier_decision is None:
        return render_waiting(s)
    score = "n/a" if s.health.score is None else f"{s.health.score:g}"
    if s.next_deadline:
        upcoming = [m for m in s.milestones if m.due_at == s.next_deadline]
        when = _due(upcoming[0], s.time_zone) if upcoming else date_text(s.next_deadline)
        what = f" {upcoming[0].id}" if upcoming else ""
        deadline = f"{when.removeprefix('due ')}{what} ({_relative(s.next_deadline, now)})"
    else:
        deadline = "-"
    # The account's later onboardings (rules §2) and a specialist (§7), when there are.
    n = s.onboarding_number
    number = f"  (the account's onboarding #{n})" if n > 1 else ""
    specialist = f"; implementation specialist {s.specialist}" if s.specialist else ""
    decision = s.tier_decision
    rule = f"{decision.reason} [{decision.clause}]"
    if s.tier is decision.tier:
        tier_line = f"{s.tier.value}: {rule}"
    else:
        last = s.tier_changes[-1] if s.tier_changes else None
        why = f" ({last.kind}: {last.reason})" if last else ""
        tier_line = f"{s.tier.value}{why}; assigned {decision.tier.value}: {rule}"
    header = [
        ["Account", f"{s.account_name} ({s.account_id})  {s.workflow_id}{number}"],
        ["Tier", tier_line],
        ["State", s.state.value],
        ["Phase", s.phase.value if s.phase else "done"],
        ["Health", f"{score} ({s.health.band.value}), completion {s.completion_pct:g}%"],
        ["Owner", (s.owner or "- (automated)") + specialist],
        ["ACV", acv_text(s)],
        ["TTV", ttv_text(s.ttv)],
        ["Next deadline", deadline],
        ["Closed-won", date_text(s.closed_won_at) if s.closed_won_at else "-"],
        ["Playbook", f"{s.playbook_version} ({s.playbook_hash or 'n/a'})"],
        ["As of", _stamp(now) + " UTC"],
    ]
    if s.tier_changes:
        header.append(
            [
                "Tier changes",
                "; ".join(
                    f"{date_text(c.at)} {c.from_tier.value} -> {c.to_tier.value} "
                    f"({c.kind} by {c.by}: {c.reason})"
                    for c in s.tier_changes
                ),
            ]
        )
    if s.pause:
        until = f" until {date_text(s.pause.resume_on)}" if s.pause.resume_on else ""
        header.append(
            ["Paused", f"since {date_text(s.pause.since)}{until} by {s.pause.by}: {s.pause.reason}"]
        )
    if s.decision_required:
        header.append(["Decision", "REQUIRED: resume with a revised timeline, or pause"])
    if s.success_criteria:
        header.append(["Success criteria", "; ".join(s.success_criteria)])
    if s.risk_flags:
        header.append(["Risk flags", "; ".join(s.risk_flags)])
    header += _more_header(s)
    lines = table_lines([[k + ":", v] for k, v in header], indent="")

    lines += ["", "Milestones"]
    rows = []
    for m in s.milestones:
        credit = "-" if m.credit is None else f"{m.credit:g}"
        rows.append(
            [
                _MARK[m.status],
                m.phase.value,
                m.id,
                m.title,
                _due(m, s.time_zone),
                _when_text(m, now),
                f"credit {credit}",
            ]
        )
    lines += table_lines(rows)
    lines += _more_sections(s)

    if s.escalations:
        shown = s.escalations[-recent:]
        lines += ["", f"Escalations (last {len(shown)} of {len(s.escalations)})"]
        lines += table_lines(
            [
                [
                    _stamp(e.at),
                    f"{e.tier.value}.{e.step_id}",
                    e.milestone_id or "",
                    _escalation_actions(e),
                ]
                for e in shown
            ]
        )
    if s.rejected:
        shown_r = s.rejected[-recent:]
        lines += ["", f"Rejected messages (last {len(shown_r)})"]
        lines += table_lines([[_stamp(r.at), r.kind, r.ref, r.reason] for r in shown_r])
    if s.audit:
        shown_a = s.audit[-recent:]
        lines += ["", f"Audit (last {len(shown_a)} of {len(s.audit)})"]
        lines += table_lines([[_stamp(a.at), a.kind, a.by or "", a.detail] for a in shown_a])
    return "\n".join(lines)


def _more_header(s: OnboardingStatus) -> list[list[str]]:
    """The header lines only some onboardings have, each when present: the time zone
    its deadlines are shown in (rules §4), provisional deadlines (§2), group programs
    (§1), activation by role (§7) and queued expansion deals (§2)."""
    header = []
    if s.time_zone:
        header.append(["Time zone", f"{s.time_zone} (deadlines in its local time)"])
    if s.schedule_provisional:
        header.append(
            [
                "Provisional",
                "deadlines wait for the customer's confirmed success plan "
                "(onboarding confirm-plan records it)",
            ]
        )
    if s.programs:
        header.append(["Programs", "; ".join(map(_program_text, s.programs))])
    if s.roles:
        reached = s.first_value_by_roles_at
        when = date_text(reached) if reached else "not yet"
        header.append(["Roles", f"{activation.line(s.roles)}; first value by roles: {when}"])
    if s.queued_deals:
        header.append(
            [
                "Queued deals",
                "; ".join(
                    f"{q.deal} ({q.account_name}, queued {date_text(q.queued_at)})"
                    for q in s.queued_deals
                )
                + ": each starts when the one before finishes",
            ]
        )
    return header


def _more_sections(s: OnboardingStatus) -> list[str]:
    """The sections only some onboardings have, each when present: a multi-product
    deal's products (rules §6.2), the SLA steps to come on the account's clock (§3-§4)
    and the skip net's pending checks (§6.4)."""
    lines: list[str] = []
    if s.products:
        lines += ["", "Products"]
        lines += table_lines([_product_row(v) for v in s.products])
    if s.sla_steps:
        lines += ["", "SLAs to come"]
        lines += table_lines(
            [
                [
                    step.step_id,
                    step.trigger.value,
                    f"{step.days} {UNIT_WORDS[step.days_unit]}",
                    f"due {_local(step.due_local, s.time_zone)}",
                ]
                for step in s.sla_steps
            ]
        )
    if s.skip_checks:
        lines += ["", "Skip net checks"]
        lines += ["  " + skip_check_line(v).removeprefix("- ") for v in s.skip_checks]
    return lines
