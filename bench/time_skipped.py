"""Onboardings driven to handoff on the time-skipping test server, against bare SDK
workflows with as many timers, messages and activities.

    .venv/bin/python bench/time_skipped.py     # or: make bench   (--onboardings N --rounds R)

Each round starts two time-skipping test servers (the venv's `temporal-test-server`,
never downloaded), one after the other, each with its worker in this process, as the
workflow tests run them:

1. The service's worker (`worker.build_worker`: the log channel, a throwaway SQLite
   records store, the service's data converter with the playbook by reference;
   unsandboxed as in production, or with `--sandbox` in the SDK's sandbox as the tests
   run it) and N onboardings, a third of each tier, closed at the server's clock. They
   are driven as a happy customer and CSM drive them: the CSM reports the kickoff call
   scheduled at once (the tiers whose plan has one), then every 2 days of skipped time
   each onboarding is told its next milestone reached (the `milestone_reached` signal,
   as the workflow tests send it), until the handoff; then each result.
2. The bare SDK's worker (`bare_driven.driven_worker`: the SDK's defaults) and
   N `BareDriven` workflows, each given what its onboarding of step 1 had in its history
   (timers started, timers fired, signals, activities scheduled), and sent its signals at
   the same moments of skipped time; then each result.

Wall time of each step, from the first start to the last result. Goal (issue 13): the
onboardings at most 1.5x the bare workflows (`time_skipped_ratio`). What the bare
workflows leave out is the onboarding's own cost: its rules, payloads (pydantic), search
attribute and memo upserts. Medians of the rounds; the ratio from the same run (the 2
cores are shared: compare ratios, not absolute figures, across runs). The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# The other bench modules: `python bench/time_skipped.py` puts bench/ first on sys.path.
import bare_driven
import structlog
from common import deal, timed
from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from activities.client import data_converter
from starter.devserver import TEST_SERVER_STARTUP, register_search_attributes
from worker import build_worker
from workflows.models import ClosedWonDeal, MilestoneReport, OnboardingInput
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.rules import build_plan, decide_tier

GOAL = 1.5
STEP = timedelta(days=2)
SKIP_TIMEOUT = timedelta(minutes=10)
CONCURRENCY = 16
TASK_QUEUE = "time-skipped-bench"
# The venv's time-skipping server (never downloaded).
TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
KICKOFF = "kickoff_call"


@dataclass(frozen=True)
class Drive:
    """What one driven workflow had in its history."""

    timers: int  # started
    fired: int
    messages: int  # signals and updates
    activities: int  # scheduled

    @classmethod
    def of(cls, events: Sequence[Any]) -> Drive:
        kinds = [e.event_type for e in events]
        return cls(
            timers=kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
            fired=kinds.count(EventType.EVENT_TYPE_TIMER_FIRED),
            messages=kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
            + kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
            activities=kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        )


# One workflow's messages: (step, send), the step counted in STEPs of skipped time.
Schedule = list[tuple[int, Callable[[], Awaitable[object]]]]
Start = Callable[[], Awaitable[WorkflowHandle[Any, Any]]]


async def started(starts: Sequence[Start]) -> list[WorkflowHandle[Any, Any]]:
    """The handles of `starts`, in their order (CONCURRENCY at a time)."""
    handles: list[WorkflowHandle[Any, Any] | None] = [None] * len(starts)

    def one(i: int, start: Start) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            handles[i] = await start()

        return go

    await timed([one(i, s) for i, s in enumerate(starts)], CONCURRENCY)
    return [h for h in handles if h is not None]


async def drive(
    env: WorkflowEnvironment, handles: Sequence[WorkflowHandle[Any, Any]], plans: list[Schedule]
) -> None:
    """Every workflow's messages at their step, STEP of skipped time between steps (all
    workflows share the server's clock), then every result, one after the other (the
    test server's time skipping does not take concurrent waits on results)."""
    last = max((step for plan in plans for step, _ in plan), default=0)
    for step in range(last + 1):
        if step:
            await skip(env, STEP)
        await timed([send for plan in plans for at, send in plan if at == step], CONCURRENCY)
    for handle in handles:
        await handle.result()


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """`env.sleep(duration)` with an RPC timeout of SKIP_TIMEOUT: the sleep is answered once
    the server's clock has moved on, which waits for every task the step's messages
    caused; for 1,000 onboardings that takes longer than the default RPC timeout (issue
    13: "did not finish before an RPC timeout")."""
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=SKIP_TIMEOUT)


