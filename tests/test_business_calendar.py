"""SLAs on the customer's business calendar (rules §3-§5 (docs/rules.md)): business hours
and units as pure functions, a deadline counted again after a pause, the handoff and
first-engagement steps, and on the time-skipping server a deadline across a weekend and
a public holiday in two time zones, and the 7-day first-engagement flag."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowHandle

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, fresh_progress, status
from tests.test_workflow import reach, schedule_kickoff
from workflows import business_days, presentation, progress, rules
from workflows.business_days import Calendar, Unit
from workflows.models import (
    MilestoneStatus,
    PauseRequest,
    ResumeRequest,
    Tier,
)
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook, parse_playbook

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
PB = load_playbook()
NEW_YORK = Calendar("America/New_York", "US")
BERLIN = Calendar("Europe/Berlin", "DE")
UTC_US = Calendar("UTC", "US")
# The default playbook with the kickoff call due in business days (10 for high_touch, 5
# for tech_touch) instead of 14 and 7 calendar days.
BUSINESS_KICKOFF = parse_playbook(
    DEFAULT_PLAYBOOK.read_text(encoding="utf-8").replace(
        'due_days = { high_touch = 14, tech_touch = 7 }\nttv = "first_engagement"',
        'due_days = { high_touch = 10, tech_touch = 5 }\ndue_unit = "business_days"\n'
        'ttv = "first_engagement"',
    ),
    "business-kickoff.toml",
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --------------------------------------------------------------------------- pure: the calendar
# These tables use fixed dates on purpose: the weekdays, holidays and daylight-saving days
# of those dates are what each case is about.


@pytest.mark.parametrize(
    ("start", "hours", "calendar", "ends"),
    [
        # Wednesday 15:00 in New York: 2 h that day, Thursday is Thanksgiving, 8 h on
        # Friday and Monday, the last 6 h on Tuesday.
        pytest.param(utc(2026, 11, 25, 20), 24, NEW_YORK, utc(2026, 12, 1, 20), id="thanksgiving"),
        # July 4 2026 is a Saturday: Friday 3rd is the observed holiday.
        pytest.param(utc(2026, 7, 2, 14), 8, NEW_YORK, utc(2026, 7, 6, 14), id="july-4-observed"),
        # Thursday 16:00 in Berlin: Good Friday and Easter Monday are German holidays...
        pytest.param(utc(2026, 4, 2, 14), 16, BERLIN, utc(2026, 4, 8, 14), id="berlin-easter"),
        # ...and working days in New York (10:00 there at the same instant).
        pytest.param(utc(2026, 4, 2, 14), 16, NEW_YORK, utc(2026, 4, 6, 14), id="ny-easter"),
        # Christmas Day (a Friday) and the weekend in Berlin; Christmas Eve is a workday.
        pytest.param(utc(2026, 12, 23, 15), 16, BERLIN, utc(2026, 12, 28, 15), id="berlin-xmas"),
        # Berlin moves to summer time on Sunday 29 March: Monday 10:00 is 08:00 UTC.
        pytest.param(utc(2026, 3, 27, 15), 2, BERLIN, utc(2026, 3, 30, 8), id="berlin-dst"),
        # New York leaves summer time on Sunday 1 November: Monday 10:00 is 15:00 UTC.
        pytest.param(utc(2026, 10, 30, 20), 2, NEW_YORK, utc(2026, 11, 2, 15), id="ny-dst"),
        # Outside the window the count starts at the next opening.
        pytest.param(utc(2026, 12, 5, 12), 8, UTC_US, utc(2026, 12, 7, 17), id="saturday"),
        pytest.param(utc(2026, 12, 7, 17), 1, UTC_US, utc(2026, 12, 8, 10), id="at-closing"),
        pytest.param(utc(2026, 12, 7, 6), 3, UTC_US, utc(2026, 12, 7, 12), id="before-opening"),
        # Another working day, 07:30-15:30 in UTC: half an hour each side of the night.
        pytest.param(
            utc(2026, 12, 7, 15),
            1,
            Calendar("UTC", "US", time(7, 30), time(15, 30)),
            utc(2026, 12, 8, 8),
            id="own-window",
        ),
    ],
)
def test_business_hours_end(
    start: datetime, hours: int, calendar: Calendar, ends: datetime
) -> None:
    assert business_days.business_hours_end(start, hours, calendar) == ends
    assert business_days.business_hours_between(start, ends, calendar) == hours


@pytest.mark.parametrize(
    ("start", "amount", "unit", "calendar", "ends"),
    [
        # Wednesday 23 December in Berlin: Thursday is the first business day, Christmas
        # and the weekend do not count, Monday 28th is the second; it ends at midnight.
        pytest.param(
            utc(2026, 12, 23, 11), 2, "business_days", BERLIN, utc(2026, 12, 28, 23), id="days"
        ),
        pytest.param(
            utc(2026, 11, 25, 20), 24, "business_hours", NEW_YORK, utc(2026, 12, 1, 20), id="hours"
        ),
        pytest.param(utc(2026, 11, 25, 20), 3, "days", NEW_YORK, utc(2026, 11, 28, 20), id="cal"),
        pytest.param(utc(2026, 11, 25, 20), 0, "days", NEW_YORK, utc(2026, 11, 25, 20), id="zero"),
    ],
)
def test_a_deadline_counts_in_its_unit(
    start: datetime, amount: int, unit: Unit, calendar: Calendar, ends: datetime
) -> None:
    assert business_days.deadline(start, amount, unit, calendar) == ends


def test_business_hours_refuse_a_count_that_is_not_above_zero() -> None:
    with pytest.raises(ValueError, match="hours: must be above 0, got 0"):
        business_days.business_hours_end(utc(2026, 12, 7), 0, UTC_US)


@pytest.mark.parametrize(
    ("since", "due", "now", "unit", "calendar", "counted_again"),
    [
        # Due at the end of Wednesday 9 December; paused and resumed on Monday 7th: the
        # same deadline.
        pytest.param(
            utc(2026, 12, 7, 10),
            utc(2026, 12, 10),
            utc(2026, 12, 7, 15),
            "business_days",
            UTC_US,
            utc(2026, 12, 10),
            id="days-same-day",
        ),
        # Paused on Friday 4th with Monday-Wednesday left, resumed Tuesday 8th: Wednesday
        # to Friday (moved by the 4 days paused it would end on Sunday night).
        pytest.param(
            utc(2026, 12, 4, 12),
            utc(2026, 12, 10),
            utc(2026, 12, 8, 12),
            "business_days",
            UTC_US,
            utc(2026, 12, 12),
            id="days-left",
        ),
        # Paused on its last day: one business day after the resume.
        pytest.param(
            utc(2026, 12, 9, 10),
            utc(2026, 12, 10),
            utc(2026, 12, 10, 10),
            "business_days",
            UTC_US,
            utc(2026, 12, 12),
            id="days-last-day",
        ),
        # Already overdue at the pause: it stays as overdue, moved by the time paused.
        pytest.param(
            utc(2026, 12, 11),
            utc(2026, 12, 10),
            utc(2026, 12, 14),
            "business_days",
            UTC_US,
            utc(2026, 12, 13),
            id="days-overdue",
        ),
        # Monday noon with 11 business hours left; resumed Thursday 10:00: Friday 13:00.
        pytest.param(
            utc(2026, 12, 7, 12),
            utc(2026, 12, 8, 15),
            utc(2026, 12, 10, 10),
            "business_hours",
            UTC_US,
            utc(2026, 12, 11, 13),
            id="hours-left",
        ),
        # 4 h left, resumed Wednesday 16:00 before Thanksgiving in New York: 1 h then,
        # 3 h on Friday.
        pytest.param(
            utc(2026, 11, 23, 18),
            utc(2026, 11, 23, 22),
            utc(2026, 11, 25, 21),
            "business_hours",
            NEW_YORK,
            utc(2026, 11, 27, 17),
            id="hours-over-thanksgiving",
        ),
        pytest.param(
            utc(2026, 12, 7, 12),
            utc(2026, 12, 8, 15),
            utc(2026, 12, 10, 10),
            "days",
            UTC_US,
            utc(2026, 12, 11, 13),
            id="calendar-days",
        ),
    ],
)
def test_a_paused_deadline_is_counted_again_from_the_resume(
    since: datetime,
    due: datetime,
    now: datetime,
    unit: Unit,
    calendar: Calendar,
    counted_again: datetime,
) -> None:
    assert business_days.recount(since, due, now, unit, calendar) == counted_again


@pytest.mark.parametrize(
    ("at", "unit", "text"),
    # A formatting table: the instants are chosen (midnight and mid-afternoon in New
    # York), and each text is that instant on the account's clock.
    [
        (
            utc(2026, 12, 10, 5),
            "business_days",
            "end of 2026-12-09 America/New_York, in business days",
        ),
        (
            utc(2026, 12, 1, 20),
            "business_hours",
            "2026-12-01 15:00 America/New_York, in business hours",
        ),
        (utc(2026, 12, 1, 20), "days", "2026-12-01 15:00 America/New_York"),
    ],
)
def test_a_deadline_reads_in_the_accounts_zone_and_says_its_unit(
    at: datetime, unit: Unit, text: str
) -> None:
    assert business_days.deadline_text(at, unit, "America/New_York") == text


# --------------------------------------------------------------------------- pure: plan, ladder


def begun(playbook: Any, closed: datetime, now: datetime, **deal: Any) -> progress.Onboarding:
    o, _ = progress.begin(make_deal(close_date=closed, **deal), playbook, None, now, lambda: True)
    return o


def test_a_business_day_gate_is_planned_shown_and_counted_again_after_a_pause() -> None:
    # Friday 20 November 2026, 15:00 in New York; Thursday 26th is Thanksgiving.
    closed = utc(2026, 11, 20, 20)
    o = begun(
        BUSINESS_KICKOFF,
        closed,
        closed,
        time_zone="America/New_York",
        country="US",
        **TIER_DEALS["tech_touch"],
    )
    kickoff = progress.milestone(o.progress, "kickoff_call")
    assert kickoff is not None and kickoff.due_unit == "business_days"
    # Monday to Wednesday, Friday and Monday 30th: the fifth ends at midnight in New York.
    assert kickoff.due_at == utc(2026, 12, 1, 5)
    text = "end of 2026-11-30 America/New_York, in business days"
    assert (
        f"- [ ] kickoff: Kickoff held and success plan agreed — due {text}"
        in presentation.checklist(o, closed)
    )
    view = next(
        m for m in presentation.status(o, "wf", closed).milestones if m.id == "kickoff_call"
    )
    assert (view.due_unit, view.due_local) == ("business_days", text)
    first_login = progress.milestone(o.progress, "first_login")
    assert first_login is not None and first_login.due_at == closed + 3 * DAY  # calendar days

    # Paused on Tuesday 24th (Wednesday, Friday and Monday left), resumed Wednesday 2
    # December: Thursday 3rd to Monday 7th.
    progress.start_pause(o.progress, PauseRequest(by="csm", reason="re-org"), utc(2026, 11, 24, 15))
    progress.resume(o, ResumeRequest(by="csm"), utc(2026, 12, 2, 15))
    assert kickoff.due_at == utc(2026, 12, 8, 5)
    assert first_login.due_at == closed + 3 * DAY + (utc(2026, 12, 2, 15) - utc(2026, 11, 24, 15))


def test_a_tier_change_counts_business_deadlines_in_the_accounts_calendar() -> None:
    closed = utc(2026, 11, 20, 20)  # a Friday, 15:00 in New York
    o = begun(
        BUSINESS_KICKOFF,
        closed,
        closed,
        time_zone="America/New_York",
        country="US",
        **TIER_DEALS["tech_touch"],
    )
    at = closed + 2 * DAY
    progress.change_tier(
        o, Tier.HIGH_TOUCH, "override", "vp", "bigger", at, lambda: True, lambda: True
    )
    kickoff = progress.milestone(o.progress, "kickoff_call")
    assert kickoff is not None
    # The kickoff phase begins now: ten business days from Sunday 22nd, Thanksgiving out,
    # the tenth is Monday 7 December.
    assert kickoff.due_at == utc(2026, 12, 8, 5) and kickoff.revision == 1


def steps(o: progress.Onboarding) -> dict[str, datetime]:
    return {
        s.step.id: s.at for s in o.steps() if s.step.id in ("handoff_late", "first_engagement_late")
    }


@pytest.mark.parametrize("tier", [Tier.HIGH_TOUCH, Tier.TECH_TOUCH])
def test_the_handoff_waits_for_the_kickoff_to_be_scheduled_and_engagement_for_it_to_be_held(
    tier: Tier,
) -> None:
    # Friday 20 November 2026, 15:00 in New York: 2 business hours that day, 8 on Monday
    # and Tuesday, the last 6 on Wednesday (before Thanksgiving).
    closed = utc(2026, 11, 20, 20)
    o = begun(
        PB, closed, closed, time_zone="America/New_York", country="US", **TIER_DEALS[tier.value]
    )
    assert steps(o) == {
        "handoff_late": utc(2026, 11, 25, 20),
        "first_engagement_late": closed + 7 * DAY,
    }
    [handoff, engagement] = presentation.sla_steps(o)
    assert (handoff.step_id, handoff.due_local) == (
        "handoff_late",
        "2026-11-25 15:00 America/New_York, in business hours",
    )
    assert engagement.due_local == "2026-11-27 15:00 America/New_York"
    assert (
        "- handoff_late (24 business hours): 2026-11-25 15:00 America/New_York, in business hours"
        in presentation.checklist(o, closed)
    )

    kickoff = progress.milestone(o.progress, "kickoff_call")
    assert kickoff is not None
    out = progress.Changes()
    progress.reach(o, out, kickoff, MilestoneStatus.IN_PROGRESS, closed + DAY, "csm", closed + DAY)
    assert steps(o) == {"first_engagement_late": closed + 7 * DAY}  # the CSM has it
    progress.reach(o, out, kickoff, MilestoneStatus.DONE, closed + 2 * DAY, "csm", closed + 2 * DAY)
    assert steps(o) == {}  # engaged within 48 h


def test_self_serve_has_no_handoff_sla() -> None:
    o = begun(PB, utc(2026, 11, 20, 20), utc(2026, 11, 20, 20), **TIER_DEALS["self_serve"])
    assert steps(o) == {} and presentation.sla_steps(o) == []


def test_a_playbook_without_the_steps_keeps_its_ladder() -> None:
    """Onboardings pinned to a playbook before these rules replay unchanged: no new step."""
    ladder = {
        t: [s for s in PB.ladder[t] if s.id not in ("handoff_late", "first_engagement_late")]
        for t in Tier
    }
    old = PB.model_copy(update={"ladder": ladder})
    p = fresh_progress(old, Tier.TECH_TOUCH, utc(2026, 11, 20, 20))
    got = {s.step.id for s in rules.ladder_steps(p, old)}
    assert not got & {"handoff_late", "first_engagement_late"}


# --------------------------------------------------------------------------- on the server


def next_long_weekend(after: datetime, calendar: Calendar) -> datetime:
    """15:00 local on the first Friday after `after` whose Monday is a public holiday of
    `calendar`'s country: the 24 business hours from it span a weekend and a holiday."""
    zone = ZoneInfo(calendar.time_zone)
    day = after.astimezone(zone).date() + DAY
    while not (
        day.weekday() == 4
        and business_days.is_business_day(day, calendar.country)
        and not business_days.is_business_day(day + 3 * DAY, calendar.country)
    ):
        day += DAY
    return datetime.combine(day, time(15), tzinfo=zone).astimezone(UTC)


