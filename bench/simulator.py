"""How long the playbook simulator takes (`onboarding simulate`; docs/rules.md,
*Simulating a playbook change*): 1,000 mixed-tier sample onboardings over 120 days
under the default playbook, on every core, then the whole comparison (the same cohort
under the default playbook and a copy with tech_touch's 14-day stall step moved to day
10, both runs and their figures). Goal: the 1,000 onboardings in at most 5 s on this
machine (issue 13). Median of three runs each.

    .venv/bin/python bench/simulator.py            # or: make bench   (-n N, --days D)

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime

from starter.simulation.cohort import sample_cohort
from starter.simulation.compare import compare, run
from starter.simulation.model import BehaviourModel
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook, parse_playbook

GOAL_S = 5.0
SEED = 7


def _median_s(work: object, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="onboardings (default 1,000)")
    parser.add_argument("--days", type=int, default=120, help="days each (default 120)")
    args = parser.parse_args()
    playbook, model = load_playbook(), BehaviourModel()
    text = DEFAULT_PLAYBOOK.read_text()
    at = text.index("days = 14", text.index('id = "stall_outreach"'))
    moved = parse_playbook(text[:at] + "days = 10" + text[at + len("days = 14") :])
    deals = sample_cohort(args.n, SEED, datetime(2026, 1, 5, tzinfo=UTC), playbook)

    one = _median_s(lambda: run(deals, playbook, model, SEED, args.days))
    both = _median_s(lambda: compare(deals, moved, playbook, model, SEED, args.days))
    print(
        f"simulator: {args.n:,} onboardings over {args.days} days: {one:.2f} s (goal {GOAL_S:g} s)"
    )
    print(f"simulator: the comparison (2 x {args.n:,}, with the figures): {both:.2f} s")
    figures = {"onboardings": args.n, "days": args.days, "run_s": one, "compare_s": both}
    print(json.dumps(figures | {"goal_s": GOAL_S, "met": one <= GOAL_S}))


if __name__ == "__main__":
    main()
