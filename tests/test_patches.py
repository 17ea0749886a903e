"""A new onboarding asks the SDK one patch for its whole life: `patches-folded-…`
(workflows/patches.py). Its history holds one patch marker and one `TemporalChangeVersion`
upsert, where before it held one of each for every patch the run met (three in its first
minute), and every rule behind the folded patches applies to it. Runs that began before
the fold replay with their own markers: tests/test_replay.py."""

from __future__ import annotations

import json

from temporalio.api.enums.v1 import EventType

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, status
from workflows import patches
from workflows.models import (
    MilestoneReport,
    MilestoneStatus,
    OnboardingState,
    PauseRequest,
    ResumeRequest,
)
from workflows.onboarding import AccountOnboarding


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
    markers = [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert [m["id"] for m in markers] == [patches.FOLDED]
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
