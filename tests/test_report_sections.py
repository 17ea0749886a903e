"""The portfolio report's portfolio-wide sections (rules §8, §1, §4, §7): milestone
drop-off, escalations and what followed them, tier changes and misclassification, the
at-risk list, CSM load, headcount and the tier-boundary review. Each computed from records
whose facts the test states, in a real SQLite records store, as of a fixed `NOW`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from activities.records.store import RecordStore
from starter.reports.model import Share
from starter.reports.sections import MONTH_DAYS
from tests.support.records import DAY, escalation, make_record, milestone_view, report_over
from workflows.models import HealthBand, OnboardingState, Playbook, Tier, Trigger
from workflows.models.record import OnboardingRecord
from workflows.models.status import MilestoneView

NOW = datetime(2031, 5, 15, 12, tzinfo=UTC)
TECH, HIGH, SELF = Tier.TECH_TOUCH, Tier.HIGH_TOUCH, Tier.SELF_SERVE
ACTIVE, AT_RISK = OnboardingState.ACTIVE, OnboardingState.AT_RISK
COMPLETED = OnboardingState.COMPLETED


def share(count: int, of: int) -> Share:
    return Share(count=count, of=of, pct=round(100 * count / of, 1) if of else None)


def test_drop_off_follows_the_plan_and_flags_a_step_losing_over_15_percent(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 10 * DAY  # first_login (day 3) and kickoff_call (day 7) are due

    def plan(
        login: float | None, kickoff: float | None, *, skipped: bool = False
    ) -> list[MilestoneView]:
        return [
            milestone_view("first_login", won, 3, login),
            milestone_view("kickoff_call", won, 7, kickoff, skipped=skipped),
            milestone_view("technical_setup", won, 14),  # not due yet
        ]

    records = [
        make_record("101A", won, milestones=plan(2, 6)),
        make_record("101B", won, milestones=plan(2, None, skipped=True)),  # refused: passed
        make_record("101C", won, milestones=plan(2, None)),  # stopped at the kickoff
        make_record("101D", won, milestones=plan(None, None)),  # never logged in
        make_record("101E", won, milestones=plan(None, None)),
    ]
    report = report_over(empty_store, playbook, NOW, records)

    steps = {d.milestone_id: d for d in report.drop_off}
    assert [d.milestone_id for d in report.drop_off] == [
        s.id for s in playbook.milestones_for(TECH)
    ]
    assert steps["first_login"].lost == share(2, 5) and steps["first_login"].flagged
    # Of the three that logged in, one has not passed the kickoff call though it is due.
    assert steps["kickoff_call"].lost == share(1, 3) and steps["kickoff_call"].flagged
    # A step not due yet loses nobody yet.
    assert steps["technical_setup"].lost == share(0, 0)
    assert not steps["technical_setup"].flagged


def test_escalations_by_step_and_how_often_the_customer_moved_within_a_week(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 60 * DAY
    overdue = Trigger.MILESTONE_OVERDUE
    records = [
        make_record(
            "102A",
            won,
            milestones=[
                milestone_view("first_login", won, 3, 12),  # 2 days after the nudge
                milestone_view("kickoff_call", won, 7, 30),  # 10 days after the stall step
            ],
            escalations=[
                escalation("overdue_nudge", won, 10, TECH, trigger=overdue),
                escalation("stuck_how_to", won, 20, TECH),
            ],
        ),
        make_record(
            "102B",
            won,
            escalations=[
                escalation("overdue_nudge", won, 10, TECH, trigger=overdue),  # nothing followed
                escalation("stall_status_email", won, 40, TECH, superseded=True, repeats=3),
                escalation("stall_status_email", won, 57, TECH),  # 3 days ago: window open
            ],
        ),
        make_record(
            "102C",
            won,
            milestones=[
                milestone_view("first_login", won, 3, 50),
                milestone_view("kickoff_call", won, 7, 58.5),  # a day ago
            ],
            escalations=[
                escalation("stall_status_email", won, 45, TECH, repeats=2),
                escalation("stuck_how_to", won, 57, TECH),  # answered within its window
            ],
        ),
    ]
    report = report_over(empty_store, playbook, NOW, records)

    figures = [
        (e.step_id, e.trigger, e.fired, e.accounts, e.followed_by_progress)
        for e in report.escalations
    ]
    assert figures == [
        # Superseded steps did not run; a recurring step counts its repeats.
        ("stall_status_email", "no_progress", 3, 2, share(1, 1)),
        ("overdue_nudge", "milestone_overdue", 2, 2, share(1, 2)),
        ("stuck_how_to", "no_progress", 2, 2, share(1, 2)),
    ]
    assert {e.tier for e in report.escalations} == {TECH}


def test_tier_changes_overrides_and_misclassification_by_acv_band(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 30 * DAY
    records = [
        make_record("103A", won, acv_usd=3_000, initial_tier=SELF),  # the ladder moved it up
        make_record("103B", won, acv_usd=30_000),
        make_record("103C", won, acv_usd=30_000),
        make_record("103D", won, acv_usd=60_000, initial_tier=HIGH, override=True),
        make_record("103E", won, acv_usd=50_000, tier=HIGH),  # the enterprise line is in
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert [(c.kind, c.from_tier, c.to_tier, c.count) for c in report.tier_changes] == [
        ("automatic", SELF, TECH, 1),
        ("override", HIGH, TECH, 1),
    ]
    assert [(m.acv_band, m.changed, m.overridden) for m in report.misclassification] == [
        ("below_smb_floor", share(1, 1), share(0, 1)),
        ("smb_floor_to_enterprise", share(0, 2), share(0, 2)),
        ("enterprise", share(1, 2), share(1, 2)),
    ]


def test_at_risk_list_with_reasons_and_next_deadline_by_owner(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 40 * DAY
    late = [milestone_view("kickoff_call", won, 7), milestone_view("technical_setup", won, 14)]
    records = [
        make_record(
            "104A",
            won,
            owner="b@example.com",
            state=AT_RISK,
            health_band=HealthBand.CRITICAL,
            risk_flags=["champion left"],
            milestones=late,
            next_deadline=NOW + 2 * DAY,
        ),
        make_record(
            "104B",
            won,
            owner="a@example.com",
            decision_required=True,
            next_deadline=NOW + 5 * DAY,
        ),
        make_record("104C", won, owner="a@example.com", state=AT_RISK, next_deadline=NOW + DAY),
        make_record("104D", won, owner=None, state=AT_RISK),
        make_record("104E", won, state=COMPLETED, health_band=HealthBand.CRITICAL),
        make_record("104F", won),  # running and fine
    ]
    report = report_over(empty_store, playbook, NOW, records)

    assert [(a.owner, a.account_id, a.next_deadline) for a in report.at_risk] == [
        ("a@example.com", "104C", NOW + DAY),
        ("a@example.com", "104B", NOW + 5 * DAY),
        ("b@example.com", "104A", NOW + 2 * DAY),
        (None, "104D", None),
    ]
    reasons = {a.account_id: a.reasons for a in report.at_risk}
    since = (won + 7 * DAY).strftime("%Y-%m-%d")
    assert reasons["104A"] == [
        "champion left",
        f"overdue since {since}: kickoff_call, technical_setup",
    ]
    assert reasons["104B"] == ["decision required: revised timeline or formal pause"]
    assert reasons["104C"] == []
    assert report.at_risk[2].health_band is HealthBand.CRITICAL


def test_csm_load_against_capacity(empty_store: RecordStore, playbook: Playbook) -> None:
    small = playbook.targets.model_copy(
        update={"csm_high_touch_accounts": (1, 2), "csm_low_touch_accounts": (4, 8)}
    )
    playbook = playbook.model_copy(update={"targets": small})
    won = NOW - 30 * DAY
    records = [
        make_record("105A", won, owner="x@example.com", tier=HIGH),
        make_record("105B", won, owner="x@example.com"),
        make_record("105C", won, owner="x@example.com"),
        make_record("105D", won, owner="x@example.com", tier=HIGH, state=COMPLETED),  # done
        make_record("105E", won, owner="y@example.com", tier=HIGH),
        make_record("105F", won, owner="y@example.com", tier=HIGH),
        make_record("105G", won, owner="y@example.com"),
        make_record("105H", won, owner=None),  # a tech_touch one nobody owns
        make_record("105I", won, owner=None, tier=SELF),  # self_serve: no CSM
    ]
    report = report_over(empty_store, playbook, NOW, records)

    # load = 100 x (high-touch / 2 + low-touch / 8), the high ends of the capacity
    loads = [
        (c.owner, c.high_touch, c.low_touch, c.load_pct, c.over_capacity) for c in report.csm_load
    ]
    assert loads == [
        ("y@example.com", 2, 1, 112.5, True),
        ("x@example.com", 1, 2, 75.0, False),
        (None, 0, 1, 12.5, False),
    ]


def test_headcount_for_the_onboardings_carried_now_and_the_recent_start_rate(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    # The start rate counts Feb, Mar and Apr 2031: the three full months before NOW.
    def months(n: float) -> float:
        return n * MONTH_DAYS

    jan, feb, mar, may = (datetime(2031, m, 10, tzinfo=UTC) for m in (1, 2, 3, 5))
    apr = datetime(2031, 4, 1, tzinfo=UTC)
    records = [
        make_record(
            "106A",
            feb,
            tier=HIGH,
            state=COMPLETED,
            finished_at=feb + months(2) * DAY,
            milestones=[milestone_view("technical_setup", feb, 35, 30)],
        ),
        make_record(
            "106B", mar, tier=HIGH, milestones=[milestone_view("technical_setup", mar, 35)]
        ),
        make_record("106C", may, tier=HIGH),  # this month: not in the start rate
        make_record(
            "106D",
            apr,
            state=COMPLETED,
            finished_at=apr + months(1) * DAY,
            milestones=[milestone_view("technical_setup", apr, 14, 10)],
        ),
        make_record("106E", apr, tier=SELF, owner=None),  # no CSM, no specialist gate
        make_record(  # running, past the specialist's gate (7 days), started before Feb
            "106F",
            jan,
            tier=SELF,
            owner=None,
            milestones=[milestone_view("technical_setup", jan, 7, 7)],
        ).model_copy(update={"specialist": "dan@example.com"}),
        make_record(  # tech_touch, nobody's implementation: no specialist's load
            "106G", mar, milestones=[milestone_view("technical_setup", mar, 60)]
        ),
    ]
    report = report_over(empty_store, playbook, NOW, records)

    rows = {h.role: h for h in report.headcount}
    high = rows["csm_high_touch"]
    assert (high.capacity, high.active, high.starts_per_month) == ((8, 15), 2, 0.67)
    assert high.average_duration_months == 2.0
    assert high.needed_now == round(2 / 11.5, 2)
    assert high.needed_for_start_rate == round(2 / 3 * 2.0 / 11.5, 2)
    low = rows["csm_low_touch"]
    assert (low.active, low.starts_per_month, low.average_duration_months) == (1, 0.67, 1.0)
    assert low.needed_for_start_rate == round(2 / 3 * 1.0 / 60, 2)
    # A specialist carries an onboarding of a specialist tier (high_touch), or one given a
    # specialist, from its start until the specialist's gates (technical_setup) are
    # passed: 30 and 7 days here. The tech_touch ones without a specialist are no one's.
    specialist = rows["implementation_specialist"]
    average = (30 + 7) / 2 / MONTH_DAYS
    assert (specialist.active, specialist.starts_per_month) == (1, 0.67)
    assert specialist.average_duration_months == round(average, 2)
    assert specialist.needed_for_start_rate == round(2 / 3 * average / 11.5, 2)
    assert specialist.note is None


def test_headcount_says_no_specialists_assigned_when_none_is(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    """A team without implementation specialists (the default roster): the high_touch
    implementations still need them (the playbook's specialist tiers), the row says no
    specialist is assigned, and the tech_touch plans' setup counts for nobody."""
    won = NOW - 20 * DAY
    setup = [milestone_view("technical_setup", won, 35)]
    records = [
        make_record("107A", won, tier=HIGH, milestones=setup),
        make_record("107B", won, tier=HIGH, milestones=setup),
        *(make_record(f"107T{i}", won, milestones=setup) for i in range(7)),
    ]
    report = report_over(empty_store, playbook, NOW, records)

    rows = {h.role: h for h in report.headcount}
    specialist = rows["implementation_specialist"]
    assert (specialist.active, specialist.note) == (2, "no specialists assigned")
    assert [h.note for h in report.headcount if h.role != "implementation_specialist"] == [
        None,
        None,
    ]


def test_tier_boundary_review_of_the_accounts_near_each_threshold(
    empty_store: RecordStore, playbook: Playbook
) -> None:
    won = NOW - 120 * DAY  # every plan has run its course
    done = [milestone_view("handoff", won, 56, 50)]

    def near(account: str, acv: float, tier: Tier, **facts: Any) -> OnboardingRecord:
        return make_record(account, won, acv_usd=acv, tier=tier, milestones=done, **facts)

    records = [
        near("107A", 45_000, TECH, state=COMPLETED, ttv_days=10),
        near("107B", 55_000, HIGH, state=COMPLETED, ttv_days=20),
        near("107C", 60_000, TECH, initial_tier=HIGH, override=True, ttv_days=40),
        near("107D", 30_000, TECH),  # near no threshold
        near("107E", 4_500, SELF, state=COMPLETED, ttv_days=5),
        near("107F", 6_000, TECH),  # 20 % above the floor: still near it
    ]
    report = report_over(empty_store, playbook, NOW, records)

    reviewed = [
        (
            b.threshold,
            b.initial_tier,
            b.onboardings,
            b.completion,
            b.ttv_median_days,
            b.changed_tier,
        )
        for b in report.tier_boundaries
    ]
    assert reviewed == [
        ("enterprise_acv_usd", HIGH, 2, share(1, 2), 30.0, share(1, 2)),
        ("enterprise_acv_usd", TECH, 1, share(1, 1), 10.0, share(0, 1)),
        ("smb_floor_acv_usd", TECH, 1, share(0, 1), None, share(0, 1)),
        ("smb_floor_acv_usd", SELF, 1, share(1, 1), 5.0, share(0, 1)),
    ]
    assert report.tier_boundaries[0].activation == share(1, 2)  # 20 days in, 40 not
