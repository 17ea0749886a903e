"""Keeping the onboarding's record in the records store up to date (rules §8,
docs/rules.md), from workflow code.

Coalesced: at most one `save_record` activity per workflow task that changed the record,
and one in flight at a time; a change made while one is in flight is written when it
ends. The record's `(as_of, revision)` lets the store drop a retried or overtaken write.
A write that fails once its retries are spent is logged; the next change writes the whole
record again, so nothing is lost for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows import contract
    from workflows.models import OnboardingProgress, OnboardingStatus
    from workflows.models.record import OnboardingRecord, RecordSaved
    from workflows.records import record_of, what_it_says

# workflow.patched() id of "the onboarding writes its record to the records store"
# (added 2026-12-01). Runs that began before replay without it; `refresh_record` asks
# such a run to continue-as-new into one that records.
RECORDS = "onboarding-records"


class Recorder:
    """One run's writer; the revision counter lives in `progress` (carried across
    continue-as-new) so revisions keep rising for the onboarding's whole life."""

    def __init__(self, on_written: Callable[[], None]) -> None:
        self._on_written = on_written  # wakes the loop: a change may be waiting
        self._said: bytes | None = None  # what the last record written says
        self._in_flight: asyncio.Task[None] | None = None

    @staticmethod
    def enabled() -> bool:
        """Whether this run writes records (False for a run that began before records)."""
        return workflow.patched(RECORDS)

    def save(
        self,
        progress: OnboardingProgress,
        status: Callable[[], OnboardingStatus],
        *,
        again: bool = False,
    ) -> bool:
        """Write the record if it says more than the last one written (or `again`) and
        none is in flight; False when one is (the loop calls again when that one ends).
        `status` is asked only then: building it is most of what a record costs."""
        if not self.enabled():
            return True
        if self._in_flight is not None and not self._in_flight.done():
            return False
        record = record_of(status(), progress.record_revision + 1)
        said = what_it_says(record)
        if not again and said == self._said:
            return True
        progress.record_revision, self._said = record.revision, said
        self._in_flight = asyncio.create_task(self._write(record))
        return True

    async def _write(self, record: OnboardingRecord) -> None:
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
            self._said = None  # the next save writes it whole again
        self._on_written()

    async def flush(self) -> None:
        """Wait for the write in flight (before the run ends or continues as new)."""
        if self._in_flight is not None:
            await self._in_flight