def local_day(at: datetime, calendar: Calendar) -> date:
    return at.astimezone(ZoneInfo(calendar.time_zone)).date()


async def escalated(handle: WorkflowHandle[Any, Any], step_id: str) -> list[str]:
    st = await status(handle)
    return [
        e.milestone_id or "" for e in st.escalations if e.step_id == step_id and not e.superseded
    ]


async def at(onboardings: Onboardings, when: datetime) -> None:
    """Move the test clock to `when`."""
    await onboardings.days_later((when - await onboardings.now()) / DAY)


@pytest.mark.parametrize("calendar", [NEW_YORK, BERLIN], ids=["new-york", "berlin"])
async def test_deadlines_across_a_weekend_and_a_holiday_act_on_their_day_not_the_day_before(
    onboardings: Onboardings, calendar: Calendar
) -> None:
    closed = next_long_weekend(await onboardings.now(), calendar)
    await at(onboardings, closed)
    deal = make_deal(
        close_date=closed,
        time_zone=calendar.time_zone,
        country=calendar.country,
        **TIER_DEALS["tech_touch"],
    )
    handle = await onboardings.start(deal, BUSINESS_KICKOFF)
    st = await status(handle)
    handoff_due = st.sla_steps[0].due_at
    kickoff = next(m for m in st.milestones if m.id == "kickoff_call")
    friday = local_day(closed, calendar)
    # Friday 2 h, the weekend and Monday's holiday out, Tuesday and Wednesday 8 h each,
    # Thursday 6 h: 15:00 on Thursday (counted in calendar hours it would be Saturday).
    assert handoff_due == business_days.business_hours_end(closed, 24, calendar)
    assert local_day(handoff_due, calendar) == friday + 6 * DAY
    assert st.sla_steps[0].due_local.endswith(f"15:00 {calendar.time_zone}, in business hours")
    assert kickoff.due_at == business_days.business_days_end(
        closed, 5, calendar.time_zone, calendar.country
    )
    assert (
        local_day(kickoff.due_at - MINUTE, calendar) >= friday + 10 * DAY
    )  # its fifth business day
    assert kickoff.due_local is not None and kickoff.due_local.endswith("in business days")

    await at(onboardings, handoff_due - DAY)  # the day before: nothing yet
    assert await escalated(handle, "handoff_late") == []
    await at(onboardings, handoff_due - MINUTE)
    assert await escalated(handle, "handoff_late") == []
    await at(onboardings, handoff_due + MINUTE)
    assert await escalated(handle, "handoff_late") == ["kickoff_call"]
    st = await status(handle)
    assert any(
        f.endswith("sales-to-CS handoff not done within 24 business hours (kickoff_call)")
        for f in st.risk_flags
    )
    await onboardings.subjects_once(deal.account_id, "[CSM] Acme Corp: sales-to-CS handoff overdue")

    await at(onboardings, kickoff.due_at - DAY)  # the day before the fifth business day ends
    assert "kickoff_call" not in await escalated(handle, "overdue_nudge")
    await at(onboardings, kickoff.due_at + MINUTE)
    assert "kickoff_call" in await escalated(handle, "overdue_nudge")


