"""The bare SDK's side of `bench/time_skipped.py`: `BareDriven` sleeps through timers,
takes signals and runs activities that do nothing (`bare_workflows.nothing`), as many of
each as an onboarding had: what a workflow driven through time costs at least.

Its own module, not in `bare_workflows.py`: the sandbox loads a workflow's module afresh
for every workflow it runs, and this class made each load of that module 4.5 KB and
0.4 ms bigger, which would have raised `bench/worker_cost.py`'s bare baselines.
`bare_workflows` is passed through (loaded once). `driven_worker` is a worker of it on
the bare SDK: the SDK's defaults.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from bare_workflows import nothing

REACHED = "reached"

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


def driven_worker(client: Client, task_queue: str) -> Worker:
    """A worker of `BareDriven` and its activity on `task_queue`."""
    return Worker(client, task_queue=task_queue, workflows=[BareDriven], activities=[nothing])
