"""What the dashboard's pages show, as pure functions of the portfolio report
(`starter.reports`, rules §8 in docs/rules.md) and of one onboarding record: the text of a
figure, the at-risk list as shown, the account's plan against what happened (the
timeline's rows), and where a sign-in may send the browser back to. No I/O: the router
(`dashboard.py`) reads the store, the charts (`dashboard_charts.py`) draw these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from starter.reports.model import AtRisk, Share
from workflows.business_days import local_text
from workflows.models import MilestoneStatus
from workflows.models.record import OnboardingRecord

PORTFOLIO_PATH = "/dashboard"
# The at-risk list on the page; the rest are a filter (tier, cohort) or the CSV away.
AT_RISK_SHOWN = 100
NONE_TEXT = "\u2013"  # an en dash: nothing to measure


def pct_text(value: float | None) -> str:
    """`72.5%`; an en dash when there is nothing to measure (null in the report)."""
    return NONE_TEXT if value is None else f"{value:.1f}%"


def share_text(share: Share) -> str:
    """`72.5% (29/40)`: the rate with what it counts."""
    return f"{pct_text(share.pct)} ({share.count}/{share.of})"


def days_text(days: float | None) -> str:
    """`12.3 d`; an en dash for a duration not reached."""
    return NONE_TEXT if days is None else f"{days:.1f} d"


def range_text(low_high: tuple[float, float] | None, unit: str) -> str:
    """A target range: `70-80%`, `30-60 d`; an en dash when the figure has no target."""
    if low_high is None:
        return NONE_TEXT
    low, high = low_high
    return f"{low:g}-{high:g}{unit}"


def when_text(at: datetime | None) -> str:
    """A time in UTC to the minute, `2025-03-04 14:05 UTC`; an en dash for none."""
    return NONE_TEXT if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def local_when_text(at: datetime | None, time_zone: str | None) -> str:
    """A time on the account's clock with its zone, `2025-03-04 09:05 America/New_York`
    (rules §4); in UTC (`when_text`) for a record that names no zone."""
    if at is None or time_zone is None:
        return when_text(at)
    return local_text(at, time_zone)


def at_risk_shown(at_risk: list[AtRisk]) -> tuple[list[AtRisk], int]:
    """The at-risk accounts the page lists (the report's order, at most AT_RISK_SHOWN) and
    how many it leaves out."""
    return at_risk[:AT_RISK_SHOWN], max(0, len(at_risk) - AT_RISK_SHOWN)


def safe_next(target: str | None) -> str:
    """Where a sign-in sends the browser back to: a dashboard path of this site, never
    another site (`//host`, `/\\host` and absolute URLs are open redirects); else the
    portfolio page."""
    if (
        target
        and (
            target == PORTFOLIO_PATH
            or target.startswith((PORTFOLIO_PATH + "/", PORTFOLIO_PATH + "?"))
        )
        and "\\" not in target
        and not any(ord(c) < 0x20 for c in target)
    ):
        return target
    return PORTFOLIO_PATH


Outcome = Literal["on_time", "late", "overdue", "open", "skipped"]


@dataclass(frozen=True)
class TimelineRow:
    """One milestone on the plan-against-actual timeline, all times aware UTC.

    The plan window runs from the previous milestone's due date (the first: closed-won)
    to this one's; the actual window from when the previous one was done (the first:
    closed-won) to when this one was done, or to `now` while it is open and its turn has
    come (the previous one done). A window that would end before it starts (milestones
    done out of order) starts at its end. `actual` None: not started, or skipped.
    """

    milestone_id: str
    title: str
    plan_start: datetime
    plan_end: datetime
    actual: tuple[datetime, datetime] | None
    outcome: Outcome


def _outcome(
    done: datetime | None, due: datetime, status: MilestoneStatus, now: datetime
) -> Outcome:
    if status is MilestoneStatus.SKIPPED:
        return "skipped"
    if done is not None:
        return "on_time" if done <= due else "late"
    return "overdue" if due <= now else "open"


def timeline_rows(record: OnboardingRecord, now: datetime) -> list[TimelineRow]:
    """The record's milestones in plan order as `TimelineRow`s, as of `now` (aware)."""
    rows = []
    plan_start = actual_start = record.closed_won_at
    turn = True  # the first milestone's turn comes at closed-won
    for m in record.milestones:
        outcome = _outcome(m.done_at, m.due_at, m.status, now)
        end = m.done_at if m.done_at is not None else (now if turn else None)
        actual = None if end is None or outcome == "skipped" else (min(actual_start, end), end)
        rows.append(
            TimelineRow(
                milestone_id=m.id,
                title=m.title,
                plan_start=min(plan_start, m.due_at),
                plan_end=m.due_at,
                actual=actual,
                outcome=outcome,
            )
        )
        plan_start = m.due_at
        # A skipped milestone passes its turn on, as a done one does.
        if m.done_at is not None:
            actual_start = m.done_at
        turn = m.done_at is not None or outcome == "skipped"
    return rows
