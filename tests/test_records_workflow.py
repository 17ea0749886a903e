"""The onboarding keeps its record in the records store up to date: every change is
written, at most once per workflow task (a change of the counts alone up to 15 minutes
later), and the last record is the onboarding's final state (time-skipping server, a real
worker, a real SQLite store)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.records.schema import onboarding
from activities.records.store import RecordStore
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, until
from tests.support.records import record_when
from workflows import contract, patches
from workflows.models import (
    CancelRequest,
    MilestoneReport,
    MilestoneStatus,
    OnboardingInput,
    OnboardingState,
    Playbook,
    ProductEvent,
    ProductEventBatch,
    Tier,
)
from workflows.models.record import OnboardingRecord, RecordSaved
from workflows.onboarding import AccountOnboarding
from workflows.recording import COUNTS_EVERY


async def record_writes(handle: WorkflowHandle[Any, Any]) -> list[list[str]]:
    """Per workflow task (split at each WorkflowTaskCompleted), the save_record activities
    it scheduled."""
    tasks: list[list[str]] = [[]]
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks.append([])
        attrs = event.activity_task_scheduled_event_attributes
        if attrs.activity_type.name == contract.SAVE_RECORD.name:
            tasks[-1].append(attrs.activity_id)
    return tasks


async def test_the_record_follows_the_onboarding_and_ends_with_its_final_state(
    onboardings: Onboardings,
) -> None:
    store = RecordStore.open(onboardings.records_url)
    now = await onboardings.now()
    deal = make_deal("001REC000000000AAA", close_date=now, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)

    first = await record_when(store, deal.account_id)
    assert (first.tier, first.state) == (Tier.TECH_TOUCH, OnboardingState.ACTIVE)
    assert first.cohort == deal.close_date.strftime("%Y-%m")
    assert [m.id for m in first.milestones] == [m.id for m in (await handle.query(
        AccountOnboarding.status)).milestones]  # fmt: skip

    kickoff = first.milestones[0].id
    await handle.signal(
        AccountOnboarding.milestone_reached,
        MilestoneReport(milestone_id=kickoff, event_id="ev-kickoff"),
    )
    done = await record_when(store, deal.account_id, lambda r: r.milestones[0].done_at is not None)
    assert done.revision > first.revision

    await handle.execute_update(
        AccountOnboarding.cancel, CancelRequest(reason="customer churned", by="cs-lead")
    )
    final = await handle.result()
    last = await record_when(store, deal.account_id, lambda r: r.state is OnboardingState.CANCELLED)
    assert last.cancel_reason == "customer churned"
    assert last.finished_at is not None
    assert last.milestones == final.milestones
    assert last.audit == final.audit

    writes = await record_writes(handle)
    assert max(len(task) for task in writes) == 1, writes  # coalesced: one per task at most
    assert sum(len(task) for task in writes) == last.revision


async def test_refresh_record_writes_the_record_again_after_the_store_lost_it(
    onboardings: Onboardings,
) -> None:
    store = RecordStore.open(onboardings.records_url)
    now = await onboardings.now()
    deal = make_deal("001REC000000000BBB", close_date=now, **TIER_DEALS["high_touch"])
    handle = await onboardings.start(deal)
    before = await record_when(store, deal.account_id)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(onboarding))
    assert store.get(deal.account_id) is None

    await handle.signal(AccountOnboarding.refresh_record)
    again = await record_when(store, deal.account_id)
    assert again.revision > before.revision
    assert again.tier is Tier.HIGH_TOUCH


async def asleep(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait until the run sleeps on its timer (its first loop done, effects sent)."""
    for _ in range(200):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the onboarding never went to sleep")


