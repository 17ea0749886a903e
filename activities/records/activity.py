"""The `save_record` activity: keeps an onboarding's record in the store up to date.

Idempotent by the record's revision: a retry, or a write overtaken by a later one, leaves
the store as it is and answers `saved=False`.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity

from activities.records.store import RecordStore
from activities.settings import SharedSettings
from workflows import contract
from workflows.models.record import OnboardingRecord, RecordSaved

log = structlog.get_logger("records")


class RecordKeeper:
    """Opens the store once (migrating its schema) and writes records from a thread."""

    def __init__(self, settings: SharedSettings) -> None:
        self.url = settings.records_url
        self._store: RecordStore | None = None
        self._opening = asyncio.Lock()

    async def store(self) -> RecordStore:
        async with self._opening:
            if self._store is None:
                self._store = await asyncio.to_thread(RecordStore.open, self.url)
            return self._store

    @activity.defn(name=contract.SAVE_RECORD.name)
    async def save_record(self, record: OnboardingRecord) -> RecordSaved:
        store = await self.store()
        saved = await asyncio.to_thread(store.save, record)
        log.info(
            "record saved" if saved else "record already newer",
            account_id=record.account_id,
            workflow_id=record.workflow_id,
            revision=record.revision,
            state=record.state.value,
        )
        return RecordSaved(account_id=record.account_id, revision=record.revision, saved=saved)
