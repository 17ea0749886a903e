"""The soak's report: its figures (the last line printed, as JSON) and the table of
expected vs actual effects (`bench/soak.py` prints both)."""

from __future__ import annotations

from typing import Any

from soak_check import Check
from soak_fleet import Options
from soak_traffic import Traffic
from soak_workers import Workers


def figures(
    options: Options, traffic: Traffic, result: Check, workers: Workers, seconds: float
) -> dict[str, Any]:
    lost = result.total("lost") + len(result.unsent)
    return {
        "onboardings": options.onboardings,
        "lost": lost,
        "duplicated": result.total("duplicated"),
        "unexpected": result.total("unexpected"),
        "worker_kills": workers.kills,
        "peak_rss_mb": round(max(workers.peaks_kb) / 1024, 1),
        "starts_per_s": round(options.onboardings / traffic.start_seconds, 1),
        "onboardings_per_s": round(options.onboardings / traffic.caught_up_seconds, 1),
        "events_per_s": round(traffic.events / traffic.event_seconds, 1),
        "milestones_expected": result.milestones.expected,
        "milestones_actual": result.milestones.actual,
        "escalations_expected": result.escalations.expected,
        "escalations_actual": result.escalations.actual,
        "notifications_expected": result.notifications.expected,
        "notifications_actual": result.notifications.actual,
        "completed_expected": result.completed.expected,
        "completed_actual": result.completed.actual,
        "records_expected": result.records.expected,
        "records_actual": result.records.actual,
        "unsent_escalation_notifications": len(result.unsent),
        "torn_sent_log_lines": result.torn_lines,
        "webhooks": traffic.webhooks,
        "events": traffic.events,
        "events_accepted": traffic.outcomes["accepted"],
        "events_duplicate": traffic.outcomes["duplicate"],
        "events_ignored": traffic.outcomes["ignored"],
        "updates": traffic.updates,
        "signals": traffic.signals,
        "retried_503": traffic.retries,
        "retried_catching_up": traffic.catching_up,
        "worker_peaks_mb": [round(kb / 1024) for kb in workers.peaks_kb],
        "seconds": round(seconds),
    }


def table(f: dict[str, Any], result: Check) -> str:
    rows = [("effect", "expected", "actual", "lost", "duplicated", "unexpected")]
    for name, t in result.tallies().items():
        rows.append(
            (
                name,
                str(t.expected),
                str(t.actual),
                str(t.lost),
                str(t.duplicated),
                str(t.unexpected),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines += [
        "",
        f"fired escalations' notify actions missing from the sent log: {len(result.unsent)}",
        f"sent-log lines torn by a kill: {f['torn_sent_log_lines']}",
        f"worker: {f['worker_kills']} SIGKILLs; peak RSS {f['peak_rss_mb']} MB (per process, "
        f"in order: {' / '.join(map(str, f['worker_peaks_mb']))} MB)",
        f"throughput: {f['starts_per_s']} webhook starts/s; fleet caught up at "
        f"{f['onboardings_per_s']} onboardings/s; {f['events_per_s']} events/s "
        f"({f['events']} events: {f['events_accepted']} accepted, {f['events_duplicate']} "
        f"duplicate, {f['events_ignored']} ignored)",
        f"also sent: {f['updates']} updates, {f['signals']} milestone signals; "
        f"{f['retried_503']} requests retried after a 503, {f['retried_catching_up']} while "
        f"a worker caught up; {f['seconds']} s in all",
    ]
    mismatches = [c for t in result.tallies().values() for c in t.cases] + [
        f"unsent: {c}" for c in result.unsent
    ]
    if mismatches:
        lines += ["", f"MISMATCHES ({len(mismatches)}, first 20):", *mismatches[:20]]
    else:
        lines += ["", "every expected effect happened exactly once: PASS"]
    return "\n".join(lines)
