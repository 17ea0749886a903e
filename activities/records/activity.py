"""The `save_record` activity: keeps an onboarding's record in the store up to date.

Idempotent by the record's revision: a retry, or a write overtaken by a later one, leaves
the store as it is and answers `saved=False`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import structlog
from temporalio import activity

from activities.records.store import LazyStore
from workflows import contract
from workflows.models.record import OnboardingRecord, RecordSaved

log = structlog.get_logger("records")


class RecordKeeper:
    """Writes records into the process's store (opened once, migrated) from a thread of
    its own: one writer, as SQLite takes one write at a time anyway, and never one of the
    default executor's few threads that the notifier's deliveries wait for (under a
    burst of writes waiting on the store's lock, they did)."""

    def __init__(self, records: LazyStore) -> None:
        self._records = records
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="records")

    @activity.defn(name=contract.SAVE_RECORD.name)
    async def save_record(self, record: OnboardingRecord) -> RecordSaved:
        store = await self._records.get()
        saved = await asyncio.get_running_loop().run_in_executor(self._writer, store.save, record)
        log.info(
            "record saved" if saved else "record already newer",
            account_id=record.account_id,
            workflow_id=record.workflow_id,
            revision=record.revision,
            state=record.state.value,
        )
        return RecordSaved(account_id=record.account_id, revision=record.revision, saved=saved)
