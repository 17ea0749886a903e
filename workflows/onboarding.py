"""`AccountOnboarding`: one closed-won account, from contract to handoff.

The workflow orchestrates time and messages; the rules live in `workflows.rules`. Every
SLA is a deadline in state: one loop sleeps until the earliest one (or a message), then
runs what came due. Pause, resume, tier change and re-planning are state changes, so a
paused clock is simply not armed.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    # `import workflows.x as x`, not `from workflows import x`: the latter loads the module
    # afresh in every workflow's sandbox (tests/test_sandbox_imports.py says why).
    import workflows.contract as contract
    import workflows.effects as effects
    import workflows.event_mapping as event_mapping
    import workflows.patches as patches
    import workflows.presentation as view
    import workflows.progress as rule
    import workflows.rules as rules
    from workflows.alarm import Alarm, TaskClock
    from workflows.event_mapping import event_names
    from workflows.formats import day_text
    from workflows.models import (
        IDENTIFY,
        NAME_CHARS,
        TEXT_CHARS,
        CancelRequest,
        ClosedWonDeal,
        ContactChange,
        DealAcceptance,
        DealDelivery,
        DealLost,
        EarlyFacts,
        MilestoneReport,
        OnboardingInput,
        OnboardingSnapshot,
        OnboardingState,
        OnboardingStatus,
        OwnerReassignment,
        PauseRequest,
        Phase,
        PlaybookMigration,
        ProductEventBatch,
        RealignmentGateDone,
        RejectedMessage,
        ResumeRequest,
        SkipRequest,
        SuccessCriteriaRequest,
        SuccessPlanConfirmation,
        TierOverride,
    )
    from workflows.progress import (
        activation,
        checks,
        expansion,
        facts,
        measures,
        migration,
        products,
        programs,
    )
    from workflows.publishing import Publisher
    from workflows.recording import Recorder

DAY = timedelta(days=1)
# Bound that keeps the state (and so continue-as-new payloads) small over 120 days.
MAX_REJECTED = 200

# Why a product event with a name no milestone of the playbook is completed by is refused.
UNKNOWN_EVENT = "no milestone is completed by it"


@workflow.defn(name=contract.WORKFLOW_TYPE)
class AccountOnboarding:
    @workflow.init
    def __init__(self, input: OnboardingInput) -> None:
        patches.begin()  # first: see workflows/patches.py
        self.account_id = input.account_id
        self.playbook = input.playbook
        self.delivery_id = input.delivery_id
        self.deal_wait_days = input.deal_wait_days
        self.max_history_events = input.max_history_events
        # The account's earlier onboardings, for the one this run begins (rules §2).
        self._lineage = (input.onboarding_number, input.earlier_deals, input.queued_deals)
        self.outbox: list[rule.Effect] = []
        self.changed = False
        self._alarm = Alarm()
        self._clock = TaskClock()
        # The state a `status` query was last asked in, and its answer once asked twice.
        self._answered: tuple[tuple[int, datetime] | None, OnboardingStatus | None] = (None, None)
        self._publisher = Publisher()
        self._recorder = Recorder(on_written=self._wake)
        self._refresh_record = False  # `refresh_record` asked; see `_keep_record`
        self._pause_stops_scoring = True  # asked when a pause begins: `_pause_rule`
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
        # Checked on every activation, whatever the run is waiting for (alarm.TaskClock);
        # held so the task lives as long as the run.
        self._clock_watch = asyncio.create_task(workflow.wait_condition(self._clock.watch))
        if self._deal is not None and self.progress.pause is not None:  # continued paused
            self._pause_rule()
        if self._deal is None:
            await self._wait_for_deal()
        while True:
            self.changed = False
            self._advance(workflow.now())
            if self.outbox:  # published while the effects run, and again after
                self._publisher.onboarding(self._settled(), workflow.now())
                await self._send_outbox()
            renew, wake = self._settle()
            if self.progress.finished_at is not None and not self.outbox:
                break
            if renew or self._history_is_long():
                await self._recorder.flush()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry_over())
            await self._alarm.sleep(wake, lambda: self.changed)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._recorder.flush()
        self._recorder.save(self.progress, self._status, last=True)  # the final state
        await self._recorder.flush()
        following = expansion.next_onboarding(
            self._o(), self.deal_wait_days, self.max_history_events
        )
        if following is not None:  # a queued deal's onboarding (rules §2): an expansion,
            # or the paid deal a trial converted to
            workflow.continue_as_new(following)
        return self._status()

    def _settle(self) -> tuple[bool, tuple[datetime, str] | None]:
        """Publish, keep the record and say when to wake next (`_keep_record`,
        `_next_wake`), all from one settled onboarding: nothing changes it meanwhile, and
        a run waiting for its next wake-up holds none of it."""
        settled = self._settled()
        self._publisher.onboarding(settled, workflow.now())
        return self._keep_record(settled), self._next_wake(settled)

    def _keep_record(self, settled: rule.Settled) -> bool:
        """Write the record if it changed (or was asked for). True when asked in a run
        that began before records existed: it continues as new into one that records."""
        asked, self._refresh_record = self._refresh_record, False
        if asked and not self._recorder.enabled():
            return True
        status = functools.partial(self._status, settled)
        postponed = not self._recorder.save(self.progress, status, again=asked)
        # Patched: runs that began before lost a refresh asked while a write was in flight.
        if asked and postponed and patches.has(patches.Folded.REFRESH_AFTER_WRITE):
            self._refresh_record = True  # written whole when the one in flight ends
        return False

    def _wake(self) -> None:
        self.changed = True

    def _history_is_long(self) -> bool:
        """Time to continue-as-new: the server suggests it, or the history has reached the
        input's `max_history_events` (so product events can never grow it unbounded)."""
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        # Patched: runs that began before this rule must replay as they ran (see README).
        return patches.has(patches.Folded.CAN_AT_EVENT_COUNT) and (
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
        number, earlier, queued = self._lineage
        return OnboardingInput(
            account_id=self.account_id,
            deal=deal,
            playbook=self.playbook,
            delivery_id=self.delivery_id,
            deal_wait_days=self.deal_wait_days,
            max_history_events=self.max_history_events,
            early=self.early,
            progress=self.progress if self._deal is not None else None,
            onboarding_number=number,
            earlier_deals=earlier,
            queued_deals=queued,
        )

    async def _wait_for_deal(self) -> None:
        """Product events came before the closed-won deal: keep them until it arrives.

        Ends the run (failed, so a later deal may start the account afresh) when no deal
        comes within `deal_wait_days`; the failure records what had arrived.
        """
        while self.early is not None:
            self.changed = False
            until = self._waiting_until()
            self._publisher.waiting(self.account_id, self.playbook, self.early, until)
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry_over())
            if workflow.now() >= until:
                counts = view.event_counts_text(self.early.event_counts)
                raise ApplicationError(
                    f"no closed-won deal for account {self.account_id} within "
                    f"{self.deal_wait_days} days; product events recorded: {counts}",
                    self.early.model_dump(mode="json"),
                    type=contract.NO_CLOSED_WON_DEAL,
                    non_retryable=True,
                )
            await self._sleep_until_due_or_message()

    def _begin(self, now: datetime) -> None:
        """Tier, plan and credit of what was done before tracking (rules §1-§2 (docs/rules.md))."""
        early, self.early = self.early, None
        o, changes = rule.begin(self.deal, self.playbook, early, now, self._times_kept)
        self.progress = o.progress
        self._apply(changes)
        self._apply(expansion.follow(self.progress, *self._lineage, now))
        self._phase = changes.phase

    def _advance(self, now: datetime) -> None:
        """Run everything that has come due by `now`, in the order it came due."""
        changes = rule.advance(self._o(), self._phase, now, self._times_kept, self._customer_clock)
        self._apply(changes)
        self._phase = changes.phase

    def _o(self) -> rule.Onboarding:
        return rule.Onboarding(self.deal, self.playbook, self.progress, self._pause_stops_scoring)

    def _settled(self) -> rule.Settled:
        """The onboarding as it stands until its next change (`progress.Settled`)."""
        return rule.Settled(self.deal, self.playbook, self.progress, self._pause_stops_scoring)

    def _pause_rule(self) -> None:
        """Whether this pause stops the health score's clock too (patched: a run paused
        before that rule scored against the unmoved deadlines, and must replay so). Asked
        in the run or an update, never in a query, which cannot record the answer."""
        self._pause_stops_scoring = patches.has(patches.Folded.PAUSE_STOPS_SCORING)

    def _apply(self, changes: rule.Changes) -> None:
        """Record what a state change asked for; its effects run from the outbox."""
        self.progress.audit += changes.audit  # only ever appended (`records.what_it_says`)
        self._reject([(r.at, r.kind, r.ref, r.reason) for r in changes.rejected])
        for key in changes.fired:
            workflow.logger.info(
                "escalation %s fired", key, extra={"account_id": self.deal.account_id}
            )
        self.outbox += changes.effects

    # ------------------------------------------------------------------ milestones

    def _times_kept(self) -> bool:
        """Product events credit milestones when they happened (patched: runs that began
        before this rule credited them on arrival, and must replay so)."""
        return patches.has(patches.Folded.CREDIT_AT_EVENT_TIME)

    def _customer_clock(self) -> bool:
        """A tier change leaves the stall clock on the customer's last movement (patched:
        runs that began before this rule restarted it at the change, and must replay so)."""
        return patches.has(patches.Folded.STALL_CLOCK_CUSTOMER)

    def _seen_list(self) -> list[str]:
        if self.early is not None:
            return self.early.seen_event_ids
        return self.progress.seen_event_ids

    def _seen(self, event_id: str) -> bool:
        return facts.seen(self._seen_list(), self._seen_ids, event_id)

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
        (an event's own time, never later than now), then matched to milestones. An
        identify call only says a user's role (rules §7), from the deal on."""
        now = workflow.now()
        counted = self.early if self.early is not None else self.progress
        keep = event_mapping.times_kept(self.playbook) if self._times_kept() else {}
        recent = self.playbook.recent_times_kept()
        known = event_names(self.playbook)
        noted = rule.Changes()
        refused: list[tuple[datetime, str, str, str]] = []
        for event in batch.events:
            if self._seen(event.event_id):
                continue
            if event.name == IDENTIFY and self.playbook.activation is not None:
                if self.early is None:
                    activation.note(self._o(), noted, event, now)
                continue
            if event.name not in known:
                # Counted names stay bounded by the playbook (the ingress drops these first).
                refused.append((now, "product_events", event.name, UNKNOWN_EVENT))
                continue
            facts.count(counted, event, now, keep, recent)
            if self.early is None:
                # A multi-product deal's product (rules §6.2), the account measures (§8),
                # group programs' attendance (§1), activation by role (§7).
                products.count(self.progress, self.deal, event, now, keep)
                if unknown := products.unknown_product(self.deal, event):
                    refused.append((now, "product_events", event.name, unknown))
                o, at = self._o(), min(event.at or now, now)
                measures.note_activity(
                    o.progress, o.playbook.measures, event.name, at, o.calendar.time_zone
                )
                programs.attend(o, noted, event, now)
                activation.note(o, noted, event, now)
        self._reject(refused)
        if self.early is None:
            changes = rule.Changes()
            rule.credit_observed_events(self._o(), changes, now, self._times_kept)
            self._apply(noted)
            self._apply(changes)
        self.changed = True

    # ------------------------------------------------------------------ the deal

    @workflow.update(name=contract.PROVIDE_DEAL)
    def provide_deal(self, delivery: DealDelivery) -> DealAcceptance:
        """The CRM's closed-won deal; delivering it again (or another one) changes nothing,
        but an expansion deal of its own waits for this onboarding to finish, then gets
        its own, and a paid deal for a trial ends the trial, which continues as the paid
        deal's onboarding at once (rules §2 (docs/rules.md))."""
        if self._deal is None:
            self._deal, self.playbook = delivery.deal, delivery.playbook
            self.delivery_id = delivery.delivery_id
            self._begin(workflow.now())
            self.changed = True
            return self._acceptance(True, "deal received: onboarding started")
        if delivery.delivery_id == self.delivery_id:
            return self._acceptance(True, "deal received: onboarding started")
        # Patched: runs that answered such a deal otherwise replay so.
        if expansion.converts(self._o(), delivery.deal) and patches.has(
            patches.Folded.TRIAL_CONVERSION
        ):
            detail, changes = expansion.convert(self._o(), delivery, workflow.now())
            self._apply(changes)
            self.changed = True
            return self._acceptance(True, detail, state=OnboardingState.ACTIVE)
        # Patched: runs that answered such a deal "already onboarding" replay so.
        if expansion.another_expansion(self._o(), delivery.deal) and patches.has(
            patches.Folded.EXPANSION_QUEUE
        ):
            detail, changes = expansion.queue(self._o(), delivery, workflow.now())
            self._apply(changes)
            self.changed = True
            return self._acceptance(False, detail, queued=True)
        since = day_text(self.progress.started_at)
        return self._acceptance(False, f"already onboarding since {since}; deal not changed")

    @provide_deal.validator
    def _check_deal(self, delivery: DealDelivery) -> None:
        checks.deal_is_for(self.account_id, delivery)

    def _acceptance(
        self,
        started: bool,
        detail: str,
        *,
        queued: bool = False,
        state: OnboardingState | None = None,
    ) -> DealAcceptance:
        """The answer to a deal; `state` the onboarding's, unless given (a converted
        trial's answer gives its paid onboarding's, which begins at once)."""
        return DealAcceptance(
            account_id=self.account_id,
            workflow_id=workflow.info().workflow_id,
            started=started,
            detail=detail,
            state=state or self._state(workflow.now()),
            queued=queued,
        )

    # ------------------------------------------------------------------ updates

    def _require_running(self) -> None:
        if self._deal is None:
            raise ValueError(
                "no closed-won deal yet: this onboarding is waiting for its deal "
                "(product events arrived first)"
            )
        checks.running(self.progress)

    def _changed(self, changes: rule.Changes) -> OnboardingStatus:
        """Apply an update's changes; the loop wakes to act on them."""
        self._apply(changes)
        self.changed = True
        return self._status()

    @workflow.update(name=contract.PAUSE)
    def pause(self, req: PauseRequest) -> OnboardingStatus:
        """Formal pause: every SLA clock stops; events are still recorded; no nudges."""
        self._pause_rule()
        return self._changed(rule.start_pause(self.progress, req, workflow.now()))

    @pause.validator
    def _check_pause(self, req: PauseRequest) -> None:
        self._require_running()
        checks.pause(self.progress, req, workflow.now())

    @workflow.update(name=contract.RESUME)
    def resume(self, req: ResumeRequest) -> OnboardingStatus:
        """Resume a pause (deadlines shift by the paused time) or settle a stall."""
        audit = rule.resume(self._o(), req, workflow.now())
        return self._changed(rule.Changes(audit=audit))

    @resume.validator
    def _check_resume(self, req: ResumeRequest) -> None:
        self._require_running()
        checks.resume(self.progress, req, workflow.now())

    @workflow.update(name=contract.OVERRIDE_TIER)
    def override_tier(self, req: TierOverride) -> OnboardingStatus:
        """A manager's override of the tier rule, recorded with approver and reason."""
        now = workflow.now()
        return self._changed(
            rule.change_tier(
                self._o(),
                req.tier,
                "override",
                req.approver,
                req.reason,
                now,
                self._times_kept,
                self._customer_clock,
            )
        )

    @override_tier.validator
    def _check_override(self, req: TierOverride) -> None:
        self._require_running()
        checks.override_tier(self.progress, req)

    @workflow.update(name=contract.SKIP_MILESTONE)
    def skip_milestone(self, req: SkipRequest) -> OnboardingStatus:
        """The customer refuses a step: recorded with a risk flag, and checked again by the
        playbook's safety net (rules §6.4 (docs/rules.md))."""
        return self._changed(rule.skip(self._o(), req, workflow.now()))

    @skip_milestone.validator
    def _check_skip(self, req: SkipRequest) -> None:
        self._require_running()
        checks.skip(self.progress, req)

    @workflow.update(name=contract.SET_SUCCESS_CRITERIA)
    def set_success_criteria(self, req: SuccessCriteriaRequest) -> OnboardingStatus:
        return self._changed(rule.set_success_criteria(self.progress, req, workflow.now()))

    @set_success_criteria.validator
    def _check_criteria(self, req: SuccessCriteriaRequest) -> None:
        self._require_running()

    @workflow.update(name=contract.CHANGE_CONTACT)
    def change_contact(self, req: ContactChange) -> OnboardingStatus:
        """A new contact for a role, replacing the old one; a new champion opens a
        re-alignment window (rules §6.3 (docs/rules.md))."""
        now = workflow.now()
        # Patched: the window arms a timer, which runs that replaced a champion before
        # this rule never did.
        if patches.has(patches.Folded.CHAMPION_WINDOW):
            # The holidays library reads its holiday names' translations through
            # `locale`, which the sandbox refuses; what it answers is fixed by its
            # pinned release (workflows/business_days.py), so it may run unrestricted.
            with workflow.unsafe.sandbox_unrestricted():
                changes = rule.change_champion(self._o(), req, now)
            return self._changed(changes)
        return self._changed(rule.change_contact(self.progress, req, now))

    @change_contact.validator
    def _check_contact(self, req: ContactChange) -> None:
        self._require_running()
        checks.contact_change(self.progress, req)

    @workflow.update(name=contract.CANCEL)
    def cancel(self, req: CancelRequest) -> OnboardingStatus:
        """The deal churned or was cancelled: the onboarding ends cleanly."""
        return self._changed(rule.cancel(self.progress, req, workflow.now()))

    @cancel.validator
    def _check_cancel(self, req: CancelRequest) -> None:
        self._require_running()

    @workflow.update(name=contract.DEAL_LOST)
    def deal_lost(self, lost: DealLost) -> OnboardingStatus:
        """The CRM deal was lost after the onboarding started: cancelled or flagged, as
        `lost.action` says (`ONBOARDING_DEAL_LOST`)."""
        return self._changed(rule.deal_lost(self.progress, lost, workflow.now()))

    @deal_lost.validator
    def _check_deal_lost(self, lost: DealLost) -> None:
        self._require_running()

    @workflow.update(name=contract.REALIGNMENT_GATE_DONE)
    def realignment_gate_done(self, req: RealignmentGateDone) -> OnboardingStatus:
        """A gate of the champion change's re-alignment window is done (rules §6.3
        (docs/rules.md)); the last one closes the window."""
        return self._changed(rule.gate_done(self._o(), req, workflow.now()))

    @realignment_gate_done.validator
    def _check_realignment_gate(self, req: RealignmentGateDone) -> None:
        self._require_running()
        checks.realignment_gate(self.progress, self.playbook, req, workflow.now())

    @workflow.update(name=contract.CONFIRM_SUCCESS_PLAN)
    def confirm_success_plan(self, req: SuccessPlanConfirmation) -> OnboardingStatus:
        """The customer confirms the success plan: the provisional deadlines are re-based
        on its target dates and stand (rules §2 (docs/rules.md))."""
        return self._changed(rule.confirm_success_plan(self.progress, req, workflow.now()))

    @confirm_success_plan.validator
    def _check_success_plan(self, req: SuccessPlanConfirmation) -> None:
        self._require_running()
        checks.confirm_success_plan(self.progress, req, workflow.now())

    @workflow.update(name=contract.REASSIGN_OWNER)
    async def reassign_owner(self, req: OwnerReassignment) -> OnboardingStatus:
        """`req.person` leaves the onboarding: the roster's least-loaded eligible person
        without them takes it, audited, and is told (rules §7 (docs/rules.md)). A failed
        assignment keeps them and is audited."""
        reason = req.reason or "leaves the roster"
        effect = rule.AssignOwner(reason, req.role, leaving=req.person, by=req.by)
        return self._changed(await effects.run(self._o(), effect, self._times_kept))

    @reassign_owner.validator
    def _check_reassign(self, req: OwnerReassignment) -> None:
        self._require_running()
        checks.reassign(self.progress, req)

    @workflow.update(name=contract.MIGRATE_PLAYBOOK)
    def migrate_playbook(self, req: PlaybookMigration) -> OnboardingStatus:
        """Move the onboarding to another playbook version, deliberately (rules §2
        (docs/rules.md), *Migrating to a new playbook version*): the plan rebuilt with
        its credit kept, audited; it carries the new playbook from now on (and across
        continue-as-new). A new handler: histories before it never call it, so it needs
        no patch."""
        o, changes = migration.migrate(self._o(), req, workflow.now(), self._times_kept)
        self.playbook = o.playbook
        return self._changed(changes)

    @migrate_playbook.validator
    def _check_migration(self, req: PlaybookMigration) -> None:
        self._require_running()
        checks.playbook_migration(self._o(), req)

    @workflow.signal(name=contract.REFRESH_RECORD)
    def refresh_record(self) -> None:
        """Write the onboarding's record now, whole (`onboarding records backfill`)."""
        self._refresh_record = self._deal is not None
        self.changed = True

    # ------------------------------------------------------------------ query

    @workflow.query(name=contract.STATUS)
    def status(self) -> OnboardingStatus:
        """The onboarding now. Asked again before anything happened (a page or a script
        polling it), it answers what it answered: the state changes only in a workflow
        task's activation, each with a history length and a time of its own, and queries
        come in activations of their own (the SDK's guarantee). Kept from the second ask
        on, so an onboarding looked at once keeps no copy (about 20 KB)."""
        state = (workflow.info().get_current_history_length(), workflow.now())
        asked, answer = self._answered
        if asked != state:
            self._answered = (state, None)
            return self._status()
        if answer is None:
            answer = self._status()
            self._answered = (state, answer)
        return answer

    @workflow.query(name=contract.SNAPSHOT)
    def snapshot(self) -> OnboardingSnapshot:
        """The deal, pinned playbook and progress, as the rules read them (a migration's
        dry run, `onboarding migrate-playbook --dry-run`)."""
        if self._deal is None:
            raise ValueError("no closed-won deal yet: nothing is planned")
        return OnboardingSnapshot(
            as_of=workflow.now(), deal=self.deal, playbook=self.playbook, progress=self.progress
        )

    # ------------------------------------------------------------------ side effects

    async def _send_outbox(self) -> None:
        while self.outbox:
            if self.progress.cancelled is not None:
                self.outbox.clear()  # a cancelled deal gets no more messages
                break
            # Patched: runs that began before sent one effect at a time, and must replay so.
            n = effects.together(self.outbox) if patches.has(patches.Folded.EFFECTS_TOGETHER) else 1
            wave, self.outbox = self.outbox[:n], self.outbox[n:]
            for changes in await effects.run_together(self._o(), wave, self._times_kept):
                self._apply(changes)

    # ------------------------------------------------------------------ time

    def _next_wake(self, settled: rule.Settled | None = None) -> tuple[datetime, str] | None:
        if self.early is not None:
            until = self._waiting_until()
            return until, f"Waiting for the closed-won deal until {day_text(until)}"
        wakes = (rule.next_wake(settled or self._o()), self._recorder.wake())
        return min((w for w in wakes if w is not None), key=lambda w: w[0], default=None)

    async def _sleep_until_due_or_message(self) -> None:
        await self._alarm.sleep(self._next_wake(), lambda: self.changed)

    # ------------------------------------------------------------------ publishing

    def _state(self, now: datetime) -> OnboardingState:
        if self._deal is None:
            return OnboardingState.AWAITING_DEAL
        return rule.state(self._o(), now)

    def _status(self, settled: rule.Settled | None = None) -> OnboardingStatus:
        workflow_id, now = workflow.info().workflow_id, workflow.now()
        if self.early is not None:
            until = self._waiting_until()
            return view.waiting_status(
                self.account_id, self.playbook, self.early, until, workflow_id, now
            )
        return view.status(settled or self._o(), workflow_id, now)

    def _waiting_until(self) -> datetime:
        assert self.early is not None
        return self.early.since + self.deal_wait_days * DAY

    # ------------------------------------------------------------------ records

    def _reject(self, refused: list[tuple[datetime, str, str, str]]) -> None:
        """Keep what a message had refused, (when, kind, what, why) each, the latest
        `MAX_REJECTED`, and log it in one line: a batch of a thousand product events with
        names no milestone awaits logs once, not a thousand times."""
        if not refused:
            return
        rejected = self.early.rejected if self.early is not None else self.progress.rejected
        for at, kind, ref, reason in refused:  # kept, so kept short
            rejected.append(
                RejectedMessage(at=at, kind=kind, ref=ref[:NAME_CHARS], reason=reason[:TEXT_CHARS])
            )
        del rejected[:-MAX_REJECTED]
        seen = Counter(f"{kind} {ref}: {reason}" for _, kind, ref, reason in refused)
        workflow.logger.warning(
            "rejected %s",
            "; ".join(line if n == 1 else f"{line} (x{n})" for line, n in seen.items()),
            extra={"account_id": self.account_id},
        )
