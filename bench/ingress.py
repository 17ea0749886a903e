"""What the HTTP ingress costs and saves, against a real dev server, worker and uvicorn.

    .venv/bin/python bench/ingress.py            # or: make bench   (--quick: a smaller run)

1. Webhook -> onboarding started: signed `/webhooks/deals` posts to the ingress vs the
   bare SDK's `start_workflow`, same concurrency, same server. Goals: ingress throughput
   >= 0.95 x bare (`start_ratio`), ingress p99 <= 1.1 x bare (`p99_ratio`).
2. Product events: Segment batches of 100 calls to `/events` (20,000 events) vs one
   `product_events` signal per event (5,000), the same mix, in 3 rounds of both. Goal:
   ingress events/s >= 30 x naive (`event_ratio`, the median round's).
3. History: one onboarding fed 10,000 raw events through the ingress. Goal: its history
   (latest run) holds <= 2,000 events (`history_events`).

Everything runs on its own free ports with a throwaway SQLite file and is stopped at the
end. The last line printed is one JSON object with the figures.

This script parses the options and runs the parts: `ingress_scenarios.py` (the three
measurements), `ingress_report.py` (the figures and the table) and `common.py` (the
stack, the sender and the timing, shared with `bench/soak.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from typing import Any

# The other bench modules: `python bench/ingress.py` puts bench/ first on sys.path.
from common import stack, worker
from ingress_report import figures, table
from ingress_scenarios import Options, measure_events, measure_history, measure_starts


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--deals", type=int, help="deals per round and path (300; quick 100)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per path (3; quick 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument(
        "--events", type=int, help="product events signalled one by one (5000; quick 1000)"
    )
    parser.add_argument(
        "--ingress-events",
        type=int,
        help="product events posted to /events (20000; quick 4000): enough for the round "
        "to last a few seconds",
    )
    parser.add_argument("--accounts", type=int, help="accounts the events go to (10; quick 5)")
    parser.add_argument(
        "--history-events", type=int, help="raw events into one onboarding (10000; quick 2000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the event mix")
    args = parser.parse_args(argv)

    def pick(value: int | None, full: int, quick: int) -> int:
        return value if value is not None else (quick if args.quick else full)

    return Options(
        deals=pick(args.deals, 300, 100),
        rounds=pick(args.rounds, 3, 2),
        concurrency=args.concurrency,
        events=pick(args.events, 5000, 1000),
        ingress_events=pick(args.ingress_events, 20_000, 4000),
        accounts=pick(args.accounts, 10, 5),
        history_events=pick(args.history_events, 10_000, 2000),
        seed=args.seed,
    )


async def run(options: Options) -> dict[str, Any]:
    async with stack("bench-ingress-", worker) as (s, _):
        print(f"stack up: Temporal {s.server.address}, ingress 127.0.0.1:{s.http.port}", flush=True)
        starts = await measure_starts(s, options)
        print("starts measured", flush=True)
        events = await measure_events(s, options)
        print("events measured", flush=True)
        history = await measure_history(s, options)
    return figures(options, starts, events, history)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    print(
        f"ingress benchmark: {options.deals} deals x {options.rounds} rounds per path, "
        f"concurrency {options.concurrency}; {options.events} events one by one and "
        f"{options.ingress_events} through /events to {options.accounts} accounts per "
        f"round; {options.history_events} events into one onboarding",
        flush=True,
    )
    result = asyncio.run(run(options))
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
