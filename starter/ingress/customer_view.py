"""What the customer's progress page shows of an onboarding record, and nothing more.

`customer_view(record)` copies out the customer-facing facts: the account's name, where
the onboarding stands, its phases with their milestones (who acts, done and due days),
the next step and the CSM to write to. The page's template sees only this view, so
nothing internal can reach it by mistake: no health score or band, escalations, audit
notes, ACV, tier, risk flags, pause or cancel reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.formats import day_text
from workflows.models import MilestoneStatus, OnboardingState, Owner, Phase
from workflows.models.record import OnboardingRecord
from workflows.models.status import MilestoneView

PHASE_NAMES = {
    Phase.KICKOFF: "Kickoff",
    Phase.PILOT: "Pilot",
    Phase.GO_LIVE: "Go-live",
    Phase.VALIDATION: "Validation",
    Phase.HANDOFF: "Handoff",
}
WHO = {
    Owner.CUSTOMER: "You",
    Owner.CSM: "Your CSM",
    Owner.IMPLEMENTATION: "Our implementation team",
    Owner.PRODUCT: "Our product team",
}
_SETTLED = (MilestoneStatus.DONE, MilestoneStatus.SKIPPED)


@dataclass(frozen=True)
class Step:
    """A milestone: `status` is its MilestoneStatus value (the page's style of it);
    `when` reads `Done YYYY-MM-DD`, `In progress, due YYYY-MM-DD`, `Due YYYY-MM-DD` or
    `Skipped`."""

    title: str
    who: str
    status: str
    when: str


@dataclass(frozen=True)
class Stage:
    """A phase of the plan: `state` is `done`, `current` or `upcoming`."""

    name: str
    state: str
    steps: list[Step]


@dataclass(frozen=True)
class CustomerView:
    account_name: str
    standing: str
    completion_pct: float
    stages: list[Stage]
    next_step: Step | None
    csm_email: str | None
    updated: str


def _step(m: MilestoneView) -> Step:
    if m.status is MilestoneStatus.DONE and m.done_at is not None:
        when = f"Done {day_text(m.done_at)}"
    elif m.status is MilestoneStatus.SKIPPED:
        when = "Skipped"
    elif m.status is MilestoneStatus.IN_PROGRESS:
        when = f"In progress, due {day_text(m.due_at)}"
    else:
        when = f"Due {day_text(m.due_at)}"
    return Step(title=m.title, who=WHO[m.owner], status=m.status.value, when=when)


def _standing(record: OnboardingRecord) -> str:
    """At risk reads as in progress: the customer sees where things stand, not our worry."""
    match record.state:
        case OnboardingState.PAUSED:
            return "Paused"
        case OnboardingState.COMPLETED:
            done = f" on {day_text(record.finished_at)}" if record.finished_at else ""
            return f"Completed{done}"
        case OnboardingState.CANCELLED:
            return "Ended"
    return "In progress"


def _stages(record: OnboardingRecord) -> list[Stage]:
    stages = []
    for phase in Phase:
        milestones = [m for m in record.milestones if m.phase is phase]
        if not milestones:
            continue
        if all(m.status in _SETTLED for m in milestones):
            state = "done"
        elif phase is record.phase:
            state = "current"
        else:
            state = "upcoming"
        steps = [_step(m) for m in sorted(milestones, key=lambda m: m.due_at)]
        stages.append(Stage(name=PHASE_NAMES[phase], state=state, steps=steps))
    return stages


def customer_view(record: OnboardingRecord) -> CustomerView:
    # The open milestone due first, as `workflows.rules.next_milestone` picks it for the
    # welcome email's "First up" (not one whose product waits at a phase gate).
    open_ = [m for m in record.milestones if m.status not in _SETTLED and not m.held]
    ended = record.state in (OnboardingState.COMPLETED, OnboardingState.CANCELLED)
    return CustomerView(
        account_name=record.account_name,
        standing=_standing(record),
        completion_pct=record.completion_pct,
        stages=_stages(record),
        next_step=_step(min(open_, key=lambda m: m.due_at)) if open_ and not ended else None,
        csm_email=record.owner,
        updated=day_text(record.as_of),
    )
