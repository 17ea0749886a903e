"""Whether an update may apply to the onboarding now: the workflow's update validators.
Each raises `ValueError` naming the field and the reason; the update is then rejected
and nothing changes (nor is it recorded in history)."""

from __future__ import annotations

from datetime import datetime

from workflows.formats import day_text
from workflows.models import (
    ContactChange,
    DealDelivery,
    OnboardingProgress,
    OwnerReassignment,
    PauseRequest,
    Playbook,
    PlaybookMigration,
    RealignmentGateDone,
    ResumeRequest,
    SkipRequest,
    StaffRole,
    SuccessPlanConfirmation,
    TierOverride,
)
from workflows.progress import migration
from workflows.progress.champion import last_day
from workflows.progress.changes import Onboarding, milestone


def deal_is_for(account_id: str, delivery: DealDelivery) -> None:
    """A deal is delivered to its own account's onboarding only."""
    if delivery.deal.account_id != account_id:
        raise ValueError(
            f"deal.account_id: {delivery.deal.account_id!r} is not this onboarding's "
            f"account {account_id!r}"
        )


def running(p: OnboardingProgress) -> None:
    """Neither cancelled nor complete."""
    if p.cancelled is not None:
        raise ValueError(f"onboarding was cancelled by {p.cancelled.by}: {p.cancelled.reason}")
    if p.finished_at is not None:
        raise ValueError("onboarding is already complete")


def pause(p: OnboardingProgress, req: PauseRequest, now: datetime) -> None:
    """Not paused already; a scheduled resume lies in the future."""
    if (current := p.pause) is not None:
        raise ValueError(f"already paused by {current.by} since {day_text(current.since)}")
    if req.resume_on is not None and req.resume_on <= now:
        raise ValueError("resume_on: must be in the future")


def resume(p: OnboardingProgress, req: ResumeRequest, now: datetime) -> None:
    """Paused or waiting for a stall decision (which takes a revised timeline); each
    revised date is an open milestone's, in the future."""
    if p.pause is None and not p.decision_required:
        raise ValueError("onboarding is neither paused nor waiting for a stall decision")
    if p.pause is None and not req.revised_due:
        raise ValueError("revised_due: a stalled onboarding resumes with a revised timeline")
    for milestone_id, due in req.revised_due.items():
        m = milestone(p, milestone_id)
        if m is None or not m.is_open:
            raise ValueError(f"revised_due.{milestone_id}: no open milestone with that id")
        if due <= now:
            raise ValueError(f"revised_due.{milestone_id}: must be in the future")


def override_tier(p: OnboardingProgress, req: TierOverride) -> None:
    """An override changes the tier."""
    if req.tier is p.tier:
        raise ValueError(f"tier: already {req.tier.value}")


def skip(p: OnboardingProgress, req: SkipRequest) -> None:
    """Only an open milestone is skipped."""
    m = milestone(p, req.milestone_id)
    if m is None or not m.is_open:
        open_ids = ", ".join(x.id for x in p.milestones if x.is_open)
        raise ValueError(f"milestone_id: no open milestone {req.milestone_id!r} (open: {open_ids})")


def realignment_gate(
    p: OnboardingProgress, playbook: Playbook, req: RealignmentGateDone, now: datetime
) -> None:
    """A gate of the open re-alignment window (rules §6.3 (docs/rules.md)), not done yet,
    reported before the window ends (a paused window has not ended)."""
    last = p.champion_windows[-1] if p.champion_windows else None
    if last is None or last.outcome != "open":
        why = f" (the last one {last.outcome})" if last is not None else ""
        raise ValueError(f"gate: no re-alignment window is open{why}; a champion change opens one")
    if last.due_at <= now and p.pause is None:
        raise ValueError(f"gate: the re-alignment window ended with {last_day(last)}")
    if req.gate not in last.gates:
        known = ", ".join(last.gates)
        raise ValueError(f"gate: unknown {req.gate!r} (gates: {known})")
    if (done := last.gates[req.gate]) is not None:
        raise ValueError(f"gate: {req.gate} already done on {day_text(done)}")


