"""Facts as they arrive, before the deal (`EarlyFacts`) or after (`OnboardingProgress`):
each message taken once by its event id, each product event counted with when it
happened. Pure: the workflow owns the lookup set, the state owns the list."""

from __future__ import annotations

import hashlib
from bisect import insort
from datetime import datetime

from workflows import event_mapping
from workflows.models import EarlyFacts, OnboardingProgress, ProductEvent, ProductFacts

# Bound that keeps the state (and so continue-as-new payloads) small over 120 days.
MAX_SEEN_EVENT_IDS = 10_000
# Event ids longer than this are kept as their digest (a client may send any length).
EVENT_ID_CHARS = 64


def seen(ids: list[str], index: set[str], event_id: str) -> bool:
    """Whether `event_id` came before. A new one is kept: in `index` (the lookup) and at
    the end of `ids` (the state's list, in order, of at most `MAX_SEEN_EVENT_IDS`: the
    oldest are forgotten)."""
    if len(event_id) > EVENT_ID_CHARS:
        event_id = hashlib.sha256(event_id.encode()).hexdigest()
    if event_id in index:
        return True
    ids.append(event_id)
    index.add(event_id)
    if len(ids) > MAX_SEEN_EVENT_IDS:
        for old in ids[:-MAX_SEEN_EVENT_IDS]:
            index.discard(old)
        del ids[:-MAX_SEEN_EVENT_IDS]
    return False


def count(
    facts: EarlyFacts | OnboardingProgress | ProductFacts,
    event: ProductEvent,
    now: datetime,
    keep: dict[str, int],
    recent: dict[str, int] | None = None,
) -> None:
    """Count `event`; when its name's times are kept (`keep`: how many, by name), keep
    when it happened too (its own time, never later than `now`): the earliest for
    milestones, and (`recent`, once begun: behavioral ladder steps) the latest."""
    facts.event_counts[event.name] = facts.event_counts.get(event.name, 0) + 1
    at = min(event.at or now, now)
    if n := keep.get(event.name):
        times = facts.event_times.setdefault(event.name, [])
        event_mapping.record_time(times, at, n)
    if isinstance(facts, OnboardingProgress) and (n := (recent or {}).get(event.name)):
        latest = facts.recent_times.setdefault(event.name, [])
        insort(latest, at)
        del latest[:-n]
