"""Product events for one account from requests that arrive together, sent together.

While the ingress asks Temporal about an account and signals it, the batches of the next
requests for that account wait; when it is done, they go together in the next signal.
So an account costs at most one describe and one `product_events` signal at a time,
however many requests for it are in flight, and a burst of requests adds no more to its
workflow's history than a few (README *Benchmark*). Every batch is still answered only
once the signal that carries its events was taken (or refused): a 2xx means Temporal has
them, as for a request alone. The describe of each signal is asked after all its batches
arrived, so none is filtered by what the onboarding awaited before its request came.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starter.events import AccountBatch, EventOutcome
from workflows.models import MAX_SIGNAL_EVENTS

# Sends an account's waiting batches as one signal: each batch's outcomes, in order.
Flush = Callable[[str, list[AccountBatch]], Awaitable[list[list[EventOutcome]]]]

_Waiting = tuple[AccountBatch, "asyncio.Future[list[EventOutcome]]"]


class AccountSignals:
    """The batches waiting per account, and the task that sends each account's."""

    def __init__(self, max_events: int = MAX_SIGNAL_EVENTS) -> None:
        self.max_events = max_events
        self._waiting: dict[str, list[_Waiting]] = {}
        self._senders: set[asyncio.Task[None]] = set()

    async def send(self, batch: AccountBatch, flush: Flush) -> list[EventOutcome]:
        """`batch`'s outcomes once `flush` has sent it, alone or with the batches of other
        requests for the account that waited with it; `flush`'s exception if it failed."""
        answer: asyncio.Future[list[EventOutcome]] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(batch.account_id)
        if waiting is not None:  # a signal for the account is on its way: go in the next
            waiting.append((batch, answer))
            return await answer
        self._waiting[batch.account_id] = [(batch, answer)]
        sender = asyncio.create_task(self._send_all(batch.account_id, flush))
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)
        return await answer

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

    async def _send_all(self, account_id: str, flush: Flush) -> None:
        """Until no batch of the account waits: the waiting ones, one signal at a time."""
        waiting = self._waiting[account_id]
        try:
            while waiting:
                taken = self._next(waiting)
                try:
                    answers = await flush(account_id, [batch for batch, _ in taken])
                except Exception as exc:
                    for _, answer in taken:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                except BaseException:  # the ingress is stopping
                    for _, answer in taken:
                        answer.cancel()
                    raise
                for (_, answer), outcomes in zip(taken, answers, strict=True):
                    if not answer.done():
                        answer.set_result(outcomes)
        finally:
            del self._waiting[account_id]
            for _, answer in waiting:  # the ingress is stopping
                answer.cancel()
