"""Business days in an account's own calendar (rules §6.3 (docs/rules.md)): its IANA time
zone says which local day an instant falls on, its country (ISO 3166 alpha-2) says which
days are the weekend and which are public holidays (the `holidays` library).

Pure and deterministic: no clock (`start` is an argument) and the same answer on every
worker, so workflow code may call it (imported passed-through, `import
workflows.business_days as business_days`). The `holidays` release is pinned exactly in
pyproject.toml: a release that moved a holiday would move a deadline already recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

# Every country's calendar, loaded with this module (about 0.3 s, once per process): the
# library's own lookup imports a country's module on first use, which inside the
# workflow sandbox would load the whole library afresh under its restrictions.
from holidays import countries
from temporalio import workflow

DAY = timedelta(days=1)
# Read once, outside any workflow: a deal or playbook is validated inside the sandbox too.
COUNTRIES = frozenset(holidays.list_supported_countries())


def known_time_zone(name: str) -> str:
    """`name` if it is an IANA time zone (`Europe/Berlin`, `UTC`); else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return name


def known_country(code: str) -> str:
    """`code` if it is an ISO 3166 alpha-2 country whose public holidays are known
    (`US`, `DE`); else ValueError."""
    # The library also knows alpha-3 codes and aliases (`USA`): the deal says alpha-2.
    if not (len(code) == 2 and code.isupper() and code in COUNTRIES):
        raise ValueError(f"{code!r} is not an ISO 3166 alpha-2 country with known holidays")
    return code


@cache
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    # The library reads its holiday names' translations through `gettext`, which the
    # workflow sandbox refuses; what it answers is fixed by its pinned release, so it may
    # run unrestricted (outside a workflow this changes nothing).
    with workflow.unsafe.sandbox_unrestricted():
        calendar: holidays.HolidayBase = getattr(countries, country)(years=year)
    return calendar


def is_business_day(day: date, country: str) -> bool:
    """Not the country's weekend (Saturday and Sunday in most; Friday and Saturday in
    some) and not one of its public holidays."""
    calendar = _calendar(country, day.year)
    return day.weekday() not in calendar.weekend and day not in calendar


def business_days_end(start: datetime, days: int, time_zone: str, country: str) -> datetime:
    """The instant (UTC) at which the `days`-th business day after `start` ends: local
    midnight after it, in `time_zone`. The local day `start` falls on does not count,
    whatever time it is, so a window opened on a Friday evening in New York counts from
    Monday (or Tuesday when Monday is a holiday). `days` >= 1."""
    if days < 1:
        raise ValueError(f"days: must be at least 1, got {days}")
    zone = ZoneInfo(time_zone)
    day, left = start.astimezone(zone).date(), days
    while left:
        day += DAY
        left -= is_business_day(day, country)
    return datetime.combine(day + DAY, time(0, 0), tzinfo=zone).astimezone(UTC)


# --------------------------------------------------------------------------- business hours
# and the units a playbook deadline counts in (rules §3-§5 (docs/rules.md))

Unit = Literal["days", "business_days", "business_hours"]
UNIT_WORDS: dict[str, str] = {
    "days": "days",
    "business_days": "business days",
    "business_hours": "business hours",
}


@dataclass(frozen=True)
class Calendar:
    """An account's business calendar: its IANA time zone, its ISO 3166 alpha-2 country
    (weekend and public holidays) and the local working day, `workday_start` to
    `workday_end` (business hours count inside it)."""

    time_zone: str
    country: str
    workday_start: time = time(9, 0)
    workday_end: time = time(17, 0)


def _window(day: date, calendar: Calendar) -> tuple[datetime, datetime] | None:
    """The working window of a local `day` as naive local wall-clock times; None on a
    weekend day or a public holiday."""
    if not is_business_day(day, calendar.country):
        return None
    return (
        datetime.combine(day, calendar.workday_start),
        datetime.combine(day, calendar.workday_end),
    )


