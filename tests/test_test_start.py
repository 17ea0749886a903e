"""The workflow tests' start moment (`ONBOARDING_TEST_START`, tests/support/temporal.py):
a test can be run as if on any weekday and hour, to show it passes on any day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.temporal import start_moment

# A chosen Wednesday, 2026-12-02 10:00 UTC.
WEDNESDAY = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("fri 17:30", datetime(2026, 12, 4, 17, 30, tzinfo=UTC)),  # later this week
        ("Friday 17:30", datetime(2026, 12, 4, 17, 30, tzinfo=UTC)),  # the full name
        ("wed 11:00", datetime(2026, 12, 2, 11, 0, tzinfo=UTC)),  # later today
        ("wed 10:00", datetime(2026, 12, 9, 10, 0, tzinfo=UTC)),  # now: next week's
        ("mon 00:00", datetime(2026, 12, 7, 0, 0, tzinfo=UTC)),  # next week
        ("sun 23:59", datetime(2026, 12, 6, 23, 59, tzinfo=UTC)),
    ],
)
def test_the_start_is_the_next_such_weekday_and_hour(when: str, expected: datetime) -> None:
    assert start_moment(WEDNESDAY, when) == expected


@pytest.mark.parametrize("when", ["friday", "fri 25:00", "someday 10:00", "fri 10"])
def test_a_start_not_of_the_form_is_refused_naming_the_form(when: str) -> None:
    with pytest.raises(ValueError, match="expected '<weekday> <HH:MM>'"):
        start_moment(WEDNESDAY, when)
