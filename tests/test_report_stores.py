"""The portfolio report reads the same from SQLite and from a real PostgreSQL server: the
times the database turns into POSIX seconds, the aggregates it computes, and so the whole
report. Its CSV is one row per group, with the same columns whatever the figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from activities.records.store import RecordStore
from starter.reports.flat import csv_text
from starter.reports.portfolio import portfolio_report
from starter.reports.rows import load_rows
from tests.support.records import DAY, escalation, make_record, milestone_view
from workflows.models import OnboardingState, Playbook, Tier, Trigger
from workflows.models.record import OnboardingRecord
from workflows.models.status import TtvBreakdown

NOW = datetime(2031, 5, 15, 12, tzinfo=UTC)
TECH, HIGH, SELF = Tier.TECH_TOUCH, Tier.HIGH_TOUCH, Tier.SELF_SERVE


def portfolio_records() -> list[OnboardingRecord]:
    """A small portfolio with every kind of fact the report reads; times with microseconds."""
    feb = datetime(2031, 2, 3, 9, 30, 15, 123456, tzinfo=UTC)
    apr = datetime(2031, 4, 20, 17, 5, 1, 654321, tzinfo=UTC)
    return [
        make_record(
            "201A",
            feb,
            tier=HIGH,
            state=OnboardingState.COMPLETED,
            finished_at=feb + 90.5 * DAY,
            ttv=TtvBreakdown(
                handoff_delay_days=1.25, setup_days=20, activation_days=9.5, total_days=30.75
            ),
            milestones=[
                milestone_view("first_login", feb, 5, 1.5),
                milestone_view("kickoff_call", feb, 14, 1.25),
                milestone_view("technical_setup", feb, 35, 21.25),
                milestone_view("first_value", feb, 56, 60),
                milestone_view("handoff", feb, 98, 90.5),
            ],
            escalations=[
                escalation("overdue_alert", feb, 56, HIGH, trigger=Trigger.MILESTONE_OVERDUE)
            ],
            team_invitations=3,
            first_active_day=1.5,
            came_back_day=9,
        ),
        make_record(
            "201B",
            feb,
            initial_tier=SELF,
            state=OnboardingState.AT_RISK,
            decision_required=True,
            risk_flags=["stalled"],
            next_deadline=NOW + 2.5 * DAY,
            milestones=[
                milestone_view("first_login", feb, 3, 2),
                milestone_view("kickoff_call", feb, 7, None, skipped=True),
                milestone_view("technical_setup", feb, 14),
            ],
            escalations=[
                escalation("stall_outreach", feb, 30, TECH),
                escalation("stall_status_email", feb, 37, TECH, superseded=True, repeats=4),
            ],
        ),
        make_record(
            "201C",
            apr,
            tier=SELF,
            owner=None,
            acv_usd=4_200,
            ttv_days=6.75,
            milestones=[milestone_view("first_login", apr, 3, 0.5)],
            team_invitations=0,
            first_active_day=0.5,
        ),
        make_record("201D", apr, initial_tier=HIGH, override=True, acv_usd=48_000),
    ]


def test_sqlite_and_postgresql_give_the_same_rows_and_report(
    postgres_url: str, tmp_path: Path, playbook: Playbook
) -> None:
    records = portfolio_records()
    stores = [
        RecordStore.open(f"sqlite:///{tmp_path / 'records.db'}"),
        RecordStore.open(postgres_url),
    ]
    try:
        loaded, reports = [], []
        for store in stores:
            for record in records:
                assert store.save(record)
            loaded.append(load_rows(store, playbook, NOW))
            reports.append(portfolio_report(store, playbook, NOW))
    finally:
        for store in stores:
            store.close()

    by_id = {r.account_id: r for r in records}
    for rows in loaded:
        assert [r.account_id for r in rows.onboardings] == sorted(by_id)
        for row in rows.onboardings:
            record = by_id[row.account_id]
            # The database's epoch seconds are the record's times (SQLite: to the millisecond).
            assert row.closed_won_at == pytest.approx(record.closed_won_at.timestamp(), abs=1e-3)
            last_due = max(m.due_at for m in record.milestones) if record.milestones else None
            assert row.last_due_at == (
                None if last_due is None else pytest.approx(last_due.timestamp(), abs=1e-3)
            )
        high, finished = rows.onboardings[0], by_id["201A"].finished_at
        assert finished is not None
        assert high.finished_at == pytest.approx(finished.timestamp(), abs=1e-3)
        assert high.specialist_done_at == pytest.approx(
            (by_id["201A"].closed_won_at + 21.25 * DAY).timestamp(), abs=1e-3
        )
        assert (high.milestones_due, high.milestones_on_time) == (5, 4)
        assert (high.setup_judged, high.setup_done) == (True, True)
        won = by_id["201A"].closed_won_at
        assert high.team_invitations == 3
        assert (high.first_active_on, high.came_back_on) == (
            (won + 1.5 * DAY).date(),
            (won + 9 * DAY).date(),
        )
        flagged = rows.onboardings[1]
        assert flagged.risk_flags == ["stalled"]
        assert [o.milestone_id for o in flagged.overdue] == ["technical_setup"]
    sqlite_rows, postgres_rows = loaded
    assert sqlite_rows.ladder == postgres_rows.ladder
    assert reports[0].model_dump() == reports[1].model_dump()


def test_the_csv_is_one_row_per_group_with_the_same_columns(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    for record in portfolio_records():
        empty_store.save(record)
    report = portfolio_report(empty_store, playbook, NOW)

    rows = list(csv.DictReader(io.StringIO(csv_text(report))))

    groups = [(r["group"], r["tier"], r["cohort"]) for r in rows]
    assert groups == [
        ("all", "", ""),
        ("tier", "high_touch", ""),
        ("tier", "tech_touch", ""),
        ("tier", "self_serve", ""),
        ("cohort", "", "2031-02"),
        ("cohort", "", "2031-03"),
        ("cohort", "", "2031-04"),
        # tier x cohort groups without onboardings are left out
        ("tier_cohort", "high_touch", "2031-02"),
        ("tier_cohort", "tech_touch", "2031-02"),
        ("tier_cohort", "tech_touch", "2031-04"),
        ("tier_cohort", "self_serve", "2031-04"),
    ]
    every = rows[0]
    assert every["as_of"] == NOW.isoformat()
    assert every["onboardings"] == "4"
    overall = report.overall
    assert every["milestones_on_time_count"] == str(overall.milestones_on_time.count)
    assert every["milestones_on_time_pct"] == str(overall.milestones_on_time.pct)
    assert every["completion_target_pct_low"] == ""  # no target for all tiers together
    assert every["health_healthy"] == str(overall.health[next(iter(overall.health))])
    high = rows[1]
    assert (high["completion_target_pct_low"], high["completion_target_pct_high"]) == (
        "85.0",
        "100.0",
    )
    assert (high["ttv_target_days_low"], high["ttv_target_days_high"]) == ("14", "21")
    assert high["ttv_median_days"] == "30.75"
