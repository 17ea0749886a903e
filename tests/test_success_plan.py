"""The success plan before the high-touch schedule (rules §2 (docs/rules.md)): which
deadlines are provisional, how a confirmation re-bases the plan, what the ladder and the
health score do meanwhile, the update's checks, and the day it acts on the time-skipping
server."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import DUE_DAYS, Onboardings, status
from tests.test_playbook import edited, problems
from tests.test_workflow import reach, update_error
from workflows.models import (
    ConfirmedSuccessPlan,
    Milestone,
    MilestoneStatus,
    OnboardingProgress,
    OnboardingStatus,
    Playbook,
    SuccessPlanConfirmation,
    Tier,
    TierDecision,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.presentation import checklist
from workflows.progress import Onboarding, checks
from workflows.rules import (
    build_plan,
    ladder_steps,
    mark_provisional,
    milestone_credit,
    rebase_on_success_plan,
)

DAY = timedelta(days=1)
PB = load_playbook()
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
HIGH, TECH = Tier.HIGH_TOUCH, Tier.TECH_TOUCH
LATER_PHASES = ["technical_setup", "data_import", "first_training", "first_value"]
PROVISIONAL = [*LATER_PHASES, "team_adoption", "handoff"]


def day(n: float) -> datetime:
    return T0 + n * DAY


def plan(tier: Tier = HIGH, confirmed: bool = False, playbook: Playbook = PB) -> list[Milestone]:
    return mark_provisional(playbook, build_plan(playbook, tier, T0), tier, confirmed)


def progress(tier: Tier = HIGH, **changes: object) -> OnboardingProgress:
    fresh = OnboardingProgress(
        tier=tier,
        tier_decision=TierDecision(tier=tier, clause="test", reason="test"),
        milestones=plan(tier),
        started_at=T0,
        clock_start=T0,
        last_progress_at=T0,
    )
    return replace(fresh, **changes)


# --------------------------------------------------------------------------- provisional


@pytest.mark.parametrize(
    ("tier", "confirmed", "provisional"),
    [
        (HIGH, False, PROVISIONAL),  # kickoff's gates (login, kickoff call) are firm
        (HIGH, True, []),
        (TECH, False, []),
        (Tier.SELF_SERVE, False, []),
    ],
)
def test_which_deadlines_are_provisional(
    tier: Tier, confirmed: bool, provisional: list[str]
) -> None:
    assert [m.id for m in plan(tier, confirmed) if m.provisional] == provisional


def test_a_playbook_without_a_success_plan_rule_has_no_provisional_deadline() -> None:
    # Playbooks pinned before the rule (and so recorded histories) have none.
    older = Playbook.model_validate(PB.model_dump(exclude={"success_plan"}))
    assert not any(m.provisional for m in plan(HIGH, playbook=older))


def test_nothing_escalates_on_a_provisional_deadline_and_it_counts_for_health_only() -> None:
    steps = [(s.step.id, s.milestone_id) for s in ladder_steps(progress(), PB)]
    overdue = [m for step, m in steps if step == "overdue_alert"]
    assert overdue == ["first_login", "kickoff_call"]
    setup = next(m for m in plan() if m.id == "technical_setup")
    assert milestone_credit(setup, day(60), PB.health) is None  # long past, not against
    done_late = replace(setup, status=MilestoneStatus.DONE, done_at=day(60))
    assert milestone_credit(done_late, day(60), PB.health) == 1.0


# --------------------------------------------------------------------------- re-basing


def due_days(milestones: list[Milestone]) -> dict[str, float]:
    return {m.id: (m.due_at - T0) / DAY for m in milestones}


PROPOSED = DUE_DAYS[Tier.HIGH_TOUCH]


@pytest.mark.parametrize(
    ("now", "targets", "expected"),
    [
        pytest.param(10, {}, PROPOSED, id="as-proposed"),
        pytest.param(  # the later gates keep their spacing after the named one
            10,
            {"technical_setup": 45},
            PROPOSED
            | {"technical_setup": 45, "data_import": 52, "first_training": 59}
            | {"first_value": 66, "team_adoption": 94, "handoff": 108},
            id="one-later",
        ),
        pytest.param(  # gates before the first named one follow it too
            10,
            {"first_value": 50},
            PROPOSED
            | {"technical_setup": 29, "data_import": 36, "first_training": 43}
            | {"first_value": 50, "team_adoption": 78, "handoff": 92},
            id="one-earlier",
        ),
        pytest.param(  # each gate follows the nearest named gate due before it
            10,
            {"technical_setup": 40, "team_adoption": 70},
            PROPOSED
            | {"technical_setup": 40, "data_import": 47, "first_training": 54}
            | {"first_value": 61, "team_adoption": 70, "handoff": 84},
            id="two-named",
        ),
        pytest.param(  # moved to or before now: due with the gate it follows
            33,
            {"first_value": 40},
            PROPOSED
            | {"technical_setup": 40, "data_import": 40, "first_training": 40}
            | {"first_value": 40, "team_adoption": 68, "handoff": 82},
            id="never-due-by-now",
        ),
    ],
)
def test_confirmation_rebases_the_remaining_plan(
    now: float, targets: dict[str, float], expected: dict[str, float]
) -> None:
    rebased = rebase_on_success_plan(plan(), {k: day(v) for k, v in targets.items()}, day(now))
    assert due_days(rebased) == expected
    assert not any(m.provisional for m in rebased)
    moved = {m.id for m in rebased if m.revision == 1}
    assert moved == {k for k, v in expected.items() if v != PROPOSED[k]}
    assert all(m.starts_at <= m.due_at for m in rebased)


def test_settled_gates_keep_what_they_had() -> None:
    proposed = plan()
    proposed[2] = replace(proposed[2], status=MilestoneStatus.DONE, done_at=day(20))
    rebased = rebase_on_success_plan(proposed, {"first_value": day(70)}, day(21))
    assert rebased[2] == proposed[2]  # technical_setup: done, provisional, on time
    assert due_days(rebased)["data_import"] == 56


# --------------------------------------------------------------------------- the update


def confirmation(**targets: datetime) -> SuccessPlanConfirmation:
    return SuccessPlanConfirmation(criteria=["Invoices automated"], target_dates=targets, by="cfo")


@pytest.mark.parametrize(
    ("p", "req", "error"),
    [
        (progress(), confirmation(nope=day(40)), "target_dates.nope: not a provisional deadline"),
        (
            progress(),
            confirmation(kickoff_call=day(40)),
            "target_dates.kickoff_call: not a provisional deadline of this plan (provisional: "
            "technical_setup, data_import, first_training, first_value, team_adoption, handoff)",
        ),
        (
            progress(),
            confirmation(first_value=day(9)),
            "target_dates.first_value: must be in the future",
        ),
        (
            progress(TECH, milestones=plan(TECH)),
            confirmation(),
            "success plan: no deadline waits for it (tech_touch plan)",
        ),
        (
            progress(
                milestones=plan(HIGH, confirmed=True),
                success_plan=ConfirmedSuccessPlan(at=day(3), by="cfo"),
            ),
            confirmation(),
            "success plan: already confirmed by cfo on 2030-03-07",
        ),
    ],
)
def test_a_bad_confirmation_names_the_field_and_the_reason(
    p: OnboardingProgress, req: SuccessPlanConfirmation, error: str
) -> None:
    with pytest.raises(ValueError) as err:
        checks.confirm_success_plan(p, req, day(10))
    assert str(err.value).startswith(error)


def test_the_ui_shows_a_provisional_deadline_as_such() -> None:
    deal = make_deal(close_date=T0, **TIER_DEALS["high_touch"])
    lines = checklist(Onboarding(deal, PB, progress()), day(40)).splitlines()
    setup = next(line for line in lines if "Technical setup" in line)
    assert setup.endswith("due 2030-04-08 (provisional: waits for the success plan)")
    assert "OVERDUE" not in setup


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        pytest.param(
            edited('provisional_from = "pilot"', 'provisional_from = "kickoff"'),
            "success_plan",
            "provisional_from: kickoff would leave no firm gate to agree the success plan by",
            id="kickoff-provisional",
        ),
        pytest.param(
            edited('tiers = ["high_touch"]', 'tiers = ["high_touch", "high_touch"]'),
            "success_plan",
            "tiers: a tier is listed twice",
            id="tier-twice",
        ),
        pytest.param(
            edited('tiers = ["high_touch"]', "tiers = []"),
            "success_plan.tiers",
            "at least 1 item",
            id="no-tier",
        ),
    ],
)
def test_a_broken_success_plan_rule_names_key_and_reason(text: str, key: str, reason: str) -> None:
    found = [p.removeprefix("(top level): ") for p in problems(text)]
    assert any(p.startswith(key) and reason in p for p in found), found


# --------------------------------------------------------------------------- the workflow


async def test_high_touch_deadlines_wait_for_the_success_plan(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["high_touch"]))
    for m in ["first_login", "kickoff_call"]:
        await reach(handle, m)

    def alerts(st: OnboardingStatus) -> list[str | None]:
        return [e.milestone_id for e in st.escalations if e.step_id == "overdue_alert"]

    # Technical setup's proposed deadline (day 35) passes: nothing escalates on it.
    await onboardings.days_later(35.5)
    st = await status(handle)
    assert st.schedule_provisional and st.success_plan is None
    setup = next(m for m in st.milestones if m.id == "technical_setup")
    assert setup.provisional and setup.credit is None
    assert alerts(st) == []

    # Confirmed on day 35.5 with technical setup on day 45: the rest follows it.
    target = closed + 45 * DAY
    req = SuccessPlanConfirmation(
        criteria=["Invoices automated"], target_dates={"technical_setup": target}, by="cfo"
    )
    past = req.model_copy(update={"target_dates": {"technical_setup": closed + DAY}})
    assert await update_error(handle, AccountOnboarding.confirm_success_plan, past) == (
        "target_dates.technical_setup: must be in the future"
    )
    st = await handle.execute_update(AccountOnboarding.confirm_success_plan, req)
    assert not st.schedule_provisional and st.success_plan is not None
    assert st.success_criteria == ["Invoices automated"]
    due = {m.id: round((m.due_at - closed) / DAY, 2) for m in st.milestones}
    assert (due["technical_setup"], due["data_import"], due["handoff"]) == (45, 52, 108)
    assert st.audit[-1].kind == "success_plan_confirmed"

    # Now the deadline stands: its alert comes on day 45, not the day before.
    await onboardings.days_later(45 - 35.5 - 0.01)
    assert alerts(await status(handle)) == []
    await onboardings.days_later(0.02)
    assert alerts(await status(handle)) == ["technical_setup"]
    again = await update_error(handle, AccountOnboarding.confirm_success_plan, req)
    assert again.startswith("success plan: already confirmed by cfo")


async def test_other_tiers_have_no_success_plan_to_confirm(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    st = await status(handle)
    assert not st.schedule_provisional and not any(m.provisional for m in st.milestones)
    req = SuccessPlanConfirmation(criteria=["x"], by="cfo")
    assert await update_error(handle, AccountOnboarding.confirm_success_plan, req) == (
        "success plan: no deadline waits for it (tech_touch plan)"
    )