async def test_first_engagement_is_flagged_at_7_days_and_leadership_told(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    late = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    engaged = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    late_handle, engaged_handle = await onboardings.start(late), await onboardings.start(engaged)
    for handle in (late_handle, engaged_handle):
        await schedule_kickoff(handle)  # the handoff is done on day 0
    await onboardings.days_later(1.5)
    await reach(engaged_handle, "kickoff_call")  # held within 48 h: high-performing

    await onboardings.days_later(7 - 1.5 - 0.01)
    st = await status(late_handle)
    assert not any("first CS engagement" in f for f in st.risk_flags)
    await onboardings.days_later(0.02)
    st = await status(late_handle)
    assert any(
        f.endswith("first CS engagement not within 7 days (kickoff_call)") for f in st.risk_flags
    )
    assert await escalated(late_handle, "first_engagement_late") == ["kickoff_call"]
    assert await escalated(late_handle, "handoff_late") == []
    await onboardings.subjects_once(
        late.account_id, "[CS leadership] Acme Corp: no CS engagement after 7 days"
    )

    other = await status(engaged_handle)
    assert other.ttv.handoff_delay_days == pytest.approx(1.5, abs=0.01)
    assert not any("first CS engagement" in f or "handoff" in f for f in other.risk_flags)
    assert other.sla_steps == []
    subjects = [r["subject"] for r in onboardings.sent(engaged.account_id)]
    assert not any("engagement" in s or "handoff" in s for s in subjects)
