"""When a group program meets (rules §1 (docs/rules.md), *Group programs*): a weekly
session on a weekday at a local time in the program's IANA time zone.

Pure (no clock, no I/O). Daylight saving follows RFC 5545's reading of a local time: the
session keeps its wall-clock time, so its UTC time moves with the zone's offset; a time
that does not exist on a day (skipped by the clocks going forward) starts as many minutes
after the gap as it lay into it, and one that occurs twice (the clocks going back) is the
first of the two.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from workflows.models.playbook import WEEKDAYS, Program

WEEK = timedelta(days=7)


def next_session(program: Program, at: datetime) -> datetime:
    """The start of `program`'s first session at or after `at` (aware), as an aware
    datetime in the program's time zone."""
    zone = ZoneInfo(program.time_zone)
    local = at.astimezone(zone)
    ahead = (WEEKDAYS.index(program.weekday) - local.weekday()) % 7
    day = local.date() + timedelta(days=ahead)
    while True:
        # Through UTC and back: a wall time in a gap becomes the real time after it.
        start = datetime.combine(day, program.time, tzinfo=zone).astimezone(UTC).astimezone(zone)
        if start >= at:
            return start
        day += WEEK


def session_text(start: datetime, account_zone: str | None = None) -> str:
    """`Tuesday 2026-12-08 16:00 America/New_York` (`start` in the program's zone), and
    for an account in another zone its own clock too: `... (Wednesday 06:00 Asia/Tokyo)`."""
    text = f"{start:%A %Y-%m-%d %H:%M} {start.tzinfo}"
    if account_zone and account_zone != str(start.tzinfo):
        local = start.astimezone(ZoneInfo(account_zone))
        text += f" ({local:%A %H:%M} {account_zone})"
    return text
