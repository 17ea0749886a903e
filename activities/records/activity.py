"""The `save_record` activity: keeps an onboarding's record in the store up to date.

Idempotent by the record's revision: a retry, or a write overtaken by a later one, leaves
the store as it is and answers `saved=False`.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity

from activities.records.store import LazyStore
from workflows import contract
from workflows.models.record import OnboardingRecord, RecordSaved

log = structlog.get_logger("records")


class RecordKeeper:
    """Writes records from a thread into the process's store (opened once, migrated)."""

    def __init__(self, records: LazyStore) -> None:
        self._records = records

    @activity.defn(name=contract.SAVE_RECORD.name)
    async def save_record(self, record: OnboardingRecord) -> RecordSaved:
        store = await self._records.get()
        saved = await asyncio.to_thread(store.save, record)
        log.info(
            "record saved" if saved else "record already newer",
            account_id=record.account_id,
            workflow_id=record.workflow_id,
            revision=record.revision,
            state=record.state.value,
        )
        return RecordSaved(account_id=record.account_id, revision=record.revision, saved=saved)
