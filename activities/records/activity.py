"""The `save_record` activity: keeps an onboarding's record in the store up to date.

Idempotent by the record's revision: a retry, or a write overtaken by a later one, leaves
the store as it is and answers `saved=False`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import structlog
from temporalio import activity

from activities.records.store import LazyStore, RecordStore
from workflows import contract
from workflows.models.record import OnboardingRecord, RecordSaved

log = structlog.get_logger("records")

# The most records written in one transaction: SQLite's write lock is held that long.
MAX_GROUP = 100

_Waiting = tuple[OnboardingRecord, "asyncio.Future[bool]"]


class RecordKeeper:
    """Writes records into the process's store (opened once, migrated) from a thread of
    its own: one writer, as SQLite takes one write at a time anyway, and never one of the
    default executor's few threads that the notifier's deliveries wait for (under a
    burst of writes waiting on the store's lock, they did).

    The records that arrive while one group is written go together in the next, in one
    transaction (a group commit): a burst of writes (timers of many onboardings firing at
    once, a time-skipped test run) costs one commit per group, not per record. A group
    that fails is written again record by record, so a record the database refuses fails
    its own activity alone, never the others' (README *Benchmark*)."""

    def __init__(self, records: LazyStore) -> None:
        self._records = records
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="records")
        self._waiting: list[_Waiting] = []
        self._writing: asyncio.Task[None] | None = None

    @activity.defn(name=contract.SAVE_RECORD.name)
    async def save_record(self, record: OnboardingRecord) -> RecordSaved:
        store = await self._records.get()
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((record, answer))
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_waiting(store))
        saved = await answer
        log.info(
            "record saved" if saved else "record already newer",
            account_id=record.account_id,
            workflow_id=record.workflow_id,
            revision=record.revision,
            state=record.state.value,
        )
        return RecordSaved(account_id=record.account_id, revision=record.revision, saved=saved)

    async def _write_waiting(self, store: RecordStore) -> None:
        """Until none waits: the waiting records (MAX_GROUP at most) as one group."""
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                # An activity cancelled meanwhile (the worker stopping) has its write retried.
                await self._write([w for w in group if not w[1].done()], store)
        finally:
            self._writing = None

    async def _write(self, group: list[_Waiting], store: RecordStore) -> None:
        if not group:
            return
        loop = asyncio.get_running_loop()
        try:
            saved = await loop.run_in_executor(
                self._writer, store.save_all, [record for record, _ in group]
            )
        except Exception as exc:
            if len(group) > 1:
                for one in group:
                    await self._write([one], store)
                return
            _answer(group[0][1], exc)
            return
        for (_, answer), written in zip(group, saved, strict=True):
            _answer(answer, written)


def _answer(answer: asyncio.Future[bool], result: bool | Exception) -> None:
    if answer.done():  # cancelled while it was written
        return
    if isinstance(result, Exception):
        answer.set_exception(result)
    else:
        answer.set_result(result)
