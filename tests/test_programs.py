"""rules §1 (docs/rules.md), *Group programs*: weekly sessions in a time zone (a table,
daylight saving included), the invitation's moment and its calendar invitation (no
server), attendance from product events, the report's attendees against non-attendees,
and on the time-skipping server an invitation with its .ics arriving at a real SMTP
server on the day it is due and not the day before."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import activities_for
from activities.calendar import invitation
from activities.records.store import RecordStore
from starter.reports.portfolio import portfolio_report
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.mail import Mailbox, email_settings
from tests.support.onboardings import fresh_progress, status, until
from tests.support.records import make_record
from workflows import progress
from workflows.event_mapping import EventMapper
from workflows.models import (
    CalendarInvite,
    ClosedWonDeal,
    OnboardingInput,
    Pause,
    ProductEvent,
    ProductEventBatch,
    Program,
    Tier,
)
from workflows.models.status import ProgramView
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.programs import next_session, session_text
from workflows.progress import programs

PB = load_playbook()
WEBINAR = PB.programs["onboarding_webinar"]
DAY = timedelta(days=1)
NEW_YORK, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")


def program(weekday: str, at: str, zone: str) -> Program:
    return WEBINAR.model_copy(
        update={"weekday": weekday, "time": time.fromisoformat(at), "time_zone": zone}
    )


# --------------------------------------------------------------------------- the sessions


@pytest.mark.parametrize(
    ("weekday", "at", "zone", "moment", "session"),
    [
        pytest.param(  # Monday noon in New York: the next day
            "tuesday",
            "16:00",
            "America/New_York",
            datetime(2026, 12, 7, 12, 0, tzinfo=NEW_YORK),
            datetime(2026, 12, 8, 16, 0, tzinfo=NEW_YORK),
            id="later-this-week",
        ),
        pytest.param(  # at the start itself: that session
            "tuesday",
            "16:00",
            "America/New_York",
            datetime(2026, 12, 8, 16, 0, tzinfo=NEW_YORK),
            datetime(2026, 12, 8, 16, 0, tzinfo=NEW_YORK),
            id="at-the-start",
        ),
        pytest.param(  # a minute late: next week's
            "tuesday",
            "16:00",
            "America/New_York",
            datetime(2026, 12, 8, 16, 1, tzinfo=NEW_YORK),
            datetime(2026, 12, 15, 16, 0, tzinfo=NEW_YORK),
            id="just-missed",
        ),
        pytest.param(  # Wednesday 02:00 UTC is still Tuesday evening in New York
            "tuesday",
            "16:00",
            "America/New_York",
            datetime(2026, 12, 9, 2, 0, tzinfo=UTC),
            datetime(2026, 12, 15, 16, 0, tzinfo=NEW_YORK),
            id="utc-a-day-ahead",
        ),
        pytest.param(  # across the end of US daylight saving (Nov 1): 16:00 stays 16:00 local
            "tuesday",
            "16:00",
            "America/New_York",
            datetime(2026, 10, 28, 12, 0, tzinfo=UTC),
            datetime(2026, 11, 3, 21, 0, tzinfo=UTC),
            id="us-dst-ends",
        ),
        pytest.param(  # across the end of British summer time (Oct 25): 10:00 stays 10:00
            "thursday",
            "10:00",
            "Europe/London",
            datetime(2026, 10, 23, 12, 0, tzinfo=UTC),
            datetime(2026, 10, 29, 10, 0, tzinfo=UTC),
            id="uk-dst-ends",
        ),
        pytest.param(  # and the week before, in summer time, it was 09:00 UTC
            "thursday",
            "10:00",
            "Europe/London",
            datetime(2026, 10, 16, 12, 0, tzinfo=UTC),
            datetime(2026, 10, 22, 9, 0, tzinfo=UTC),
            id="uk-summer-time",
        ),
        pytest.param(  # 02:30 does not exist on Mar 8 in New York: 03:30 EDT (RFC 5545)
            "sunday",
            "02:30",
            "America/New_York",
            datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
            datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
            id="skipped-by-the-clocks",
        ),
        pytest.param(  # 01:30 happens twice on Nov 1 in New York: the first (EDT)
            "sunday",
            "01:30",
            "America/New_York",
            datetime(2026, 10, 31, 12, 0, tzinfo=UTC),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            id="twice-by-the-clocks",
        ),
    ],
)
def test_next_session(
    weekday: str, at: str, zone: str, moment: datetime, session: datetime
) -> None:
    got = next_session(program(weekday, at, zone), moment)
    # In UTC: a time the clocks show twice never compares equal across zones (PEP 495).
    assert got.astimezone(UTC) == session.astimezone(UTC)
    assert str(got.tzinfo) == zone  # shown in the program's zone


def test_a_session_is_named_in_its_own_zone_and_the_accounts() -> None:
    # A calendar case: the zones' offsets on that day are the point.
    start = next_session(WEBINAR, datetime(2026, 12, 7, 12, 0, tzinfo=NEW_YORK))
    assert session_text(start) == "Tuesday 2026-12-08 16:00 America/New_York"
    assert session_text(start, "America/New_York") == session_text(start)
    assert session_text(start, "Asia/Tokyo") == (
        "Tuesday 2026-12-08 16:00 America/New_York (Wednesday 06:00 Asia/Tokyo)"
    )


# --------------------------------------------------------------------------- the invitation

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # a Monday


def onboarding(tier: Tier = Tier.TECH_TOUCH, **fields: Any) -> progress.Onboarding:
    deal = make_deal("001A", close_date=T0)
    p = fresh_progress(PB, tier, T0, contacts=deal.contacts, **fields)
    return progress.Onboarding(deal, PB, p)


def invitations(o: progress.Onboarding, day: float) -> list[progress.Notify]:
    out = progress.Changes()
    programs.invite_due(o, out, T0 + day * DAY)
    return [e for e in out.effects if isinstance(e, progress.Notify)]


def test_a_tech_touch_onboarding_is_invited_once_on_its_day_to_the_next_session() -> None:
    o = onboarding()
    assert programs.next_invitation(o) == (
        T0 + DAY,
        "Program: Weekly onboarding webinar invitation on 2026-12-08",
    )
    assert invitations(o, 0.99) == []
    [sent] = invitations(o, 1)
    # Tuesday 14:00 UTC (09:00 in New York): today's 16:00 is under the 24 hours' notice.
    session = datetime(2026, 12, 15, 16, 0, tzinfo=NEW_YORK)
    assert sent.template_id == "program_invitation"
    assert sent.trigger == "program-onboarding_webinar-20261215T210000Z"
    assert sent.variables["session"] == "Tuesday 2026-12-15 16:00 America/New_York"
    assert sent.variables["join_url"] == WEBINAR.join_url
    assert sent.invite == CalendarInvite(
        uid="onboarding_webinar-20261215T210000Z-001A@onboarding",
        summary="Weekly onboarding webinar",
        starts_at=session,
        time_zone="America/New_York",
        duration_minutes=60,
        url=WEBINAR.join_url,
        organizer=WEBINAR.organizer,
    )
    [x] = o.progress.programs
    assert (x.program, x.invited_at, x.session_at) == ("onboarding_webinar", T0 + DAY, session)
    assert invitations(o, 2) == []  # once per program
    # Office hours come on day 7.
    assert programs.next_invitation(o) == (
        T0 + 7 * DAY,
        "Program: Office hours invitation on 2026-12-14",
    )
    [hours] = invitations(o, 7)
    assert hours.variables["session"] == "Thursday 2026-12-17 10:00 Europe/London"
    assert programs.next_invitation(o) is None


@pytest.mark.parametrize("tier", [Tier.HIGH_TOUCH, Tier.SELF_SERVE])
def test_other_tiers_get_no_invitation(tier: Tier) -> None:
    o = onboarding(tier)
    assert programs.next_invitation(o) is None
    assert invitations(o, 30) == []


def test_an_upgrade_to_tech_touch_invites_at_once_and_a_pause_holds_it() -> None:
    o = onboarding(Tier.SELF_SERVE)
    o.progress.tier = Tier.TECH_TOUCH  # upgraded on day 14
    assert [n.trigger.split("-")[1] for n in invitations(o, 14)] == [
        "onboarding_webinar",
        "office_hours",
    ]
    paused = onboarding(pause=Pause(by="cs", reason="re-org", since=T0))
    assert programs.next_invitation(paused) is None
    assert invitations(paused, 5) == []


def test_a_playbook_without_programs_invites_nobody() -> None:
    bare = PB.model_copy(update={"programs": {}})
    o = onboarding()
    o = progress.Onboarding(o.deal, bare, o.progress)
    assert programs.next_invitation(o) is None
    assert invitations(o, 30) == []


# --------------------------------------------------------------------------- attendance


def mapped(name: str, **properties: object) -> ProductEvent | str:
    return EventMapper(PB).product_event(
        event_id="e1", name=name, properties=properties, at=None, user_id="u1"
    )


def test_attendance_events_name_their_program() -> None:
    event = mapped("webinar_attended", program="onboarding_webinar")
    assert isinstance(event, ProductEvent) and event.program == "onboarding_webinar"
    # One program is attended by this event: the property may be left out.
    alone = mapped("office_hours_attended")
    assert isinstance(alone, ProductEvent) and alone.program == "office_hours"
    assert mapped("webinar_attended", program="office_hours") == (
        "'webinar_attended' needs its program property to be one of onboarding_webinar "
        "(got 'office_hours')"
    )


def test_attendance_is_recorded_when_it_happened() -> None:
    o, out = onboarding(), progress.Changes()
    went = T0 + 8 * DAY
    for at in (went + DAY, went):
        event = ProductEvent(
            event_id=str(at), name="webinar_attended", at=at, program="onboarding_webinar"
        )
        programs.attend(o, out, event, T0 + 10 * DAY)
    [x] = o.progress.programs
    assert (x.program, x.invited_at, x.attended_at, x.attendances) == (
        "onboarding_webinar",
        None,
        went,
        2,
    )
    assert [a.kind for a in out.audit] == ["program_attended", "program_attended"]
    wrong = ProductEvent(event_id="x", name="webinar_attended", program="office_hours")
    programs.attend(o, out, wrong, T0 + 10 * DAY)
    assert out.rejected[0].reason.startswith("names no program attended by 'webinar_attended'")


# --------------------------------------------------------------------------- the .ics


def test_the_invitation_is_a_calendar_request() -> None:
    start = datetime(2026, 12, 15, 16, 0, tzinfo=NEW_YORK)
    invite = CalendarInvite(
        uid="u-1@onboarding",
        summary="Weekly onboarding webinar",
        starts_at=start,
        time_zone="America/New_York",
        duration_minutes=60,
        url=WEBINAR.join_url,
        organizer="education@vendor.test",
    )
    data = invitation(invite, "cara@acme.test", "Join us", T0)
    assert b"\r\n" in data
    cal = icalendar.Calendar.from_ical(data)
    assert cal["method"] == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert event["uid"] == "u-1@onboarding"
    assert event["dtstart"].params["TZID"] == "America/New_York"
    assert event.decoded("dtstart") == start
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=60)
    assert (event["summary"], event["location"], event["url"]) == (
        "Weekly onboarding webinar",
        WEBINAR.join_url,
        WEBINAR.join_url,
    )
    assert event["organizer"] == "mailto:education@vendor.test"
    assert event["attendee"] == "mailto:cara@acme.test"
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]


# --------------------------------------------------------------------------- records, report


def took_part(
    program: str, won: datetime, *, invited: bool = True, attended_day: float | None = None
) -> ProgramView:
    return ProgramView(
        program=program,
        title=program,
        invited_at=won + DAY if invited else None,
        session_at=won + 8 * DAY if invited else None,
        attended_at=won + attended_day * DAY if attended_day is not None else None,
        attendances=0 if attended_day is None else 1,
    )


def test_the_store_keeps_each_onboardings_programs(store: RecordStore) -> None:
    won = datetime.now(UTC).replace(microsecond=0) - 20 * DAY
    record = make_record(
        "001P", won, programs=[took_part("onboarding_webinar", won, attended_day=8.1)]
    )
    assert store.save(record)
    assert store.get("001P") == record
    again = record.model_copy(update={"revision": 2, "programs": []})
    assert store.save(again)
    assert store.get("001P") == again


NOW = datetime(2031, 5, 15, 12, tzinfo=UTC)


def test_the_report_compares_attendees_activation_with_non_attendees(
    empty_store: RecordStore,
) -> None:
    won = NOW - 40 * DAY  # closed long enough ago for activation (30 days) to be judged
    webinar = "onboarding_webinar"

    def account(key: str, ttv: float | None, **part: Any) -> Any:
        return make_record(key, won, ttv_days=ttv, programs=[took_part(webinar, won, **part)])

    records = [
        account("a1", 10, attended_day=8),
        account("a2", 20, attended_day=8),
        account("n1", 35),  # first value after the 30-day window
        account("n2", None),
        account("n3", 12),
        # A high_touch account that came without an invitation: in neither group.
        make_record(
            "h1",
            won,
            tier=Tier.HIGH_TOUCH,
            ttv_days=5,
            programs=[took_part(webinar, won, invited=False, attended_day=9)],
        ),
        make_record("x1", won, ttv_days=3),  # never invited
    ]
    for r in records:
        assert empty_store.save(r)
    report = portfolio_report(empty_store, PB, NOW)
    by_id = {f.program: f for f in report.programs}
    assert list(by_id) == ["onboarding_webinar", "office_hours"]
    figure = by_id[webinar].model_dump()
    assert figure == {
        "program": webinar,
        "title": "Weekly onboarding webinar",
        "invited": 5,
        "attended": {"count": 2, "of": 5, "pct": 40.0},
        "attendees": {
            "onboardings": 2,
            "activation": {"count": 2, "of": 2, "pct": 100.0},
            "ttv_median_days": 15.0,
        },
        "non_attendees": {
            "onboardings": 3,
            "activation": {"count": 1, "of": 3, "pct": 33.3},
            "ttv_median_days": 23.5,
        },
        "attended_uninvited": 1,
    }
    assert by_id["office_hours"].invited == 0
    assert by_id["office_hours"].attended.pct is None


# --------------------------------------------------------------------------- the workflow


def calendar_part(message: EmailMessage) -> icalendar.Calendar:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    assert part.get_filename() == "invite.ics"
    return icalendar.Calendar.from_ical(part.get_content())


async def test_a_tech_touch_customer_gets_the_webinar_invitation_with_its_ics_on_day_1(
    env: WorkflowEnvironment, mailbox: Mailbox, tmp_path: Path
) -> None:
    task_queue = f"programs-{uuid.uuid4().hex[:8]}"
    records = f"sqlite:///{tmp_path / 'records.db'}"
    closed = await env.get_current_time()
    tech = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    others: list[ClosedWonDeal] = [
        make_deal(
            close_date=closed,
            contacts=[{"name": "Olly", "email": f"olly@{tier}.test", "role": "champion"}],
            **TIER_DEALS[tier],
        )
        for tier in ("high_touch", "self_serve")
    ]

    def invitations() -> list[EmailMessage]:
        return [m for m in mailbox.messages if "you're invited" in m["Subject"]]

    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(email_settings(mailbox, records_url=records)),
        workflow_failure_exception_types=[Exception],
    ):
        handles = [
            await env.client.start_workflow(
                AccountOnboarding.run,
                OnboardingInput(deal=deal, playbook=PB),
                id=deal.workflow_id,
                task_queue=task_queue,
            )
            for deal in (tech, *others)
        ]
        handle = handles[0]
        await env.sleep(0.99 * DAY)
        await asyncio.sleep(0.5)  # any notification due would be sent by now
        assert invitations() == []
        assert (await status(handle)).programs == []

        await env.sleep(0.02 * DAY)
        for _ in range(200):
            if invitations():
                break
            await asyncio.sleep(0.05)
        [message] = invitations()
        st = await status(handle)
        [view] = st.programs
        assert view.invited_at is not None and view.session_at is not None
        assert abs(view.invited_at - closed - DAY) < timedelta(seconds=5)  # on day 1
        session = next_session(WEBINAR, view.invited_at + WEBINAR.notice_hours * timedelta(hours=1))
        assert view.session_at == session

        assert message["To"] == "cara@acme.test"
        # (Folded onto its own line, being long: unfolded it keeps a leading space.)
        assert message["X-Idempotency-Key"].strip() == (
            f"{tech.workflow_id}:program-onboarding_webinar-"
            f"{session.astimezone(UTC):%Y%m%dT%H%M%SZ}:customer"
        )
        assert message["Subject"] == (
            f"Acme Corp: you're invited to the Weekly onboarding webinar, {session_text(session)}"
        )
        assert WEBINAR.join_url in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        [event] = calendar_part(message).walk("VEVENT")
        start = event.decoded("dtstart")
        assert event["dtstart"].params["TZID"] == "America/New_York"
        assert start == session and (start.weekday(), start.hour) == (1, 16)
        assert event.decoded("dtend") - start == timedelta(minutes=60)
        assert event["organizer"] == f"mailto:{WEBINAR.organizer}"
        assert event["attendee"] == "mailto:cara@acme.test"

        went = session + timedelta(minutes=5)
        await env.sleep(session + timedelta(hours=1) - await env.get_current_time())
        attended = ProductEvent(
            event_id="att-1", name="webinar_attended", at=went, program="onboarding_webinar"
        )
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[attended]))
        st = await until(handle, lambda st: st.programs[0].attended_at is not None)
        assert st.programs[0].attended_at == went

        # By day 8 office hours invited it too; high_touch and self_serve were never invited.
        await env.sleep(closed + 8 * DAY - await env.get_current_time())
        for _ in range(200):
            if len(invitations()) == 2:
                break
            await asyncio.sleep(0.05)
        assert [m["To"] for m in invitations()] == ["cara@acme.test", "cara@acme.test"]
        for other in handles[1:]:
            assert (await status(other)).programs == []

    store = RecordStore.open(records)
    try:
        for _ in range(200):
            saved = store.get(tech.account_id)
            if saved and len(saved.programs) == 2 and saved.programs[0].attended_at:
                break
            await asyncio.sleep(0.05)
        assert saved is not None
        assert [(x.program, x.attended_at) for x in saved.programs] == [
            ("onboarding_webinar", went),
            ("office_hours", None),
        ]
    finally:
        store.close()
