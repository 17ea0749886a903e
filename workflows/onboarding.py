"""`AccountOnboarding`: one closed-won account, from contract to handoff.

The workflow orchestrates time and messages; the rules live in `workflows.rules`. Every
SLA is a deadline in state: one loop sleeps until the earliest one (or a message), then
runs what came due. Pause, resume, tier change and re-planning are state changes, so a
paused clock is simply not armed.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import contract, event_mapping, rules
    from workflows import progress as rule
    from workflows import search_attributes as sa
    from workflows.event_mapping import awaited_events, event_names
    from workflows.formats import day_text
    from workflows.models import (
        NAME_CHARS,
        TEXT_CHARS,
        Audience,
        AuditEntry,
        AwaitedEvents,
        CancelRequest,
        ClosedWonDeal,
        ContactChange,
        DealAcceptance,
        DealDelivery,
        DealLost,
        EarlyFacts,
        Health,
        HealthBand,
        MilestoneReport,
        MilestoneStatus,
        MilestoneView,
        Notification,
        NotificationReceipt,
        OnboardingInput,
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
        TierOverride,
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
        self.outbox: list[rule.Effect] = []
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
        """Tier, plan and credit of what was done before tracking (rules §1-§2)."""
        early, self.early = self.early, None
        o, changes = rule.begin(self.deal, self.playbook, early, now, self._times_kept)
        self.progress = o.progress
        self._apply(changes)
        self._phase = changes.phase

    def _advance(self, now: datetime) -> None:
        """Run everything that has come due by `now`, in the order it came due."""
        changes = rule.advance(self._o(), self._phase, now, self._times_kept)
        self._apply(changes)
        self._phase = changes.phase

    def _o(self) -> rule.Onboarding:
        return rule.Onboarding(self.deal, self.playbook, self.progress)

    def _apply(self, changes: rule.Changes) -> None:
        """Record what a state change asked for; its effects run from the outbox."""
        self.progress.audit += changes.audit
        for r in changes.rejected:
            self._reject(r.at, r.kind, r.ref, r.reason)
        for key in changes.fired:
            workflow.logger.info(
                "escalation %s fired", key, extra={"account_id": self.deal.account_id}
            )
        self.outbox += changes.effects

    # ------------------------------------------------------------------ milestones

    def _times_kept(self) -> bool:
        """Product events credit milestones when they happened (patched: runs that began
        before this rule credited them on arrival, and must replay so)."""
        return workflow.patched(CREDIT_AT_EVENT_TIME)

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
        changes = rule.Changes()
        rule.record_report(self._o(), changes, report, workflow.now())
        self._apply(changes)
        self.changed = True

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
            changes = rule.Changes()
            rule.credit_observed_events(self._o(), changes, now, self._times_kept)
            self._apply(changes)
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
        since = day_text(self.progress.started_at)
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
        until = f" until {day_text(req.resume_on)}" if req.resume_on else ""
        return self._done("paused", f"{req.reason}{until}", req.by)

    @pause.validator
    def _check_pause(self, req: PauseRequest) -> None:
        self._require_running()
        if (pause := self.progress.pause) is not None:
            raise ValueError(f"already paused by {pause.by} since {day_text(pause.since)}")
        if req.resume_on is not None and req.resume_on <= workflow.now():
            raise ValueError("resume_on: must be in the future")

    @workflow.update(name=contract.RESUME)
    def resume(self, req: ResumeRequest) -> OnboardingStatus:
        """Resume a pause (deadlines shift by the paused time) or settle a stall."""
        self.progress.audit += rule.resume(self._o(), req, workflow.now())
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
            m = rule.milestone(p, milestone_id)
            if m is None or not m.is_open:
                raise ValueError(f"revised_due.{milestone_id}: no open milestone with that id")
            if due <= now:
                raise ValueError(f"revised_due.{milestone_id}: must be in the future")

    @workflow.update(name=contract.OVERRIDE_TIER)
    def override_tier(self, req: TierOverride) -> OnboardingStatus:
        """A manager's override of the tier rule, recorded with approver and reason."""
        now = workflow.now()
        changes = rule.change_tier(
            self._o(), req.tier, "override", req.approver, req.reason, now, self._times_kept
        )
        self._apply(changes)
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
        self._apply(rule.skip(self._o(), req, workflow.now()))
        self.changed = True
        return self._status()

    @skip_milestone.validator
    def _check_skip(self, req: SkipRequest) -> None:
        self._require_running()
        m = rule.milestone(self.progress, req.milestone_id)
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
        rule.cancel(self.progress, req, workflow.now())
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
        self.progress.risk_flags.append(f"{day_text(workflow.now())}: {reason}")
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

    async def _send_outbox(self) -> None:
        while self.outbox:
            if self.progress.cancelled is not None:
                self.outbox.clear()  # a cancelled deal gets no more messages
                break
            effect = self.outbox.pop(0)
            if isinstance(effect, rule.AssignOwner):
                await self._assign_owner(effect)
            else:
                await self._send(effect)

    async def _assign_owner(self, effect: rule.AssignOwner) -> None:
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
        changes = rule.Changes()
        trigger = f"owner-{len(p.tier_changes)}"
        variables = {"reason": effect.reason}
        rule.notify(self._o(), changes, trigger, Audience.CSM, "owner_assigned", variables)
        self._apply(changes)

    async def _send(self, effect: rule.Notify) -> None:
        if rule.held_back(self.progress, effect.audience):
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
            recipient=rule.recipient(self.progress, effect.audience),
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
            return until, f"Waiting for the closed-won deal until {day_text(until)}"
        return rule.next_wake(self._o())

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
        return rule.state(self._o(), now)

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
            f"**{self.account_id}** · waiting for the closed-won deal until {day_text(until)}\n\n"
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
                lines.append(f"- [x] {m.phase.value}: {m.title} — done {day_text(m.done_at)}{late}")
            elif m.status is MilestoneStatus.SKIPPED:
                lines.append(f"- [x] ~~{m.phase.value}: {m.title}~~ — skipped: {m.skip_reason}")
            else:
                flag = " **OVERDUE**" if now >= m.due_at else ""
                started = " (in progress)" if m.status is MilestoneStatus.IN_PROGRESS else ""
                lines.append(
                    f"- [ ] {m.phase.value}: {m.title}{started} — due {day_text(m.due_at)}{flag}"
                )
        if p.pause:
            lines += [
                "",
                f"Paused by {p.pause.by} since {day_text(p.pause.since)}: {p.pause.reason}",
            ]
        if p.decision_required:
            lines += ["", "**Decision required:** resume with a revised timeline, or pause."]
        if p.escalations:
            last = p.escalations[-1]
            lines += [
                "",
                f"Last escalation: {last.tier.value}.{last.step_id} on {day_text(last.at)}",
            ]
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
