"""rules §2-§3 (docs/rules.md): the milestone plan, phases, health score and time-to-value,
no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.onboardings import DUE_DAYS
from workflows.models import (
    HealthBand,
    HealthRule,
    Milestone,
    MilestoneStatus,
    Owner,
    Phase,
    Tier,
)
from workflows.playbook import load_playbook
from workflows.rules import (
    build_plan,
    completion_pct,
    current_phase,
    health_entered,
    health_score,
    milestone_credit,
    next_milestone,
    replan,
    time_to_value,
)

PB = load_playbook()
RULE = PB.health
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DONE, IN_PROGRESS = MilestoneStatus.DONE, MilestoneStatus.IN_PROGRESS
SKIPPED = MilestoneStatus.SKIPPED


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def ms(
    mid: str = "m",
    weight: int = 1,
    start: float = 0,
    due: float = 10,
    done: float | None = None,
    status: MilestoneStatus = MilestoneStatus.NOT_STARTED,
) -> Milestone:
    """A milestone whose SLA runs from day `start` to day `due`; done on day `done`."""
    return Milestone(
        id=mid,
        title=mid,
        phase=Phase.PILOT,
        weight=weight,
        owner=Owner.CUSTOMER,
        starts_at=day(start),
        due_at=day(due),
        status=DONE if done is not None else status,
        done_at=None if done is None else day(done),
    )


def settle(plan: list[Milestone], *ids: str, at: datetime = T0) -> None:
    for m in plan:
        if m.id in ids:
            m.status, m.done_at = DONE, at


# --------------------------------------------------------------------------- the plan


@pytest.mark.parametrize("tier", list(Tier))
def test_plan_per_tier_counts_due_dates_from_close(tier: Tier) -> None:
    plan = build_plan(PB, tier, T0)
    assert {m.id: m.due_at for m in plan} == {k: day(v) for k, v in DUE_DAYS[tier].items()}
    assert {m.phase for m in plan} == set(Phase)  # every phase closed by >= 1 gate
    assert all(m.status is MilestoneStatus.NOT_STARTED and m.revision == 0 for m in plan)
    for m in plan:  # SLA window starts when the milestone's phase starts
        assert m.starts_at == day(PB.phase_start_day(tier, m.phase)) < m.due_at
    assert current_phase(plan) is Phase.KICKOFF
    assert completion_pct(plan) == 0.0
    assert next_milestone(plan).id == "first_login"  # type: ignore[union-attr]


def test_self_serve_has_no_csm_gates() -> None:
    ids = {m.id for m in build_plan(PB, Tier.SELF_SERVE, T0)}
    assert "kickoff_call" not in ids and "first_training" not in ids
    assert "kickoff_call" in {m.id for m in build_plan(PB, Tier.HIGH_TOUCH, T0)}


def test_current_phase_and_completion_move_as_gates_settle() -> None:
    plan = build_plan(PB, Tier.TECH_TOUCH, T0)  # 8 gates
    settle(plan, "first_login")
    assert current_phase(plan) is Phase.KICKOFF  # kickoff_call still open
    assert completion_pct(plan) == 12.5
    settle(plan, "kickoff_call")
    assert current_phase(plan) is Phase.PILOT
    assert next_milestone(plan).id == "technical_setup"  # type: ignore[union-attr]
    settle(plan, "technical_setup", "data_import")
    assert current_phase(plan) is Phase.GO_LIVE
    assert completion_pct(plan) == 50.0
    # A skipped gate settles its phase and leaves the completion denominator.
    skip = next(m for m in plan if m.id == "first_training")
    skip.status, skip.skip_reason = SKIPPED, "customer declined"
    assert current_phase(plan) is Phase.GO_LIVE  # first_value still open
    assert completion_pct(plan) == round(100 * 4 / 7, 1)
    settle(plan, "first_value", "team_adoption")
    assert current_phase(plan) is Phase.HANDOFF
    settle(plan, "handoff")
    assert current_phase(plan) is None
    assert completion_pct(plan) == 100.0
    assert next_milestone(plan) is None


# --------------------------------------------------------------------------- health


def test_worked_example_from_rules_scores_47_9_critical() -> None:
    now = day(21)
    plan = [
        ms("first_login", 1, start=0, due=3, done=2),  # on time: 1.0
        ms("technical_setup", 2, start=0, due=14, done=14),  # on time: 1.0
        ms("data_import", 2, start=7, due=14, done=18),  # late, within 2x SLA: 0.5
        ms("first_training", 1, start=7, due=14, done=10),  # on time: 1.0
        ms("first_value", 3, start=7, due=14, status=IN_PROGRESS),  # overdue: 0.25
        ms("team_adoption", 3, start=7, due=20),  # not started, overdue: 0.0
    ]
    credits = [milestone_credit(m, now, RULE) for m in plan]
    assert credits == [1.0, 1.0, 0.5, 1.0, 0.25, 0.0]
    health = health_score(plan, now, RULE)
    assert (health.score, health.band) == (47.9, HealthBand.CRITICAL)
    assert (health.earned, health.possible) == (5.75, 12)


@pytest.mark.parametrize(
    ("milestone", "credit"),
    [
        (ms(start=0, due=10, done=10), 1.0),  # done exactly at the deadline
        (ms(start=0, due=10, done=3), 1.0),
        (ms(start=0, due=10, done=10.5), 0.5),  # late
        (ms(start=0, due=10, done=20), 0.5),  # late, exactly 2x the SLA
        (ms(start=0, due=10, done=20.5), 0.25),  # later than 2x the SLA
        (ms(start=5, due=10, done=16), 0.25),  # 2x SLA counts from the SLA start: day 15
        (ms(start=0, due=10, status=IN_PROGRESS), 0.25),  # in progress, overdue
        (ms(start=0, due=10), 0.0),  # not started, overdue
        (ms(start=0, due=30), None),  # not yet due: does not count
        (ms(start=0, due=30, status=IN_PROGRESS), None),
        (ms(start=0, due=10, status=SKIPPED), None),
    ],
)
def test_milestone_credit(milestone: Milestone, credit: float | None) -> None:
    assert milestone_credit(milestone, day(25), RULE) == credit


def test_not_yet_due_and_skipped_do_not_count_against_the_account() -> None:
    plan = [
        ms("a", 2, due=10, done=5),
        ms("b", 3, due=30),  # not yet due
        ms("c", 3, due=10, status=SKIPPED),
    ]
    health = health_score(plan, day(20), RULE)
    assert (health.score, health.band, health.possible) == (100.0, HealthBand.HEALTHY, 2)
    plan[1].due_at = day(15)  # now it is overdue and counts as 0
    assert health_score(plan, day(20), RULE).score == 40.0


@pytest.mark.parametrize(
    ("since", "at_risk", "critical"),
    [
        (3, 20, 30),  # healthy until c's deadline (66.7), critical from d's (44.4)
        (25, 25, 30),  # already at risk when asked
        (31, 31, 31),  # already critical: in the at-risk band or a worse one too
    ],
)
def test_health_entered_gives_when_each_band_is_entered(
    since: float, at_risk: float, critical: float
) -> None:
    plan = [ms("a", 4, due=5, done=2), ms("b", 1, due=10), ms("c", 1, due=20), ms("d", 3, due=30)]
    assert health_entered(plan, day(since), RULE) == {
        HealthBand.AT_RISK: day(at_risk),
        HealthBand.CRITICAL: day(critical),
    }


def test_health_entered_is_none_for_a_band_the_plan_never_reaches() -> None:
    plan = [ms("a", 4, due=5, done=2), ms("b", 1, due=10), ms("c", 1, due=20)]
    assert health_entered(plan, day(3), RULE) == {
        HealthBand.AT_RISK: day(20),  # 66.7
        HealthBand.CRITICAL: None,
    }
    plan[2].status, plan[2].done_at = DONE, day(15)
    assert health_entered(plan, day(3), RULE) == dict.fromkeys(
        (HealthBand.AT_RISK, HealthBand.CRITICAL)
    )


def test_no_milestone_due_means_no_score_yet() -> None:
    health = health_score(build_plan(PB, Tier.HIGH_TOUCH, T0), day(1), RULE)
    assert health.score is None and health.possible == 0


@pytest.mark.parametrize(
    ("credit", "score", "band"),
    [
        (0.8, 80.0, HealthBand.HEALTHY),
        (0.799, 79.9, HealthBand.AT_RISK),
        (0.6, 60.0, HealthBand.AT_RISK),
        (0.599, 59.9, HealthBand.CRITICAL),
    ],
)
def test_health_bands(credit: float, score: float, band: HealthBand) -> None:
    rule = HealthRule(credit_on_time=credit)
    health = health_score([ms(due=10, done=5)], day(20), rule)
    assert (health.score, health.band) == (score, band)


def test_band_thresholds_come_from_the_playbook() -> None:
    plan = [ms(f"a{i}", due=10, done=5) for i in range(4)] + [ms("b", due=10)]  # 4/5 = 80 %
    assert health_score(plan, day(20), RULE).band is HealthBand.HEALTHY
    assert health_score(plan, day(20), HealthRule(healthy=85)).band is HealthBand.AT_RISK
    assert health_score(plan, day(20), HealthRule(healthy=90, at_risk=85)).band is (
        HealthBand.CRITICAL
    )


# --------------------------------------------------------------------------- replan


def test_replan_keeps_reached_milestones_and_rebuilds_the_rest() -> None:
    plan = build_plan(PB, Tier.SELF_SERVE, T0)
    settle(plan, "first_login", at=day(2))
    setup = next(m for m in plan if m.id == "technical_setup")
    setup.status, setup.done_at = DONE, day(9)  # late: 0.5
    before = {m.id: milestone_credit(m, day(16), RULE) for m in plan if m.status is DONE}
    assert before == {"first_login": 1.0, "technical_setup": 0.5}

    change = day(16)
    new = replan(PB, plan, Tier.TECH_TOUCH, change)
    by_id = {m.id: m for m in new}
    assert set(by_id) == set(DUE_DAYS[Tier.TECH_TOUCH])
    for mid, credit in before.items():  # done milestones keep their date and credit
        assert by_id[mid].done_at == next(m.done_at for m in plan if m.id == mid)
        assert milestone_credit(by_id[mid], change, RULE) == credit
    for m in new:
        if m.is_open:
            assert m.due_at > change and m.starts_at >= change
    # Gates that tech_touch adds are open; the ones it had before are re-planned.
    for mid in ("kickoff_call", "data_import", "first_training"):
        assert by_id[mid].status is MilestoneStatus.NOT_STARTED and by_id[mid].done_at is None
    for mid in ("first_value", "team_adoption", "handoff"):
        assert by_id[mid].revision == 1
    assert by_id["kickoff_call"].due_at == change + timedelta(days=7)
    assert by_id["first_value"].due_at == change + timedelta(days=30)
    assert current_phase(new) is Phase.KICKOFF
    # Nothing rebuilt is overdue at the moment of the change.
    assert health_score(new, change, RULE).possible == 3  # just the two done ones


def test_replan_keeps_in_progress_status_and_credit_of_gates_the_new_tier_drops() -> None:
    plan = build_plan(PB, Tier.HIGH_TOUCH, T0)
    settle(plan, "first_login", "kickoff_call", "technical_setup", at=day(5))
    value = next(m for m in plan if m.id == "first_value")
    value.status, value.started_at = IN_PROGRESS, day(6)
    new = replan(PB, plan, Tier.SELF_SERVE, day(7))
    by_id = {m.id: m for m in new}
    assert by_id["kickoff_call"].status is DONE  # not a self_serve gate, still counted
    assert "data_import" not in by_id
    assert (by_id["first_value"].status, by_id["first_value"].started_at) == (IN_PROGRESS, day(6))
    assert by_id["first_value"].due_at > day(7)


# --------------------------------------------------------------------------- TTV


def test_ttv_decomposition_tech_touch() -> None:
    plan = build_plan(PB, Tier.TECH_TOUCH, T0)
    done = {"kickoff_call": day(4), "technical_setup": day(18), "first_value": day(32)}
    for m in plan:  # Jan 5, Jan 19, Feb 2
        if m.id in done:
            m.status, m.done_at = DONE, done[m.id]
    ttv = time_to_value(PB, Tier.TECH_TOUCH, plan, T0, started_at=day(0.01))
    assert (ttv.handoff_delay_days, ttv.setup_days, ttv.activation_days) == (4, 14, 14)
    assert ttv.total_days == 32
    assert ttv.target_days == (7, 14)


def test_ttv_self_serve_engagement_is_the_onboarding_start() -> None:
    plan = build_plan(PB, Tier.SELF_SERVE, T0)
    settle(plan, "technical_setup", at=day(3))
    ttv = time_to_value(PB, Tier.SELF_SERVE, plan, T0, started_at=day(1))
    assert (ttv.handoff_delay_days, ttv.setup_days) == (1, 2)
    assert ttv.activation_days is None and ttv.total_days is None  # no first value yet
    assert ttv.target_days == (1, 7)


def test_ttv_waits_for_first_engagement() -> None:
    plan = build_plan(PB, Tier.HIGH_TOUCH, T0)
    ttv = time_to_value(PB, Tier.HIGH_TOUCH, plan, T0, started_at=T0)
    assert ttv.handoff_delay_days is None and ttv.total_days is None
    assert ttv.target_days == (14, 21)
