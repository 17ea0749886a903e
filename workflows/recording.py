"""Keeping the onboarding's record in the records store up to date (rules §8,
docs/rules.md), from workflow code.

Coalesced: at most one `save_record` activity per workflow task that changed the record,
and one in flight at a time; a change made while one is in flight is written when it
ends (the write's end wakes the run only then, or when it failed). A change of the
record's counts alone (team invitations, support tickets: they move with product events)
is written `COUNTS_EVERY` after the last write at the latest, with whatever changed by
then: a busy account's events do not each rewrite its whole record.
The record's `(as_of, revision)` lets the store drop a retried or overtaken write.
A write that fails once its retries are spent is logged; the next change writes the whole
record again, so nothing is lost for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import contract, patches
    from workflows.models import OnboardingProgress, OnboardingStatus
    from workflows.models.record import OnboardingRecord, RecordSaved
    from workflows.records import Said, record_of, what_it_says

# How stale the store's copy of an onboarding's counts may be (rules §8).
COUNTS_EVERY = timedelta(minutes=15)


class Recorder:
    """One run's writer; the revision counter lives in `progress` (carried across
    continue-as-new) so revisions keep rising for the onboarding's whole life."""

    def __init__(self, on_written: Callable[[], None]) -> None:
        self._on_written = on_written  # wakes the loop: a change may be waiting
        self._said: Said | None = None  # what the last record written says
        self._written_at: datetime | None = None  # when the last write began
        self._in_flight: asyncio.Task[None] | None = None
        self._waited_for = False  # a save came while a write was in flight
        self.counts_due: datetime | None = None  # counts changed alone, to write by then

    @staticmethod
    def enabled() -> bool:
        """Whether this run writes records (False for a run that began before records)."""
        return patches.has(patches.Folded.RECORDS)

    def save(
        self,
        progress: OnboardingProgress,
        status: Callable[[], OnboardingStatus],
        *,
        again: bool = False,
        last: bool = False,
    ) -> bool:
        """Write the record if it says more than the last one written (or `again`) and
        none is in flight; False when one is (the loop calls again when that one ends).
        A change of the counts alone waits for `counts_due`, unless this is the run's
        `last` write. `status` is asked only when none is in flight: building it is most
        of what a record costs."""
        if not self.enabled():
            return True
        if self._in_flight is not None and not self._in_flight.done():
            self._waited_for = True
            return False
        record = record_of(status(), progress.record_revision + 1)
        said = what_it_says(record)
        if not again and said == self._said:
            return True
        if not (again or last) and self._counts_wait(said):
            return True
        progress.record_revision, self._said = record.revision, said
        self._written_at, self.counts_due = workflow.now(), None
        self._in_flight = asyncio.create_task(self._write(record))
        return True

    def _counts_wait(self, said: Said) -> bool:
        """Whether `said` differs from the last write in its counts alone, written less
        than `COUNTS_EVERY` ago (then `counts_due` says until when it waits)."""
        if self._said is None or said.rest != self._said.rest or self._written_at is None:
            return False
        due = self._written_at + COUNTS_EVERY
        if workflow.now() >= due or not patches.has(patches.Folded.COUNTS_SPACED):
            return False
        self.counts_due = due
        return True

    def wake(self) -> tuple[datetime, str] | None:
        """When the loop must wake to write counts that wait, and the timer's summary."""
        if self.counts_due is None:
            return None
        return self.counts_due, "Write the record's counts (team invitations, tickets)"

    async def _write(self, record: OnboardingRecord) -> None:
        failed = False
        try:
            await contract.SAVE_RECORD.execute(
                record, RecordSaved, summary=f"Record revision {record.revision}"
            )
        except ActivityError as err:
            workflow.logger.warning(
                "record revision %s not saved: %s",
                record.revision,
                err.cause or err,
                extra={"account_id": record.account_id},
            )
            self._said, failed = None, True  # the next save writes it whole again
        # Patched: runs that began before woke at every write's end.
        waited_for, self._waited_for = self._waited_for, False
        if failed or waited_for or not patches.has(patches.Folded.WRITE_WAKES_WHEN_WAITED_FOR):
            self._on_written()

    async def flush(self) -> None:
        """Wait for the write in flight (before the run ends or continues as new)."""
        if self._in_flight is not None:
            await self._in_flight
