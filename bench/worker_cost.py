"""What the worker spends to keep and to start an onboarding, against the bare SDK.

    .venv/bin/python bench/worker_cost.py        # or: make bench   (--workflows N --rounds R)

On a throwaway dev server (`common.stack`), each round runs three worker processes, one
after the other, each fresh, warmed up with a few workflows of its kind, then given N:

1. `python worker.py` (the service's worker): N onboardings started with the SDK, a third
   of each tier, closed today, the default playbook pinned in each.
2. The bare SDK's worker (`bare_workflows.py`): N `BareWaiting`, each waiting on a signal.
3. The bare SDK's worker: N `BareStarting`, each running as many activities (that do
   nothing) as an onboarding ran when it started (counted in its history in step 1).
4. The bare SDK's worker: N `BareSameCommands`, each issuing the commands one of step
   1's onboardings recorded as it started (`script_of` its history; one per tier, in
   turn): the same patch, memo, search attributes, activities with inputs and results of
   the same sizes, and timer.

Until every workflow of the step has neither a workflow task nor an activity pending, then:
- CPU: the worker process's CPU time (every thread: the SDK's core too) from the first
  start to the last one at rest, per workflow, onboarding (1) against the bare workflow
  with as many activities (3). Goal: at most 2x.
- memory: the worker's RSS growth per workflow (all N stay in its cache: it holds
  1,000), onboarding (1) against the bare workflow waiting on a signal (2). Goal: at most
  2x. It includes what starting them left behind (the bare SDK's workflows with as many
  activities keep about 14 KB each after they left the cache; the allocator keeps it).
- memory after a restart: a second fresh worker of the kind, warmed up with the warm-up
  workflows, loads each of the N into its cache (a `status` query replays it, one at a
  time), and its RSS growth per workflow is taken, onboarding (1) against bare waiting
  (2): what a worker that restarted needs for the same open workflows. Goal: at most 2x.

No goal, the floor: (4) against (2), started and replayed (`floor_memory_ratio`,
`replayed_floor_ratio`): what the bare SDK needs to keep a workflow that issued the
onboarding's commands, whatever code decided them; the onboarding against (4) is what
its own code adds (`over_floor`, `replayed_over_floor`).

Medians of the rounds; ratios from the same run (the 2 cores are shared, so compare
ratios, not absolute figures, across runs). The last line printed is one JSON object.
`--serve-bare` runs the bare worker (what step 2 and 3 spawn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The other bench modules: `python bench/worker_cost.py` puts bench/ first on sys.path.
import bare_same_commands
import bare_workflows
from common import BenchError, Stack, deal, running, settle_workflows, stack, tail, timed
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from workflows.contract import TASK_QUEUE, WORKFLOW_TYPE
from workflows.models import OnboardingInput

CONCURRENCY = 16
WARMUP = 10
KINDS = ("onboarding", "bare_waiting", "bare_starting", "bare_same_commands")
PATCH_MARKER = "core_patch"
# The core upserts it with every patch marker (`workflow.patched` does the same).
CHANGE_VERSION = "TemporalChangeVersion"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Worker:
    """A running worker process: its RSS and CPU, read from /proc."""

    pid: int

    def rss_kb(self) -> float:
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 1024

    def cpu_s(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


@dataclass
class Step:
    kind: str
    rss_kb: float  # growth per workflow, started
    cpu_ms: float  # per workflow
    activities: float  # per workflow, at rest
    cached_kb: float  # growth per workflow, replayed into a fresh worker's cache
    scripts: list[bare_same_commands.Script]  # of the first workflows (one per tier), at rest


def script_of(events: Sequence[HistoryEvent]) -> bare_same_commands.Script:
    """The commands `events` (a run's history) recorded, one list per workflow task that
    issued any, in order: what `BareSameCommands` issues again. Raises `BenchError` for a
    command it cannot issue again (a marker other than a patch's, a child workflow...)."""
    tasks: dict[int, list[bare_same_commands.Command]] = {}
    results: dict[int, int] = {}  # activity result sizes, by scheduled event id
    for e in events:
        if e.HasField("activity_task_completed_event_attributes"):
            done = e.activity_task_completed_event_attributes
            results[done.scheduled_event_id] = sum(len(p.data) for p in done.result.payloads)
    for e in events:
        # A command's event names the workflow task that issued it; no other event does.
        attributes = getattr(e, e.WhichOneof("attributes") or "")
        task = getattr(attributes, "workflow_task_completed_event_id", 0)
        if not task:
            continue
        command = _command(e, results)
        if command is not None:
            tasks.setdefault(task, []).append(command)
    return bare_same_commands.Script(tasks=list(tasks.values()))


def _command(e: HistoryEvent, results: dict[int, int]) -> bare_same_commands.Command | None:
    Command = bare_same_commands.Command
    if e.HasField("marker_recorded_event_attributes"):
        marker = e.marker_recorded_event_attributes
        if marker.marker_name != PATCH_MARKER:
            raise BenchError(f"cannot issue marker {marker.marker_name!r} again")
        patch = json.loads(marker.details["patch-data"].payloads[0].data)
        return Command("patch", name=patch["id"])
    if e.HasField("workflow_properties_modified_event_attributes"):
        fields = e.workflow_properties_modified_event_attributes.upserted_memo.fields
        return Command("memo", value={k: json.loads(p.data) for k, p in fields.items()})
    if e.HasField("upsert_workflow_search_attributes_event_attributes"):
        indexed = e.upsert_workflow_search_attributes_event_attributes.search_attributes
        values = [
            [name, p.metadata["type"].decode(), json.loads(p.data) if p.data else None]
            for name, p in indexed.indexed_fields.items()
            if name != CHANGE_VERSION
        ]
        return Command("search_attributes", value=values) if values else None
    if e.HasField("activity_task_scheduled_event_attributes"):
        scheduled = e.activity_task_scheduled_event_attributes
        size = sum(len(p.data) for p in scheduled.input.payloads)
        return Command("activity", size=size, result=results.get(e.event_id, 0))
    if e.HasField("timer_started_event_attributes"):
        fire = e.timer_started_event_attributes.start_to_fire_timeout
        return Command("timer", seconds=fire.ToTimedelta().total_seconds())
    raise BenchError(f"cannot issue again: {EventType.Name(e.event_type)}")


@contextmanager
def worker_process(kind: str, env: dict[str, str], log_dir: Path) -> Iterator[Worker]:
    """The service's worker (`onboarding`) or the bare one, polling when it is given."""
    script = ["worker.py"] if kind == "onboarding" else [__file__, "--serve-bare"]
    log = log_dir / f"worker-{kind}.log"
    log.unlink(missing_ok=True)
    with running([sys.executable, *script], env, log) as process:
        deadline = time.monotonic() + 60
        while "worker started" not in tail(log, 50):
            if process.poll() is not None:
                raise BenchError(f"the {kind} worker exited:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"the {kind} worker did not start within 60 s:\n{tail(log)}")
            time.sleep(0.1)
        yield Worker(process.pid)


def starts(
    s: Stack,
    kind: str,
    ids: Sequence[str],
    activities: int,
    scripts: Sequence[bare_same_commands.Script],
) -> list[Callable[[], Awaitable[object]]]:
    """One start per workflow id; onboardings closed today (nothing due during the step);
    the same commands as the onboardings' `scripts`, in turn."""
    closed = datetime.now(UTC)

    def one(i: int, w: str) -> Callable[[], Awaitable[object]]:
        if kind == "onboarding":
            pinned = OnboardingInput(deal=deal(i, closed), playbook=s.playbook)
            return lambda: s.client.start_workflow(
                WORKFLOW_TYPE, pinned, id=w, task_queue=TASK_QUEUE
            )
        if kind == "bare_waiting":
            return lambda: s.client.start_workflow(
                bare_workflows.BareWaiting.run, w, id=w, task_queue=bare_workflows.TASK_QUEUE
            )
        if kind == "bare_same_commands":
            return lambda: s.client.start_workflow(
                bare_same_commands.BareSameCommands.run,
                args=[w, scripts[i % len(scripts)]],
                id=w,
                task_queue=bare_workflows.TASK_QUEUE,
            )
        return lambda: s.client.start_workflow(
            bare_workflows.BareStarting.run,
            args=[w, activities],
            id=w,
            task_queue=bare_workflows.TASK_QUEUE,
        )

    return [one(i, w) for i, w in enumerate(ids)]


async def histories(s: Stack, ids: Sequence[str]) -> list[list[HistoryEvent]]:
    return [[e async for e in s.client.get_workflow_handle(w).fetch_history_events()] for w in ids]


def activities_run(events: Sequence[Sequence[HistoryEvent]]) -> float:
    """Activities scheduled per workflow (median of the histories `events`)."""
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    return statistics.median(sum(e.event_type == scheduled for e in h) for h in events)


async def step(
    s: Stack,
    env: dict[str, str],
    log_dir: Path,
    kind: str,
    label: str,
    n: int,
    activities: int,
    scripts: Sequence[bare_same_commands.Script],
) -> Step:
    """A fresh worker warmed up with a few workflows, then given `n`; what they cost it."""
    warm = [f"wc-{kind}-{label}-warm-{i}" for i in range(WARMUP)]
    ids = [f"wc-{kind}-{label}-{i}" for i in range(n)]
    with worker_process(kind, env, log_dir) as w:
        await timed(starts(s, kind, warm, activities, scripts), CONCURRENCY)
        await settle_workflows(s.client, warm)
        await asyncio.sleep(1)
        rss, cpu = w.rss_kb(), w.cpu_s()
        await timed(starts(s, kind, ids, activities, scripts), CONCURRENCY)
        await settle_workflows(s.client, ids, within=600)
        cpu = w.cpu_s() - cpu
        await asyncio.sleep(1)
        rss = w.rss_kb() - rss
    cached = 0.0
    if kind != "bare_starting":
        with worker_process(kind, env, log_dir) as w:
            # One at a time: replays side by side would add their passing peaks.
            await timed(queries(s, warm), 1)
            await asyncio.sleep(1)
            before = w.rss_kb()
            await timed(queries(s, ids), 1)
            await asyncio.sleep(1)
            cached = (w.rss_kb() - before) / n
    sample = await histories(s, ids[:10])  # ids[:3]: an onboarding of each tier
    # Stopped, so that no later worker of the task queue takes them into its cache.
    await asyncio.gather(*(s.client.get_workflow_handle(i).terminate() for i in warm + ids))
    scripts_run = [script_of(h) for h in sample[:3]]
    return Step(kind, rss / n, 1000 * cpu / n, activities_run(sample), cached, scripts_run)


def queries(s: Stack, ids: Sequence[str]) -> list[Callable[[], Awaitable[object]]]:
    """A `status` query per workflow: the worker replays each into its cache to answer."""

    def one(w: str) -> Callable[[], Awaitable[object]]:
        return lambda: s.client.get_workflow_handle(w).query(bare_workflows.STATUS)

    return [one(w) for w in ids]


async def run(n: int, rounds: int) -> dict[str, Any]:
    async with stack("bench-worker-", lambda env, tmp: nullcontext((env, tmp))) as (s, ctx):
        env, log_dir = ctx
        print(f"stack up: Temporal {s.server.address}", flush=True)
        measured: dict[str, list[Step]] = {k: [] for k in KINDS}
        activities, scripts = 0, list[bare_same_commands.Script]()
        for r in range(rounds):
            for kind in KINDS:
                done = await step(s, env, log_dir, kind, str(r), n, activities, scripts)
                measured[kind].append(done)
                if kind == "onboarding":
                    activities, scripts = round(done.activities), done.scripts
                print(
                    f"round {r + 1}/{rounds} {kind}: {done.rss_kb:.1f} KB started, "
                    f"{done.cached_kb:.1f} KB replayed, "
                    f"{done.cpu_ms:.1f} ms CPU, {done.activities:g} activities per workflow",
                    flush=True,
                )
    return figures(measured, n, rounds)


def figures(measured: dict[str, list[Step]], n: int, rounds: int) -> dict[str, Any]:
    def median(kind: str, field: str) -> float:
        return round(statistics.median(getattr(x, field) for x in measured[kind]), 1)

    rss = {k: median(k, "rss_kb") for k in KINDS}
    cached = {k: median(k, "cached_kb") for k in KINDS}
    cpu = {k: median(k, "cpu_ms") for k in KINDS}
    return {
        "memory_ratio": round(rss["onboarding"] / rss["bare_waiting"], 2),
        "replayed_memory_ratio": round(cached["onboarding"] / cached["bare_waiting"], 2),
        "cpu_ratio": round(cpu["onboarding"] / cpu["bare_starting"], 2),
        "floor_memory_ratio": round(rss["bare_same_commands"] / rss["bare_waiting"], 2),
        "replayed_floor_ratio": round(cached["bare_same_commands"] / cached["bare_waiting"], 2),
        "over_floor": round(rss["onboarding"] / rss["bare_same_commands"], 2),
        "replayed_over_floor": round(cached["onboarding"] / cached["bare_same_commands"], 2),
        "same_commands_rss_kb": rss["bare_same_commands"],
        "same_commands_replayed_kb": cached["bare_same_commands"],
        "onboarding_replayed_kb": cached["onboarding"],
        "bare_waiting_replayed_kb": cached["bare_waiting"],
        "onboarding_rss_kb": rss["onboarding"],
        "bare_waiting_rss_kb": rss["bare_waiting"],
        "onboarding_cpu_ms": cpu["onboarding"],
        "bare_starting_cpu_ms": cpu["bare_starting"],
        "activities_per_start": median("onboarding", "activities"),
        "workflows": n,
        "rounds": rounds,
    }


def table(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| figure, per workflow | bare SDK | onboarding | ratio | goal |",
            "|---|---|---|---|---|",
            f"| worker RSS growth, started and waiting in its cache | "
            f"{f['bare_waiting_rss_kb']} KB | {f['onboarding_rss_kb']} KB | "
            f"`memory_ratio` {f['memory_ratio']} | <= 2 |",
            f"| worker RSS growth, replayed into a restarted worker's cache | "
            f"{f['bare_waiting_replayed_kb']} KB | {f['onboarding_replayed_kb']} KB | "
            f"`replayed_memory_ratio` {f['replayed_memory_ratio']} | <= 2 |",
            f"| worker CPU, start to rest ({f['activities_per_start']:g} activities) | "
            f"{f['bare_starting_cpu_ms']} ms | {f['onboarding_cpu_ms']} ms | "
            f"`cpu_ratio` {f['cpu_ratio']} | <= 2 |",
            f"| the floor: RSS growth of the bare SDK issuing the onboarding's commands, "
            f"started | {f['same_commands_rss_kb']} KB | {f['onboarding_rss_kb']} KB | "
            f"`floor_memory_ratio` {f['floor_memory_ratio']}, "
            f"`over_floor` {f['over_floor']} | none |",
            f"| the floor, replayed | {f['same_commands_replayed_kb']} KB | "
            f"{f['onboarding_replayed_kb']} KB | "
            f"`replayed_floor_ratio` {f['replayed_floor_ratio']}, "
            f"`replayed_over_floor` {f['replayed_over_floor']} | none |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workflows", type=int, default=300, help="per step (300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, median taken (3)")
    parser.add_argument("--serve-bare", action="store_true", help="run the bare worker")
    args = parser.parse_args(argv)
    if args.serve_bare:
        address, namespace = os.environ["TEMPORAL_ADDRESS"], os.environ["TEMPORAL_NAMESPACE"]
        asyncio.run(bare_workflows.serve(address, namespace))
        return
    print(f"worker cost: {args.workflows} workflows per step, {args.rounds} rounds", flush=True)
    result = asyncio.run(run(args.workflows, args.rounds))
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
