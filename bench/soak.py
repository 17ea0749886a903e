"""Soak: a fleet of onboardings under load, the worker killed mid-run, every effect counted.

    .venv/bin/python bench/soak.py            # or: make soak   (--quick: 100 onboardings, 1 kill)

On a throwaway dev server (SQLite on /dev/shm), with a `python worker.py` and a uvicorn
ingress, each its own process:

1. `--onboardings` deals arrive as signed `/webhooks/deals` posts (16 in flight), across
   the tiers, closed-won in the past: most so that ladder steps are already due when the
   onboarding starts (catch-up), a tenth so that steps come due during the run (durable
   timers).
2. A storm of Segment batches to `/events` (milestone events, noise, resent messageIds)
   while a fifth of the fleet is paused, paused then resumed, or has its tier overridden
   (SDK updates), and 3% of the deals are delivered again (a CRM retrying); then
   `milestone_reached` signals complete some onboardings.
3. Throughout, the worker is killed with SIGKILL `--kills` times, at evenly spaced points
   of the run's requests, and restarted at once.

Once the worker has caught up, every onboarding's status and the notifier's sent log
(`ONBOARDING_SENT_LOG`) are compared with what should have happened ("expected"):

- milestones: those of the plan whose completing events (count met by distinct
  messageIds) or `milestone_reached` signal were sent;
- escalations: the ladder replayed on the project's pure rules (`rules.ladder_steps`,
  `rules.replan`) over what was sent to the account (start, pause, resume, override,
  progress) and when, up to the check (`Replay`);
- notifications: the idempotency keys of the effects above (welcome, owner assigned,
  ladder notifies, tier changed, milestone reached, handoff; none to a paused customer),
  each exactly once in the sent log; and every notify action of a fired escalation in the
  statuses has its line in the sent log.

`lost` counts expected effects missing, `duplicated` effects seen more than once (sent-log
lines, escalations, onboardings), `unexpected` effects the rules do not explain. The last
line printed is one JSON object; the exit status is 1 on any mismatch.

This script parses the options and runs the parts: `soak_fleet.py` (the accounts and
what each is sent), `soak_oracle.py` (`Replay`, the expected side), `soak_workers.py`
(the killable worker and its stack), `soak_traffic.py` (the waves of requests),
`soak_check.py` (expected vs actual) and `soak_report.py` (the figures and the table);
`common.py` is shared with `bench/ingress.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

# The other bench modules: `python bench/soak.py` puts bench/ first on sys.path.
from soak_check import Check, check
from soak_fleet import Options, plan_fleet
from soak_report import figures, table
from soak_traffic import run_fleet
from soak_workers import soak_stack


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 onboardings, 1 kill")
    parser.add_argument("--onboardings", type=int, help="onboardings started (1000; quick 100)")
    parser.add_argument("--kills", type=int, help="worker SIGKILLs during the run (2; quick 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--seed", type=int, default=11, help="seed of the fleet and its traffic")
    args = parser.parse_args(argv)
    onboardings = args.onboardings or (100 if args.quick else 1000)
    kills = args.kills if args.kills is not None else (1 if args.quick else 2)
    if onboardings < 20 or kills < 0:
        parser.error("--onboardings must be >= 20 and --kills >= 0")
    return Options(onboardings, kills, args.concurrency, args.seed)


async def run(options: Options) -> tuple[dict[str, Any], Check]:
    started = time.perf_counter()
    async with soak_stack() as soak:
        s = soak.stack
        print(f"stack up: Temporal {s.server.address}, ingress 127.0.0.1:{s.http.port}", flush=True)
        t0 = datetime.now(UTC)
        fleet = plan_fleet(options, s.playbook, t0)
        traffic = await run_fleet(soak, options, fleet, t0)
        print("fleet settled; checking", flush=True)
        result = await check(soak, traffic, fleet)
        soak.workers.stop()  # its peak RSS, before the stack goes
    seconds = time.perf_counter() - started
    return figures(options, traffic, result, soak.workers, seconds), result


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    print(
        f"soak: {options.onboardings} onboardings, {options.kills} worker kills, "
        f"concurrency {options.concurrency}, seed {options.seed}",
        flush=True,
    )
    f, result = asyncio.run(run(options))
    print(table(f, result))
    print(json.dumps(f))
    sys.exit(1 if f["lost"] or f["duplicated"] or f["unexpected"] else 0)


if __name__ == "__main__":
    main()
