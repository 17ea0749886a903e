"""Requests for one account that arrive together share its next signal (README
*Benchmark*): each is answered once the signal carrying its events was sent, or with the
error that refused it; no signal carries more than `MAX_SIGNAL_EVENTS` events. Driven
without a server: `send`'s flush is the function the ingress passes to it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from starter.events import AccountBatch, EventOutcome
from starter.ingress.signal_queue import AccountSignals
from workflows.models import ProductEvent


def batch(account_id: str, *names: str, first: int = 0) -> AccountBatch:
    at = datetime.now(UTC)
    return AccountBatch(
        account_id=account_id,
        events=[
            ProductEvent(event_id=f"{account_id}-{first + i}", name=name, at=at)
            for i, name in enumerate(names)
        ],
        outcomes=list(range(first, first + len(names))),
    )


class Temporal:
    """Takes each flush's signal after a round trip, and remembers what each carried."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.signals: list[tuple[str, list[str]]] = []
        self.refuse = refuse

    async def flush(self, account_id: str, batches: list[AccountBatch]) -> list[list[EventOutcome]]:
        await asyncio.sleep(0.01)
        if self.refuse is not None:
            raise self.refuse
        self.signals.append((account_id, [e.event_id for b in batches for e in b.events]))
        return [b.accepted() for b in batches]


async def test_requests_that_arrive_while_a_signal_is_sent_go_together_in_the_next() -> None:
    queue, temporal = AccountSignals(), Temporal()
    sends = [batch("acme", "user_logged_in", first=i) for i in range(4)]
    sends.append(batch("globex", "setup_completed"))
    first = asyncio.create_task(queue.send(sends[0], temporal.flush))
    await asyncio.sleep(0.001)  # its signal is on its way
    rest = asyncio.gather(*(queue.send(b, temporal.flush) for b in sends[1:]))
    await asyncio.sleep(0.001)
    assert not first.done()  # the others came while it was sent
    answers = [await first, *await rest]
    assert [[a.outcome for a in answer] for answer in answers] == [["accepted"]] * 5
    assert [a.message_id for answer in answers for a in answer] == [
        "acme-0",
        "acme-1",
        "acme-2",
        "acme-3",
        "globex-0",
    ]
    assert sorted(temporal.signals) == [
        ("acme", ["acme-0"]),
        ("acme", ["acme-1", "acme-2", "acme-3"]),
        ("globex", ["globex-0"]),
    ]


async def test_a_refused_signal_fails_every_request_it_carried() -> None:
    queue = AccountSignals()
    refused = Temporal(refuse=RuntimeError("Temporal is unavailable"))
    sends = [batch("acme", "user_logged_in", first=i) for i in range(3)]
    answers = await asyncio.gather(
        *(queue.send(b, refused.flush) for b in sends), return_exceptions=True
    )
    assert [str(a) for a in answers] == ["Temporal is unavailable"] * 3
    # The account is free again: the next request is sent on its own.
    temporal = Temporal()
    [answer] = await queue.send(batch("acme", "setup_completed", first=9), temporal.flush)
    assert answer.outcome == "accepted"
    assert temporal.signals == [("acme", ["acme-9"])]


@pytest.mark.parametrize(("limit", "signals"), [(4, 3), (6, 2), (100, 1)])
async def test_no_signal_carries_more_events_than_one_may(limit: int, signals: int) -> None:
    queue, temporal = AccountSignals(max_events=limit), Temporal()
    sends = [batch("acme", *["user_logged_in"] * 3, first=10 * i) for i in range(3)]
    await asyncio.gather(*(queue.send(b, temporal.flush) for b in sends))
    assert len(temporal.signals) == signals
    assert all(len(ids) <= limit for _, ids in temporal.signals)
    assert sorted(i for _, ids in temporal.signals for i in ids) == sorted(
        e.event_id for b in sends for e in b.events
    )
