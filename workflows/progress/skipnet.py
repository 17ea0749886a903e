"""The safety net under a refused step (rules §6.4 (docs/rules.md)): a skip plans one
check; when it comes due the workflow reads the peers' support tickets (activity
`peer_support_tickets`) and `judge` decides whether the skipped gate re-opens.

Signals, both from product events: usage since the skip (every counted event but
support tickets, against the count at the skip) and the account's support tickets
against the median of the open onboardings of its tier. Not used since the skip, or
tickets above that median: the gate re-opens with a new deadline and the owner is told.
Otherwise the skip stands. Either way the audit says what was seen.
"""

from __future__ import annotations

from datetime import datetime

from workflows.formats import day_text
from workflows.models import (
    Audience,
    Milestone,
    MilestoneStatus,
    OnboardingProgress,
    PeerSupport,
    Playbook,
    SkipCheck,
    SkipNet,
)
from workflows.progress.changes import DAY, Changes, Onboarding, milestone, notify


def usage(p: OnboardingProgress, net: SkipNet) -> int:
    """Product events counted so far, support tickets aside."""
    tickets = set(net.support_events)
    return sum(n for name, n in p.event_counts.items() if name not in tickets)


def support_tickets(p: OnboardingProgress, playbook: Playbook) -> int:
    """Support tickets opened so far (0 without a skip net)."""
    net = playbook.skip_net
    return sum(p.event_counts.get(name, 0) for name in net.support_events) if net else 0


def plan(o: Onboarding, m: Milestone, now: datetime) -> None:
    """Plan the check of `m`, skipped `now`: on day `check_day` (the closed-won clock,
    shifted by pauses), or `after_skip_days` after the skip when that is later. None
    without a `[skip_net]`: so the runs recorded before the net, whose pinned playbooks
    cannot have one, replay unchanged (no `workflow.patched` is needed)."""
    net = o.playbook.skip_net
    if net is None:
        return
    p = o.progress
    due = max(p.clock_start + net.check_day * DAY, now + net.after_skip_days * DAY)
    p.skip_checks.append(
        SkipCheck(
            milestone_id=m.id,
            skipped_at=now,
            due_at=due,
            usage_at_skip=usage(p, net),
            planned_at=due,
        )
    )


def due(p: OnboardingProgress, now: datetime) -> list[SkipCheck]:
    """The checks due by `now`, taken out of the state (each runs once); none while
    paused or once finished."""
    if p.pause is not None or p.finished_at is not None:
        return []
    ready = [c for c in p.skip_checks if c.due_at <= now]
    p.skip_checks = [c for c in p.skip_checks if c.due_at > now]
    return ready


def next_check(p: OnboardingProgress) -> SkipCheck | None:
    """The earliest pending check (the caller knows the onboarding is running)."""
    return min(p.skip_checks, key=lambda c: c.due_at, default=None)


def judge(o: Onboarding, check: SkipCheck, peers: PeerSupport | None, now: datetime) -> Changes:
    """Decide on a due check. `peers` None: the records store could not be read, and the
    check is judged on usage alone (the audit says so). A gate no longer skipped (or
    gone from the plan) is left alone. A re-opened gate whose events were all seen is
    credited by the caller (`lifecycle.credit_observed_events`)."""
    p, out, net = o.progress, Changes(), o.playbook.skip_net
    m = milestone(p, check.milestone_id)
    if net is None or m is None or m.status is not MilestoneStatus.SKIPPED:
        return out
    used = usage(p, net) - check.usage_at_skip
    tickets = support_tickets(p, o.playbook)
    not_used = used < net.min_usage_events
    above = peers is not None and peers.median is not None and tickets > peers.median
    seen = f"{used} product event{'s' if used != 1 else ''} since the skip"
    if peers is None:
        seen += f", {tickets} support ticket(s) (peers' median unavailable: judged on usage)"
    elif peers.median is None:
        seen += f", {tickets} support ticket(s) (no open {peers.tier.value} peers)"
    else:
        seen += (
            f", {tickets} support ticket(s) against a median of {peers.median:g} over "
            f"{peers.peers} open {peers.tier.value} onboarding(s)"
        )
    if not (not_used or above):
        out.log(now, "skip_net_checked", f"{m.title}: {seen}; the skip stands")
        return out
    why = "not used since the skip" if not_used else "support tickets above peers"
    m.status, m.skip_reason = MilestoneStatus.NOT_STARTED, None
    m.starts_at, m.due_at = now, now + net.reopen_days * DAY
    m.revision += 1
    p.risk_flags.append(f"{day_text(now)}: re-opened {m.id}: {why}")
    out.log(now, "skip_reopened", f"{m.title}: {seen}; {why}: due {day_text(m.due_at)}")
    trigger = f"skip-net-{m.id}@{check.skipped_at.isoformat()}"
    notify(o, out, trigger, Audience.CSM, net.template, {"reason": why}, about=m)
    return out
