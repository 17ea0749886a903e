"""The discrete-event simulation of onboardings (docs/rules.md, *Simulating a playbook
change*): no server, no activities; the workflow's own state changes, called as its loop
calls them.

Per onboarding, `workflows.progress.begin` makes the plan; then, in time order, either
the customer's next report (a priority queue of `model.Step`s) is recorded with
`record_report`, as the `milestone_reached` signal does, or the loop's next wake-up
(`next_wake`) comes; after either, `advance` runs what came due, as the workflow's loop
does. The effects the changes ask for are counted instead of run: a notification is
kept (`Notice`), unless a pause holds it back (`held_back`); assigning an owner sets a
stand-in owner. A tier change re-draws the customer's journey on the new plan, and an
escalation that notifies one of the model's response audiences may move the customer
(`model.respond`).

Randomness is per account: `random.Random` seeded from the seed and the account id (and
a tier change's number, or an escalation's key), so two playbooks run on the same
cohort see the same customers, and differ only where the playbooks make them differ.
"""

from __future__ import annotations

import copy
import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import workflows.progress as rule
from starter.simulation.model import BehaviourModel, Step, journey, respond
from workflows import rules
from workflows.models import (
    Audience,
    ClosedWonDeal,
    MilestoneReport,
    OnboardingProgress,
    Playbook,
    StaffRole,
)

DAY = timedelta(days=1)
# The Alarm's shortest timer (workflows/alarm.py): a deadline already due wakes it then.
SHORTEST_TIMER = timedelta(seconds=1)
# The stand-in owner of an onboarding that is assigned one (the simulator is not about who).
OWNER = "simulated-csm"


def _newest() -> bool:
    """Every patched rule as a new onboarding runs it (`workflow.patched` is true)."""
    return True


@dataclass(frozen=True)
class Notice:
    """A notification the onboarding sent: when, why (`trigger`: a ladder step's key for
    an escalation), to whom and which template."""

    at: datetime
    trigger: str
    audience: Audience
    template_id: str
    escalation: bool


@dataclass
class Outcome:
    """One onboarding after the simulation: its final state, what it sent, how many
    owners it was assigned and the reports its customer made (in order)."""

    deal: ClosedWonDeal
    progress: OnboardingProgress
    notices: list[Notice] = field(default_factory=list)
    assignments: int = 0
    reports: list[MilestoneReport] = field(default_factory=list)
    until: datetime | None = None


def rng_for(seed: int, account_id: str, *more: object) -> random.Random:
    """The account's own random stream (and a tier change's or an escalation's)."""
    return random.Random(":".join(str(x) for x in (seed, account_id, *more)))


class _Customer:
    """The customer's reports still to come, as a priority queue; a re-drawn journey
    replaces them (older entries are dropped when they come up)."""

    def __init__(self) -> None:
        self.queue: list[tuple[datetime, int, int, Step]] = []
        self.version = 0
        self.seq = 0

    def plan(self, steps: list[Step]) -> None:
        self.version += 1
        for step in steps:
            self.push(step)

    def push(self, step: Step) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (step.at, self.seq, self.version, step))

    def next_at(self, progress: OnboardingProgress) -> datetime | None:
        """When the next report comes; reports of an older journey, and of a milestone
        no longer open in the plan, are dropped (the customer has nothing to report)."""
        while self.queue:
            _, _, version, step = self.queue[0]
            m = rule.milestone(progress, step.milestone_id)
            if version == self.version and m is not None and m.is_open:
                return step.at
            heapq.heappop(self.queue)
        return None

    def pop(self) -> Step:
        return heapq.heappop(self.queue)[3]


def simulate(
    deal: ClosedWonDeal,
    playbook: Playbook,
    model: BehaviourModel,
    seed: int,
    days: float,
) -> Outcome:
    """One onboarding from its closed-won moment for `days` days (or until it completes)."""
    now = deal.close_date
    o, changes = rule.begin(deal, playbook, None, now, _newest)
    return _run(o, changes, now, days, model, seed, rng_for(seed, deal.account_id))


