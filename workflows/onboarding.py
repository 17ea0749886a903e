"""`AccountOnboarding`: one closed-won account, from contract to handoff.

The workflow orchestrates time and messages; the rules live in `workflows.rules`. Every
SLA is a deadline in state: one loop sleeps until the earliest one (or a message), then
runs what came due. Pause, resume, tier change and re-planning are state changes, so a
paused clock is simply not armed.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import contract, event_mapping, rules
    from workflows import search_attributes as sa
    from workflows.event_mapping import awaited_events, event_names
    from workflows.models import (
        NAME_CHARS,
        TEXT_CHARS,
        Action,
        Audience,
        AuditEntry,
        AwaitedEvents,
        CancelRequest,
        ClosedWonDeal,
        ContactChange,
        ContactRole,
        DealAcceptance,
        DealDelivery,
        DealLost,
        EarlyFacts,
        Escalation,
        Health,
        HealthBand,
        Milestone,
        MilestoneReport,
        MilestoneStatus,
        MilestoneView,
        Notification,
        NotificationReceipt,
        OnboardingInput,
        OnboardingProgress,
        OnboardingState,
        OnboardingStatus,
        OwnerAssignment,
        OwnerRequest,
        Pause,
        PauseRequest,
        Phase,
        ProductEventBatch,
        RejectedMessage,
        ResumeRequest,
        SkipRequest,
        SuccessCriteriaRequest,
        Tier,
        TierChange,
        TierOverride,
        Trigger,
        TtvBreakdown,
    )

DAY = timedelta(days=1)
# Bounds that keep the state (and so continue-as-new payloads) small over 120 days.
MAX_SEEN_EVENT_IDS = 10_000
MAX_REJECTED = 200
# Event ids longer than this are kept as their digest (a client may send any length).
EVENT_ID_CHARS = 64
# workflow.patched() id of "continue-as-new at `max_history_events`" (added 2026-11-22).
CAN_AT_EVENT_COUNT = "continue-as-new-at-event-count"
# workflow.patched() id of "a product event credits its milestone when it happened, not
# when it arrived" (added 2026-11-30).
CREDIT_AT_EVENT_TIME = "credit-at-event-time"


class StaleClockError(RuntimeError):
    """Fails the workflow task (never the workflow): the task is retried from history."""


@dataclass
class _Notify:
    trigger: str
    audience: Audience
    template_id: str
    variables: dict[str, str]


@dataclass
class _AssignOwner:
    reason: str


def _date(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def _score(health: Health) -> str:
    return f"{health.score:g}" if health.score is not None else "n/a"


@workflow.defn(name=contract.WORKFLOW_TYPE)
class AccountOnboarding:
    @workflow.init
    def __init__(self, input: OnboardingInput) -> None:
        self.account_id = input.account_id
        self.playbook = input.playbook
        self.delivery_id = input.delivery_id
        self.deal_wait_days = input.deal_wait_days
        self.max_history_events = input.max_history_events
        self.outbox: list[_Notify | _AssignOwner] = []
        self.changed = False
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None
        self._published: dict[str, object] = {}
        self._phase: Phase | None = None
        # Until the deal arrives (product events came first) facts wait in `early`.
        self.early: EarlyFacts | None = None
        self._deal: ClosedWonDeal | None = None
        if input.progress is not None and input.deal is not None:  # continued-as-new
            self._deal, self.progress = input.deal, input.progress
            self._phase = rules.current_phase(self.progress.milestones)
        elif input.deal is not None:
            self._deal = input.deal
            self._begin(workflow.now())
        else:
            self.early = input.early or EarlyFacts(since=workflow.now())
        self._seen_ids = set(self._seen_list())

    @property
    def deal(self) -> ClosedWonDeal:
        assert self._deal is not None, "no closed-won deal yet"
        return self._deal

    # ------------------------------------------------------------------ the process

    @workflow.run
    async def run(self, input: OnboardingInput) -> OnboardingStatus:
        if self._deal is None:
            await self._wait_for_deal()
        while True:
            self.changed = False
            self._advance(workflow.now())
            self._publish()
            await self._send_outbox()
            self._publish()
            if self.progress.finished_at is not None and not self.outbox:
                break
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry_over())
            await self._sleep_until_due_or_message()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status()

    def _history_is_long(self) -> bool:
        """Time to continue-as-new: the server suggests it, or the history has reached the
        input's `max_history_events` (so product events can never grow it unbounded)."""
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        # Patched: runs that began before this rule must replay as they ran (see README).
        return workflow.patched(CAN_AT_EVENT_COUNT) and (
            info.get_current_history_length() >= self.max_history_events
        )

    def _carry_over(self) -> OnboardingInput:
        """The whole state, as the input of the next run (continue-as-new). Nothing
        travels twice: once begun, the contacts and success criteria live in `progress`,
        and the milestones done before tracking are in its plan."""
        deal = self._deal
        if deal is not None:
            deal = deal.model_copy(
                update={"contacts": [], "success_criteria": [], "completed_milestones": []}
            )
        return OnboardingInput(
            account_id=self.account_id,
            deal=deal,
            playbook=self.playbook,
            delivery_id=self.delivery_id,
            deal_wait_days=self.deal_wait_days,
            max_history_events=self.max_history_events,
            early=self.early,
            progress=self.progress if self._deal is not None else None,
        )

    async def _wait_for_deal(self) -> None:
        """Product events came before the closed-won deal: keep them until it arrives.

        Ends the run (failed, so a later deal may start the account afresh) when no deal
        comes within `deal_wait_days`; the failure records what had arrived.
        """
        while self.early is not None:
            self.changed = False
            until = self._waiting_until()
            self._publish_waiting(until)
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry_over())
            if workflow.now() >= until:
                counts = ", ".join(f"{k} x{v}" for k, v in sorted(self.early.event_counts.items()))
                raise ApplicationError(
                    f"no closed-won deal for account {self.account_id} within "
                    f"{self.deal_wait_days} days; product events recorded: {counts or 'none'}",
                    self.early.model_dump(mode="json"),
                    type=contract.NO_CLOSED_WON_DEAL,
                    non_retryable=True,
                )
            await self._sleep_until_due_or_message()

    def _begin(self, now: datetime) -> None:
        """Assign the tier, build the plan, credit milestones reached before we tracked."""
        decision = rules.assign_tier(self.deal, self.playbook.tier_rule)
        closed = self.deal.close_date
        early, self.early = self.early, None
        self.progress = OnboardingProgress(
            tier=decision.tier,
            tier_decision=decision,
            milestones=rules.build_plan(self.playbook, decision.tier, closed),
            contacts=self.deal.contacts,
            success_criteria=self.deal.success_criteria,
            started_at=now,
            clock_start=closed,
            last_progress_at=closed,
        )
        self._audit(
            now, "started", f"playbook {self.playbook.version} ({self.playbook.content_hash})"
        )
        self._audit(now, "tier_assigned", f"{decision.tier.value}: {decision.reason}")
        for done in self.deal.completed_milestones:
            m = self._milestone(done.milestone_id)
            if m is None:
                self._reject(now, "completed_milestones", done.milestone_id, "not in this plan")
            else:
                self._reach(m, MilestoneStatus.DONE, min(done.at, now), "import", now)
        if early is not None:
            self._apply_early(early, now)
        self._phase = rules.current_phase(self.progress.milestones)
        if decision.tier is not Tier.SELF_SERVE:
            self.outbox.append(_AssignOwner(f"new {decision.tier.value} onboarding"))
        self._notify("welcome", Audience.CUSTOMER, "welcome")

    def _advance(self, now: datetime) -> None:
        """Run everything that has come due by `now`, in the order it came due."""
        p = self.progress
        if p.finished_at is not None:
            return
        if p.pause is not None:
            self._paused_duties(now)
        while due := [s for s in rules.ladder_steps(p, self.playbook) if s.at <= now]:
            step = due[0]
            if stale := rules.passed_over(step, now):
                self._record_step(step, now, superseded=True, repeats=stale)
            else:
                self._escalate(step, now)
        phase = rules.current_phase(p.milestones)
        if phase != self._phase:
            self._phase = phase
            if phase is not None:
                self._audit(now, "phase_started", phase.value)
        if phase is None:
            self._finish(now)

    def _finish(self, now: datetime) -> None:
        p = self.progress
        p.finished_at = now
        ttv = self._ttv()
        health = self._health(now)
        self._audit(
            now,
            "completed",
            f"handoff done; health {health.score}, TTV {ttv.total_days} days, "
            f"completion {rules.completion_pct(p.milestones)}%",
        )
        variables = {"days": str(ttv.total_days if ttv.total_days is not None else "n/a")}
        self._notify("handoff", Audience.CUSTOMER, "handoff_complete", variables)
        if p.owner:
            self._notify("handoff", Audience.CSM, "handoff_complete", variables)

    # ------------------------------------------------------------------ the ladder

    def _escalate(self, due: rules.DueStep, now: datetime) -> None:
        p, step = self.progress, due.step
        self._record_step(due, now, superseded=False)
        subject = self._milestone(due.milestone_id) if due.milestone_id else None
        what = f"{step.when.value} ({subject.title})" if subject else step.when.value
        self._audit(now, "escalation", f"{p.tier.value}.{step.id}: {what}")
        workflow.logger.info(
            "escalation %s fired", due.key, extra={"account_id": self.deal.account_id}
        )
        days = str(step.days) if step.when is not Trigger.MILESTONE_OVERDUE else "0"
        for action in step.actions:
            self._act(action, due, days, now)

    def _act(self, action: Action, due: rules.DueStep, days: str, now: datetime) -> None:
        p = self.progress
        if action.notify is not None and action.template is not None:
            about = self._milestone(due.milestone_id) if due.milestone_id else None
            self._notify(due.key, action.notify, action.template, {"days": days}, about)
        elif action.change_tier is not None and action.change_tier is not p.tier:
            reason = f"ladder {due.step.id}: {due.step.when.value} after {days} days"
            self._change_tier(action.change_tier, "automatic", "escalation ladder", reason, now)
        elif action.require_decision:
            p.decision_required = True
            self._audit(
                now, "decision_required", "stalled: resume with a revised timeline, or pause"
            )
        elif action.flag is not None:
            suffix = f" ({due.milestone_id})" if due.milestone_id else ""
            p.risk_flags.append(f"{_date(now)}: {action.flag}{suffix}")
        elif action.adopt_fallback_criteria:
            p.success_criteria = [self.playbook.fallback_success_criterion]
            self._audit(now, "success_criteria", f"fallback adopted: {p.success_criteria[0]}")

    def _change_tier(
        self,
        tier: Tier,
        kind: Literal["automatic", "override"],
        by: str,
        reason: str,
        now: datetime,
    ) -> None:
        """A designed transition (rules §4 (docs/rules.md)): re-plan what is left, keep
        earned credit."""
        p = self.progress
        old = p.tier
        p.tier_changes.append(
            TierChange(at=now, from_tier=old, to_tier=tier, kind=kind, by=by, reason=reason)
        )
        p.tier = tier
        p.milestones = rules.replan(self.playbook, p.milestones, tier, now)
        self._credit_observed_events(now)
        self._audit(now, "tier_changed", f"{old.value} -> {tier.value} ({kind}): {reason}", by)
        # A tier change is movement: the new ladder's stall clock starts now, and its
        # steps whose time had already passed are recorded, not fired.
        p.last_progress_at = now
        p.progress_epoch += 1
        while passed := [s for s in rules.ladder_steps(p, self.playbook) if s.at <= now]:
            for due in passed:
                self._record_step(due, now, superseded=True)
        if tier.rank > old.rank and p.owner is None:
            self.outbox.append(_AssignOwner(f"upgraded to {tier.value}"))
        trigger = f"tier-change-{len(p.tier_changes)}"
        self._notify(trigger, Audience.CUSTOMER, "tier_changed", {"reason": reason})

    def _record_step(
        self, due: rules.DueStep, now: datetime, superseded: bool, repeats: int = 1
    ) -> None:
        """Mark a ladder step done (so it never runs twice) and keep it for the report;
        `repeats` occurrences of a recurring step from `due` on are recorded as one."""
        self.progress.fired.append(due.later(repeats - 1).key)
        self.progress.escalations.append(
            Escalation(
                at=now,
                due_at=due.at,
                repeats=repeats,
                tier=self.progress.tier,
                step_id=due.step.id,
                trigger=due.step.when,
                milestone_id=due.milestone_id,
                actions=[] if superseded else [a.describe() for a in due.step.actions],
                superseded=superseded,
            )
        )

    # ------------------------------------------------------------------ pause

    def _paused_duties(self, now: datetime) -> None:
        pause = self.progress.pause
        assert pause is not None
        if pause.resume_on is not None:
            if now >= pause.resume_on:
                self._resume(ResumeRequest(by="schedule", reason="scheduled resume"), now)
            return
        last = pause.last_reminder_at or pause.since
        if now >= last + self.playbook.pause_reminder_days * DAY:
            pause.last_reminder_at = now
            variables = {"due": _date(pause.since), "reason": pause.reason}
            self._notify(
                f"pause-reminder@{now.isoformat()}", Audience.CSM, "pause_reminder", variables
            )

    def _resume(self, req: ResumeRequest, now: datetime) -> None:
        p = self.progress
        if p.pause is not None:
            paused_for = now - p.pause.since
            p.paused_days_total += paused_for / DAY
            p.clock_start += paused_for
            if p.last_progress_at <= p.pause.since:
                p.last_progress_at += paused_for
            for m in p.milestones:
                if m.is_open:
                    m.starts_at += paused_for
                    m.due_at += paused_for
            self._audit(now, "resumed", f"after {paused_for / DAY:.1f} days paused", req.by)
            p.pause = None
        if p.decision_required:
            # Choosing a revised timeline is movement: the stall clock starts again.
            p.decision_required = False
            p.last_progress_at = now
            p.progress_epoch += 1
            self._audit(now, "decision", "resume with a revised timeline", req.by)
        for milestone_id, due in req.revised_due.items():
            revised = self._milestone(milestone_id)
            assert revised is not None
            revised.due_at, revised.revision = due, revised.revision + 1
            self._audit(now, "deadline_revised", f"{revised.title}: due {_date(due)}", req.by)

    # ------------------------------------------------------------------ milestones

    def _milestone(self, milestone_id: str | None) -> Milestone | None:
        return next((m for m in self.progress.milestones if m.id == milestone_id), None)

    def _reach(
        self, m: Milestone, status: MilestoneStatus, at: datetime, by: str, now: datetime
    ) -> None:
        """Record progress on a milestone, in whatever order it arrives."""
        p = self.progress
        if not m.is_open or (status is MilestoneStatus.IN_PROGRESS and m.started_at):
            return
        m.started_at = m.started_at or at
        m.status = status
        if status is MilestoneStatus.DONE:
            m.done_at = at
            self._audit(now, "milestone_reached", f"{m.title} ({_date(at)})", by)
            spec = self.playbook.milestone(m.id)
            if spec is not None and spec.on_done:
                self._notify(f"reached-{m.id}", Audience.CUSTOMER, spec.on_done, about=m)
        else:
            self._audit(now, "milestone_started", m.title, by)
        p.last_progress_at = max(p.last_progress_at, at)
        p.progress_epoch += 1
        p.decision_required = False

    def _times_kept(self) -> bool:
        """Product events credit milestones when they happened (patched: runs that began
        before this rule credited them on arrival, and must replay so)."""
        return workflow.patched(CREDIT_AT_EVENT_TIME)

    def _credit_observed_events(self, now: datetime) -> None:
        """Milestones whose completing product events have all been seen are reached, at
        the time the last event needed happened: not before closed-won, not after now."""
        p = self.progress
        for m in p.milestones:
            spec = self.playbook.milestone(m.id)
            rule = spec.completed_by if spec else None
            if not (m.is_open and rule and event_mapping.reached(rule, p.event_counts)):
                continue
            at = now
            if self._times_kept():
                happened = event_mapping.reached_at(rule, p.event_times) or now
                at = min(max(happened, self.deal.close_date), now)
            names = ", ".join(n for n in rule.events if p.event_counts.get(n))
            self._reach(m, MilestoneStatus.DONE, at, f"product events ({names})", now)

    def _apply_early(self, early: EarlyFacts, now: datetime) -> None:
        """Facts that arrived before the deal count as if they had come after it."""
        p = self.progress
        p.seen_event_ids = early.seen_event_ids
        for name, count in early.event_counts.items():
            p.event_counts[name] = p.event_counts.get(name, 0) + count
        p.event_times = early.event_times
        p.rejected[:0] = early.rejected
        if early.event_counts:
            total = sum(early.event_counts.values())
            self._audit(now, "early_events", f"{total} product events from before the deal")
        self._credit_observed_events(now)
        for report in early.reports:
            self._record_report(report, now)

    def _seen_list(self) -> list[str]:
        if self.early is not None:
            return self.early.seen_event_ids
        return self.progress.seen_event_ids

    def _seen(self, event_id: str) -> bool:
        """Deduplicate by event id: a set for the lookup, a capped list for the order."""
        if len(event_id) > EVENT_ID_CHARS:
            event_id = hashlib.sha256(event_id.encode()).hexdigest()
        if event_id in self._seen_ids:
            return True
        ids = self._seen_list()
        ids.append(event_id)
        self._seen_ids.add(event_id)
        if len(ids) > MAX_SEEN_EVENT_IDS:
            for old in ids[:-MAX_SEEN_EVENT_IDS]:
                self._seen_ids.discard(old)
            del ids[:-MAX_SEEN_EVENT_IDS]
        return False

    # ------------------------------------------------------------------ signals

    @workflow.signal(name=contract.MILESTONE_REACHED)
    def milestone_reached(self, report: MilestoneReport) -> None:
        """A person or system reports a milestone reached (or started)."""
        if self._seen(report.event_id):
            return
        if self.early is not None:
            self.early.reports.append(report)
            return
        self._record_report(report, workflow.now())
        self.changed = True

    def _record_report(self, report: MilestoneReport, now: datetime) -> None:
        m = self._milestone(report.milestone_id)
        if m is None:
            known = ", ".join(x.id for x in self.progress.milestones)
            self._reject(
                now, "milestone_reached", report.milestone_id, f"unknown milestone (plan: {known})"
            )
            return
        status = MilestoneStatus(report.status)
        self._reach(m, status, min(report.at or now, now), report.reported_by, now)

    @workflow.signal(name=contract.PRODUCT_EVENTS)
    def product_events(self, batch: ProductEventBatch) -> None:
        """Facts from the product, batched per account; counted with when they happened
        (an event's own time, never later than now), then matched to milestones."""
        now = workflow.now()
        facts = self.early if self.early is not None else self.progress
        keep = event_mapping.times_kept(self.playbook) if self._times_kept() else {}
        known = event_names(self.playbook)
        for event in batch.events:
            if self._seen(event.event_id):
                continue
            if event.name not in known:
                # Counted names stay bounded by the playbook (the ingress drops these first).
                self._reject(now, "product_events", event.name, "no milestone is completed by it")
                continue
            facts.event_counts[event.name] = facts.event_counts.get(event.name, 0) + 1
            if n := keep.get(event.name):
                times = facts.event_times.setdefault(event.name, [])
                event_mapping.record_time(times, min(event.at or now, now), n)
        if self.early is None:
            self._credit_observed_events(now)
        self.changed = True

    # ------------------------------------------------------------------ the deal

    @workflow.update(name=contract.PROVIDE_DEAL)
    def provide_deal(self, delivery: DealDelivery) -> DealAcceptance:
        """The CRM's closed-won deal; delivering it again (or another one) changes nothing."""
        if self._deal is None:
            self._deal, self.playbook = delivery.deal, delivery.playbook
            self.delivery_id = delivery.delivery_id
            self._begin(workflow.now())
            self.changed = True
            return self._acceptance(True, "deal received: onboarding started")
        if delivery.delivery_id == self.delivery_id:
            return self._acceptance(True, "deal received: onboarding started")
        since = _date(self.progress.started_at)
        return self._acceptance(False, f"already onboarding since {since}; deal not changed")

    @provide_deal.validator
    def _check_deal(self, delivery: DealDelivery) -> None:
        if delivery.deal.account_id != self.account_id:
            raise ValueError(
                f"deal.account_id: {delivery.deal.account_id!r} is not this onboarding's "
                f"account {self.account_id!r}"
            )

    def _acceptance(self, started: bool, detail: str) -> DealAcceptance:
        return DealAcceptance(
            account_id=self.account_id,
            workflow_id=workflow.info().workflow_id,
            started=started,
            detail=detail,
            state=self._state(workflow.now()),
        )

    # ------------------------------------------------------------------ updates

    def _require_running(self) -> None:
        if self._deal is None:
            raise ValueError(
                "no closed-won deal yet: this onboarding is waiting for its deal "
                "(product events arrived first)"
            )
        p = self.progress
        if p.cancelled is not None:
            raise ValueError(f"onboarding was cancelled by {p.cancelled.by}: {p.cancelled.reason}")
        if p.finished_at is not None:
            raise ValueError("onboarding is already complete")

    def _done(self, kind: str, detail: str, by: str) -> OnboardingStatus:
        self._audit(workflow.now(), kind, detail, by)
        self.changed = True
        return self._status()

    @workflow.update(name=contract.PAUSE)
    def pause(self, req: PauseRequest) -> OnboardingStatus:
        """Formal pause: every SLA clock stops; events are still recorded; no nudges."""
        now = workflow.now()
        self.progress.pause = Pause(
            by=req.by, reason=req.reason, since=now, resume_on=req.resume_on
        )
        self.progress.decision_required = False
        until = f" until {_date(req.resume_on)}" if req.resume_on else ""
        return self._done("paused", f"{req.reason}{until}", req.by)

    @pause.validator
    def _check_pause(self, req: PauseRequest) -> None:
        self._require_running()
        if (pause := self.progress.pause) is not None:
            raise ValueError(f"already paused by {pause.by} since {_date(pause.since)}")
        if req.resume_on is not None and req.resume_on <= workflow.now():
            raise ValueError("resume_on: must be in the future")

    @workflow.update(name=contract.RESUME)
    def resume(self, req: ResumeRequest) -> OnboardingStatus:
        """Resume a pause (deadlines shift by the paused time) or settle a stall."""
        self._resume(req, workflow.now())
        self.changed = True
        return self._status()

    @resume.validator
    def _check_resume(self, req: ResumeRequest) -> None:
        self._require_running()
        p = self.progress
        if p.pause is None and not p.decision_required:
            raise ValueError("onboarding is neither paused nor waiting for a stall decision")
        if p.pause is None and not req.revised_due:
            raise ValueError("revised_due: a stalled onboarding resumes with a revised timeline")
        now = workflow.now()
        for milestone_id, due in req.revised_due.items():
            m = self._milestone(milestone_id)
            if m is None or not m.is_open:
                raise ValueError(f"revised_due.{milestone_id}: no open milestone with that id")
            if due <= now:
                raise ValueError(f"revised_due.{milestone_id}: must be in the future")

    @workflow.update(name=contract.OVERRIDE_TIER)
    def override_tier(self, req: TierOverride) -> OnboardingStatus:
        """A manager's override of the tier rule, recorded with approver and reason."""
        self._change_tier(req.tier, "override", req.approver, req.reason, workflow.now())
        self.changed = True
        return self._status()

    @override_tier.validator
    def _check_override(self, req: TierOverride) -> None:
        self._require_running()
        if req.tier is self.progress.tier:
            raise ValueError(f"tier: already {req.tier.value}")

    @workflow.update(name=contract.SKIP_MILESTONE)
    def skip_milestone(self, req: SkipRequest) -> OnboardingStatus:
        """The customer refuses a step: recorded with a risk flag (rules §6.4 (docs/rules.md))."""
        now = workflow.now()
        m = self._milestone(req.milestone_id)
        assert m is not None
        m.status, m.skip_reason = MilestoneStatus.SKIPPED, req.reason
        self.progress.risk_flags.append(f"{_date(now)}: skipped {m.id}: {req.reason}")
        self.progress.progress_epoch += 1
        self.progress.last_progress_at = now
        return self._done("milestone_skipped", f"{m.title}: {req.reason}", req.by)

    @skip_milestone.validator
    def _check_skip(self, req: SkipRequest) -> None:
        self._require_running()
        m = self._milestone(req.milestone_id)
        if m is None or not m.is_open:
            open_ids = ", ".join(x.id for x in self.progress.milestones if x.is_open)
            raise ValueError(
                f"milestone_id: no open milestone {req.milestone_id!r} (open: {open_ids})"
            )

    @workflow.update(name=contract.SET_SUCCESS_CRITERIA)
    def set_success_criteria(self, req: SuccessCriteriaRequest) -> OnboardingStatus:
        self.progress.success_criteria = list(req.criteria)
        return self._done("success_criteria", "; ".join(req.criteria), req.by)

    @set_success_criteria.validator
    def _check_criteria(self, req: SuccessCriteriaRequest) -> None:
        self._require_running()

    @workflow.update(name=contract.CHANGE_CONTACT)
    def change_contact(self, req: ContactChange) -> OnboardingStatus:
        """A new contact for a role (e.g. the champion left), replacing the old one."""
        contacts = [c for c in self.progress.contacts if c.role is not req.contact.role]
        self.progress.contacts = [*contacts, req.contact]
        detail = f"{req.contact.role.value}: {req.contact.name} <{req.contact.email}>"
        return self._done("contact_changed", f"{detail} {req.reason}".strip(), req.by)

    @change_contact.validator
    def _check_contact(self, req: ContactChange) -> None:
        self._require_running()

    @workflow.update(name=contract.CANCEL)
    def cancel(self, req: CancelRequest) -> OnboardingStatus:
        """The deal churned or was cancelled: the onboarding ends cleanly."""
        return self._cancel(req)

    def _cancel(self, req: CancelRequest) -> OnboardingStatus:
        self.progress.cancelled = req
        self.progress.finished_at = workflow.now()
        return self._done("cancelled", req.reason, req.by)

    @cancel.validator
    def _check_cancel(self, req: CancelRequest) -> None:
        self._require_running()

    @workflow.update(name=contract.DEAL_LOST)
    def deal_lost(self, lost: DealLost) -> OnboardingStatus:
        """The CRM deal was lost after the onboarding started; `lost.action` is the rule
        (`ONBOARDING_DEAL_LOST`): `cancel` ends it as `cancel` does, `flag` raises a risk
        flag and requires a decision (as a stall does). Audited either way."""
        by = f"{lost.source} deal {lost.deal_id}"
        reason = f"deal lost: {lost.reason}"
        if lost.action == "cancel":
            return self._cancel(CancelRequest(by=by, reason=reason))
        self.progress.risk_flags.append(f"{_date(workflow.now())}: {reason}")
        self.progress.decision_required = True
        return self._done("deal_lost", f"{reason}; decision required: cancel or resume", by)

    @deal_lost.validator
    def _check_deal_lost(self, lost: DealLost) -> None:
        self._require_running()

    # ------------------------------------------------------------------ query

    @workflow.query(name=contract.STATUS)
    def status(self) -> OnboardingStatus:
        return self._status()

    # ------------------------------------------------------------------ side effects

    def _notify(
        self,
        trigger: str,
        audience: Audience,
        template_id: str,
        variables: dict[str, str] | None = None,
        about: Milestone | None = None,
    ) -> None:
        p = self.progress
        about = about or rules.next_milestone(p.milestones)
        base = {
            "account_name": self.deal.account_name,
            "account_id": self.deal.account_id,
            "tier": p.tier.value,
            "phase": phase.value if (phase := rules.current_phase(p.milestones)) else "handoff",
            "milestone": about.title if about else "-",
            "due": _date(about.due_at) if about else "-",
            "days": "0",
            "reason": "",
        }
        self.outbox.append(_Notify(trigger, audience, template_id, base | (variables or {})))

    async def _send_outbox(self) -> None:
        while self.outbox:
            if self.progress.cancelled is not None:
                self.outbox.clear()  # a cancelled deal gets no more messages
                break
            effect = self.outbox.pop(0)
            if isinstance(effect, _AssignOwner):
                await self._assign_owner(effect)
            else:
                await self._send(effect)

    async def _assign_owner(self, effect: _AssignOwner) -> None:
        p, info = self.progress, workflow.info()
        try:
            result: OwnerAssignment = await workflow.execute_activity(
                contract.ASSIGN_OWNER.name,
                OwnerRequest(
                    account_id=self.deal.account_id, workflow_id=info.workflow_id, tier=p.tier
                ),
                result_type=OwnerAssignment,
                start_to_close_timeout=contract.ASSIGN_OWNER.start_to_close,
                schedule_to_close_timeout=contract.ASSIGN_OWNER.schedule_to_close,
                retry_policy=contract.ASSIGN_OWNER.retry,
                summary=f"Assign CSM: {effect.reason}",
            )
        except ActivityError as err:
            self._audit(
                workflow.now(), "owner_unassigned", f"assignment failed: {err.cause or err}"
            )
            return
        p.owner = result.owner
        self._audit(workflow.now(), "owner_assigned", f"{result.owner}: {result.reason}")
        self._notify(
            f"owner-{len(p.tier_changes)}",
            Audience.CSM,
            "owner_assigned",
            {"reason": effect.reason},
        )

    def _recipient(self, audience: Audience) -> str | None:
        by_role = {c.role: c.email for c in self.progress.contacts}
        match audience:
            case Audience.CUSTOMER:
                return by_role.get(ContactRole.CHAMPION) or by_role.get(ContactRole.ADMIN)
            case Audience.EXECUTIVE_SPONSOR:
                return by_role.get(ContactRole.EXECUTIVE_SPONSOR)
            case Audience.CSM:
                return self.progress.owner
        return None

    async def _send(self, effect: _Notify) -> None:
        if self.progress.pause is not None and effect.audience is Audience.CUSTOMER:
            # A formal pause sends no nudges to the customer (rules §5 (docs/rules.md)).
            return
        info = workflow.info()
        health = self._health(workflow.now())
        variables = effect.variables | {
            "owner": self.progress.owner or "your CSM",
            "health": _score(health),
        }
        template = self.playbook.templates[effect.template_id]
        note = Notification(
            idempotency_key=f"{info.workflow_id}:{effect.trigger}:{effect.audience.value}",
            account_id=self.deal.account_id,
            workflow_id=info.workflow_id,
            audience=effect.audience,
            recipient=self._recipient(effect.audience),
            template_id=effect.template_id,
            template=template,
            variables=variables,
        )
        try:
            await workflow.execute_activity(
                contract.NOTIFY.name,
                note,
                result_type=NotificationReceipt,
                start_to_close_timeout=contract.NOTIFY.start_to_close,
                schedule_to_close_timeout=contract.NOTIFY.schedule_to_close,
                retry_policy=contract.NOTIFY.retry,
                summary=f"Notify {effect.audience.value}: {effect.template_id} ({effect.trigger})",
            )
        except ActivityError as err:
            self._audit(
                workflow.now(), "notification_failed", f"{effect.template_id}: {err.cause or err}"
            )

    # ------------------------------------------------------------------ time

    def _next_wake(self) -> tuple[datetime, str] | None:
        if self.early is not None:
            until = self._waiting_until()
            return until, f"Waiting for the closed-won deal until {_date(until)}"
        p = self.progress
        if p.finished_at is not None:
            return None
        if p.pause is not None:
            if p.pause.resume_on is not None:
                return p.pause.resume_on, f"Paused: resumes {_date(p.pause.resume_on)}"
            at = (
                p.pause.last_reminder_at or p.pause.since
            ) + self.playbook.pause_reminder_days * DAY
            return at, f"Paused: owner reminder {_date(at)}"
        steps = rules.ladder_steps(p, self.playbook)
        if not steps:
            return None
        step = steps[0]
        m = self._milestone(step.milestone_id)
        if step.step.when is Trigger.MILESTONE_OVERDUE and m is not None:
            return step.at, f"SLA: {m.phase.value} {m.title} due {_date(step.at)}"
        return step.at, f"Ladder: {step.step.id} ({step.step.when.value}) on {_date(step.at)}"

    async def _sleep_until_due_or_message(self) -> None:
        # Re-arm the timer only when the earliest deadline moves: every timer cancelled
        # early costs two history events.
        wake = self._next_wake()
        wake_at = wake[0] if wake else None
        if wake_at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = None, wake_at
            if wake is not None:
                delay = max(wake[0] - workflow.now(), timedelta(seconds=1))
                self._timer = asyncio.create_task(workflow.sleep(delay, summary=wake[1]))
        await workflow.wait_condition(
            lambda: self.changed or (self._timer is not None and self._timer.done())
        )
        if self._timer is not None and self._timer.done():
            assert self._timer_at is not None
            if workflow.now() < self._timer_at:
                # A fired timer means its time has come. Seen once after a dev-server
                # restart with queries in flight: an activation carrying the previous
                # task's clock. Acting on it would not replay; failing the task makes
                # the worker replay it from history, with the right clock.
                raise StaleClockError(
                    f"timer for {self._timer_at.isoformat()} fired, but the task's clock "
                    f"says {workflow.now().isoformat()}: retrying the task"
                )
            self._timer, self._timer_at = None, None

    # ------------------------------------------------------------------ reporting

    def _health(self, now: datetime) -> Health:
        return rules.health_score(self.progress.milestones, now, self.playbook.health)

    def _ttv(self) -> TtvBreakdown:
        p = self.progress
        return rules.time_to_value(
            self.playbook, p.tier, p.milestones, self.deal.close_date, p.started_at
        )

    def _state(self, now: datetime) -> OnboardingState:
        if self._deal is None:
            return OnboardingState.AWAITING_DEAL
        p = self.progress
        if p.cancelled is not None:
            return OnboardingState.CANCELLED
        if p.finished_at is not None:
            return OnboardingState.COMPLETED
        if p.pause is not None:
            return OnboardingState.PAUSED
        if p.decision_required or self._health(now).band is not HealthBand.HEALTHY:
            return OnboardingState.AT_RISK
        return OnboardingState.ACTIVE

    def _next_deadline(self) -> datetime | None:
        m = rules.next_milestone(self.progress.milestones)
        return m.due_at if m and self.progress.finished_at is None else None

    def _status(self) -> OnboardingStatus:
        if self.early is not None:
            return self._waiting_status()
        p, now = self.progress, workflow.now()
        views = [
            MilestoneView(
                id=m.id,
                title=m.title,
                phase=m.phase,
                weight=m.weight,
                owner=m.owner,
                status=m.status,
                due_at=m.due_at,
                done_at=m.done_at,
                overdue=m.is_open and now >= m.due_at,
                credit=rules.milestone_credit(m, now, self.playbook.health),
            )
            for m in p.milestones
        ]
        return OnboardingStatus(
            account_id=self.deal.account_id,
            account_name=self.deal.account_name,
            workflow_id=workflow.info().workflow_id,
            acv_usd=self.deal.acv_usd,
            currency=self.deal.currency,
            acv=self.deal.acv,
            fx_rate=self.deal.fx_rate,
            state=self._state(now),
            tier=p.tier,
            tier_decision=p.tier_decision,
            tier_changes=p.tier_changes,
            phase=rules.current_phase(p.milestones),
            playbook_version=self.playbook.version,
            playbook_hash=self.playbook.content_hash,
            owner=p.owner,
            closed_won_at=self.deal.close_date,
            as_of=now,
            next_deadline=self._next_deadline(),
            milestones=views,
            health=self._health(now),
            ttv=self._ttv(),
            completion_pct=rules.completion_pct(p.milestones),
            success_criteria=p.success_criteria,
            pause=p.pause,
            decision_required=p.decision_required,
            risk_flags=p.risk_flags,
            escalations=p.escalations,
            event_counts=p.event_counts,
            rejected=p.rejected,
            audit=p.audit,
        )

    def _waiting_until(self) -> datetime:
        assert self.early is not None
        return self.early.since + self.deal_wait_days * DAY

    def _waiting_status(self) -> OnboardingStatus:
        assert self.early is not None
        return OnboardingStatus(
            account_id=self.account_id,
            account_name=self.account_id,
            workflow_id=workflow.info().workflow_id,
            acv_usd=0,
            state=OnboardingState.AWAITING_DEAL,
            tier=None,
            tier_decision=None,
            tier_changes=[],
            phase=None,
            playbook_version=self.playbook.version,
            playbook_hash=self.playbook.content_hash,
            owner=None,
            closed_won_at=None,
            as_of=workflow.now(),
            next_deadline=None,
            milestones=[],
            health=Health(score=None, band=HealthBand.HEALTHY, earned=0, possible=0),
            ttv=TtvBreakdown(),
            completion_pct=0,
            success_criteria=[],
            pause=None,
            decision_required=False,
            risk_flags=[],
            escalations=[],
            event_counts=self.early.event_counts,
            awaiting_deal_until=self._waiting_until(),
            rejected=self.early.rejected,
            audit=[],
        )

    def _publish_waiting(self, until: datetime) -> None:
        """Before the deal: every playbook event matters; the UI says what we wait for."""
        assert self.early is not None
        self._publish_memo(sorted(event_names(self.playbook)))
        if self._published.get("state") != OnboardingState.AWAITING_DEAL.value:
            self._published["state"] = OnboardingState.AWAITING_DEAL.value
            workflow.upsert_search_attributes(
                [sa.ONBOARDING_STATE.value_set(OnboardingState.AWAITING_DEAL.value)]
            )
        counts = ", ".join(f"{k} x{v}" for k, v in sorted(self.early.event_counts.items()))
        workflow.set_current_details(
            f"**{self.account_id}** · waiting for the closed-won deal until {_date(until)}\n\n"
            f"Product events so far: {counts or 'none'}"
        )

    def _publish_memo(self, awaited: list[str]) -> None:
        """The ingress reads memo `awaited` to drop events no open milestone needs. (A
        bare empty list would be dropped by the server as if unset: hence the model.)"""
        if self._published.get("awaited") != awaited:
            self._published["awaited"] = awaited
            workflow.upsert_memo({"awaited": AwaitedEvents(events=awaited)})

    def _publish(self) -> None:
        """Keep search attributes and the UI's current details in step with the state."""
        now = workflow.now()
        done = self.progress.finished_at is not None
        self._publish_memo([] if done else awaited_events(self.playbook, self.progress.milestones))
        health = self._health(now)
        phase = rules.current_phase(self.progress.milestones)
        values: list[tuple[str, SearchAttributeUpdate]] = []
        wanted: dict[str, object] = {
            "tier": self.progress.tier.value,
            "phase": phase.value if phase else "done",
            "state": self._state(now).value,
            "health": round(health.score) if health.score is not None else None,
            "owner": self.progress.owner,
            "acv": self.deal.acv_usd,
            "deadline": self._next_deadline(),
        }
        keys = {
            "tier": sa.ONBOARDING_TIER,
            "phase": sa.ONBOARDING_PHASE,
            "state": sa.ONBOARDING_STATE,
            "health": sa.ONBOARDING_HEALTH,
            "owner": sa.CSM_OWNER,
            "acv": sa.ACV_USD,
            "deadline": sa.NEXT_DEADLINE,
        }
        for name, value in wanted.items():
            if self._published.get(name, ...) == value:
                continue
            key = keys[name]
            update = key.value_unset() if value is None else key.value_set(value)  # type: ignore[attr-defined]
            values.append((name, update))
            self._published[name] = value
        if values:
            workflow.upsert_search_attributes([u for _, u in values])
        workflow.set_current_details(self._checklist(now, health))

    def _checklist(self, now: datetime, health: Health) -> str:
        p = self.progress
        score = _score(health)
        lines = [
            f"**{self.deal.account_name}** · {p.tier.value} · {self._state(now).value} · "
            f"health {score} ({health.band.value}) · owner {p.owner or 'automated'}",
            "",
        ]
        for m in p.milestones:
            if m.status is MilestoneStatus.DONE and m.done_at:
                late = " (late)" if m.done_at > m.due_at else ""
                lines.append(f"- [x] {m.phase.value}: {m.title} — done {_date(m.done_at)}{late}")
            elif m.status is MilestoneStatus.SKIPPED:
                lines.append(f"- [x] ~~{m.phase.value}: {m.title}~~ — skipped: {m.skip_reason}")
            else:
                flag = " **OVERDUE**" if now >= m.due_at else ""
                started = " (in progress)" if m.status is MilestoneStatus.IN_PROGRESS else ""
                lines.append(
                    f"- [ ] {m.phase.value}: {m.title}{started} — due {_date(m.due_at)}{flag}"
                )
        if p.pause:
            lines += ["", f"Paused by {p.pause.by} since {_date(p.pause.since)}: {p.pause.reason}"]
        if p.decision_required:
            lines += ["", "**Decision required:** resume with a revised timeline, or pause."]
        if p.escalations:
            last = p.escalations[-1]
            lines += ["", f"Last escalation: {last.tier.value}.{last.step_id} on {_date(last.at)}"]
        return "\n".join(lines)

    # ------------------------------------------------------------------ records

    def _audit(self, at: datetime, kind: str, detail: str, by: str | None = None) -> None:
        self.progress.audit.append(AuditEntry(at=at, kind=kind, detail=detail, by=by))

    def _reject(self, at: datetime, kind: str, ref: str, reason: str) -> None:
        rejected = self.early.rejected if self.early is not None else self.progress.rejected
        ref, reason = ref[:NAME_CHARS], reason[:TEXT_CHARS]  # kept, so kept short
        rejected.append(RejectedMessage(at=at, kind=kind, ref=ref, reason=reason))
        del rejected[:-MAX_REJECTED]
        workflow.logger.warning(
            "rejected %s %s: %s", kind, ref, reason, extra={"account_id": self.account_id}
        )