async def time_skipping(converter: DataConverter) -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=converter,
        test_server_existing_path=str(TEST_SERVER),
        test_server_startup_timeout=TEST_SERVER_STARTUP,
    )
    await register_search_attributes(env.client)
    return env


def onboarding_schedule(handle: WorkflowHandle[Any, Any], plan: Sequence[str]) -> Schedule:
    """The kickoff call scheduled at once (when the plan has one: the handoff from sales
    to CS, rules §3), then one milestone reached per step, the handoff last."""

    def reached(milestone_id: str, status: str = "done") -> Callable[[], Awaitable[object]]:
        report = MilestoneReport(
            milestone_id=milestone_id, status=status, event_id=f"ev-{milestone_id}-{status}"
        )
        return lambda: handle.signal(AccountOnboarding.milestone_reached, report)

    kickoff = [(0, reached(KICKOFF, "in_progress"))] if KICKOFF in plan else []
    return kickoff + [(step, reached(m)) for step, m in enumerate(plan, start=1)]


async def onboardings(
    n: int, folder: Path, sandbox: bool
) -> tuple[float, list[Drive], list[list[int]]]:
    """Step 1: the wall time, each onboarding's history counts and its messages' steps."""
    playbook = load_playbook()
    records_url = f"sqlite:///{folder / 'r.db'}"
    settings = Settings(notify_channels=["log"], records_url=records_url, workflow_sandbox=sandbox)
    # As the service's processes convert: the pinned playbook by reference, its content
    # in the records store.
    env = await time_skipping(data_converter(records_url=records_url))
    try:
        async with build_worker(env.client, settings, task_queue=TASK_QUEUE):
            closed = await env.get_current_time()
            deals = [deal(i, closed) for i in range(n)]

            def start(d: ClosedWonDeal) -> Start:
                pinned = OnboardingInput(deal=d, playbook=playbook)
                return lambda: env.client.start_workflow(
                    AccountOnboarding.run, pinned, id=d.workflow_id, task_queue=TASK_QUEUE
                )

            began = time.perf_counter()
            handles = await started([start(d) for d in deals])
            plans = []
            for handle, d in zip(handles, deals, strict=True):
                tier = decide_tier(d, playbook).tier
                milestones = [m.id for m in build_plan(playbook, tier, closed, d.deal_type)]
                plans.append(onboarding_schedule(handle, milestones))
            await drive(env, handles, plans)
            seconds = time.perf_counter() - began
            drives = [Drive.of([e async for e in h.fetch_history_events()]) for h in handles]
    finally:
        await env.shutdown()
    return seconds, drives, [[step for step, _ in plan] for plan in plans]


async def bare(drives: Sequence[Drive], steps: Sequence[list[int]]) -> tuple[float, list[Drive]]:
    """Step 2: the wall time of the bare workflows, each as its onboarding was driven,
    and what each had in its history."""
    env = await time_skipping(DataConverter.default)
    try:
        async with bare_driven.driven_worker(env.client, TASK_QUEUE):

            def start(i: int, d: Drive) -> Start:
                w = f"bare-{i:05d}"
                args = [w, d.timers, d.fired, d.messages, d.activities]
                return lambda: env.client.start_workflow(
                    bare_driven.BareDriven.run, args=args, id=w, task_queue=TASK_QUEUE
                )

            began = time.perf_counter()
            handles = await started([start(i, d) for i, d in enumerate(drives)])

            def signal(h: WorkflowHandle[Any, Any]) -> Callable[[], Awaitable[object]]:
                return lambda: h.signal(bare_driven.REACHED)

            plans = [[(at, signal(h)) for at in s] for h, s in zip(handles, steps, strict=True)]
            await drive(env, handles, plans)
            seconds = time.perf_counter() - began
            return seconds, [Drive.of([e async for e in h.fetch_history_events()]) for h in handles]
    finally:
        await env.shutdown()


