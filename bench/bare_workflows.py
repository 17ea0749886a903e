"""The bare SDK's side of `bench/worker_cost.py`, `bench/time_skipped.py` and
`bench/status_query.py`: the least a workflow can be.

- `BareWaiting` waits on a signal: what a cached open workflow costs the worker at least;
  its `status` query answers a small dict: what a query costs at least.
- `BareStarting` runs `count` activities that do nothing, one after the other, then waits
  on a signal as well: what starting a workflow costs the worker at least.
- `BareDriven` sleeps through timers, takes signals and runs activities that do nothing,
  as many of each as an onboarding had: what a workflow driven through time costs at
  least.

Their own module (not the script's `__main__`), so the sandbox can load them per workflow
as it loads `workflows.onboarding`. `bare_worker` is a worker of all three on the bare
SDK: the default data converter, no codec, default cache and concurrency; `serve` runs it.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TASK_QUEUE = "bench-bare"
DONE = "done"
STATUS = "status"  # as the onboarding's query is named
REACHED = "reached"


@workflow.defn
class BareWaiting:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, account_id: str) -> str:
        await workflow.wait_condition(lambda: self.done)
        return account_id

    @workflow.signal(name=DONE)
    def finish(self) -> None:
        self.done = True

    @workflow.query(name=STATUS)
    def status(self) -> dict[str, bool]:
        return {"done": self.done}


@activity.defn
async def nothing(account_id: str) -> str:
    return account_id


@workflow.defn
class BareStarting:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, account_id: str, count: int) -> str:
        for _ in range(count):
            await workflow.execute_activity(
                nothing, account_id, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.wait_condition(lambda: self.done)
        return account_id

    @workflow.signal(name=DONE)
    def finish(self) -> None:
        self.done = True


# A timer that is to fire comes due within the hour (before the next message, which the
# driver sends days apart); one a message is to cancel is far off.
FIRES, CANCELLED = timedelta(hours=1), timedelta(days=365)


@workflow.defn
class BareDriven:
    def __init__(self) -> None:
        self.received = self.handled = 0
        self.timer: asyncio.Task[None] | None = None

    @workflow.run
    async def run(
        self, account_id: str, timers: int, fires: int, messages: int, activities: int
    ) -> str:
        """Start `timers` timers, of which `fires` fire (the others are cancelled by the
        message that comes before them), take `messages` signals, and run `activities`
        activities spread evenly over the wake-ups (the start, each message, each timer
        that fires); return once every message came and every timer that fires fired."""
        wakes = 1 + messages + fires
        wake = fired = armed = ran = 0
        while True:
            last = self.handled >= messages and fired >= fires
            share = activities if last else (wake + 1) * activities // wakes
            for _ in range(share - ran):
                await workflow.execute_activity(
                    nothing, account_id, start_to_close_timeout=timedelta(seconds=30)
                )
            ran = max(ran, share)
            if last:
                return account_id
            wake += 1
            # One timer armed per wake-up (none while a message waits: it would be
            # cancelled before it started), those that fire first, then those cancelled.
            self.timer = None
            if not self._woken() and (fired < fires or armed < timers):
                due = FIRES if fired < fires else CANCELLED
                self.timer = asyncio.create_task(workflow.sleep(due))
                armed += 1
            await workflow.wait_condition(self._woken)
            if self.timer is not None and self.timer.done():
                fired += 1
            elif self.timer is not None:
                self.timer.cancel()
            self.handled += self.received > self.handled

    def _woken(self) -> bool:
        return self.received > self.handled or (self.timer is not None and self.timer.done())

    @workflow.signal(name=REACHED)
    def reached(self) -> None:
        self.received += 1


def bare_worker(client: Client, task_queue: str = TASK_QUEUE) -> Worker:
    """A worker of the bare workflows and their activity on `task_queue`."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWaiting, BareStarting, BareDriven],
        activities=[nothing],
    )


async def serve(address: str, namespace: str) -> None:
    """Poll `bench-bare` until SIGTERM / SIGINT; prints `worker started` once polling."""
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with bare_worker(client):
        print("worker started", flush=True)
        await stop.wait()
