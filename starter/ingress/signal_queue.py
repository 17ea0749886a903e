"""Product events for one account from requests that arrive together, sent together.

While the ingress signals an account, the batches of the next requests for that account
wait; when the signal is taken, they go together in the next one. So an account has at
most one `product_events` signal on its way at a time, however many requests for it are
in flight, and a burst of requests adds no more to its workflow's history than a few
(README *Benchmark*). Every batch is still answered only once the signal that carries its
events was taken (or refused): a 2xx means Temporal has them, as for a request alone.

Each signal first looks at the onboarding (a describe: is it running, which events does
it await), and that look is always asked after all its batches arrived, so none is
filtered by what the onboarding awaited before its request came. It is asked as soon as
they have arrived: while the signal before theirs is still on its way, so the two round
trips of consecutive signals overlap instead of adding up.

An account's signals are at least `spacing` apart (`ONBOARDING_EVENT_SIGNAL_SPACING_MS`,
counted from when one is sent to when the next one's look is asked): the first events
of a quiet account go at once, and a busy account's next signal waits out the rest of
the spacing, gathering whatever comes meanwhile. Each signal costs the server and the
worker the same whatever it carries, so under a burst for a few accounts this is what
keeps them at the burst's pace; a request of a busy account waits up to `spacing` more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starter.events import AccountBatch, EventOutcome
from workflows.models import MAX_SIGNAL_EVENTS

S = TypeVar("S")
# What the onboarding of an account looks like now (the describe).
Look = Callable[[str], Coroutine[Any, Any, S]]
# Sends an account's batches as one signal, given the look: each batch's outcomes, in order.
Signal = Callable[[str, list[AccountBatch], S], Awaitable[list[list[EventOutcome]]]]

_Waiting = tuple[AccountBatch, "asyncio.Future[list[EventOutcome]]"]


@dataclass
class _Account(Generic[S]):
    """An account's waiting batches; the look asked for the next signal (it takes its
    batches as it is asked); whether a signal is on its way; when the spacing after the
    last one ends."""

    waiting: list[_Waiting] = field(default_factory=list)
    look: asyncio.Task[tuple[list[_Waiting], S | Exception]] | None = None
    busy: bool = False
    next_at: float = 0.0  # the event loop's time before which no next look is asked


class AccountSignals(Generic[S]):
    """The batches waiting per account, and the task that sends each account's."""

    def __init__(self, max_events: int = MAX_SIGNAL_EVENTS, spacing: float = 0.0) -> None:
        """`spacing`: seconds at least between two signals of one account (0: none)."""
        self.max_events = max_events
        self.spacing = spacing
        self._accounts: dict[str, _Account[S]] = {}
        self._senders: set[asyncio.Task[None]] = set()

    async def send(
        self, batch: AccountBatch, look: Look[S], signal: Signal[S]
    ) -> list[EventOutcome]:
        """`batch`'s outcomes once `signal` has sent it, alone or with the batches of
        other requests for the account that waited with it; the exception of `look` or
        `signal` if one failed."""
        answer: asyncio.Future[list[EventOutcome]] = asyncio.get_running_loop().create_future()
        account = self._accounts.get(batch.account_id)
        if account is not None:  # a signal for the account is on its way: go in the next
            account.waiting.append((batch, answer))
            if account.busy and account.look is None:  # look while it is on its way
                self._ask(account, look, batch.account_id)
            return await answer
        account = self._accounts[batch.account_id] = _Account(waiting=[(batch, answer)])
        sender = asyncio.create_task(self._send_all(batch.account_id, account, look, signal))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)
        return await answer

    def _ask(self, account: _Account[S], look: Look[S], account_id: str) -> None:
        account.look = asyncio.create_task(self._asked(account, look, account_id))

    async def _asked(
        self, account: _Account[S], look: Look[S], account_id: str
    ) -> tuple[list[_Waiting], S | Exception]:
        """The batches that have come by the time the look is asked (once the spacing
        after the last signal has passed; as many as fit in one signal), and the look
        (or why it failed)."""
        await _until(account.next_at)
        taken = self._next(account.waiting)
        try:
            return taken, await look(account_id)
        except Exception as exc:
            return taken, exc
        except BaseException:  # the ingress is stopping
            for _, answer in taken:
                answer.cancel()
            raise

    @staticmethod
    async def _more(account: _Account[S]) -> bool:
        """Whether another signal is due: batches wait or a look is asked, or some came
        before the spacing after the last signal ended (the account waits that long)."""
        if not account.waiting and account.look is None:
            await _until(account.next_at)
        return bool(account.waiting) or account.look is not None

    def _next(self, waiting: list[_Waiting]) -> list[_Waiting]:
        """The first waiting batch, and those after it that fit in the same signal."""
        taken, events = waiting[:1], len(waiting[0][0].events)
        for item in waiting[1:]:
            events += len(item[0].events)
            if events > self.max_events:
                break
            taken.append(item)
        del waiting[: len(taken)]
        return taken

    async def _send_all(
        self, account_id: str, account: _Account[S], look: Look[S], signal: Signal[S]
    ) -> None:
        """Until no batch of the account waits: one signal at a time, each with a look
        asked after its batches came; the next one's asked while it is on its way."""
        loop = asyncio.get_running_loop()
        try:
            while await self._more(account):
                if account.look is None:
                    self._ask(account, look, account_id)
                assert account.look is not None
                taken, state = await account.look
                account.look, account.busy = None, True
                account.next_at = loop.time() + self.spacing
                if account.waiting:  # they came meanwhile: look while this signal goes
                    self._ask(account, look, account_id)
                try:
                    if isinstance(state, Exception):
                        raise state
                    answers = await signal(account_id, [b for b, _ in taken], state)
                except Exception as exc:
                    for _, answer in taken:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                except BaseException:  # the ingress is stopping
                    for _, answer in taken:
                        answer.cancel()
                    raise
                finally:
                    account.busy = False
                for (_, answer), outcomes in zip(taken, answers, strict=True):
                    if not answer.done():
                        answer.set_result(outcomes)
        finally:
            del self._accounts[account_id]
            if account.look is not None:
                account.look.cancel()
            for _, answer in account.waiting:  # the ingress is stopping
                answer.cancel()


async def _until(when: float) -> None:
    """Wait until the event loop's time `when` (no wait, not even a turn, once it has
    passed)."""
    delay = when - asyncio.get_running_loop().time()
    if delay > 0:
        await asyncio.sleep(delay)
