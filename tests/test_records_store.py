"""The records store on SQLite and on a real PostgreSQL server: records are written whole,
never moved backwards by a retried or late write, and read back as they were written."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from activities.records.schema import escalation, milestone, onboarding, program
from activities.records.store import RecordStore, RecordStoreError
from tests.support.records import DAY, make_record, milestone_view
from tests.support.records import escalation as escalation_at
from tests.test_programs import took_part
from workflows.models import OnboardingState, Tier


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_record_reads_back_as_written_with_its_rows(store: RecordStore) -> None:
    won = _now() - 20 * DAY
    record = make_record(
        "001A",
        won,
        milestones=[
            milestone_view("kickoff_call", won, 7, 3),
            milestone_view("first_login", won, 14),
        ],
        escalations=[escalation_at("stall", won, 15, Tier.TECH_TOUCH)],
    )
    assert store.save(record)
    assert store.get("001A") == record
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(milestone.c.milestone_id, milestone.c.done_at)).all()
        assert sorted(rows) == [("first_login", None), ("kickoff_call", won + 3 * DAY)]
        assert conn.execute(sa.select(escalation.c.step_id)).scalars().all() == ["stall"]
        cohort = conn.execute(sa.select(onboarding.c.cohort)).scalar_one()
    assert cohort == won.strftime("%Y-%m")


def test_a_later_revision_replaces_the_record_and_its_rows(store: RecordStore) -> None:
    won = _now() - 20 * DAY
    store.save(make_record("001B", won, milestones=[milestone_view("kickoff_call", won, 7)]))
    later = make_record(
        "001B",
        won,
        revision=2,
        state=OnboardingState.AT_RISK,
        milestones=[milestone_view("kickoff_call", won, 7, 9)],
    )
    assert store.save(later)
    assert store.get("001B") == later
    assert store.count(OnboardingState.AT_RISK) == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(milestone)).scalar_one() == 1


_WON = _now() - 20 * DAY  # the closed-won date of the records the tests below write


def _lists(store: RecordStore) -> tuple[list[tuple[str, object]], list[str]]:
    """The milestone rows (id, done) and the escalation rows (step) stored."""
    with store.engine.connect() as conn:
        done = conn.execute(sa.select(milestone.c.milestone_id, milestone.c.done_at)).all()
        steps = conn.execute(sa.select(escalation.c.step_id).order_by(escalation.c.position))
        return sorted((m, d) for m, d in done), list(steps.scalars())


def _written(
    store: RecordStore,
    account_id: str,
    revision: int,
    kickoff_done: float | None,
    escalations: list[str],
) -> None:
    """A record of `account_id`: kickoff (done on `kickoff_done`) and first login, and an
    escalation per step named."""
    views = [milestone_view("kickoff_call", _WON, 7, kickoff_done)]
    views.append(milestone_view("first_login", _WON, 14))
    steps = [
        escalation_at(step, _WON, 15 + i, Tier.TECH_TOUCH) for i, step in enumerate(escalations)
    ]
    record = make_record(account_id, _WON, revision=revision, milestones=views, escalations=steps)
    assert store.save(record)


def _tamper_escalations(store: RecordStore) -> None:
    """Rows that no longer match what the record says: only a rewrite mends them."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(escalation).values(step_id="tampered"))


def test_a_write_rewrites_the_lists_that_changed_and_keeps_the_others(
    store: RecordStore,
) -> None:
    _written(store, "001E", 1, None, ["stall", "no_login_email"])
    _tamper_escalations(store)
    _written(store, "001E", 2, 3, ["stall", "no_login_email"])  # the milestones alone
    done = [("first_login", None), ("kickoff_call", _WON + 3 * DAY)]
    assert _lists(store) == (done, ["tampered", "tampered"])  # not written again
    _written(store, "001E", 3, 3, [])  # the escalations alone: emptied
    assert _lists(store) == (done, [])
    _written(store, "001E", 4, 3, ["stall", "no_login_email"])  # back as they were
    assert _lists(store) == (done, ["stall", "no_login_email"])


