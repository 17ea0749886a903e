"""The `status` query as text, and the plain tables and dates the reports print."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workflows.formats import day_text
from workflows.models import Escalation, MilestoneStatus, OnboardingStatus
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
    ttv = s.ttv
    target = f" (target {ttv.target_days[0]}-{ttv.target_days[1]} d)" if ttv.target_days else ""
    if s.next_deadline:
        upcoming = [m for m in s.milestones if m.due_at == s.next_deadline]
        what = f" {upcoming[0].id}" if upcoming else ""
        deadline = f"{date_text(s.next_deadline)}{what} ({_relative(s.next_deadline, now)})"
    else:
        deadline = "-"
    decision = s.tier_decision
    rule = f"{decision.reason} [{decision.clause}]"
    if s.tier is decision.tier:
        tier_line = f"{s.tier.value}: {rule}"
    else:
        last = s.tier_changes[-1] if s.tier_changes else None
        why = f" ({last.kind}: {last.reason})" if last else ""
        tier_line = f"{s.tier.value}{why}; assigned {decision.tier.value}: {rule}"
    header = [
        ["Account", f"{s.account_name} ({s.account_id})  {s.workflow_id}"],
        ["Tier", tier_line],
        ["State", s.state.value],
        ["Phase", s.phase.value if s.phase else "done"],
        ["Health", f"{score} ({s.health.band.value}), completion {s.completion_pct:g}%"],
        ["Owner", s.owner or "- (automated)"],
        ["ACV", acv_text(s)],
        [
            "TTV",
            f"handoff {_days(ttv.handoff_delay_days)} + setup {_days(ttv.setup_days)} + "
            f"activation {_days(ttv.activation_days)} = {_days(ttv.total_days)}{target}",
        ],
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
    lines = table_lines([[k + ":", v] for k, v in header], indent="")

    lines += ["", "Milestones"]
    rows = []
    for m in s.milestones:
        if m.status is MilestoneStatus.DONE:
            late = m.done_at is not None and m.done_at > m.due_at
            when = f"done {date_text(m.done_at)}" + (" (late)" if late else "")
        elif m.status is MilestoneStatus.SKIPPED:
            when = "skipped"
        else:
            when = "OVERDUE" if m.overdue else _relative(m.due_at, now)
        credit = "-" if m.credit is None else f"{m.credit:g}"
        rows.append(
            [
                _MARK[m.status],
                m.phase.value,
                m.id,
                m.title,
                f"due {date_text(m.due_at)}",
                when,
                f"credit {credit}",
            ]
        )
    lines += table_lines(rows)

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
