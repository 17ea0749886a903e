"""Running an onboarding's effects (`progress.Effect`) as activities: assigning a CSM,
sending a notification, reading the peers' support tickets for the skip net.

Workflow code: each schedules one activity with its contract's options. Each returns
what it changed as `progress.Changes` (audit entries, a notification to send next),
which the workflow applies like any state change. An activity that fails once its
retries are spent is audited; it never fails the onboarding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import contract, patches, progress
    from workflows.models import (
        Audience,
        NotificationReceipt,
        OwnerAssignment,
        OwnerRequest,
        PeerSupport,
        PeerSupportRequest,
        StaffRole,
    )
    from workflows.progress import skipnet


def together(outbox: Sequence[progress.Effect]) -> int:
    """How many of `outbox`'s first effects may run at once, in one workflow task: at
    least one. Sent one by one, each effect costs the onboarding a workflow task and the
    server a round trip; the ones that do not read what another changes need not wait.

    - A notification names the owner as it is when sent, so none joins after an owner's
      assignment: it waits for the new owner.
    - Two assignments of the same role would both read the same roster: they go one by one.
    - The skip net's check judges the state the effects before it left, and credits
      milestones: it runs alone.
    """
    roles: set[StaffRole] = set()
    for n, effect in enumerate(outbox):
        if isinstance(effect, progress.CheckSkip):
            return max(n, 1)
        if isinstance(effect, progress.AssignOwner):
            if effect.role in roles:
                return n
            roles.add(effect.role)
        elif roles:  # a notification after an assignment
            return n
    return len(outbox)


async def run_together(
    o: progress.Onboarding, wave: Sequence[progress.Effect], keep_times: progress.KeepTimes
) -> list[progress.Changes]:
    """Run `wave` (effects `together` allows) at once; what each changed, in its order."""
    if len(wave) == 1:  # awaited in place, not in a task of its own: as runs before
        # `effects-together` ran it, so their commands keep their order on replay
        return [await run(o, wave[0], keep_times)]
    return list(await asyncio.gather(*(run(o, e, keep_times) for e in wave)))


async def run(
    o: progress.Onboarding, effect: progress.Effect, keep_times: progress.KeepTimes
) -> progress.Changes:
    """Run `effect` now; what it changed comes back to be applied (`keep_times`: how a
    milestone re-opened by the skip net is credited)."""
    if isinstance(effect, progress.AssignOwner):
        return await _assign_owner(o, effect)
    if isinstance(effect, progress.CheckSkip):
        return await _check_skip(o, effect, keep_times)
    return await _send(o, effect)


async def _check_skip(
    o: progress.Onboarding, effect: progress.CheckSkip, keep_times: progress.KeepTimes
) -> progress.Changes:
    """The skip net's check (rules §6.4 (docs/rules.md)): the peers' support tickets from
    the records store, then the judgement. A store still unreadable once the activity's
    retries are spent leaves the peers out: the check is judged on usage alone."""
    peers: PeerSupport | None = None
    try:
        peers = await contract.PEER_SUPPORT_TICKETS.execute(
            PeerSupportRequest(account_id=o.deal.account_id, tier=o.progress.tier),
            PeerSupport,
            summary=f"Skip net: peers' support tickets ({effect.check.milestone_id})",
        )
    except ActivityError as err:
        workflow.logger.warning(
            "skip net: peers unreadable: %s",
            err.cause or err,
            extra={"account_id": o.deal.account_id},
        )
    now = workflow.now()
    out = skipnet.judge(o, effect.check, peers, now)
    progress.credit_observed_events(o, out, now, keep_times)
    return out


async def _assign_owner(o: progress.Onboarding, effect: progress.AssignOwner) -> progress.Changes:
    """The roster's least-loaded eligible CSM becomes the owner, or its specialist the
    implementation specialist, and is told why; when everyone eligible was full, CS
    leadership is told the gap (rules §7 (docs/rules.md)). A playbook without
    `[capacity]` (pinned before it) asks for a CSM only and alerts nobody. A roster
    without implementation specialists answers nobody: audited once, as information."""
    p, out, now = o.progress, progress.Changes(), workflow.now()
    specialist = effect.role is StaffRole.IMPLEMENTATION_SPECIALIST
    who = "implementation specialist" if specialist else "CSM"
    calendar = o.playbook.business_calendar
    try:
        result = await contract.ASSIGN_OWNER.execute(
            OwnerRequest(
                account_id=o.deal.account_id,
                workflow_id=workflow.info().workflow_id,
                tier=p.tier,
                role=effect.role,
                country=o.deal.country or calendar.country,
                time_zone=o.deal.time_zone or calendar.time_zone,
                capacity=o.playbook.capacity,
                leaving=effect.leaving,
                onboarding_number=p.onboarding_number,
            ),
            OwnerAssignment,
            summary=f"Assign {who}: {effect.reason}",
        )
    except ActivityError as err:
        kind = "specialist_unassigned" if specialist else "owner_unassigned"
        out.log(now, kind, f"assignment failed: {err.cause or err}", effect.by)
        return out
    if result.owner is None:
        # Never in histories recorded before it: no patch (rules §7).
        if not any(a.kind == "specialist_not_configured" for a in p.audit):
            out.log(now, "specialist_not_configured", result.reason)
        return out
    reassigned = effect.leaving is not None
    if reassigned:
        n = sum(1 for a in p.audit if a.kind == "reassigned")
        detail = f"{effect.role.value} {effect.leaving} -> {result.owner} ({effect.reason}): "
        out.log(now, "reassigned", detail + result.reason, effect.by)
        trigger = f"reassigned-{n}"
    elif specialist:
        out.log(now, "specialist_assigned", f"{result.owner}: {result.reason}")
        trigger = f"specialist-{len(p.tier_changes)}"
    else:
        out.log(now, "owner_assigned", f"{result.owner}: {result.reason}")
        trigger = f"owner-{len(p.tier_changes)}"
    if specialist:
        p.specialist = result.owner
    else:
        p.owner = result.owner
    variables = {"reason": effect.reason}
    if not specialist:
        progress.notify(o, out, trigger, Audience.CSM, "owner_assigned", variables)
    elif (c := o.playbook.capacity) is not None:
        audience = Audience.IMPLEMENTATION_SPECIALIST
        progress.notify(o, out, trigger, audience, c.specialist_template, variables)
    if result.over_capacity:
        out.log(
            now, "over_capacity", f"{result.owner} is {result.over_capacity} over: {result.reason}"
        )
        if (c := o.playbook.capacity) is not None:
            alert = {
                "reason": result.reason,
                "assignee": result.owner,
                "role": effect.role.value,
                "over": str(result.over_capacity),
            }
            leadership = Audience.CS_LEADERSHIP
            progress.notify(o, out, f"over-{trigger}", leadership, c.leadership_template, alert)
    return out


def _nudges_only() -> bool:
    """A pause holds back by template kind (patched: runs that began before held back
    every message to the customer, and must replay so)."""
    return patches.has(patches.Folded.PAUSE_HOLDS_NUDGES_ONLY)


async def _send(o: progress.Onboarding, effect: progress.Notify) -> progress.Changes:
    """Send the notification, unless a pause holds it back (rules §5 (docs/rules.md))."""
    out = progress.Changes()
    if progress.held_back(o, effect, _nudges_only):
        return out
    note = progress.notification(o, effect, workflow.info().workflow_id, workflow.now())
    try:
        await contract.NOTIFY.execute(
            note,
            NotificationReceipt,
            summary=f"Notify {effect.audience.value}: {effect.template_id} ({effect.trigger})",
        )
    except ActivityError as err:
        detail = f"{effect.template_id}: {err.cause or err}"
        out.log(workflow.now(), "notification_failed", detail)
    return out
