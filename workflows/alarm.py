"""The onboarding's one durable timer: armed for the earliest deadline, woken early by
a message. Workflow code (a timer is a command in the history)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow


class StaleClockError(RuntimeError):
    """Fails the workflow task (never the workflow): the task is retried from history."""


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
