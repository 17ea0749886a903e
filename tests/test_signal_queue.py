"""Requests for one account that arrive together share its next signal (README
*Benchmark*): each is answered once the signal carrying its events was sent, or with the
error that refused it; no signal carries more than `MAX_SIGNAL_EVENTS` events; each
signal's look at the onboarding is asked after its requests arrived, while the signal
before it is still on its way; a busy account's signals are at least the spacing apart.
Driven without a server: `send`'s look and signal are the
functions the ingress passes to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from activities.settings import settings_problems
from starter.events import AccountBatch, EventOutcome
from starter.ingress.signal_queue import AccountSignals
from starter.settings import IngressSettings
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
    """Answers each look and takes each signal after a round trip, and remembers what
    each signal carried, with the time of the look it was sent with."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.signals: list[tuple[str, list[str]]] = []
        self.refuse = refuse
        self.timeline: list[tuple[str, str, float]] = []  # (what, account, when)

    async def look(self, account_id: str) -> float:
        asked = asyncio.get_running_loop().time()
        self.timeline.append(("look", account_id, asked))
        await asyncio.sleep(0.01)
        return asked

    async def signal(
        self, account_id: str, batches: list[AccountBatch], looked_at: float
    ) -> list[list[EventOutcome]]:
        await asyncio.sleep(0.01)
        if self.refuse is not None:
            raise self.refuse
        self.signals.append((account_id, [e.event_id for b in batches for e in b.events]))
        self.timeline.append(("signal", account_id, asyncio.get_running_loop().time()))
        return [b.accepted() for b in batches]

    def send(self, queue: AccountSignals[float], b: AccountBatch) -> Awaitable[list[EventOutcome]]:
        return queue.send(b, self.look, self.signal)


async def test_requests_that_arrive_while_a_signal_is_sent_go_together_in_the_next() -> None:
    queue, temporal = AccountSignals[float](), Temporal()
    sends = [batch("acme", "user_logged_in", first=i) for i in range(4)]
    sends.append(batch("globex", "setup_completed"))
    first = asyncio.create_task(temporal.send(queue, sends[0]))
    await asyncio.sleep(0.001)  # its signal is on its way
    rest = asyncio.gather(*(temporal.send(queue, b) for b in sends[1:]))
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
    queue = AccountSignals[float]()
    refused = Temporal(refuse=RuntimeError("Temporal is unavailable"))
    sends = [batch("acme", "user_logged_in", first=i) for i in range(3)]
    answers = await asyncio.gather(*(refused.send(queue, b) for b in sends), return_exceptions=True)
    assert [str(a) for a in answers] == ["Temporal is unavailable"] * 3
    # The account is free again: the next request is sent on its own.
    temporal = Temporal()
    [answer] = await temporal.send(queue, batch("acme", "setup_completed", first=9))
    assert answer.outcome == "accepted"
    assert temporal.signals == [("acme", ["acme-9"])]


@pytest.mark.parametrize(("limit", "signals"), [(4, 3), (6, 2), (100, 1)])
async def test_no_signal_carries_more_events_than_one_may(limit: int, signals: int) -> None:
    queue, temporal = AccountSignals[float](max_events=limit), Temporal()
    sends = [batch("acme", *["user_logged_in"] * 3, first=10 * i) for i in range(3)]
    await asyncio.gather(*(temporal.send(queue, b) for b in sends))
    assert len(temporal.signals) == signals
    assert all(len(ids) <= limit for _, ids in temporal.signals)
    assert sorted(i for _, ids in temporal.signals for i in ids) == sorted(
        e.event_id for b in sends for e in b.events
    )


async def test_the_next_signal_looks_after_its_requests_came_while_the_last_is_on_its_way() -> None:
    queue, temporal = AccountSignals[float](), Temporal()
    first = asyncio.create_task(temporal.send(queue, batch("acme", "user_logged_in")))
    await asyncio.sleep(0.015)  # its look is answered, its signal is on its way
    came = asyncio.get_running_loop().time()
    second = await temporal.send(queue, batch("acme", "setup_completed", first=1))
    await first
    assert [a.outcome for a in second] == ["accepted"]
    (_, _, first_signal), (_, _, second_look) = (
        next(t for t in temporal.timeline if t[0] == "signal"),
        [t for t in temporal.timeline if t[0] == "look"][1],
    )
    # Asked after the second request came, before the first signal was taken.
    assert came <= second_look < first_signal
    assert temporal.signals == [("acme", ["acme-0"]), ("acme", ["acme-1"])]


async def test_a_busy_accounts_signals_are_at_least_the_spacing_apart() -> None:
    spacing = 0.08
    queue, temporal = AccountSignals[float](spacing=spacing), Temporal()
    first = asyncio.create_task(temporal.send(queue, batch("acme", "user_logged_in")))
    later = []
    for i in range(1, 4):  # while the first is sent, and after it was taken
        await asyncio.sleep(0.015)
        later.append(asyncio.create_task(temporal.send(queue, batch("acme", "x", first=i))))
    await asyncio.gather(first, *later)
    # The quiet account's first event went alone at once; the three that came within
    # the spacing went together once it had passed.
    assert temporal.signals == [("acme", ["acme-0"]), ("acme", ["acme-1", "acme-2", "acme-3"])]
    first_look, second_look = (t for what, _, t in temporal.timeline if what == "look")
    assert second_look - first_look >= spacing


async def test_the_spacing_holds_back_only_the_busy_account() -> None:
    spacing = 0.5
    queue, temporal = AccountSignals[float](spacing=spacing), Temporal()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await temporal.send(queue, batch("acme", "user_logged_in"))
    await temporal.send(queue, batch("globex", "user_logged_in"))
    assert loop.time() - started < spacing / 2  # each one's first signal at once
    await temporal.send(queue, batch("acme", "setup_completed", first=1))
    assert loop.time() - started >= spacing  # acme's second waited out its spacing
    assert [ids for _, ids in temporal.signals] == [["acme-0"], ["globex-0"], ["acme-1"]]


def test_the_spacing_setting_is_checked() -> None:
    with pytest.raises(ValidationError) as err:
        IngressSettings(event_signal_spacing_ms=-1)
    assert settings_problems(err.value) == (
        "bad settings: ONBOARDING_EVENT_SIGNAL_SPACING_MS: Input should be greater than or "
        "equal to 0"
    )
    assert IngressSettings().event_signal_spacing_ms == 100
