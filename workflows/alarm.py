"""The onboarding's time: its one durable timer, armed for the earliest deadline and
woken early by a message, and the guard that refuses a workflow task whose clock is
stale. Workflow code (a timer is a command in the history)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


class StaleClockError(RuntimeError):
    """Fails the workflow task (never the workflow): the task is retried from history."""


def clock_is_stale(seen: tuple[int, datetime] | None, history_length: int, now: datetime) -> bool:
    """True when an activation's clock cannot be its task's: the history has grown since
    the activation `seen` (its history length and time), but the time has not moved.

    Every workflow task starts with an event of its own, stamped by the server later than
    the one before, so new history always comes with a later time. Seen after a worker
    restart with status queries in flight (README, *Crashes and restarts*): the SDK
    carried the previous task's time into the next task's activation.
    """
    return seen is not None and history_length > seen[0] and now <= seen[1]


class TaskClock:
    """Watches every activation's time (`watch`, a `workflow.wait_condition` predicate
    that is never true) and fails the workflow task whose clock is stale.

    A decision taken on a stale clock would not replay: the workflow would find nothing
    due where its history, replayed with the task's real time, finds a deadline passed.
    Failing the task instead makes the worker replay the run from history, with the
    right time. Replay itself is never refused: its times are the history's own.
    """

    def __init__(self) -> None:
        self._seen: tuple[int, datetime] | None = None

    def watch(self) -> bool:
        now, length = workflow.now(), workflow.info().get_current_history_length()
        if clock_is_stale(self._seen, length, now) and not workflow.unsafe.is_replaying():
            raise StaleClockError(
                f"the history grew to {length} events since the last activation, but the "
                f"task's clock still says {now.isoformat()}: retrying the task"
            )
        self._seen = (length, now)
        return False


class Alarm:
    """Re-armed only when the earliest deadline moves: every timer cancelled early
    costs two history events."""

    def __init__(self) -> None:
        self._timer: asyncio.Task[None] | None = None
        self._at: datetime | None = None

    def _rang(self) -> bool:
        return self._timer is not None and self._timer.done()

    async def sleep(self, wake: tuple[datetime, str] | None, woken: Callable[[], bool]) -> None:
        """Sleep until `wake` (when, and the timer's summary the UI shows; None: no
        deadline) or until `woken()` (a message changed the state)."""
        wake_at = wake[0] if wake else None
        if wake_at != self._at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._at = None, wake_at
            if wake is not None:
                delay = max(wake[0] - workflow.now(), timedelta(seconds=1))
                self._timer = asyncio.create_task(workflow.sleep(delay, summary=wake[1]))
        await workflow.wait_condition(lambda: woken() or self._rang())
        if self._rang():
            assert self._at is not None
            if workflow.now() < self._at:
                # A fired timer means its time has come. Seen once after a dev-server
                # restart with queries in flight: an activation carrying the previous
                # task's clock. Acting on it would not replay; failing the task makes
                # the worker replay it from history, with the right clock.
                raise StaleClockError(
                    f"timer for {self._at.isoformat()} fired, but the task's clock "
                    f"says {workflow.now().isoformat()}: retrying the task"
                )
            self._timer, self._at = None, None