def test_a_record_written_before_its_lists_had_digests_has_every_list_rewritten(
    store: RecordStore,
) -> None:
    """Rows written before migration 0013 carry no digests: the next write cannot tell
    which lists are current, so it writes them all."""
    _written(store, "001F", 1, 3, ["stall"])
    with store.engine.begin() as conn:  # as the rows of a store migrated from 0012 stand
        conn.execute(
            sa.update(onboarding).values(
                children=sa.null(), children_revision=None, children_before=sa.null()
            )
        )
    _tamper_escalations(store)
    _written(store, "001F", 2, 3, ["stall"])
    assert _lists(store)[1] == ["stall"]


def test_a_write_after_one_by_older_code_rewrites_every_list(store: RecordStore) -> None:
    """A worker still on the code before migration 0013 (a rolling deploy) writes the
    record and its rows but not their digests: the next write cannot trust them."""
    _written(store, "001G", 1, 3, ["stall"])
    with store.engine.begin() as conn:  # the older worker's write of revision 2
        conn.execute(sa.update(onboarding).values(revision=2))
    _tamper_escalations(store)
    _written(store, "001G", 3, 3, ["stall"])
    assert _lists(store)[1] == ["stall"]


def test_a_retried_or_late_write_never_moves_a_record_backwards(store: RecordStore) -> None:
    won = _now() - 20 * DAY
    newest = make_record("001C", won, revision=3, state=OnboardingState.COMPLETED)
    assert store.save(newest)
    assert not store.save(make_record("001C", won, revision=2))  # overtaken
    assert not store.save(newest)  # retried
    assert store.get("001C") == newest
    assert store.revision("001C") == 3


def test_records_written_together_are_each_answered_as_alone(store: RecordStore) -> None:
    store.save(make_record("001G", _WON, revision=3))
    group = [
        make_record("001H", _WON, milestones=[milestone_view("kickoff_call", _WON, 7, 2)]),
        make_record("001G", _WON, revision=2, state=OnboardingState.AT_RISK),  # overtaken
        make_record("001I", _WON, revision=4),
    ]
    assert store.save_all(group) == [True, False, True]
    assert store.get("001H") == group[0]
    assert store.get("001G") == make_record("001G", _WON, revision=3)
    assert store.get("001I") == group[2]
    assert _lists(store)[0] == [("kickoff_call", _WON + 2 * DAY)]


def test_records_written_together_are_all_written_or_none(store: RecordStore) -> None:
    """A record the database refuses (two milestones with one id break the milestone
    rows' key) takes the others of its transaction with it."""
    twice = milestone_view("kickoff_call", _WON, 7)
    refused = make_record("001K", _WON, milestones=[twice, twice])
    with pytest.raises(sa.exc.IntegrityError):
        store.save_all([make_record("001J", _WON), refused])
    assert store.get("001J") is None
    assert store.count() == 0


def test_opening_twice_migrates_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    RecordStore.open(url).save(make_record("001D", _now()))
    again = RecordStore.open(url)
    assert again.count() == 1


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "not a database URL"),
        ("mysql://db/records", "'mysql' is not supported"),
        ("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", "OperationalError"),
    ],
)
def test_a_bad_store_url_is_named_with_its_reason(url: str, reason: str) -> None:
    with pytest.raises(RecordStoreError) as err:
        RecordStore.open(url)
    assert reason in str(err.value)
    assert "secret" not in str(err.value)


def test_stores_opened_at_once_in_one_process_all_migrate(tmp_path: Path) -> None:
    # The worker's and the ingress's stores open together under `onboarding up`.
    urls = [f"sqlite:///{tmp_path / f'records-{i}.db'}" for i in range(8)]
    with ThreadPoolExecutor(len(urls)) as pool:
        stores = list(pool.map(RecordStore.open, urls))
    assert [s.count() for s in stores] == [0] * len(urls)