def _local(at: datetime, zone: ZoneInfo) -> datetime:
    """`at` on the local wall clock, naive."""
    return at.astimezone(zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall-clock time as an instant (UTC)."""
    return wall.replace(tzinfo=zone).astimezone(UTC)


def business_hours_end(start: datetime, hours: float, calendar: Calendar) -> datetime:
    """The instant (UTC) at which `hours` business hours after `start` have passed: hours
    inside the local working window of business days only, on the local wall clock (so a
    daylight-saving change, which happens outside the window, neither adds nor removes
    one). A `start` outside the window counts from the next opening: 24 business hours in
    a 09:00-17:00 day are three working days. `hours` > 0, else ValueError."""
    if hours <= 0:
        raise ValueError(f"hours: must be above 0, got {hours:g}")
    zone = ZoneInfo(calendar.time_zone)
    wall = _local(start, zone)
    day, left = wall.date(), timedelta(hours=hours)
    while True:
        if (window := _window(day, calendar)) is not None:
            opens, closes = max(window[0], wall), window[1]
            if opens < closes:
                if left <= closes - opens:
                    return _instant(opens + left, zone)
                left -= closes - opens
        day += DAY


def business_hours_between(start: datetime, end: datetime, calendar: Calendar) -> float:
    """The business hours from `start` to `end` (0 when `end` is not after `start`): the
    inverse of `business_hours_end`."""
    zone = ZoneInfo(calendar.time_zone)
    first, last = _local(start, zone), _local(end, zone)
    total, day = timedelta(0), first.date()
    while day <= last.date():
        if (window := _window(day, calendar)) is not None:
            opens, closes = max(window[0], first), min(window[1], last)
            total += max(closes - opens, timedelta(0))
        day += DAY
    return total / timedelta(hours=1)


def business_days_left(since: datetime, due: datetime, calendar: Calendar) -> int:
    """Whole business days after the local day of `since` whose end is at or before
    `due`: what is left of a `business_days_end` deadline at `since` (the day `since`
    falls on does not count, as in `business_days_end`)."""
    zone = ZoneInfo(calendar.time_zone)
    day, last = since.astimezone(zone).date(), due.astimezone(zone).date()
    left = 0
    while (day := day + DAY) < last:
        left += is_business_day(day, calendar.country)
    return left


def deadline(start: datetime, amount: int, unit: Unit, calendar: Calendar) -> datetime:
    """`amount` in `unit` after `start`: calendar `days` (0 allowed), the end of the
    `amount`-th `business_days` (`business_days_end`) or `business_hours`
    (`business_hours_end`) in the account's calendar."""
    if unit == "business_days":
        return business_days_end(start, amount, calendar.time_zone, calendar.country)
    if unit == "business_hours":
        return business_hours_end(start, amount, calendar)
    return start + amount * DAY


def recount(
    since: datetime, due: datetime, now: datetime, unit: Unit, calendar: Calendar
) -> datetime:
    """A deadline counted in `unit`, stopped at `since` (a pause) and started again at
    `now`: what was left of it at `since` is counted again from `now`, in the calendar
    (rules §5 (docs/rules.md)). Calendar `days`, and a deadline already passed at
    `since`, move by the time stopped. A business-day deadline on whose last day the
    pause began has one business day left."""
    if unit == "days" or due <= since:
        return due + (now - since)
    if unit == "business_days":
        left = max(business_days_left(since, due, calendar), 1)
        return business_days_end(now, left, calendar.time_zone, calendar.country)
    return business_hours_end(now, business_hours_between(since, due, calendar), calendar)


def local_text(at: datetime, time_zone: str) -> str:
    """`at` on the account's clock with its zone: `2026-12-08 17:00 America/New_York`."""
    return f"{at.astimezone(ZoneInfo(time_zone)).strftime('%Y-%m-%d %H:%M')} {time_zone}"


def deadline_text(at: datetime, unit: Unit, time_zone: str) -> str:
    """A deadline as people read it in the account's zone: a business-day one as the last
    day it counts (`end of 2026-12-08 America/New_York, in business days`), a
    business-hour one as its minute (`2026-12-08 17:00 America/New_York, in business
    hours`), a calendar one as its minute in the zone."""
    if unit == "business_days":
        last = (at.astimezone(ZoneInfo(time_zone)) - DAY).date().isoformat()
        return f"end of {last} {time_zone}, in business days"
    text = local_text(at, time_zone)
    return f"{text}, in business hours" if unit == "business_hours" else text
