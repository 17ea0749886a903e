"""The portfolio report's per-group figures (rules §8, §3), each computed from records whose
facts the test states, written to a real SQLite records store and read back by the report.
The report time is a fixed `NOW` far from today; every date is relative to it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.records.store import RecordStore
from starter.reports.model import Share
from tests.support.records import DAY, escalation, make_record, milestone_view, report_over
from workflows.models import HealthBand, OnboardingState, Playbook, Tier
from workflows.models.record import OnboardingRecord
from workflows.models.status import MilestoneView, TtvBreakdown

NOW = datetime(2031, 5, 15, 12, tzinfo=UTC)
TECH, HIGH, SELF = Tier.TECH_TOUCH, Tier.HIGH_TOUCH, Tier.SELF_SERVE
COMPLETED, CANCELLED = OnboardingState.COMPLETED, OnboardingState.CANCELLED
ACTIVE, AT_RISK, PAUSED = OnboardingState.ACTIVE, OnboardingState.AT_RISK, OnboardingState.PAUSED


def share(count: int, of: int) -> Share:
    return Share(count=count, of=of, pct=round(100 * count / of, 1) if of else None)


def test_completion_counts_the_onboardings_whose_plan_has_run_its_course(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    old, young = NOW - 100 * DAY, NOW - 20 * DAY

    def plan(won: datetime, done: float | None = None) -> list[MilestoneView]:
        # The plan runs its course at its last due date, the handoff's.
        return [milestone_view("first_login", won, 3, 2), milestone_view("handoff", won, 56, done)]

    records = [
        make_record("001A", old, state=COMPLETED, milestones=plan(old, 50)),
        make_record("001B", old, state=CANCELLED, milestones=plan(old)),
        make_record("001C", old, state=ACTIVE, milestones=plan(old)),  # past its plan
        # Within their plan: not judged yet, whether they ended early or not.
        make_record("001D", young, state=COMPLETED, milestones=plan(young, 15)),
        make_record("001E", young, state=CANCELLED, milestones=plan(young)),
        make_record("001F", young, state=ACTIVE),
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert report.overall.completion == share(1, 3)
    assert report.overall.completion_target_pct is None  # tiers have different targets
    (tech,) = report.by_tier
    assert tech.completion == share(1, 3)
    assert tech.completion_target_pct == (65, 80)
    assert "completion" in tech.below_target
    assert (tech.completed, tech.cancelled, tech.running) == (2, 2, 2)


def test_activation_counts_accounts_closed_at_least_the_window_ago(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    old, exactly, young = NOW - 60 * DAY, NOW - 30 * DAY, NOW - 10 * DAY
    records = [
        make_record("002A", old, ttv_days=20),
        make_record("002B", old, ttv_days=30),  # on the last day of the window
        make_record("002C", old, ttv_days=35),  # activated, but late
        make_record("002D", old),  # not activated
        make_record("002E", exactly),  # the window has just closed
        make_record("002F", young, ttv_days=5),  # too young to judge, however fast
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert report.overall.activation == share(2, 5)
    assert report.overall.activation_target_pct == 85
    assert "activation" in report.overall.below_target


def test_ttv_median_p75_and_its_three_parts_against_the_tier_target(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 60 * DAY
    parts = [(1, 2, 3), (2, 4, 6), (3, 6, 9), (4, 8, 12)]
    records = [
        make_record(
            f"003{i}",
            won,
            ttv=TtvBreakdown(
                handoff_delay_days=h, setup_days=s, activation_days=a, total_days=h + s + a
            ),
        )
        for i, (h, s, a) in enumerate(parts)
    ]
    records.append(make_record("003X", won))  # not activated: in no median
    (tech,) = report_over(empty_store, playbook, NOW, records).by_tier

    # totals 6, 12, 18, 24: median between 12 and 18, p75 a quarter from 18 to 24
    assert (tech.ttv_median_days, tech.ttv_p75_days) == (15, 19.5)
    assert tech.handoff_delay_median_days == 2.5
    assert tech.setup_median_days == 5
    assert tech.activation_median_days == 7.5
    assert tech.ttv_target_days == (7, 14)
    assert "ttv_median" in tech.below_target


def test_first_cs_engagement_good_under_48_hours_poor_from_7_days(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    old, young = NOW - 10 * DAY, NOW - 3 * DAY

    def engaged(
        account: str, won: datetime, days: float | None, tier: Tier = TECH
    ) -> OnboardingRecord:
        return make_record(account, won, tier=tier, ttv=TtvBreakdown(handoff_delay_days=days))

    records = [
        engaged("004A", old, 1.5),  # 36 h: good
        engaged("004B", old, 2.0),  # 48 h: not under 48 h, not poor
        engaged("004C", old, 7.0),  # poor
        engaged("004D", old, None),  # no engagement after 7 days: poor
        engaged("004E", young, None),  # 3 days old: not judged yet
        engaged("004F", old, 0.0, SELF),  # self_serve has no engagement gate
    ]
    report = report_over(empty_store, playbook, NOW, records)

    tech, self_serve = report.by_tier
    assert tech.first_engagement_good == share(1, 4)
    assert tech.first_engagement_poor == share(2, 4)
    assert self_serve.first_engagement_good == share(0, 0)
    assert report.overall.first_engagement_poor == share(2, 4)


def test_milestones_within_sla_count_the_due_and_the_done_but_not_the_skipped(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 30 * DAY
    plan = [
        milestone_view("first_login", won, 3, 2),  # on time
        milestone_view("kickoff_call", won, 7, 9),  # late
        milestone_view("technical_setup", won, 14),  # overdue
        milestone_view("data_import", won, 40),  # not due yet: not counted
        milestone_view("first_training", won, 28, skipped=True),  # refused: not counted
        milestone_view("first_value", won, 45, 20),  # done early: counted, on time
    ]
    report = report_over(empty_store, playbook, NOW, [make_record("005A", won, milestones=plan)])

    assert report.overall.milestones_on_time == share(2, 4)


def test_setup_completion_counts_the_system_ready_gates_done_or_past_due(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 30 * DAY

    def setup(due: int, done: float | None = None, skipped: bool = False) -> list[MilestoneView]:
        return [milestone_view("technical_setup", won, due, done, skipped=skipped)]

    records = [
        make_record("00SA", won, milestones=setup(14, 20)),  # done late: still done
        make_record("00SB", won, milestones=setup(14, 5)),  # done early
        make_record("00SC", won, milestones=setup(21)),  # past due, not done
        make_record("00SD", won, milestones=setup(40)),  # not due yet: not judged
        make_record("00SE", won, milestones=setup(14, skipped=True)),  # refused: not judged
        make_record("00SF", won, milestones=setup(40, 3)),  # done before its due date
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert report.overall.setup_completion == share(3, 4)


def test_team_invitations_count_accounts_past_the_activation_window_where_counted(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    old, young = NOW - 40 * DAY, NOW - 10 * DAY
    records = [
        make_record("00TA", old, team_invitations=4),
        make_record("00TB", old, team_invitations=0),
        make_record("00TC", old, team_invitations=1),
        make_record("00TD", old),  # a playbook without [measures]: not counted
        make_record("00TE", young, team_invitations=9),  # within the 30-day window
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert report.overall.team_invited == share(2, 3)
    assert report.overall.team_invitations_median == 1


def test_first_week_retention_judges_accounts_two_weeks_after_their_first_active_day(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 40 * DAY
    records = [
        make_record("00RA", won, first_active_day=1, came_back_day=8),
        make_record("00RB", won, first_active_day=2),  # never came back
        make_record("00RC", won),  # never active: activation's business, not retention's
        # First active 13 days ago: its second week is not over, back or not.
        make_record("00RD", won, first_active_day=27, came_back_day=34),
        make_record("00RE", won, first_active_day=27),
        make_record("00RF", won, first_active_day=26),  # 14 days ago: judged
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert report.overall.first_week_retention == share(1, 3)


def test_health_bands_of_the_running_onboardings(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 30 * DAY
    records = [
        make_record("006A", won, state=ACTIVE),
        make_record("006B", won, state=AT_RISK, health_band=HealthBand.AT_RISK),
        make_record("006C", won, state=AT_RISK, health_band=HealthBand.CRITICAL),
        make_record("006D", won, state=PAUSED),
        make_record("006E", won, state=COMPLETED, health_band=HealthBand.CRITICAL),
    ]
    overall = report_over(empty_store, playbook, NOW, records).overall

    assert overall.health == {
        HealthBand.HEALTHY: 2,
        HealthBand.AT_RISK: 1,
        HealthBand.CRITICAL: 1,
    }
    assert (overall.running, overall.at_risk, overall.paused) == (4, 2, 1)


def test_escalated_tier_changed_and_overridden_shares(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 30 * DAY
    records = [
        make_record("007A", won, escalations=[escalation("stuck_how_to", won, 8, TECH)]),
        make_record(
            "007B", won, escalations=[escalation("stuck_how_to", won, 8, TECH, superseded=True)]
        ),
        make_record("007C", won, initial_tier=SELF),  # the ladder moved it up
        make_record("007D", won, initial_tier=HIGH, override=True),  # a person moved it
    ]
    overall = report_over(empty_store, playbook, NOW, records).overall

    assert overall.escalated == share(1, 4)  # a superseded step did not run
    assert overall.tier_changed == share(2, 4)
    assert overall.overridden == share(1, 4)


def test_groups_per_tier_cohort_and_both_with_the_months_between_filled(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    feb, apr = datetime(2031, 2, 10, tzinfo=UTC), datetime(2031, 4, 10, tzinfo=UTC)
    records = [
        make_record("008A", feb),
        make_record("008B", feb),
        make_record("008C", feb, tier=HIGH),
        make_record("008D", apr),
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert report.overall.onboardings == 4
    assert [(g.tier, g.onboardings) for g in report.by_tier] == [(HIGH, 1), (TECH, 3)]
    assert [(g.cohort, g.onboardings) for g in report.by_cohort] == [
        ("2031-02", 3),
        ("2031-03", 0),  # no deal closed that month: a row of zeros
        ("2031-04", 1),
    ]
    assert [(g.tier, g.cohort, g.onboardings) for g in report.by_tier_cohort] == [
        (HIGH, "2031-02", 1),
        (HIGH, "2031-03", 0),
        (HIGH, "2031-04", 0),
        (TECH, "2031-02", 2),
        (TECH, "2031-03", 0),
        (TECH, "2031-04", 1),
    ]
    assert report.by_cohort[1].completion == share(0, 0)


def test_filters_keep_the_tier_or_the_cohort_and_bring_the_tier_targets(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    feb, apr = datetime(2031, 2, 10, tzinfo=UTC), datetime(2031, 4, 10, tzinfo=UTC)
    records = [
        make_record("009A", feb),
        make_record("009B", apr),
        make_record("009C", apr, tier=HIGH),
    ]
    for record in records:
        empty_store.save(record)

    tech = report_over(empty_store, playbook, NOW, [], tier=TECH)
    assert (tech.tier, tech.overall.onboardings) == (TECH, 2)
    assert tech.overall.completion_target_pct == (65, 80)
    assert [(g.cohort, g.tier, g.ttv_target_days) for g in tech.by_cohort] == [
        ("2031-02", TECH, (7, 14)),
        ("2031-03", TECH, (7, 14)),
        ("2031-04", TECH, (7, 14)),
    ]
    april = report_over(empty_store, playbook, NOW, [], cohort="2031-04")
    assert (april.cohort, april.overall.onboardings) == ("2031-04", 2)
    assert [g.cohort for g in april.by_cohort] == ["2031-04"]
    with pytest.raises(ValueError, match="'2031-4' is not a month"):
        report_over(empty_store, playbook, NOW, [], cohort="2031-4")