def test_the_write_mark_moves_with_every_write_and_cohorts_are_listed(
    store: RecordStore,
) -> None:
    assert store.write_mark() == (0, 0, None)
    assert store.cohorts() == []
    march, may = datetime(2025, 3, 10, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC)
    store.save(make_record("001M", may))
    first = store.write_mark()
    assert first[:2] == (1, 1)
    store.save(make_record("001N", march))
    second = store.write_mark()
    assert second[:2] == (2, 2) and second != first
    store.save(make_record("001N", march, revision=2))  # a later revision of one record
    third = store.write_mark()
    assert third[:2] == (2, 3)
    assert not store.save(make_record("001N", march, revision=2))  # not written: no move
    assert store.write_mark() == third
    assert store.cohorts() == ["2025-03", "2025-05"]


def test_an_accounts_expansion_is_kept_beside_its_first_onboarding_across_the_migration(
    store: RecordStore,
) -> None:
    """Migration 0008 keys records by account and onboarding number (rules §2, an
    expansion after an earlier onboarding here): the records stored before it are the
    accounts' first onboardings, every column and row kept, and the account's next one
    no longer overwrites them."""
    won = _now() - 40 * DAY
    first = make_record(
        "001X",
        won,
        state=OnboardingState.COMPLETED,
        milestones=[milestone_view("kickoff_call", won, 7, 3)],
        escalations=[escalation_at("stall", won, 15, Tier.TECH_TOUCH)],
        team_invitations=4,
        first_active_day=2,
        came_back_day=10,
        programs=[took_part("onboarding_webinar", won, attended_day=8.1)],
    ).model_copy(update={"specialist": "dan@v.test"})
    assert store.save(first)
    store.downgrade("0007")  # back to one row per account, as before 0008
    with store.engine.connect() as conn:
        assert "onboarding_number" not in [
            c["name"] for c in sa.inspect(conn).get_columns("onboarding")
        ]

    store.migrate()

    assert store.get("001X") == first and first.onboarding_number == 1
    expansion = make_record(
        "001X", won + 30 * DAY, milestones=[milestone_view("kickoff_call", won + 30 * DAY, 7)]
    ).model_copy(update={"onboarding_number": 2})
    assert store.save(expansion)
    assert (store.get("001X", 1), store.get("001X", 2), store.get("001X")) == (
        first,
        expansion,
        expansion,
    )
    assert store.count() == 2
    with store.engine.connect() as conn:
        done = conn.execute(
            sa.select(milestone.c.onboarding_number, milestone.c.done_at).order_by(
                milestone.c.onboarding_number
            )
        ).all()
        assert done == [(1, won + 3 * DAY), (2, None)]
        escalated = conn.execute(sa.select(escalation.c.onboarding_number)).scalars().all()
        assert escalated == [1]
        kept = conn.execute(
            sa.select(
                onboarding.c.specialist,
                onboarding.c.team_invitations,
                onboarding.c.first_active_on,
                onboarding.c.came_back_on,
            ).where(onboarding.c.onboarding_number == 1)
        ).one()
        assert kept == ("dan@v.test", 4, (won + 2 * DAY).date(), (won + 10 * DAY).date())
        programs = conn.execute(
            sa.select(program.c.onboarding_number, program.c.program_id, program.c.attendances)
        ).all()
        assert programs == [(1, "onboarding_webinar", 1)]

    store.downgrade("0007")  # the downgrade keeps the first onboardings
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT account_id, specialist FROM onboarding")).all() == [
            ("001X", "dan@v.test")
        ]
        assert conn.execute(sa.text("SELECT count(*) FROM milestone")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT program_id FROM program")).scalars().all() == [
            "onboarding_webinar"
        ]
    store.migrate()
    assert store.get("001X") == first and store.count() == 1


def test_a_downgrade_keeps_every_row_the_older_schema_holds(store: RecordStore) -> None:
    """SQLite changes a table by building it afresh: a downgrade that did so with foreign
    keys enforced would cascade-delete the milestones and escalations of every record."""
    won = _now() - 20 * DAY
    record = make_record(
        "001D",
        won,
        milestones=[milestone_view("first_login", won, 3, 1), milestone_view("handoff", won, 56)],
        escalations=[escalation_at("stall", won, 15, Tier.TECH_TOUCH)],
    )
    assert store.save(record)

    store.downgrade("0003")  # through every table rebuilt since (0004-0008)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM milestone")).scalar_one() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM escalation")).scalar_one() == 1

    store.migrate()
    assert store.get("001D") == record