def simulate_from(
    o: rule.Onboarding, now: datetime, model: BehaviourModel, seed: int, days: float
) -> Outcome:
    """A running onboarding as it stands at `now` (a copy: `o` is left as it is), on its
    playbook, for `days` more days (or until it completes): its customer's journey is
    drawn on the open milestones from `now` (the same for any playbook, from the seed
    and the account), so one onboarding on two playbook versions differs only where
    they make it differ (a migration's dry run)."""
    o = rule.Onboarding(o.deal, o.playbook, copy.deepcopy(o.progress))
    changes = rule.Changes(phase=rules.current_phase(o.progress.milestones))
    rng = rng_for(seed, o.deal.account_id, "from", now.isoformat())
    return _run(o, changes, now, days, model, seed, rng)


def _run(
    o: rule.Onboarding,
    changes: rule.Changes,
    now: datetime,
    days: float,
    model: BehaviourModel,
    seed: int,
    rng: random.Random,
) -> Outcome:
    deal, playbook, end = o.deal, o.playbook, now + days * DAY
    outcome, outbox = Outcome(deal, o.progress, until=end), _Outbox()
    customer = _Customer()
    customer.plan(journey(model, playbook, o.progress.tier, o.progress.milestones, now, rng))
    tiers_seen = len(o.progress.tier_changes)
    phase = changes.phase
    outbox.apply(o, changes)
    while True:
        changes = rule.advance(o, phase, now, _newest, _newest)
        phase = changes.phase
        outbox.apply(o, changes)
        outbox.send(o, outcome, now)
        p = o.progress
        if p.finished_at is not None:
            break
        if len(p.tier_changes) != tiers_seen:  # a new plan: the customer's journey on it
            tiers_seen = len(p.tier_changes)
            rng = rng_for(seed, deal.account_id, "tier", tiers_seen)
            customer.plan(journey(model, playbook, p.tier, p.milestones, now, rng))
        for key in changes.fired:
            _maybe_respond(o, model, seed, customer, changes, key, now)
        wake = rule.next_wake(o)
        timer = max(wake[0], now + SHORTEST_TIMER) if wake is not None else None
        report_at = customer.next_at(p)
        if report_at is not None and (timer is None or report_at < timer):
            now = report_at
            if now > end:
                break
            step = customer.pop()
            report = MilestoneReport(
                milestone_id=step.milestone_id,
                event_id=f"sim-{len(outcome.reports)}",
                status=step.status,
                at=now,
                reported_by=step.by,
            )
            outcome.reports.append(report)
            changes = rule.Changes()
            rule.record_report(o, changes, report, now)
            outbox.apply(o, changes)
        elif timer is not None and timer <= end:
            now = timer
        else:
            break
    return outcome


def _maybe_respond(
    o: rule.Onboarding,
    model: BehaviourModel,
    seed: int,
    customer: _Customer,
    changes: rule.Changes,
    key: str,
    now: datetime,
) -> None:
    """An escalation that notified a response audience may move the customer: their
    next milestone (`rules.next_milestone`) reached a few days later."""
    audiences = {
        e.audience for e in changes.effects if isinstance(e, rule.Notify) and e.trigger == key
    }
    if not audiences & set(model.response.audiences):
        return
    after = respond(model, rng_for(seed, o.deal.account_id, key))
    target = rules.next_milestone(o.progress.milestones)
    if after is not None and target is not None:
        customer.push(Step(now + after * DAY, target.id, by=f"simulated customer, after {key}"))


class _Outbox:
    """What the workflow's `_apply` and `_send_outbox` do with `Changes`, counted: the
    audit kept and the effects queued; sent after the loop's `advance`, each
    notification noted (unless a pause holds it back), an owner assigned."""

    def __init__(self) -> None:
        self.effects: list[rule.Effect] = []
        self.fired: set[str] = set()

    def apply(self, o: rule.Onboarding, changes: rule.Changes) -> None:
        o.progress.audit += changes.audit
        self.effects += changes.effects
        self.fired.update(changes.fired)

    def send(self, o: rule.Onboarding, outcome: Outcome, now: datetime) -> None:
        p = o.progress
        for effect in self.effects:
            if isinstance(effect, rule.Notify):
                if not rule.held_back(o, effect, _newest):
                    escalation = effect.trigger in self.fired
                    outcome.notices.append(
                        Notice(now, effect.trigger, effect.audience, effect.template_id, escalation)
                    )
            elif isinstance(effect, rule.AssignOwner):  # the skip net's checks never come
                outcome.assignments += 1
                if effect.role is StaffRole.CSM:
                    p.owner = OWNER
                else:
                    p.specialist = OWNER
        self.effects.clear()
        self.fired.clear()