async def run(n: int, rounds: int, sandbox: bool) -> dict[str, Any]:
    onboarding_s: list[float] = []
    bare_s: list[float] = []
    drives: list[Drive] = []
    bare_drives: list[Drive] = []
    for r in range(rounds):
        with tempfile.TemporaryDirectory(prefix="time-skipped-bench-") as folder:
            seconds, drives, steps = await onboardings(n, Path(folder), sandbox)
        onboarding_s.append(seconds)
        if any(d.messages != len(s) for d, s in zip(drives, steps, strict=True)):
            raise RuntimeError("an onboarding took other messages than the driver sent")
        seconds, bare_drives = await bare(drives, steps)
        bare_s.append(seconds)
        print(
            f"round {r + 1}/{rounds}: onboardings {onboarding_s[-1]:.2f} s, "
            f"bare {bare_s[-1]:.2f} s ({onboarding_s[-1] / bare_s[-1]:.2f}x)",
            flush=True,
        )
    return figures(onboarding_s, bare_s, drives, bare_drives, n, rounds) | {"sandbox": sandbox}


def figures(
    onboarding_s: list[float],
    bare_s: list[float],
    drives: list[Drive],
    bare_drives: list[Drive],
    n: int,
    rounds: int,
) -> dict[str, Any]:
    """The medians and the ratio; what each workflow had in its history, on average (of
    the last round)."""
    onboarding, bare_median = statistics.median(onboarding_s), statistics.median(bare_s)

    def per(field: str, of: list[Drive]) -> float:
        return round(sum(getattr(d, field) for d in of) / len(of), 1)

    ratio = round(onboarding / bare_median, 2)
    each = {
        f"{side}_{field}": per(field, of)
        for side, of in (("onboarding", drives), ("bare", bare_drives))
        for field in ("timers", "fired", "messages", "activities")
    }
    return {
        "time_skipped_ratio": ratio,
        "onboarding_s": round(onboarding, 2),
        "bare_s": round(bare_median, 2),
        "onboarding_rounds_s": [round(s, 2) for s in onboarding_s],
        "bare_rounds_s": [round(s, 2) for s in bare_s],
        **each,
        "onboardings": n,
        "rounds": rounds,
        "goal": GOAL,
        "met": ratio <= GOAL,
    }


def table(f: dict[str, Any]) -> str:
    def each(side: str) -> str:
        fields = ("timers", "fired", "messages", "activities")
        return " / ".join(f"{f[f'{side}_{x}']:g}" for x in fields)

    return "\n".join(
        [
            "| figure | bare SDK | onboarding | ratio | goal |",
            "|---|---|---|---|---|",
            f"| {f['onboardings']:,} workflows driven to handoff on the time-skipping server "
            f"| {f['bare_s']} s | {f['onboarding_s']} s | "
            f"`time_skipped_ratio` {f['time_skipped_ratio']} | <= {GOAL:g} |",
            f"| per workflow: timers started / fired, signals, activities | {each('bare')} "
            f"| {each('onboarding')} | - | the same |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onboardings", type=int, default=100, help="per step (100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, median taken (3)")
    parser.add_argument(
        "--sandbox", action="store_true", help="the onboardings sandboxed, as the tests run them"
    )
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(
        f"time-skipped runs: {args.onboardings} onboardings, {args.rounds} rounds, "
        f"onboardings {'' if args.sandbox else 'not '}sandboxed",
        flush=True,
    )
    result = asyncio.run(run(args.onboardings, args.rounds, args.sandbox))
    print(table(result))
    print(
        f"time_skipped_ratio {result['time_skipped_ratio']}: goal <= {GOAL:g} "
        f"{'met' if result['met'] else 'NOT met'}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
