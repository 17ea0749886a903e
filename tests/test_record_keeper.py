"""The `save_record` activity on a real store (SQLite and PostgreSQL): the records of a
burst of writes go together in a few transactions, each activity still answered for its
own record; a record the database refuses fails its own activity alone; an activity
cancelled while its group is written leaves the others answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.records import activity
from activities.records.activity import RecordKeeper
from activities.records.store import LazyStore, RecordStore
from tests.support.records import DAY, make_record, milestone_view
from workflows.models.record import OnboardingRecord, RecordSaved

BURST = 20


@dataclass
class Keeper:
    """The activity over its own connection to the test's store; that connection's store
    (the one it writes with); the commits it has made."""

    activity: RecordKeeper
    store: RecordStore
    commits: list[int]


@pytest.fixture
async def keeper(store: RecordStore) -> AsyncIterator[Keeper]:
    lazy = LazyStore(store.engine.url.render_as_string(hide_password=False))
    own = await lazy.get()
    commits: list[int] = []
    sa.event.listen(own.engine, "commit", lambda _: commits.append(1))
    yield Keeper(RecordKeeper(lazy), own, commits)
    lazy.close()


async def test_a_burst_of_writes_commits_together_and_each_is_answered(
    keeper: Keeper, store: RecordStore
) -> None:
    records_keeper, commits = keeper.activity, keeper.commits
    won = _now() - 20 * DAY
    store.save(make_record("acct-0", won, revision=5))  # a later one is already there
    burst = [make_record(f"acct-{i}", won, revision=2) for i in range(BURST)]
    env = ActivityEnvironment()
    answers = await gather(env, records_keeper, burst)
    assert answers == [
        RecordSaved(account_id=r.account_id, revision=2, saved=r.account_id != "acct-0")
        for r in burst
    ]
    assert [store.revision(f"acct-{i}") for i in range(BURST)] == [5] + [2] * (BURST - 1)
    assert len(commits) < BURST / 4  # one per record without the groups


async def test_a_record_the_database_refuses_fails_alone(
    keeper: Keeper, store: RecordStore
) -> None:
    records_keeper = keeper.activity
    won = _now() - 20 * DAY
    twice = milestone_view("kickoff_call", won, 7)
    burst = [make_record(f"acct-{i}", won) for i in range(BURST)]
    burst[7] = make_record("acct-7", won, milestones=[twice, twice])  # breaks the rows' key
    env = ActivityEnvironment()
    answers = await gather(env, records_keeper, burst, return_exceptions=True)
    assert isinstance(answers[7], sa.exc.IntegrityError)
    assert [a for i, a in enumerate(answers) if i != 7] == [
        RecordSaved(account_id=r.account_id, revision=r.revision, saved=True)
        for i, r in enumerate(burst)
        if i != 7
    ]
    assert store.get("acct-7") is None
    assert store.count() == BURST - 1


async def test_records_that_come_while_a_group_is_written_go_in_the_next(
    keeper: Keeper, store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activity, "MAX_GROUP", 5)
    records_keeper, commits = keeper.activity, keeper.commits
    burst = [make_record(f"acct-{i}", _now() - 20 * DAY) for i in range(BURST)]
    answers = await gather(ActivityEnvironment(), records_keeper, burst)
    assert [a.saved for a in answers if isinstance(a, RecordSaved)] == [True] * BURST
    assert len(commits) == BURST // 5
    assert store.count() == BURST


async def test_an_activity_cancelled_while_its_group_is_written_leaves_the_others_answered(
    keeper: Keeper, store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    records_keeper = keeper.activity
    written = keeper.store.save_all

    def slowly(records: Sequence[OnboardingRecord]) -> list[bool]:
        time.sleep(0.3)  # long enough to cancel one of them meanwhile
        return written(records)

    monkeypatch.setattr(keeper.store, "save_all", slowly)
    burst = [make_record(f"acct-{i}", _now() - 20 * DAY) for i in range(5)]
    envs = [ActivityEnvironment() for _ in burst]
    runs = [
        asyncio.create_task(e.run(records_keeper.save_record, r))
        for e, r in zip(envs, burst, strict=True)
    ]
    await asyncio.sleep(0.1)  # the group is in the writer's thread
    envs[2].cancel()
    answers = await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 30)
    assert isinstance(answers[2], asyncio.CancelledError)
    assert [a for i, a in enumerate(answers) if i != 2] == [
        RecordSaved(account_id=r.account_id, revision=r.revision, saved=True)
        for i, r in enumerate(burst)
        if i != 2
    ]
    # The writer goes on: a later write is answered too.
    later = make_record("acct-9", _now() - 20 * DAY)
    assert (await gather(ActivityEnvironment(), records_keeper, [later])) == [
        RecordSaved(account_id="acct-9", revision=later.revision, saved=True)
    ]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def gather(
    env: ActivityEnvironment,
    keeper: RecordKeeper,
    records: list[OnboardingRecord],
    *,
    return_exceptions: bool = False,
) -> list[RecordSaved | BaseException]:
    """`save_record` for each of `records` at once, as a worker runs a burst of them."""
    writes = (env.run(keeper.save_record, r) for r in records)
    return await asyncio.wait_for(
        asyncio.gather(*writes, return_exceptions=return_exceptions), timeout=60
    )
