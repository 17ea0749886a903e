"""Business days in an account's own calendar (rules §6.3 (docs/rules.md)): its IANA time
zone says which local day an instant falls on, its country (ISO 3166 alpha-2) says which
days are the weekend and which are public holidays (the `holidays` library).

Pure and deterministic: no clock (`start` is an argument) and the same answer on every
worker, so workflow code may call it (imported passed-through, `import
workflows.business_days as business_days`). The `holidays` release is pinned exactly in
pyproject.toml: a release that moved a holiday would move a deadline already recorded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

# Every country's calendar, loaded with this module (about 0.3 s, once per process): the
# library's own lookup imports a country's module on first use, which inside the
# workflow sandbox would load the whole library afresh under its restrictions.
from holidays import countries

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
