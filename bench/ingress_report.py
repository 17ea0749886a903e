"""The ingress benchmark's report: its figures from the measured scenarios, and the
table of them against the goals (`bench/ingress.py` prints both)."""

from __future__ import annotations

import statistics
from typing import Any

from ingress_scenarios import Events, History, Options, Starts

# The goals (issue 13): the ingress at the server's pace.
START_RATIO = 0.95  # ingress starts/s >= this x the bare SDK's
P99_RATIO = 1.1  # ingress start p99 <= this x the bare SDK's
EVENT_RATIO = 30  # ingress events/s >= this x one signal per event
HISTORY_EVENTS = 2000  # events in the fed onboarding's latest run, at most


def figures(options: Options, starts: Starts, events: Events, history: History) -> dict[str, Any]:
    """The median round of each start figure, and the rest as measured."""
    bare_rate = statistics.median([r.per_second for r in starts["bare"]])
    ingress_rate = statistics.median([r.per_second for r in starts["ingress"]])
    bare_p99 = statistics.median([r.percentile_ms(99) for r in starts["bare"]])
    ingress_p99 = statistics.median([r.percentile_ms(99) for r in starts["ingress"]])
    p50_ms = {
        path: statistics.median([r.percentile_ms(50) for r in rounds])
        for path, rounds in starts.items()
    }
    naive_rate = events.per_second(events.naive)
    ingress_events_rate = events.per_second(events.ingress)
    return {
        "start_ratio": round(ingress_rate / bare_rate, 3),
        "p99_ratio": round(ingress_p99 / bare_p99, 3),
        "event_ratio": round(ingress_events_rate / naive_rate, 2),
        "history_events": history.latest_run,
        "bare_starts_per_s": round(bare_rate, 1),
        "ingress_starts_per_s": round(ingress_rate, 1),
        "bare_p50_ms": round(p50_ms["bare"], 1),
        "ingress_p50_ms": round(p50_ms["ingress"], 1),
        "bare_p99_ms": round(bare_p99, 1),
        "ingress_p99_ms": round(ingress_p99, 1),
        "naive_events_per_s": round(naive_rate, 1),
        "ingress_events_per_s": round(ingress_events_rate, 1),
        "naive_signals": events.count,
        "ingress_signals": events.ingress_signals,
        "history_raw_events": options.history_events,
        "history_signals": history.signals,
        "history_runs": history.runs,
        "history_events_all_runs": history.all_runs,
        "deals_per_round": options.deals,
        "rounds": options.rounds,
        "concurrency": options.concurrency,
        "events": options.events,
        "accounts": options.accounts,
    }


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(f: dict[str, Any]) -> str:
    runs = f["history_runs"]
    continued = f" (continued-as-new {runs - 1}x)" if runs > 1 else ""
    rows = [
        ("webhook -> started, bare SDK", f"{f['bare_starts_per_s']} starts/s", "", ""),
        ("webhook -> started, ingress", f"{f['ingress_starts_per_s']} starts/s", "", ""),
        (
            "start_ratio",
            f"{f['start_ratio']}",
            f">= {START_RATIO}",
            _mark(f["start_ratio"] >= START_RATIO),
        ),
        ("start p50 bare / ingress", f"{f['bare_p50_ms']} / {f['ingress_p50_ms']} ms", "", ""),
        ("start p99 bare / ingress", f"{f['bare_p99_ms']} / {f['ingress_p99_ms']} ms", "", ""),
        ("p99_ratio", f"{f['p99_ratio']}", f"<= {P99_RATIO}", _mark(f["p99_ratio"] <= P99_RATIO)),
        ("events, naive (1 signal each)", f"{f['naive_events_per_s']} events/s", "", ""),
        ("events, ingress (batches of 100)", f"{f['ingress_events_per_s']} events/s", "", ""),
        ("signals naive / ingress", f"{f['naive_signals']} / {f['ingress_signals']}", "", ""),
        (
            "event_ratio",
            f"{f['event_ratio']}",
            f">= {EVENT_RATIO}",
            _mark(f["event_ratio"] >= EVENT_RATIO),
        ),
        (
            f"history_events (latest run{continued})",
            f"{f['history_events']}",
            f"<= {HISTORY_EVENTS}",
            _mark(f["history_events"] <= HISTORY_EVENTS),
        ),
        (
            "  raw events / signals / all runs",
            f"{f['history_raw_events']} / {f['history_signals']} / {f['history_events_all_runs']}",
            "",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':<24}{'goal':<9}"]
    lines += [f"{name:<{width}}  {value:<24}{goal:<9}{mark}" for name, value, goal, mark in rows]
    return "\n".join(lines)
