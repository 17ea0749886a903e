"""What keeping the onboarding records costs per onboarding: history events and worker CPU.

    .venv/bin/python bench/records_cost.py          # or: make bench   (--onboardings N)

Runs N onboardings (a third of each tier) through 130 days on the time-skipping test
server, with the service's worker in this process and a throwaway SQLite records store:
half report their milestones as they fall due, the others stall and climb the escalation
ladder, a few are cancelled midway and the rest at the end. Then:

1. History: events per onboarding, and those the records add: each `save_record`
   activity's three events, and the workflow task its completion wakes (3 more) when
   nothing else woke it.
2. Worker CPU: this process's CPU during the run (the test server is another process),
   and the part spent in the records' own code, timed where it runs: building and
   comparing the record in each workflow task (`Recorder.save`) and writing it
   (`RecordStore.save_all`, each group of records that waited together). The activity's
   scheduling by the SDK is not in that part.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

# The other bench modules: `python bench/records_cost.py` puts bench/ first on sys.path.
import structlog
from common import deal
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from time_skipped import time_skipping

from activities import Settings, activities_for
from activities.converter import CONVERTER
from activities.records.store import RecordStore
from workflows import contract
from workflows.models import (
    CancelRequest,
    MilestoneReport,
    MilestoneStatus,
    OnboardingInput,
    OnboardingStatus,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.recording import Recorder

SAVE = contract.SAVE_RECORD.name
F = TypeVar("F", bound=Callable[..., Any])
DAY = timedelta(days=1)


class CpuMeter:
    """CPU seconds spent inside the wrapped functions (on whichever thread runs them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, fn: F) -> F:
        @wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.thread_time() - start

        return timed  # type: ignore[return-value]


async def live(env: WorkflowEnvironment, handles: list[WorkflowHandle[Any, Any]]) -> None:
    """130 days in steps of 5: even-numbered onboardings report each milestone once it is
    due; every seventh is cancelled on day 60, the rest on day 130."""
    ended: set[int] = set()
    for day in range(5, 131, 5):
        await env.sleep(5 * DAY)
        for i, handle in enumerate(handles):
            if i in ended:
                continue
            status: OnboardingStatus = await handle.query(AccountOnboarding.status)
            if status.finished_at is not None:  # handoff done
                ended.add(i)
            elif (i % 7 == 3 and day == 60) or day == 130:
                await handle.execute_update(
                    AccountOnboarding.cancel, CancelRequest(reason="bench", by="bench")
                )
                ended.add(i)
            elif i % 2 == 0:
                now = await env.get_current_time()
                for m in status.milestones:
                    if m.status is MilestoneStatus.NOT_STARTED and m.due_at <= now + 5 * DAY:
                        report = MilestoneReport(milestone_id=m.id, event_id=f"{m.id}-{day}")
                        await handle.signal(AccountOnboarding.milestone_reached, report)
                        break


def history_figures(histories: list[list[HistoryEvent]]) -> dict[str, float]:
    """Events per onboarding, and those the records add: each `save_record` activity's
    scheduled, started and completed events, and the workflow task its completion woke
    (3 more) when nothing else did."""
    total = records = 0
    for events in histories:
        total += len(events)
        writes: set[int] = set()  # the scheduled event ids of save_record activities
        for i, e in enumerate(events):
            kind = e.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                if e.activity_task_scheduled_event_attributes.activity_type.name == SAVE:
                    writes.add(e.event_id)
                    records += 1
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                records += e.activity_task_started_event_attributes.scheduled_event_id in writes
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and (
                e.activity_task_completed_event_attributes.scheduled_event_id in writes
            ):
                woke = i + 1 < len(events) and (
                    events[i + 1].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
                )
                records += 1 + 3 * woke
    n = len(histories)
    return {
        "history_events_per_onboarding": round(total / n, 1),
        "record_events_per_onboarding": round(records / n, 1),
        "record_events_share_pct": round(100 * records / total, 1),
    }


async def run(count: int) -> dict[str, float]:
    meter = CpuMeter()
    # Timed where they run: the workflow's side (host module, passed through to the
    # sandbox) and the store's write (in the activity's thread).
    Recorder.save = meter.wrap("recorder", Recorder.save)  # type: ignore[method-assign]
    RecordStore.save_all = meter.wrap("store", RecordStore.save_all)  # type: ignore[method-assign]
    folder = Path(tempfile.mkdtemp(prefix="records-bench-"))
    settings = Settings(notify_channels=["log"], records_url=f"sqlite:///{folder / 'r.db'}")
    env = await time_skipping(CONVERTER)
    playbook = load_playbook()
    try:
        async with Worker(
            env.client,
            task_queue="records-bench",
            workflows=[AccountOnboarding],
            activities=activities_for(settings),
        ):
            closed = await env.get_current_time()
            cpu = time.process_time()
            handles = [
                await env.client.start_workflow(
                    AccountOnboarding.run,
                    OnboardingInput(deal=deal(i, closed), playbook=playbook),
                    id=f"onboarding-bench-{i:04d}",
                    task_queue="records-bench",
                )
                for i in range(count)
            ]
            await live(env, handles)
            for handle in handles:
                await handle.result()
            cpu = time.process_time() - cpu
            histories = [[e async for e in h.fetch_history_events()] for h in handles]
    finally:
        await env.shutdown()
    records_cpu = sum(meter.seconds.values())
    return history_figures(histories) | {
        "worker_cpu_ms_per_onboarding": round(1000 * cpu / count, 1),
        "record_cpu_ms_per_onboarding": round(1000 * records_cpu / count, 2),
        "record_cpu_share_pct": round(100 * records_cpu / cpu, 1),
        "recorder_ms_per_onboarding": round(1000 * meter.seconds.get("recorder", 0) / count, 2),
        "store_ms_per_onboarding": round(1000 * meter.seconds.get("store", 0) / count, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onboardings", type=int, default=30, help="how many (30)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    figures = asyncio.run(run(args.onboardings))
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
