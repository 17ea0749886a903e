"""rules §8 (docs/rules.md): team invitations and first-week retention, gathered from the
product events as they come. As a table (no server); then on the time-skipping server,
the account's return counted on the 7th day after its first active day and not the 6th,
in the status and in its record."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from activities.records.store import RecordStore
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, fresh_progress, status, until
from tests.support.records import record_when
from workflows.models import ProductEvent, ProductEventBatch, Tier
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.progress import measures

PB = load_playbook()
DAY = timedelta(days=1)
# An instant late in a UTC day: in Tokyo (UTC+9) it is already the next day.
T0 = datetime.combine(datetime.now(UTC).date(), time(23, 30), UTC)


def seen(days: list[float], time_zone: str = "UTC") -> tuple[date | None, date | None]:
    """(first active day, came back on) after active events on these days after T0, in
    this order."""
    p = fresh_progress(PB, Tier.TECH_TOUCH, T0)
    for d in days:
        measures.note_activity(p, PB.measures, "user_logged_in", T0 + d * DAY, time_zone)
    return measures.first_active_on(p), measures.came_back_on(p)


def on(d: int) -> date:
    return T0.date() + d * DAY


@pytest.mark.parametrize(
    ("days", "first", "back"),
    [
        ([0], on(0), None),
        ([0, 6], on(0), None),  # the 6th day: still the first week
        ([0, 7], on(0), on(7)),  # the 7th day: back in the second week
        ([0, 13, 8], on(0), on(8)),  # the earliest return counts
        ([0, 14], on(0), None),  # the 14th day is past the second week
        ([5, 12, 0], on(0), on(12)),  # a late-delivered earlier event moves the first day
        ([10, 18, 1], on(1), on(10)),  # ... and what is then past two weeks is let go
        ([0, 0.01, 0.02], on(0), None),  # one day however often
    ],
)
def test_the_first_active_day_and_the_return_a_week_later(
    days: list[float], first: date, back: date | None
) -> None:
    assert seen(days) == (first, back)


def test_days_are_the_accounts_own() -> None:
    # T0 (23:30 UTC) and 6 days 1 hour later: 7 days apart in UTC, 6 in Tokyo.
    assert seen([0, 6 + 1 / 24]) == (on(0), on(7))
    assert seen([0, 6 + 1 / 24], "Asia/Tokyo") == (on(1), None)


def test_only_active_events_count_and_invitations_are_summed() -> None:
    p = fresh_progress(PB, Tier.TECH_TOUCH, T0)
    measures.note_activity(p, PB.measures, "user_invited", T0, "UTC")
    assert measures.first_active_on(p) is None
    p.event_counts = {"user_invited": 2, "Invite Sent": 1, "user_logged_in": 5}
    assert measures.team_invitations(p, PB.measures) == 3


def test_a_playbook_without_measures_gathers_nothing() -> None:
    p = fresh_progress(PB, Tier.TECH_TOUCH, T0, event_counts={"user_invited": 2})
    measures.note_activity(p, None, "user_logged_in", T0, "UTC")
    assert (measures.first_active_on(p), measures.team_invitations(p, None)) == (None, None)


# --------------------------------------------------------------------------- the workflow


async def test_the_return_counts_on_the_7th_day_after_the_first_not_the_6th(
    onboardings: Onboardings,
) -> None:
    store = RecordStore.open(onboardings.records_url)
    closed = await onboardings.now()
    deal = make_deal("001MEA000000000AAA", close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    first = closed.date()
    events = [
        ProductEvent(event_id="login-0", name="user_logged_in", at=closed),
        ProductEvent(event_id="invite-1", name="user_invited", at=closed),
        ProductEvent(event_id="invite-2", name="Invite Sent", at=closed),
    ]
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=events))
    await onboardings.days_later(8)

    last_minute = datetime.combine(first + 6 * DAY, time(23, 59), UTC)
    day_six = ProductEvent(event_id="login-6", name="user_logged_in", at=last_minute)
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[day_six]))
    st = await until(handle, lambda s: s.event_counts.get("user_logged_in") == 2)
    assert (st.first_active_on, st.came_back_on, st.team_invitations) == (first, None, 2)

    first_minute = datetime.combine(first + 7 * DAY, time(0, 1), UTC)
    day_seven = ProductEvent(event_id="login-7", name="user_logged_in", at=first_minute)
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[day_seven]))
    st = await until(handle, lambda s: s.came_back_on is not None)
    assert st.came_back_on == first + 7 * DAY

    record = await record_when(store, deal.account_id, lambda r: r.came_back_on is not None)
    assert (record.first_active_on, record.came_back_on) == (first, first + 7 * DAY)
    assert record.team_invitations == 2
    assert (await status(handle)).first_active_on == first
