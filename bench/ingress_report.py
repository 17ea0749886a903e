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


def figures(
    options: Options, starts: Starts, events: list[Events], history: History
) -> dict[str, Any]:
    """The median round of each start and event figure, and the history as measured."""
    bare_rate = statistics.median([r.per_second for r in starts["bare"]])
    ingress_rate = statistics.median([r.per_second for r in starts["ingress"]])
    bare_p99 = statistics.median([r.percentile_ms(99) for r in starts["bare"]])
    ingress_p99 = statistics.median([r.percentile_ms(99) for r in starts["ingress"]])
    p50_ms = {
        path: statistics.median([r.percentile_ms(50) for r in rounds])
        for path, rounds in starts.items()
    }
    ratios = [e.ingress_per_second / e.naive_per_second for e in events]
    return {
        "start_ratio": round(ingress_rate / bare_rate, 3),
        "p99_ratio": round(ingress_p99 / bare_p99, 3),
        "event_ratio": round(statistics.median(ratios), 2),
        "history_events": history.latest_run,
        "bare_starts_per_s": round(bare_rate, 1),
        "ingress_starts_per_s": round(ingress_rate, 1),
        "bare_p50_ms": round(p50_ms["bare"], 1),
        "ingress_p50_ms": round(p50_ms["ingress"], 1),
        "bare_p99_ms": round(bare_p99, 1),
        "ingress_p99_ms": round(ingress_p99, 1),
        "event_ratios": [round(r, 2) for r in ratios],
        "naive_events_per_s": round(statistics.median(e.naive_per_second for e in events), 1),
        "ingress_events_per_s": round(statistics.median(e.ingress_per_second for e in events), 1),
        "ingress_events_p50_ms": round(
            statistics.median(e.ingress.percentile_ms(50) for e in events), 1
        ),
        "naive_signals": options.events,
        "ingress_signals": round(statistics.median(e.signals for e in events)),
        "history_raw_events": options.history_events,
        "history_signals": history.signals,
        "history_runs": history.runs,
        "history_events_all_runs": history.all_runs,
        "deals_per_round": options.deals,
        "rounds": options.rounds,
        "concurrency": options.concurrency,
        "events": options.events,
        "ingress_events": options.ingress_events,
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
        ("  ingress request p50", f"{f['ingress_events_p50_ms']} ms", "", ""),
        (
            "events naive / ingress (signals)",
            f"{f['events']} / {f['ingress_events']} ({f['ingress_signals']})",
            "",
            "",
        ),
        (
            "event_ratio (rounds)",
            f"{f['event_ratio']} ({', '.join(str(r) for r in f['event_ratios'])})",
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
    width, values = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows) + 2
    lines = [f"{'figure':<{width}}  {'value':<{values}}{'goal':<9}"]
    lines += [
        f"{name:<{width}}  {value:<{values}}{goal:<9}{mark}" for name, value, goal, mark in rows
    ]
    return "\n".join(lines)
