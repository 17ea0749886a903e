"""The outbox's independent effects run at once (`workflows.effects.together`): what may
join whom, and, on the time-skipping server, an onboarding's start asking for its CSM and
its implementation specialist in one workflow task, then sending the customer's welcome
and telling both in the next: three workflow tasks where there were five."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.support.mail import Mailbox
from tests.support.onboardings import until
from tests.test_assignment import high_touch_onboarding, messages
from workflows import progress
from workflows.effects import together
from workflows.models import Audience, Playbook, SkipCheck, StaffRole

CSM = progress.AssignOwner("new onboarding")
SPECIALIST = progress.AssignOwner("new onboarding", StaffRole.IMPLEMENTATION_SPECIALIST)
TO_CUSTOMER = progress.Notify("t1", Audience.CUSTOMER, "welcome", {})
TO_CSM = progress.Notify("t2", Audience.CSM, "owner_assigned", {})


def check() -> progress.CheckSkip:
    now = datetime.now(UTC)
    return progress.CheckSkip(
        SkipCheck(
            milestone_id="m", skipped_at=now, due_at=now + timedelta(days=14), usage_at_skip=0
        )
    )


@pytest.mark.parametrize(
    ("outbox", "together_n", "why"),
    [
        ([TO_CUSTOMER], 1, "one effect"),
        ([TO_CUSTOMER, TO_CSM], 2, "notifications read nothing another changes"),
        ([CSM, SPECIALIST], 2, "two roles, two rosters"),
        ([TO_CUSTOMER, CSM, SPECIALIST], 3, "a notification before an assignment"),
        ([CSM, TO_CSM], 1, "a notification waits for the owner it names"),
        ([CSM, SPECIALIST, TO_CSM], 2, "the same, after both assignments"),
        ([CSM, CSM], 1, "two assignments of one role go one by one"),
        ("check", 1, "the skip net's check runs alone"),
        ("notify-then-check", 1, "and after what comes before it"),
    ],
)
def test_which_effects_run_at_once(outbox: object, together_n: int, why: str) -> None:
    if outbox == "check":
        outbox = [check(), TO_CUSTOMER]
    elif outbox == "notify-then-check":
        outbox = [TO_CUSTOMER, check()]
    assert isinstance(outbox, list)
    assert together(outbox) == together_n, why


def scheduled_by_task(events: list[HistoryEvent]) -> list[list[str]]:
    """The activities each workflow task scheduled, in order, the tasks without any left
    out."""
    by_task: dict[int, list[str]] = defaultdict(list)
    for e in events:
        if e.HasField("activity_task_scheduled_event_attributes"):
            a = e.activity_task_scheduled_event_attributes
            by_task[a.workflow_task_completed_event_id].append(a.activity_type.name)
    return [sorted(by_task[task]) for task in sorted(by_task)]


async def until_recorded(handle: WorkflowHandle[Any, Any]) -> list[HistoryEvent]:
    """The history once the onboarding's first record was written."""
    for _ in range(200):
        events = list((await handle.fetch_history()).events)
        if any(e.HasField("activity_task_completed_event_attributes") for e in events) and any(
            e.activity_task_scheduled_event_attributes.activity_type.name == "save_record"
            for e in events
        ):
            return events
        await asyncio.sleep(0.05)
    raise AssertionError("no record written")


async def test_the_start_assigns_both_owners_at_once_then_tells_everyone_at_once(
    env: WorkflowEnvironment, playbook: Playbook, mailbox: Mailbox, tmp_path: Path
) -> None:
    async with high_touch_onboarding(env, playbook, mailbox, tmp_path) as (handle, _):
        st = await until(handle, lambda s: s.owner is not None and s.specialist is not None)
        assert (st.owner, st.specialist) == ("pat@vendor.test", "sam@vendor.test")
        sent = await messages(mailbox, 3)  # the customer's welcome, the CSM, the specialist
        assert sorted(sent) == ["cara@acme.test", "pat@vendor.test", "sam@vendor.test"]
        events = await until_recorded(handle)
    assert scheduled_by_task(events)[:3] == [
        ["assign_owner", "assign_owner"],
        ["notify", "notify", "notify"],
        ["save_record"],
    ]
