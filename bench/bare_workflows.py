"""The bare SDK's side of `bench/worker_cost.py` and `bench/status_query.py`: the least a
workflow can be (`bench/bare_driven.py` has the one `bench/time_skipped.py` drives).

- `BareWaiting` waits on a signal: what a cached open workflow costs the worker at least;
  its `status` query answers a small dict: what a query costs at least.
- `BareStarting` runs `count` activities that do nothing, one after the other, then waits
  on a signal as well: what starting a workflow costs the worker at least.

Their own module (not the script's `__main__`), so the sandbox can load them per workflow
as it loads `workflows.onboarding`. `serve` runs a worker of both, and of
`bare_same_commands.BareSameCommands`, on the bare SDK: the default data converter, no
codec, default cache and concurrency.
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


class Waiting:
    """The handlers every bare workflow here has: the `done` signal ends its wait; its
    `status` query answers a small dict."""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal(name=DONE)
    def finish(self) -> None:
        self.done = True

    @workflow.query(name=STATUS)
    def status(self) -> dict[str, bool]:
        return {"done": self.done}


@workflow.defn
class BareWaiting(Waiting):
    @workflow.run
    async def run(self, account_id: str) -> str:
        await workflow.wait_condition(lambda: self.done)
        return account_id


@activity.defn
async def nothing(account_id: str) -> str:
    return account_id


@workflow.defn
class BareStarting(Waiting):
    @workflow.run
    async def run(self, account_id: str, count: int) -> str:
        for _ in range(count):
            await workflow.execute_activity(
                nothing, account_id, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.wait_condition(lambda: self.done)
        return account_id


async def serve(address: str, namespace: str) -> None:
    """Poll `bench-bare` until SIGTERM / SIGINT; prints `worker started` once polling."""
    # Imported here, not at the top: the sandbox loads this module afresh for every
    # BareWaiting, and a bigger module would weigh on each (a dataclass's methods are
    # compiled again at each load).
    from bare_same_commands import BareSameCommands, sized

    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[BareWaiting, BareStarting, BareSameCommands],
        activities=[nothing, sized],
    ):
        print("worker started", flush=True)
        await stop.wait()
