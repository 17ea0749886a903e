"""What a cached onboarding costs the worker as it ages, against a bare workflow waiting
on a signal.

    .venv/bin/python bench/memory_over_life.py    # or: make bench   (--onboardings N)

`bench/worker_cost.py` measures an onboarding just started. This one follows it through
time, on one time-skipping test server (the venv's, never downloaded) with both workers
in this process: the bare SDK's (`bare_workflows.BareWaiting`, the SDK's defaults) and
the service's (`worker.build_worker`, unsandboxed as in production, the log channel, a
throwaway SQLite records store).

1. N `BareWaiting`: the process's RSS growth per workflow, at rest.
2. N onboardings, a third of each tier, closed at the server's clock, whose customers do
   nothing, so the ladder runs as the rules say (nudges, escalations, the health alerts,
   automatic tier changes): the RSS growth per onboarding, all N in the worker's cache,
   on the day each starts and after DAYS of skipped time, with the median history length.

What grows: the onboarding's own state (its audit trail, escalations, notifications
sent), and the SDK core's, which keeps every command's state machine of a run (each
workflow task, activity, timer, upsert and marker) until the run ends or leaves the
cache: together about 1.9 KB per history event (README *Worker cost*). A run's length is
bounded by `ONBOARDING_MAX_HISTORY_EVENTS` (continue-as-new). The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

# The other bench modules: `python bench/memory_over_life.py` puts bench/ first on sys.path.
import bare_workflows
import structlog
from common import deal
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker
from time_skipped import Start, skip, started, time_skipping

from activities import Settings
from activities.client import data_converter
from worker import build_worker
from workflows.models import ClosedWonDeal, OnboardingInput
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook

DAYS = (0, 10, 30, 60)
TASK_QUEUE = "memory-over-life-bench"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kb() -> float:
    """This process's resident memory, after a full collection."""
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 1024


async def at_rest() -> float:
    """RSS once the last activations' leftovers are gone (a second, then collected)."""
    await asyncio.sleep(1)
    return rss_kb()


async def history_length(handles: Sequence[WorkflowHandle[Any, Any]]) -> int:
    lengths = []
    for h in handles[:9]:  # three of each tier
        info = (await h.describe()).raw_description.workflow_execution_info
        lengths.append(info.history_length)
    return round(statistics.median(lengths))


async def run(n: int) -> dict[str, Any]:
    playbook = load_playbook()
    with tempfile.TemporaryDirectory(prefix="memory-over-life-bench-") as folder:
        records_url = f"sqlite:///{folder}/r.db"
        settings = Settings(notify_channels=["log"], records_url=records_url)
        env = await time_skipping(data_converter(records_url=records_url))
        try:
            bare_worker = Worker(
                env.client,
                task_queue=bare_workflows.TASK_QUEUE,
                workflows=[bare_workflows.BareWaiting],
                max_cached_workflows=2 * n + 100,
            )
            worker = build_worker(env.client, settings, task_queue=TASK_QUEUE)

            def onboarding(d: ClosedWonDeal, workflow_id: str) -> Start:
                pinned = OnboardingInput(deal=d, playbook=playbook)
                return lambda: env.client.start_workflow(
                    AccountOnboarding.run, pinned, id=workflow_id, task_queue=TASK_QUEUE
                )

            def bare(workflow_id: str) -> Start:
                return lambda: env.client.start_workflow(
                    bare_workflows.BareWaiting.run,
                    workflow_id,
                    id=workflow_id,
                    task_queue=bare_workflows.TASK_QUEUE,
                )

            async with bare_worker, worker:
                closed = await env.get_current_time()
                # Imports, caches and pools first, with a few onboardings of their own.
                await started([onboarding(deal(n + i, closed), f"warm-{i}") for i in range(10)])
                await skip(env, timedelta(minutes=1))  # their effects sent
                before = await at_rest()
                await started([bare(f"bare-{i}") for i in range(n)])
                await skip(env, timedelta(minutes=1))
                bare_kb = (await at_rest() - before) / n
                print(f"bare waiting: {bare_kb:.1f} KB per workflow", flush=True)

                before = await at_rest()
                deals = [deal(i, closed) for i in range(n)]
                handles = await started([onboarding(d, d.workflow_id) for d in deals])
                days: list[dict[str, Any]] = []
                done = 0
                for day in DAYS:
                    # A minute past the day: the start's (or the day's) effects are sent.
                    await skip(env, timedelta(days=day - done, minutes=1))
                    done = day
                    kb = (await at_rest() - before) / n
                    events = await history_length(handles)
                    days.append({"day": day, "kb": round(kb, 1), "history_events": events})
                    print(
                        f"day {day}: {kb:.1f} KB per onboarding ({kb / bare_kb:.2f}x), "
                        f"history {events} events",
                        flush=True,
                    )
        finally:
            await env.shutdown()
    return {
        "bare_waiting_kb": round(bare_kb, 1),
        "days": [d | {"ratio": round(d["kb"] / bare_kb, 2)} for d in days],
        "onboardings": n,
    }


def table(f: dict[str, Any]) -> str:
    rows = [
        "| day | history events (median) | onboarding | bare waiting | ratio |",
        "|---|---|---|---|---|",
    ]
    for d in f["days"]:
        rows.append(
            f"| {d['day']} | {d['history_events']} | {d['kb']} KB | "
            f"{f['bare_waiting_kb']} KB | {d['ratio']}x |"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onboardings", type=int, default=150, help="and bare workflows (150)")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"memory over life: {args.onboardings} onboardings, days {DAYS}", flush=True)
    result = asyncio.run(run(args.onboardings))
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
