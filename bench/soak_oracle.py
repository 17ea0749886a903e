"""The soak's oracle: what the rules say one onboarding does, given what was sent to it.

`Replay` is the "expected" side of every comparison `bench/soak_check.py` makes:
milestones done, escalations fired (or superseded), the notifications' idempotency keys
and whether the onboarding completed, worked out apart from the workflow's own code.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Literal

from workflows import rules
from workflows.event_mapping import awaited_events
from workflows.models import (
    Audience,
    ClosedWonDeal,
    MessageKind,
    Milestone,
    MilestoneStatus,
    OnboardingProgress,
    Pause,
    Playbook,
    Tier,
    TierChange,
    workflow_id_for,
)
from workflows.programs import next_session
from workflows.progress.pause import shift_for_pause

DAY = timedelta(days=1)

# An escalation: tier, step id, milestone id, superseded. Not its due time: one counted
# from an override or a resume depends on when the worker took it.
Escalated = tuple[str, str, str | None, bool]


class Replay:
    """What the rules say one onboarding does, given what was sent to it and when.

    What is not under test comes from the project (`rules.ladder_steps`, `rules.replan`,
    `progress.shift_for_pause`); what is, the workflow's effects, is formulated here
    independently of `workflows/progress/`, by effect keys only: run every ladder step
    due by `now` (a recurring step whose next repeat is due too is only recorded,
    superseded), re-plan on a tier change (recording the new ladder's passed steps as
    superseded), credit milestones, and collect the notification keys. The soak sends
    each account's messages in a fixed order (start; then pause, resume or override;
    then progress), no catch-up step comes due within 12 hours of the run, and the
    accounts whose steps do come due during it are sent nothing: so the answer does not
    depend on when exactly the worker took each message. Pauses last seconds: their
    14-day owner reminder never comes due.
    """

    def __init__(self, playbook: Playbook, deal: ClosedWonDeal, now: datetime) -> None:
        self.playbook = playbook
        self.workflow_id = workflow_id_for(deal.account_id)
        decision = rules.assign_tier(deal, playbook.tier_rule)
        self.progress = OnboardingProgress(
            tier=decision.tier,
            tier_decision=decision,
            milestones=rules.build_plan(playbook, decision.tier, deal.close_date),
            contacts=deal.contacts,
            success_criteria=deal.success_criteria,
            started_at=now,
            clock_start=deal.close_date,
            last_progress_at=deal.close_date,
        )
        self.escalations: Counter[Escalated] = Counter()
        self.notifications: set[str] = set()
        self.owner = False
        self.owner_wanted = decision.tier is not Tier.SELF_SERVE
        self.counts: Counter[str] = Counter()
        self.seen: set[str] = set()
        self.invited: set[str] = set()
        self._notify("welcome", Audience.CUSTOMER, "welcome")
        self._loop(now)

    # ------------------------------------------------------------------ what is sent

    def pause(self, now: datetime) -> None:
        self.progress.pause = Pause(by="soak", reason="soak", since=now)
        self.progress.decision_required = False
        self._loop(now)

    def resume(self, now: datetime) -> None:
        """Open deadlines and clocks shift by the time paused (the project's own
        `progress.shift_for_pause`: the arithmetic is not what the soak checks)."""
        # The soak's deals name no calendar: the playbook's is theirs.
        shift_for_pause(self.progress, now, self.playbook.business_calendar.of(None, None))
        self._loop(now)

    def override(self, tier: Tier, now: datetime) -> None:
        self._change_tier(tier, now, "override")
        self._loop(now)

    def product_event(self, name: str, event_id: str, now: datetime) -> None:
        """Counted once per messageId, and only while an open milestone awaits it (the
        ingress drops the rest before they reach the workflow)."""
        awaited = awaited_events(self.playbook, self.progress.milestones)
        if self.progress.finished_at or name not in awaited or event_id in self.seen:
            return
        self.seen.add(event_id)
        self.counts[name] += 1
        self._credit(now)
        self._loop(now)

    def milestone_reached(self, milestone_id: str, event_id: str, now: datetime) -> None:
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        if (m := self._milestone(milestone_id)) is not None:
            self._reach(m, now)
        self._loop(now)

    def check(self, now: datetime) -> None:
        """Everything due by `now` (the end of the run)."""
        self._loop(now)

    @property
    def done(self) -> set[str]:
        return {m.id for m in self.progress.milestones if m.status is MilestoneStatus.DONE}

    def manual_milestones(self) -> list[str]:
        """Open milestones of the plan no product event completes (reported by people)."""
        return [
            m.id
            for m in self.progress.milestones
            if m.is_open and (s := self.playbook.milestone(m.id)) and s.completed_by is None
        ]

    # ------------------------------------------------------------------ the rules

    def _loop(self, now: datetime) -> None:
        """One turn of the workflow's loop: what came due, then the owner assignment."""
        self._advance(now)
        if self.owner_wanted and not self.owner:
            self.owner = True
            self._notify(f"owner-{len(self.progress.tier_changes)}", Audience.CSM, "owner_assigned")

    def _advance(self, now: datetime) -> None:
        p = self.progress
        if p.finished_at is not None:
            return
        p.health_entries = rules.health_entries(p, self.playbook, now)
        while due := [s for s in rules.ladder_steps(p, self.playbook) if s.at <= now]:
            step = due[0]
            repeat = step.step.repeat_days
            if repeat and step.at + repeat * DAY <= now:
                self._record(step, superseded=True)
            else:
                self._escalate(step, now)
        self._invite(now)
        if rules.current_phase(p.milestones) is None:
            p.finished_at = now
            self._notify("handoff", Audience.CUSTOMER, "handoff_complete")
            if self.owner:
                self._notify("handoff", Audience.CSM, "handoff_complete")

    def _invite(self, now: datetime) -> None:
        """Each group program serving the tier invites once, `invite_after_days` after
        closed-won on the SLA clock (none while paused), to the first session at least
        `notice_hours` ahead (`workflows.programs.next_session`: its arithmetic is not
        what the soak checks)."""
        p = self.progress
        if p.pause is not None:
            return
        for key, program in self.playbook.programs.items():
            due = p.clock_start + program.invite_after_days * DAY
            if p.tier not in program.tiers or key in self.invited or due > now:
                continue
            self.invited.add(key)
            session = next_session(program, now + timedelta(hours=program.notice_hours))
            stamp = f"{session.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            self._notify(f"program-{key}-{stamp}", Audience.CUSTOMER, program.template)

    def _escalate(self, due: rules.DueStep, now: datetime) -> None:
        p = self.progress
        self._record(due, superseded=False)
        for action in due.step.actions:
            if action.notify is not None:
                self._notify(due.key, action.notify, action.template)
            elif action.change_tier is not None and action.change_tier is not p.tier:
                self._change_tier(action.change_tier, now, "automatic")
            elif action.adopt_fallback_criteria:
                p.success_criteria = [self.playbook.fallback_success_criterion]

    def _change_tier(
        self, tier: Tier, now: datetime, kind: Literal["automatic", "override"]
    ) -> None:
        p = self.progress
        old = p.tier
        p.tier_changes.append(
            TierChange(at=now, from_tier=old, to_tier=tier, kind=kind, by="soak", reason="soak")
        )
        p.tier = tier
        p.milestones = rules.replan(self.playbook, p.milestones, tier, now)
        self._credit(now)  # the stall clock stays: a tier change is not the customer's move
        while passed := [s for s in rules.ladder_steps(p, self.playbook) if s.at <= now]:
            for due in passed:
                self._record(due, superseded=True)
        if tier.rank > old.rank and not self.owner:
            self.owner_wanted = True
        self._notify(f"tier-change-{len(p.tier_changes)}", Audience.CUSTOMER, "tier_changed")

    def _record(self, due: rules.DueStep, superseded: bool) -> None:
        self.progress.fired.append(due.key)
        self.escalations[(self.progress.tier.value, due.step.id, due.milestone_id, superseded)] += 1

    def _milestone(self, milestone_id: str) -> Milestone | None:
        return next((m for m in self.progress.milestones if m.id == milestone_id), None)

    def _credit(self, now: datetime) -> None:
        for m in self.progress.milestones:
            spec = self.playbook.milestone(m.id)
            rule = spec.completed_by if spec else None
            if m.is_open and rule and sum(self.counts[e] for e in rule.events) >= rule.count:
                self._reach(m, now)

    def _reach(self, m: Milestone, now: datetime) -> None:
        p = self.progress
        if not m.is_open:
            return
        m.status, m.done_at, m.started_at = MilestoneStatus.DONE, now, m.started_at or now
        spec = self.playbook.milestone(m.id)
        if spec is not None and spec.on_done:
            self._notify(f"reached-{m.id}", Audience.CUSTOMER, spec.on_done)
        p.last_progress_at = max(p.last_progress_at, now)
        p.progress_epoch += 1
        p.decision_required = False

    def _notify(self, trigger: str, audience: Audience, template: str | None) -> None:
        kind = self.playbook.templates[template].kind if template else None
        if (
            self.progress.pause is not None
            and audience in (Audience.CUSTOMER, Audience.EXECUTIVE_SPONSOR)
            and kind in (MessageKind.NUDGE, MessageKind.ESCALATION)
        ):
            return  # a formal pause holds back nudges and escalations to the customer
        self.notifications.add(f"{self.workflow_id}:{trigger}:{audience.value}")
