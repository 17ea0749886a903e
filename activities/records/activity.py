"""The `save_record` activity: keeps an onboarding's record in the store up to date.

Idempotent by the record's revision: a retry, or a write overtaken by a later one, leaves
the store as it is and answers `saved=False`.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
import structlog
from temporalio import activity

from activities.records.store import LazyStore, RecordStore
from workflows import contract
from workflows.models.record import OnboardingRecord, RecordSaved

log = structlog.get_logger("records")

# The most records written in one transaction: SQLite's write lock is held that long.
MAX_GROUP = 100
# Errors one record can cause (a value the database refuses): its group is written again
# record by record. Any other error (the database locked, unreachable) fails the group.
RECORD_FAULTS = (sa.exc.IntegrityError, sa.exc.DataError)

_Waiting = tuple[OnboardingRecord, "asyncio.Future[bool]"]


class RecordKeeper:
    """Writes records into the process's store (opened once, migrated) from a thread of
    its own: one writer, as SQLite takes one write at a time anyway, and never one of the
    default executor's few threads that the notifier's deliveries wait for (under a
    burst of writes waiting on the store's lock, they did).

    The records that arrive while one group is written go together in the next, in one
    transaction (a group commit): a burst of writes (timers of many onboardings firing at
    once, a time-skipped test run) costs one commit per group, not per record. A group
    is written in the order of its onboardings' keys, so two workers' groups lock the
    same rows (PostgreSQL) in the same order. A group the database refuses for one
    record's values is written again record by record, so that record fails its own
    activity alone (README *Onboarding records*)."""

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
        if self._writing is None or self._writing.done():
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
        """Until none waits: the waiting records (MAX_GROUP at most) as one group. If
        the writer itself stops (cancelled), every record it had or that waits fails."""
        group: list[_Waiting] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
                # An activity cancelled meanwhile (the worker stopping) has its write retried.
                await self._write([w for w in group if not w[1].done()], store)
        except BaseException as exc:
            stopped = RuntimeError(f"the records writer stopped: {exc!r}")
            for _, answer in group + self._waiting:
                _answer(answer, stopped)
            self._waiting = []
            raise
        finally:
            self._writing = None

    async def _write(self, group: list[_Waiting], store: RecordStore) -> None:
        if not group:
            return
        group.sort(key=lambda w: (w[0].account_id, w[0].onboarding_number))
        loop = asyncio.get_running_loop()
        try:
            saved = await loop.run_in_executor(
                self._writer, store.save_all, [record for record, _ in group]
            )
        except RECORD_FAULTS as exc:
            if len(group) == 1:
                _answer(group[0][1], exc)
                return
            log.warning("records written one by one", records=len(group), error=str(exc))
            for one in group:
                if not one[1].done():
                    await self._write([one], store)
            return
        except Exception as exc:
            for _, answer in group:
                _answer(answer, exc)
            return
        for (_, answer), written in zip(group, saved, strict=True):
            _answer(answer, written)


def _answer(answer: asyncio.Future[bool], result: bool | BaseException) -> None:
    if answer.done():  # cancelled while it was written
        return
    if isinstance(result, BaseException):
        answer.set_exception(result)
    else:
        answer.set_result(result)