def confirm_success_plan(
    p: OnboardingProgress, req: SuccessPlanConfirmation, now: datetime
) -> None:
    """Some deadline waits for the success plan; each target date is a provisional
    gate's, in the future (rules §2 (docs/rules.md))."""
    provisional = [m.id for m in p.milestones if m.is_open and m.provisional]
    if not provisional:
        if (done := p.success_plan) is not None:
            raise ValueError(
                f"success plan: already confirmed by {done.by} on {day_text(done.at)}; "
                "revise deadlines with resume's revised_due"
            )
        raise ValueError(f"success plan: no deadline waits for it ({p.tier.value} plan)")
    for milestone_id, due in req.target_dates.items():
        m = milestone(p, milestone_id)
        if m is None or not (m.is_open and m.provisional):
            raise ValueError(
                f"target_dates.{milestone_id}: not a provisional deadline of this plan "
                f"(provisional: {', '.join(provisional)})"
            )
        if due <= now:
            raise ValueError(f"target_dates.{milestone_id}: must be in the future")


def contact_change(p: OnboardingProgress, req: ContactChange) -> None:
    """A change changes something: the same person with the same name already in that
    role is refused, so a CRM's redelivered or repeated report of a champion leaves no
    trace (rules §6.3 (docs/rules.md)). The same email with another name is a correction
    and is taken (it opens no window)."""
    new = req.contact
    if any(c.role is new.role and c == new for c in p.contacts):
        raise ValueError(
            f"contact: {new.name} <{new.email}> is already the {new.role.value}; nothing changed"
        )


def reassign(p: OnboardingProgress, req: OwnerReassignment) -> None:
    """The person leaving is the onboarding's current holder of the role (rules §7
    (docs/rules.md)): `person: ann@... is not this onboarding's csm (bob@... is)`."""
    held = p.specialist if req.role is StaffRole.IMPLEMENTATION_SPECIALIST else p.owner
    if held is None:
        raise ValueError(f"role: this onboarding has no {req.role.value} to reassign")
    if held.lower() != req.person.lower():
        raise ValueError(
            f"person: {req.person} is not this onboarding's {req.role.value} ({held} is)"
        )


def playbook_migration(o: Onboarding, req: PlaybookMigration) -> None:
    """Whether the onboarding may move to `req.playbook` (rules §2 (docs/rules.md));
    `ValueError` naming the field and the reason otherwise: `playbook: already on
    2026.12.3 (hash ...)`; `mapping.first_training: 'training_1' is not a milestone of
    playbook 2027.1`; `mapping.first_training: training_101 is not planned for
    tech_touch in playbook 2027.1`; `milestones.first_training: not in playbook 2027.1
    for tech_touch; map it`; two milestones that would become one."""
    new, p = req.playbook, o.progress
    if not new.content_hash:
        raise ValueError("playbook.content_hash: empty; send the playbook as the loader reads it")
    if new.content_hash == o.playbook.content_hash:
        raise ValueError(f"playbook: already on {migration.playbook_text(new)}")
    planned = migration.planned_ids(o, new)
    in_plan = {m.spec_id for m in p.milestones}
    for old, to in req.mapping.items():
        if new.milestone(to) is None:
            raise ValueError(f"mapping.{old}: {to!r} is not a milestone of playbook {new.version}")
        if o.playbook.milestone(old) is None:
            raise ValueError(
                f"mapping.{old}: not a milestone of playbook {o.playbook.version} (the "
                "onboarding's)"
            )
        if old in in_plan and not any(i.split(":", 1)[0] == to for i in planned):
            raise ValueError(
                f"mapping.{old}: {to} is not planned for {p.tier.value} in playbook {new.version}"
            )
    becomes: dict[str, str] = {}
    for m in p.milestones:
        to = migration.mapped_id(m, req.mapping)
        if m.is_open and to not in planned:
            raise ValueError(
                f"milestones.{m.id}: not in playbook {new.version} for {p.tier.value}; map it"
            )
        if (other := becomes.setdefault(to, m.id)) != m.id:
            raise ValueError(f"mapping: {other} and {m.id} would both become {to}")
