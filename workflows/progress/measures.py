"""Two account measures of rules §8 (docs/rules.md) that only the product events show,
gathered as the events come (the playbook's `[measures]`; none in a playbook pinned
before it):

- team invitations: the `invitation_events` counted;
- first-week retention: the account's first active day (an `active_events` event, the
  day in the account's time zone) and whether it came back a week later, on a day 7 to
  13 days after the first. The report judges it once those days have passed.

Pure: the workflow calls `note_activity` for each event it counts.
"""

from __future__ import annotations

from bisect import insort
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from workflows.models import Measures, OnboardingProgress

WEEK = timedelta(days=7)


def team_invitations(p: OnboardingProgress, measures: Measures | None) -> int | None:
    """Teammates invited so far; None without `[measures]` (not counted)."""
    if measures is None:
        return None
    return sum(p.event_counts.get(name, 0) for name in measures.invitation_events)


def note_activity(
    p: OnboardingProgress, measures: Measures | None, name: str, at: datetime, time_zone: str
) -> None:
    """Keep the local day of an active event that happened `at`. Kept: the first day and
    the days up to two weeks after it, so the list stays at most 14 long; an event dated
    before the first (delivered late) moves the first, and what is then past its two
    weeks is let go."""
    if measures is None or name not in measures.active_events:
        return
    day = at.astimezone(ZoneInfo(time_zone)).date()
    days = p.active_days
    if day in days or (days and day >= days[0] + 2 * WEEK):
        return
    insort(days, day)
    del days[next((i for i, d in enumerate(days) if d >= days[0] + 2 * WEEK), len(days)) :]


def first_active_on(p: OnboardingProgress) -> date | None:
    """The account's first day with an active event, or None."""
    return p.active_days[0] if p.active_days else None


def came_back_on(p: OnboardingProgress) -> date | None:
    """The first day 7 to 13 days after the first active day with an active event: the
    account was retained through its first week. None: not (yet)."""
    days = p.active_days
    return next((d for d in days if d >= days[0] + WEEK), None)
