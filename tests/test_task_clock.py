"""The stale-clock guard (`workflows.alarm.clock_is_stale`): a workflow task whose history
grew while its time stood still carries the previous task's clock, and is refused.

The fault itself comes from the SDK after a worker restart with status queries in flight,
so it cannot be caused on demand: `tests/test_crash_restart.py` meets it in the wild
(and counts the tasks refused), and every workflow test's worker fails the workflow on
any exception, so a guard that refused a sound task would fail those tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows.alarm import clock_is_stale

NOW = datetime.now(UTC)
LATER = NOW + timedelta(milliseconds=3)


@pytest.mark.parametrize(
    ("seen", "history_length", "now", "stale", "why"),
    [
        (None, 3, NOW, False, "the run's first activation has nothing to compare"),
        ((3, NOW), 3, NOW, False, "the same task again (a query, a second activation)"),
        ((3, NOW), 11, LATER, False, "a new task, later: the history and the time moved"),
        ((11, NOW), 13, NOW, True, "new history at the old time: the previous task's clock"),
        ((11, LATER), 13, NOW, True, "new history at an earlier time"),
        ((13, NOW), 11, LATER, False, "a rejected update's task left no history: shorter"),
    ],
)
def test_a_task_is_stale_when_its_history_grew_but_its_time_did_not(
    seen: tuple[int, datetime] | None, history_length: int, now: datetime, stale: bool, why: str
) -> None:
    assert clock_is_stale(seen, history_length, now) is stale, why
