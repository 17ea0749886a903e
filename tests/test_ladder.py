"""rules §4-§5 (docs/rules.md): which escalation steps come due, and when, per tier (no
server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.onboardings import fresh_progress
from workflows import progress as rule
from workflows.models import (
    ClosedWonDeal,
    MilestoneStatus,
    OnboardingProgress,
    Pause,
    Tier,
)
from workflows.playbook import load_playbook
from workflows.rules import DueStep, ladder_steps

PB = load_playbook()
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def fresh(tier: Tier, **changes: object) -> OnboardingProgress:
    """An onboarding that closed at T0 and where nothing has happened yet."""
    return fresh_progress(PB, tier, T0, **changes)


def step_name(s: DueStep) -> str:
    return f"{s.step.id}:{s.milestone_id}" if s.step.when == "milestone_overdue" else s.step.id


def due(progress: OnboardingProgress) -> dict[str, datetime]:
    """Step (overdue steps per milestone) -> when it comes due."""
    steps = ladder_steps(progress, PB)
    names = [step_name(s) for s in steps]
    assert len(names) == len(set(names)), names  # nothing comes due twice
    return {step_name(s): s.at for s in steps}


def non_overdue(progress: OnboardingProgress) -> dict[str, datetime]:
    return {k: v for k, v in due(progress).items() if ":" not in k}


def mark(progress: OnboardingProgress, milestone_id: str, status: MilestoneStatus) -> None:
    m = next(m for m in progress.milestones if m.id == milestone_id)
    m.status = status
    if status is MilestoneStatus.DONE:  # on time, as every milestone reached has a time
        m.done_at = m.starts_at


EXPECTED = {
    Tier.TECH_TOUCH: {
        "no_login_email": 3,
        "stuck_how_to": 7,
        "no_success_criteria": 14,
        "stall_outreach": 14,
        "stall_status_email": 14,
        "stall_decision": 21,
        "activation_missed": 30,
        # rules §3: T0 is a Monday 09:30 UTC; 24 business hours of 09:00-17:00 (UTC, US
        # holidays, none that week) end on Thursday 09:30.
        "handoff_late": 3,
        "first_engagement_late": 7,
        # rules §2: the first deadline missed (first_login, day 3) makes the health 0
        "health_at_risk": 3,
        "health_critical": 3,
    },
    Tier.HIGH_TOUCH: {
        "no_login_check_in": 5,  # 5 days for enterprise, not 3
        "stuck_call": 7,
        "no_success_criteria": 14,
        "stall_exec_sponsor": 14,
        "stall_status_email": 14,
        "stall_decision": 21,
        "activation_missed": 30,
        "handoff_late": 3,  # rules §3, as tech_touch's
        "first_engagement_late": 7,
        "health_at_risk": 5,  # first_login missed on day 5: health 0
        "health_critical": 5,
    },
    Tier.SELF_SERVE: {
        "no_login_email": 3,
        "reengagement": 7,
        "no_success_criteria": 14,  # rules §6.1 holds in every tier
        "stall_upgrade": 14,
        "stall_decision": 21,
        "activation_missed": 30,
    },
}
OVERDUE_STEP = {
    Tier.HIGH_TOUCH: "overdue_alert",
    Tier.TECH_TOUCH: "overdue_nudge",
    Tier.SELF_SERVE: "overdue_nudge",
}


@pytest.mark.parametrize("tier", list(Tier))
def test_fresh_onboarding_ladder(tier: Tier) -> None:
    progress = fresh(tier)
    got = due(progress)
    expected = {k: day(v) for k, v in EXPECTED[tier].items()}
    # milestone_overdue: once per open milestone, at its deadline
    expected |= {f"{OVERDUE_STEP[tier]}:{m.id}": m.due_at for m in progress.milestones}
    assert got == expected
    steps = ladder_steps(progress, PB)
    assert [s.at for s in steps] == sorted(s.at for s in steps)  # in the order they come due


def test_what_the_steps_do() -> None:
    actions = {
        (tier, s.step.id): [a.describe() for a in s.step.actions]
        for tier in Tier
        for s in ladder_steps(fresh(tier), PB)
    }
    assert actions[Tier.TECH_TOUCH, "activation_missed"] == ["change tier to high_touch"]
    assert actions[Tier.SELF_SERVE, "stall_upgrade"] == ["change tier to tech_touch"]
    assert actions[Tier.SELF_SERVE, "activation_missed"] == ["change tier to tech_touch"]
    assert "notify executive_sponsor" in actions[Tier.HIGH_TOUCH, "stall_exec_sponsor"][0]
    assert "notify cs_leadership" in actions[Tier.HIGH_TOUCH, "activation_missed"][0]
    assert actions[Tier.TECH_TOUCH, "stuck_how_to"][1] == "flag: human follow-up needed"
    assert actions[Tier.TECH_TOUCH, "stall_decision"][0].startswith("decision required")
    assert actions[Tier.HIGH_TOUCH, "no_success_criteria"][1] == "adopt fallback success criteria"
    for tier in Tier:  # rules §6.1 in every tier
        assert actions[tier, "no_success_criteria"] == [
            "notify cs_leadership (leadership_no_criteria)",
            "adopt fallback success criteria",
        ]


def test_a_fired_step_does_not_come_again() -> None:
    progress = fresh(Tier.TECH_TOUCH)
    keys = {step_name(s): s.key for s in ladder_steps(progress, PB)}
    progress.fired += [
        keys["no_login_email"],
        keys["stall_outreach"],
        keys["overdue_nudge:first_login"],
    ]
    got = due(progress)
    assert "no_login_email" not in got and "stall_outreach" not in got
    assert "overdue_nudge:first_login" not in got
    assert got["overdue_nudge:kickoff_call"] == day(7)
    assert got["stall_status_email"] == day(14)


def test_stall_status_email_repeats_weekly() -> None:
    progress = fresh(Tier.HIGH_TOUCH)
    for week in (14, 21, 28):
        step = next(s for s in ladder_steps(progress, PB) if s.step.id == "stall_status_email")
        assert step.at == day(week)
        progress.fired.append(step.key)
    assert len(set(progress.fired)) == 3


def test_non_repeating_stall_step_fires_once_per_stall() -> None:
    progress = fresh(Tier.TECH_TOUCH)
    key = next(s.key for s in ladder_steps(progress, PB) if s.step.id == "stall_decision")
    progress.fired.append(key)
    assert "stall_decision" not in due(progress)


def test_progress_restarts_the_no_progress_clock() -> None:
    progress = fresh(Tier.TECH_TOUCH)
    fired = [s.key for s in ladder_steps(progress, PB) if s.step.id in ("stuck_how_to",)]
    mark(progress, "first_login", MilestoneStatus.DONE)
    progress = replace(progress, fired=fired, progress_epoch=1, last_progress_at=day(10))
    got = non_overdue(progress)
    assert got["stuck_how_to"] == day(17)  # again, 7 days after the new progress
    assert got["stall_outreach"] == got["stall_status_email"] == day(24)
    assert got["stall_decision"] == day(31)
    # Clocks counted from closed-won do not move.
    assert got["no_success_criteria"] == day(14)
    assert got["activation_missed"] == day(30)


def test_login_done_means_no_no_login_step() -> None:
    progress = fresh(Tier.HIGH_TOUCH)
    mark(progress, "first_login", MilestoneStatus.DONE)
    got = due(progress)
    assert "no_login_check_in" not in got and "overdue_alert:first_login" not in got


def test_first_value_done_means_no_activation_missed() -> None:
    progress = fresh(Tier.TECH_TOUCH)
    mark(progress, "first_value", MilestoneStatus.DONE)
    assert "activation_missed" not in due(progress)


def test_in_progress_milestone_is_still_watched() -> None:
    progress = fresh(Tier.SELF_SERVE)
    mark(progress, "first_login", MilestoneStatus.IN_PROGRESS)
    got = due(progress)
    assert got["no_login_email"] == day(3)
    assert got["overdue_nudge:first_login"] == day(3)


def test_paused_onboarding_has_no_steps() -> None:
    progress = fresh(Tier.HIGH_TOUCH, pause=Pause(by="csm", reason="budget freeze", since=day(2)))
    assert ladder_steps(progress, PB) == []


def test_finished_onboarding_has_no_steps() -> None:
    assert ladder_steps(fresh(Tier.TECH_TOUCH, finished_at=day(50)), PB) == []


def test_success_criteria_agreed_means_no_no_success_criteria_step() -> None:
    progress = fresh(Tier.TECH_TOUCH, success_criteria=["10 invoices sent by day 30"])
    assert "no_success_criteria" not in due(progress)


def test_clock_shifted_by_pause_shifts_closed_won_steps() -> None:
    progress = fresh(Tier.TECH_TOUCH, clock_start=day(5))  # resumed after a 5-day pause
    got = due(progress)
    assert got["no_login_email"] == day(8)
    assert got["activation_missed"] == day(35)


def test_replanned_milestone_gets_a_new_overdue_step() -> None:
    progress = fresh(Tier.SELF_SERVE)
    key = next(s.key for s in ladder_steps(progress, PB) if s.milestone_id == "first_value")
    progress.fired.append(key)
    assert "overdue_nudge:first_value" not in due(progress)
    m = next(m for m in progress.milestones if m.id == "first_value")
    m.due_at, m.revision = day(40), 1
    assert due(progress)["overdue_nudge:first_value"] == day(40)


@pytest.mark.parametrize("paused", [False, True])
@pytest.mark.parametrize("stops_scoring", [True, False])
@pytest.mark.parametrize("tier", list(Tier))
def test_a_settled_onboarding_tells_what_the_onboarding_tells(
    tier: Tier, paused: bool, stops_scoring: bool
) -> None:
    """The workflow's loop reads one `Settled` onboarding for its checklist, its record
    and its next wake-up: the same steps, and the same health at each moment, paused or
    not, whether the pause stops the health score's clock or not (rules §5)."""
    deal = ClosedWonDeal(account_id="001A", account_name="Acme", acv_usd=20_000, close_date=T0)
    pause = Pause(by="csm", reason="budget freeze", since=day(10)) if paused else None
    progress = fresh(tier, pause=pause)
    mark(progress, progress.milestones[0].id, MilestoneStatus.DONE)
    onboarding = rule.Onboarding(deal, PB, progress, stops_scoring)
    settled = rule.Settled(deal, PB, progress, stops_scoring)
    assert settled.steps() == onboarding.steps()
    assert paused or settled.steps() != []
    for n in (0, 3, 15, 40, 90):
        assert settled.health(day(n)) == onboarding.health(day(n))