async def test_an_onboarding_begun_before_records_records_once_asked(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that began on a worker without records (no `onboarding-records` marker in its
    history) writes nothing on the new worker, until `refresh_record`: then it continues as
    new into a run that records, with its state carried over."""
    settings = Settings(notify_channels=["log"], records_url=f"sqlite:///{tmp_path / 'r.db'}")
    store = RecordStore.open(settings.records_url)

    def worker() -> Worker:
        """The workflow's code alone: the activities have a worker of their own for both
        codes, so no activity task goes to a poll the stopped worker left behind."""
        return Worker(
            env.client,
            task_queue="records-upgrade",
            workflows=[AccountOnboarding],
            workflow_failure_exception_types=[Exception],
            # No sticky queue: the next worker gets the run's tasks at once.
            max_cached_workflows=0,
        )

    deal = make_deal(close_date=await env.get_current_time(), **TIER_DEALS["tech_touch"])
    async with Worker(
        env.client, task_queue="records-upgrade", activities=activities_for(settings)
    ):
        with monkeypatch.context() as old_code:
            # The code before records: no fold, each patch asked as it comes, no records.
            old_code.setattr(patches, "begin", lambda: None)
            before_records = patches.Folded.RECORDS
            old_code.setattr(
                patches, "has", lambda patch: patch != before_records and workflow.patched(patch)
            )
            async with worker():
                handle = await env.client.start_workflow(
                    AccountOnboarding.run,
                    OnboardingInput(deal=deal, playbook=playbook),
                    id=deal.workflow_id,
                    task_queue="records-upgrade",
                )
                before = await handle.query(AccountOnboarding.status)
                await asleep(handle)  # its loop has run to the end on the old code
        first_run = (await handle.describe()).run_id

        async with worker():  # the new code: it replays the old run's history
            report = MilestoneReport(milestone_id=before.milestones[0].id, event_id="ev-1")
            await handle.signal(AccountOnboarding.milestone_reached, report)
            status = await handle.query(AccountOnboarding.status)
            assert status.milestones[0].done_at is not None
            assert store.get(deal.account_id) is None  # the old run still records nothing

            await handle.signal(AccountOnboarding.refresh_record)
            record = await record_when(store, deal.account_id)

            assert record.milestones[0].done_at == status.milestones[0].done_at
            assert record.audit == status.audit
            assert (await handle.describe()).run_id != first_run  # continued as new


@pytest.mark.parametrize("arrives", ["refresh", "milestone"])
async def test_what_arrives_while_a_write_is_on_its_way_is_written_after_it(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path, arrives: str
) -> None:
    """`onboarding records backfill` signals `refresh_record`, and a CSM reports a
    milestone begun: either, arriving while the onboarding's last write is still on its
    way, is written when that write ends, not lost (the write's end wakes the run for
    it). The first write is held (the real store's activity, behind a gate) until the
    message has been taken."""
    settings = Settings(notify_channels=["log"], records_url=f"sqlite:///{tmp_path / 'r.db'}")
    store = RecordStore.open(settings.records_url)
    activities = activities_for(settings)
    (real,) = (a for a in activities if getattr(a, "__name__", "") == "save_record")
    gate, writes = asyncio.Event(), [0]

    @activity.defn(name=contract.SAVE_RECORD.name)
    async def held_save_record(record: OnboardingRecord) -> RecordSaved:
        writes[0] += 1
        await gate.wait()
        saved: RecordSaved = await real(record)
        return saved

    others = [a for a in activities if a is not real]
    deal = make_deal(close_date=await env.get_current_time(), **TIER_DEALS["tech_touch"])
    async with Worker(
        env.client,
        task_queue="records-refresh",
        workflows=[AccountOnboarding],
        activities=[*others, held_save_record],
        workflow_failure_exception_types=[Exception],
    ):
        handle = await env.client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue="records-refresh",
        )
        for _ in range(200):  # the first write is on its way
            if writes[0]:
                break
            await asyncio.sleep(0.05)
        first = (await handle.query(AccountOnboarding.status)).milestones[0]
        if arrives == "refresh":
            await handle.signal(AccountOnboarding.refresh_record)
        else:
            # Begun, not done: no message goes out, so the record's save comes in the
            # signal's own workflow task, while the held write is still on its way.
            report = MilestoneReport(
                milestone_id=first.id, status="in_progress", event_id="ev-first"
            )
            await handle.signal(AccountOnboarding.milestone_reached, report)
        await handle.query(AccountOnboarding.status)  # the signal has been taken
        gate.set()
        second = await record_when(store, deal.account_id, lambda r: r.revision >= 2)
    assert writes[0] == 2
    assert second.account_id == deal.account_id
    reached = {m.id: m.status for m in second.milestones}[first.id]
    assert first.status is MilestoneStatus.NOT_STARTED
    assert reached is (MilestoneStatus.IN_PROGRESS if arrives == "milestone" else first.status)


async def settled_writes(handle: WorkflowHandle[Any, Any]) -> int:
    """The onboarding's `save_record` writes, once none is on its way and its last
    workflow task is done."""
    for _ in range(200):
        events = [e async for e in handle.fetch_history_events()]
        scheduled = {
            e.event_id
            for e in events
            if e.activity_task_scheduled_event_attributes.activity_type.name
            == contract.SAVE_RECORD.name
        }
        ended = {e.activity_task_completed_event_attributes.scheduled_event_id for e in events}
        if scheduled <= ended and events[-1].event_type == (
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ):
            return len(scheduled)
        await asyncio.sleep(0.05)
    raise AssertionError("the onboarding's record writes never settled")


async def test_counts_alone_are_written_a_quarter_hour_late_at_most_and_with_any_change(
    onboardings: Onboardings,
) -> None:
    """rules §8: team invitations and support tickets move with every product event, so a
    change of them alone waits until `COUNTS_EVERY` after the last write; the status
    shows them at once, and any other change writes them at once too."""
    store = RecordStore.open(onboardings.records_url)
    deal = make_deal(
        "001CNT000000000AAA", close_date=await onboardings.now(), **TIER_DEALS["tech_touch"]
    )
    handle = await onboardings.start(deal)
    writes = await settled_writes(handle)
    before = store.get(deal.account_id)
    assert before is not None and before.support_tickets == 0
    opened_at, tickets = await onboardings.now(), 0

    async def open_ticket() -> None:
        nonlocal tickets
        tickets += 1
        event = ProductEvent(
            event_id=f"ticket-{tickets}", name="support_ticket_opened", at=opened_at
        )
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[event]))

    for _ in range(3):
        await open_ticket()
    await until(handle, lambda s: s.support_tickets == 3)
    assert await settled_writes(handle) == writes  # none for the counts alone
    assert store.get(deal.account_id) == before

    await onboardings.env.sleep(COUNTS_EVERY)
    counted = await record_when(store, deal.account_id, lambda r: r.support_tickets == 3)
    assert counted.as_of <= opened_at + COUNTS_EVERY
    assert await settled_writes(handle) == writes + 1  # all three in one write

    await open_ticket()  # then a milestone: both written at once
    kickoff = before.milestones[0].id
    report = MilestoneReport(milestone_id=kickoff, event_id="ev-kickoff")
    await handle.signal(AccountOnboarding.milestone_reached, report)
    done = await record_when(store, deal.account_id, lambda r: r.milestones[0].done_at is not None)
    assert done.support_tickets == 4
    assert done.as_of < counted.as_of + COUNTS_EVERY
