"""rules §4 (docs/rules.md): behavioral ladder steps, due on what the product events show
(an event without the milestone that should follow, a usage drop after an active
period), each with a cooldown. When they come due, as a table (no server); then on the
time-skipping server, the day each acts and the day before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, fresh_progress, status
from workflows.models import (
    Escalation,
    MilestoneStatus,
    OnboardingProgress,
    ProductEvent,
    ProductEventBatch,
    Tier,
    Trigger,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.rules import ladder_steps

PB = load_playbook()
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)


def day(n: float) -> datetime:
    return T0 + n * DAY


def progress(
    times: dict[str, list[float]], fired_on: dict[str, float] | None = None, done: str = ""
) -> OnboardingProgress:
    """A tech_touch onboarding closed at T0 whose behavioral events happened on the days
    `times` gives (latest kept as the playbook says); `fired_on`: steps that fired then."""
    p = fresh_progress(PB, Tier.TECH_TOUCH, T0)
    kept = PB.recent_times_kept()
    p.recent_times = {name: [day(d) for d in days][-kept[name] :] for name, days in times.items()}
    for step_id, on in (fired_on or {}).items():
        step = next(s for s in PB.ladder[Tier.TECH_TOUCH] if s.id == step_id)
        ran = Escalation(
            at=day(on),
            due_at=day(on),
            tier=Tier.TECH_TOUCH,
            step_id=step_id,
            trigger=step.when,
            actions=[],
        )
        p.escalations.append(ran)
    for m in p.milestones:
        if m.id == done:  # on time
            m.status, m.done_at = MilestoneStatus.DONE, m.starts_at
    return p


def due_day(p: OnboardingProgress, step_id: str) -> float | None:
    """The day `step_id` comes due, or None when it does not."""
    ats = [s.at for s in ladder_steps(p, PB) if s.step.id == step_id]
    assert len(ats) <= 1
    return round((ats[0] - T0) / DAY, 2) if ats else None


@pytest.mark.parametrize(
    ("step", "times", "fired_on", "done", "expected"),
    [
        # A tutorial abandoned twice without first value: a day after the second.
        ("tutorial_abandoned", {"tutorial_abandoned": [2]}, {}, "", None),
        ("tutorial_abandoned", {"tutorial_abandoned": [2, 3]}, {}, "", 4),
        ("tutorial_abandoned", {"tutorial_abandoned": [2, 3]}, {}, "first_value", None),
        # Fired on day 4: those two count no more; two new ones wait for the cooldown.
        ("tutorial_abandoned", {"tutorial_abandoned": [2, 3]}, {"tutorial_abandoned": 4}, "", None),
        (
            "tutorial_abandoned",
            {"tutorial_abandoned": [2, 3, 5]},
            {"tutorial_abandoned": 4},
            "",
            None,
        ),
        ("tutorial_abandoned", {"tutorial_abandoned": [5, 6]}, {"tutorial_abandoned": 4}, "", 18),
        ("tutorial_abandoned", {"tutorial_abandoned": [20, 21]}, {"tutorial_abandoned": 4}, "", 22),
        # Invited, and the team not on board a week after the latest invite.
        ("invited_not_active", {"Invite Sent": [2]}, {}, "", 9),
        ("invited_not_active", {"Invite Sent": [2], "user_invited": [5]}, {}, "", 12),
        ("invited_not_active", {"Invite Sent": [2]}, {}, "team_adoption", None),
        # Setup done a week ago, no core workflow yet.
        ("setup_without_value", {"setup_completed": [3]}, {}, "", 10),
        # Usage: 3 events within 7 days, then a week of silence.
        ("usage_drop", {"user_logged_in": [1, 2, 3]}, {}, "", 10),
        ("usage_drop", {"user_logged_in": [1, 2], "Signed In": [3]}, {}, "", 10),
        ("usage_drop", {"user_logged_in": [1, 2]}, {}, "", None),  # never active
        ("usage_drop", {"user_logged_in": [1, 5, 9]}, {}, "", None),  # spread over 8 days
        ("usage_drop", {"user_logged_in": [1, 2, 3, 12]}, {}, "", None),  # back, not active
        ("usage_drop", {"user_logged_in": [1, 2, 3, 12, 13, 14]}, {}, "", 21),
        # After it fired on day 10, a new active period waits for the 21-day cooldown.
        ("usage_drop", {"user_logged_in": [1, 2, 3]}, {"usage_drop": 10}, "", None),
        ("usage_drop", {"user_logged_in": [11, 12, 13]}, {"usage_drop": 10}, "", 31),
    ],
)
def test_behavioral_steps_come_due(
    step: str,
    times: dict[str, list[float]],
    fired_on: dict[str, float],
    done: str,
    expected: float | None,
) -> None:
    assert due_day(progress(times, fired_on, done), step) == expected


def test_a_behavioral_step_fires_once_per_burst() -> None:
    p = progress({"tutorial_abandoned": [2, 3]})
    [due] = [s for s in ladder_steps(p, PB) if s.step.id == "tutorial_abandoned"]
    assert due.step.when is Trigger.EVENT_WITHOUT_MILESTONE and due.milestone_id == "first_value"
    p.fired.append(due.key)
    assert due_day(p, "tutorial_abandoned") is None


# --------------------------------------------------------------------------- the workflow


async def test_setup_without_value_nudges_a_week_after_setup(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    setup = ProductEvent(event_id="setup-1", name="setup_completed", at=closed)
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=[setup]))
    await onboardings.days_later(6.9)
    st = await status(handle)
    assert "setup_without_value" not in [e.step_id for e in st.escalations]
    await onboardings.days_later(0.2)
    subject = "Acme Corp: setup is done, now the core workflow"
    await onboardings.subjects_once(deal.account_id, subject)
    st = await status(handle)
    [fired] = [e for e in st.escalations if e.step_id == "setup_without_value"]
    assert round((fired.due_at - closed) / DAY, 2) == 7
    await onboardings.days_later(10)  # no new setup event: it does not come again
    st = await status(handle)
    assert [e.step_id for e in st.escalations].count("setup_without_value") == 1


async def test_a_usage_drop_after_an_active_week_alerts_the_csm(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    logins = [
        ProductEvent(event_id=f"login-{d}", name="user_logged_in", at=closed + d * DAY)
        for d in (0, 1, 2)
    ]
    await onboardings.days_later(2)
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=logins))
    await onboardings.days_later(6.9)  # day 8.9
    st = await status(handle)
    assert "usage_drop" not in [e.step_id for e in st.escalations]
    await onboardings.days_later(0.2)  # day 9.1: a week after the last login
    await onboardings.subjects_once(deal.account_id, "[CSM] Acme Corp: usage dropped")
    st = await status(handle)
    [fired] = [e for e in st.escalations if e.step_id == "usage_drop"]
    assert round((fired.due_at - closed) / DAY, 2) == 9
