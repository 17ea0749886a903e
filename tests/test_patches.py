"""A new onboarding asks the SDK one patch for its whole life: `patches-folded-…`
(workflows/patches.py). Its history holds one patch marker and one `TemporalChangeVersion`
upsert, where before it held one of each for every patch the run met (three in its first
minute), and every rule behind the folded patches applies to it. Runs that began before
the fold replay with their own markers: tests/test_replay.py; one that began on an older
fold is taken over live by today's code here."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities import Settings, activities_for
from activities.converter import CONVERTER
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, status, until
from workflows import patches
from workflows.models import (
    MilestoneReport,
    MilestoneStatus,
    OnboardingInput,
    OnboardingState,
    PauseRequest,
    Playbook,
    ResumeRequest,
)
from workflows.onboarding import AccountOnboarding


def patch_ids(events: Sequence[HistoryEvent]) -> list[str]:
    """The ids of the patch markers in a history, in order."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def test_a_new_onboarding_records_one_patch_for_its_whole_life(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["high_touch"])
    handle = await onboardings.start(deal)
    plan = (await status(handle)).milestones
    kickoff = MilestoneReport(milestone_id="kickoff_call", status="in_progress", event_id="k")
    await handle.signal(AccountOnboarding.milestone_reached, kickoff)
    await handle.execute_update(
        AccountOnboarding.pause, PauseRequest(by="cs-lead", reason="customer re-org")
    )
    await onboardings.days_later(20)  # past the first deadlines, paused
    await handle.execute_update(AccountOnboarding.resume, ResumeRequest(by="cs-lead"))
    for m in plan:
        await onboardings.days_later(1)
        await handle.signal(
            AccountOnboarding.milestone_reached,
            MilestoneReport(milestone_id=m.id, event_id=f"ev-{m.id}"),
        )
    final = await handle.result()

    # The folded rules apply: the pause stopped the health score's clock too, so
    # nothing reached after it is late (`pause-stops-scoring`), and the record was kept.
    assert final.state is OnboardingState.COMPLETED
    assert all(m.status is MilestoneStatus.DONE for m in final.milestones)
    assert final.health.score == 100
    events = [e async for e in handle.fetch_history_events()]
    assert patch_ids(events) == [patches.FOLDED]
    versions = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and "TemporalChangeVersion"
        in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
    ]
    assert len(versions) == 1
    saved = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "save_record"
    ]
    assert saved  # `onboarding-records`: the run writes its record


def test_what_each_fold_stands_for_never_changes() -> None:
    """Runs have recorded these folds: a patch added to one of them, or left out, would
    switch those runs to a new path mid-run without a marker, or back to an old one. A
    later patch goes into a new fold, first in `FOLDS`."""
    first = {
        "continue-as-new-at-event-count",
        "credit-at-event-time",
        "stall-clock-customer-2026-12-01",
        "pause-holds-nudges-only-2026-12-01",
        "champion-window-2026-12-01",
        "expansion-queue-2026-12-01",
        "trial-conversion-2026-12-01",
        "onboarding-records",
        "effects-together-2026-12-01",
        "refresh-after-write-2026-12-01",
        "pause-stops-scoring-2026-12-01",
        "record-counts-spaced-2026-12-01",
    }
    assert {fold: {p.value for p in stands_for} for fold, stands_for in patches.FOLDS.items()} == {
        "patches-folded-2026-12-02": first | {"write-wakes-when-waited-for-2026-12-02"},
        "patches-folded-2026-12-01": first,
    }
    assert patches.FOLDED == "patches-folded-2026-12-02"  # what a new run records


FIRST_FOLD = "patches-folded-2026-12-01"


async def at_rest(handle: Any) -> None:
    """Once the run waits with no activity or workflow task pending."""
    for _ in range(200):
        raw = (await handle.describe()).raw_description
        if not raw.pending_activities and not raw.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still busy: {raw.pending_activities}")


async def test_a_run_begun_on_the_first_fold_is_taken_over_by_todays_code(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker on the first fold's code (its one fold; every record write's end woke the
    run) starts an onboarding and is stopped mid-run; a worker on today's code takes it
    over (replaying it first) and drives it to its end. The run never records the newer
    fold: it keeps the first fold's paths, and takes the later patch's new path from the
    first point today's code asks it live, with that patch's own marker. Its whole history
    replays on today's code."""
    task_queue = f"onboarding-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        notify_channels=["log"],
        sent_log=tmp_path / "sent.jsonl",
        records_url=f"sqlite:///{tmp_path / 'records.db'}",
    )

    def worker(cached: int) -> Worker:
        """The workflow's code alone: the activities have a worker of their own for both
        codes, so no activity task goes to a poll the stopped worker left behind (the
        time-skipping server can hand it one, and its clock then waits for it)."""
        return Worker(
            env.client,
            task_queue=task_queue,
            workflows=[AccountOnboarding],
            workflow_failure_exception_types=[Exception],  # a nondeterminism fails the run
            max_cached_workflows=cached,
        )

    deal = make_deal(close_date=await env.get_current_time(), **TIER_DEALS["high_touch"])
    later_patch = patches.Folded.WRITE_WAKES_WHEN_WAITED_FOR
    async with Worker(env.client, task_queue=task_queue, activities=activities_for(settings)):
        with monkeypatch.context() as first_fold_code:
            first_fold_code.setattr(patches, "FOLDS", {FIRST_FOLD: patches.FOLDS[FIRST_FOLD]})
            has = patches.has
            first_fold_code.setattr(patches, "has", lambda p: p is not later_patch and has(p))
            # Nothing cached: the stopped worker's sticky queue would hold the run's next task.
            async with worker(cached=0):
                handle: Any = await env.client.start_workflow(
                    AccountOnboarding.run,
                    OnboardingInput(deal=deal, playbook=playbook),
                    id=deal.workflow_id,
                    task_queue=task_queue,
                )
                plan = (await status(handle)).milestones
                first = MilestoneReport(milestone_id=plan[0].id, event_id=f"ev-{plan[0].id}")
                await handle.signal(AccountOnboarding.milestone_reached, first)
                await until(handle, lambda s: s.milestones[0].status is MilestoneStatus.DONE)
                await at_rest(handle)  # nothing left on the stopped worker holds the clock
        assert patch_ids([e async for e in handle.fetch_history_events()]) == [FIRST_FOLD]

        async with worker(cached=100):
            for m in plan[1:]:
                await env.sleep(timedelta(days=1))
                report = MilestoneReport(milestone_id=m.id, event_id=f"ev-{m.id}")
                await handle.signal(AccountOnboarding.milestone_reached, report)
            final = await handle.result()

    assert final.state is OnboardingState.COMPLETED
    assert all(m.status is MilestoneStatus.DONE for m in final.milestones)
    history = await handle.fetch_history()
    # Its first write to end unawaited under today's code asked the later patch live.
    assert patch_ids(history.events) == [FIRST_FOLD, later_patch.value]
    replayer = Replayer(workflows=[AccountOnboarding], data_converter=CONVERTER)
    await replayer.replay_workflow(history)
