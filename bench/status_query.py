"""How long the status query of an open onboarding takes, against a bare workflow's query.

    .venv/bin/python bench/status_query.py     # or: make bench   (--onboardings N --queries Q)

On a throwaway dev server (`common.stack`) two worker processes run side by side: the
service's (`python worker.py`) with N open onboardings, a third of each tier, closed today
(nothing comes due during the run), and the bare SDK's (`bare_workflows.py`) with N
`BareWaiting`, all in their workers' caches. Each round sends Q `status` queries, 16 in
flight, to the onboardings in turn (answered as an `OnboardingStatus`, as the ingress
reads it), and Q to the bare workflows (a small dict), the sides taking turns going
first, and takes each side's latency p50 and p99, and its worker process's CPU per query.
Goal (issue 13): the onboarding's p50 at most 1.1x the bare query's (`query_p50_ratio`);
`query_p99_ratio` is shown too.

Medians of the rounds; ratios from the same run (the 2 cores are shared: compare ratios,
not absolute figures, across runs). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from typing import Any

# The other bench modules: `python bench/status_query.py` puts bench/ first on sys.path.
import bare_workflows
from common import Round, Stack, settle_workflows, stack, timed
from temporalio.client import WorkflowHandle
from worker_cost import starts, worker_process

from workflows.onboarding import AccountOnboarding

CONCURRENCY = 16
GOAL = 1.1
KINDS = ("onboarding", "bare_waiting")


def queries(
    s: Stack, kind: str, ids: Sequence[str], q: int
) -> list[Callable[[], Awaitable[object]]]:
    """`q` status queries, to the workflows of `ids` in turn."""
    handles = [s.client.get_workflow_handle(w) for w in ids]

    def one(h: WorkflowHandle[Any, Any]) -> Callable[[], Awaitable[object]]:
        if kind == "onboarding":
            return lambda: h.query(AccountOnboarding.status)
        return lambda: h.query(bare_workflows.STATUS)

    return [one(handles[i % len(handles)]) for i in range(q)]


async def run(n: int, q: int, rounds: int) -> dict[str, Any]:
    async with stack("bench-query-", lambda env, tmp: nullcontext((env, tmp))) as (s, ctx):
        env, log_dir = ctx
        print(f"stack up: Temporal {s.server.address}", flush=True)
        ids = {kind: [f"sq-{kind}-{i}" for i in range(n)] for kind in KINDS}
        with (
            worker_process("onboarding", env, log_dir) as onboarding_worker,
            worker_process("bare_waiting", env, log_dir) as bare_worker,
        ):
            workers = {"onboarding": onboarding_worker, "bare_waiting": bare_worker}
            for kind in KINDS:
                await timed(starts(s, kind, ids[kind], 0, ()), CONCURRENCY)
                await settle_workflows(s.client, ids[kind], within=600)
                await timed(queries(s, kind, ids[kind], n), CONCURRENCY)  # warm-up: one each
            measured: dict[str, list[Round]] = {k: [] for k in KINDS}
            cpu_ms: dict[str, list[float]] = {k: [] for k in KINDS}
            for r in range(rounds):
                for kind in KINDS[:: 1 if r % 2 == 0 else -1]:  # each side first in turn
                    before = workers[kind].cpu_s()
                    measured[kind].append(await timed(queries(s, kind, ids[kind], q), CONCURRENCY))
                    cpu_ms[kind].append(1000 * (workers[kind].cpu_s() - before) / q)
                on, bare = measured["onboarding"][-1], measured["bare_waiting"][-1]
                print(
                    f"round {r + 1}/{rounds}: p50 {on.percentile_ms(50):.1f} ms vs "
                    f"{bare.percentile_ms(50):.1f} ms, p99 {on.percentile_ms(99):.1f} ms vs "
                    f"{bare.percentile_ms(99):.1f} ms",
                    flush=True,
                )
    return figures(measured, cpu_ms, n, q, rounds)


def figures(
    measured: dict[str, list[Round]], cpu_ms: dict[str, list[float]], n: int, q: int, rounds: int
) -> dict[str, Any]:
    """The medians of the rounds and their ratios; the worker's CPU per query too (its
    process, every thread), to tell the worker's share of the latency from the server's."""

    def median(kind: str, p: int) -> float:
        return round(statistics.median(r.percentile_ms(p) for r in measured[kind]), 2)

    cpu = {k: round(statistics.median(cpu_ms[k]), 2) for k in KINDS}
    p50 = {k: median(k, 50) for k in KINDS}
    p99 = {k: median(k, 99) for k in KINDS}
    ratio = round(p50["onboarding"] / p50["bare_waiting"], 2)
    return {
        "query_p50_ratio": ratio,
        "query_p99_ratio": round(p99["onboarding"] / p99["bare_waiting"], 2),
        "onboarding_p50_ms": p50["onboarding"],
        "bare_p50_ms": p50["bare_waiting"],
        "onboarding_p99_ms": p99["onboarding"],
        "bare_p99_ms": p99["bare_waiting"],
        "onboarding_worker_cpu_ms": cpu["onboarding"],
        "bare_worker_cpu_ms": cpu["bare_waiting"],
        "onboardings": n,
        "queries": q,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "goal": GOAL,
        "met": ratio <= GOAL,
    }


def table(f: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| figure | bare SDK | onboarding | ratio | goal |",
            "|---|---|---|---|---|",
            f"| `status` query p50 ({f['queries']:,} queries, {f['concurrency']} in flight, "
            f"{f['onboardings']} open and cached) | {f['bare_p50_ms']} ms | "
            f"{f['onboarding_p50_ms']} ms | `query_p50_ratio` {f['query_p50_ratio']} | "
            f"<= {GOAL:g} |",
            f"| `status` query p99 | {f['bare_p99_ms']} ms | {f['onboarding_p99_ms']} ms | "
            f"`query_p99_ratio` {f['query_p99_ratio']} | - |",
            f"| the worker's CPU per query | {f['bare_worker_cpu_ms']} ms | "
            f"{f['onboarding_worker_cpu_ms']} ms | - | - |",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onboardings", type=int, default=200, help="open, per side (200)")
    parser.add_argument("--queries", type=int, default=2000, help="per side and round (2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, median taken (3)")
    args = parser.parse_args(argv)
    print(
        f"status query: {args.onboardings} open workflows per side, {args.queries} queries, "
        f"{args.rounds} rounds",
        flush=True,
    )
    result = asyncio.run(run(args.onboardings, args.queries, args.rounds))
    print(table(result))
    print(
        f"query_p50_ratio {result['query_p50_ratio']}: goal <= {GOAL:g} "
        f"{'met' if result['met'] else 'NOT met'}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
