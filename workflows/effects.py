"""Running an onboarding's effects (`progress.Effect`) as activities: assigning a CSM,
sending a notification.

Workflow code: each schedules one activity with its contract's options. Each returns
what it changed as `progress.Changes` (audit entries, a notification to send next),
which the workflow applies like any state change. An activity that fails once its
retries are spent is audited; it never fails the onboarding.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import contract, progress
    from workflows.models import Audience, NotificationReceipt, OwnerAssignment, OwnerRequest


# workflow.patched() id of "a pause holds back nudges and escalations to the customer,
# not celebrations" (added 2026-12-01).
PAUSE_HOLDS_NUDGES_ONLY = "pause-holds-nudges-only-2026-12-01"


async def run(o: progress.Onboarding, effect: progress.Effect) -> progress.Changes:
    """Run `effect` now; what it changed comes back to be applied."""
    if isinstance(effect, progress.AssignOwner):
        return await _assign_owner(o, effect)
    return await _send(o, effect)


async def _assign_owner(o: progress.Onboarding, effect: progress.AssignOwner) -> progress.Changes:
    """The roster's CSM becomes the owner and is told why (rules §1 (docs/rules.md))."""
    p, out = o.progress, progress.Changes()
    try:
        result = await contract.ASSIGN_OWNER.execute(
            OwnerRequest(
                account_id=o.deal.account_id, workflow_id=workflow.info().workflow_id, tier=p.tier
            ),
            OwnerAssignment,
            summary=f"Assign CSM: {effect.reason}",
        )
    except ActivityError as err:
        out.log(workflow.now(), "owner_unassigned", f"assignment failed: {err.cause or err}")
        return out
    p.owner = result.owner
    out.log(workflow.now(), "owner_assigned", f"{result.owner}: {result.reason}")
    trigger = f"owner-{len(p.tier_changes)}"
    variables = {"reason": effect.reason}
    progress.notify(o, out, trigger, Audience.CSM, "owner_assigned", variables)
    return out


def _nudges_only() -> bool:
    """A pause holds back by template kind (patched: runs that began before held back
    every message to the customer, and must replay so)."""
    return workflow.patched(PAUSE_HOLDS_NUDGES_ONLY)


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
