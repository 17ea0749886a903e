"""The `save_record` activity on a real store (SQLite and PostgreSQL): the records of a
burst of writes go together in a few transactions, each activity still answered for its
own record, and a record the database refuses fails its own activity alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from temporalio.testing import ActivityEnvironment

from activities.records.activity import RecordKeeper
from activities.records.store import LazyStore, RecordStore
from tests.support.records import DAY, make_record, milestone_view
from workflows.models.record import OnboardingRecord, RecordSaved

BURST = 20


@pytest.fixture
async def keeper(store: RecordStore) -> AsyncIterator[tuple[RecordKeeper, list[int]]]:
    """The activity over its own connection to `store`, and the commits it has made."""
    lazy = LazyStore(store.engine.url.render_as_string(hide_password=False))
    commits: list[int] = []
    sa.event.listen((await lazy.get()).engine, "commit", lambda _: commits.append(1))
    yield RecordKeeper(lazy), commits
    lazy.close()


async def test_a_burst_of_writes_commits_together_and_each_is_answered(
    keeper: tuple[RecordKeeper, list[int]], store: RecordStore
) -> None:
    records_keeper, commits = keeper
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
    keeper: tuple[RecordKeeper, list[int]], store: RecordStore
) -> None:
    records_keeper, _ = keeper
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
