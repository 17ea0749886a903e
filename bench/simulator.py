"""How long the playbook simulator takes (`onboarding simulate`; docs/rules.md,
*Simulating a playbook change*): 1,000 mixed-tier sample onboardings over 120 days
under the default playbook, on every core, then the whole comparison (the same cohort
under the default playbook and a copy with tech_touch's 14-day stall step moved to day
10, both runs and their figures). Goal: the 1,000 onboardings in at most 5 s on this
machine (issue 13). Median of three runs each, wall clock and CPU (on 2 cores shared
with other work, the wall clock says more about the other work).

    .venv/bin/python bench/simulator.py            # or: make bench   (-n N, --days D)

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starter.simulation.cohort import sample_cohort
from starter.simulation.compare import compare, run
from starter.simulation.model import BehaviourModel
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook, parse_playbook

GOAL_S = 5.0
SEED = 7


def _cpu_s() -> float:
    """CPU seconds of this process and its finished worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _median_s(work: Callable[[], object], runs: int = 3) -> tuple[float, float]:
    """The median wall-clock seconds of `runs` runs, and the median CPU seconds (on 2
    cores shared with other work, the wall clock says more about the others)."""
    times, cpu = [], []
    for _ in range(runs):
        began, began_cpu = time.perf_counter(), _cpu_s()
        work()
        times.append(time.perf_counter() - began)
        cpu.append(_cpu_s() - began_cpu)
    return round(statistics.median(times), 2), round(statistics.median(cpu), 2)


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

    one, one_cpu = _median_s(lambda: run(deals, playbook, model, SEED, args.days))
    both, both_cpu = _median_s(lambda: compare(deals, moved, playbook, model, SEED, args.days))
    print(
        f"simulator: {args.n:,} onboardings over {args.days} days: {one:.2f} s "
        f"({one_cpu:.2f} s of CPU; goal {GOAL_S:g} s)"
    )
    print(
        f"simulator: the comparison (2 x {args.n:,}, with the figures): {both:.2f} s "
        f"({both_cpu:.2f} s of CPU)"
    )
    figures = {
        "onboardings": args.n,
        "days": args.days,
        "run_s": one,
        "run_cpu_s": one_cpu,
        "compare_s": both,
        "compare_cpu_s": both_cpu,
    }
    print(json.dumps(figures | {"goal_s": GOAL_S, "met": one <= GOAL_S}))


if __name__ == "__main__":
    main()
