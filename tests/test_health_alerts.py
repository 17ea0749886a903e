"""rules §2 and §4 (docs/rules.md): the health alerts, steps on the health score's band
(health_at_risk, health_critical), fire once per entry into the band: the rules without
a server, then an onboarding on the time-skipping server.

The default tech_touch plan (weights, due day): first_login 1 d3, kickoff_call 1 d7,
technical_setup 2 d14, data_import 2 d21, first_training 1 d28, first_value 3 d30,
team_adoption 3 d49, handoff 2 d56. An engaged account reaches first_login,
kickoff_call, technical_setup and first_value on days 1-4: healthy until day 21 (77.8,
at risk), critical from day 49 (53.8).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, fresh_progress, status
from tests.test_workflow import reach
from workflows.models import (
    HealthBand,
    MilestoneStatus,
    OnboardingProgress,
    Pause,
    Tier,
    Trigger,
)
from workflows.playbook import load_playbook
from workflows.rules import health_entries, health_score, in_band, ladder_steps

PB = load_playbook()
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
ENGAGED = {"first_login": 1, "kickoff_call": 2, "technical_setup": 3, "first_value": 4}
AT_RISK_KEY = "tech_touch.health_at_risk:h{}"
CRITICAL_KEY = "tech_touch.health_critical:h{}"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def onboarding(done: dict[str, float], fired: list[str], **fields: object) -> OnboardingProgress:
    """A tech_touch onboarding closed at T0 with `done` reached on those days (on time
    or not, as their deadlines say) and `fired` ladder keys done."""
    progress = fresh_progress(PB, Tier.TECH_TOUCH, T0, fired=fired, **fields)
    for m in progress.milestones:
        if m.id in done:
            m.status, m.done_at = MilestoneStatus.DONE, day(done[m.id])
    return progress


def health_due(progress: OnboardingProgress) -> dict[str, float]:
    """Health step -> the day it comes due."""
    return {
        s.step.id: round((s.at - T0) / timedelta(days=1), 2)
        for s in ladder_steps(progress, PB)
        if s.step.when in (Trigger.HEALTH_AT_RISK, Trigger.HEALTH_CRITICAL)
    }


@pytest.mark.parametrize(
    ("done", "fired", "now", "entries", "due"),
    [
        pytest.param(
            {},
            [],
            1,
            {},
            {"health_at_risk": 3, "health_critical": 3},
            id="no-score-before-the-first-deadline-then-health-0",
        ),
        pytest.param(
            ENGAGED,
            [],
            10,
            {},
            {"health_at_risk": 21, "health_critical": 49},
            id="healthy-each-alert-at-the-deadline-that-drops-it-into-its-band",
        ),
        pytest.param(
            ENGAGED,
            [AT_RISK_KEY.format(0)],
            22,
            {},
            {"health_critical": 49},
            id="still-at-risk-after-the-alert-no-second-one",
        ),
        pytest.param(
            ENGAGED | {"data_import": 22},
            [AT_RISK_KEY.format(0)],
            23,
            {Trigger.HEALTH_AT_RISK: 1},
            # back to 88.9; 80.0 on day 28 is still healthy; 61.5 on day 49
            {"health_at_risk": 49, "health_critical": 56},
            id="back-above-the-band-the-next-drop-alerts-again",
        ),
        pytest.param(
            ENGAGED,
            [AT_RISK_KEY.format(0), CRITICAL_KEY.format(0)],
            50,
            {},
            {},
            id="critical-both-done-nothing-more",
        ),
        pytest.param(
            ENGAGED | {"team_adoption": 50},
            [AT_RISK_KEY.format(0), CRITICAL_KEY.format(0)],
            51,
            {Trigger.HEALTH_CRITICAL: 1},
            # lifted to at risk only (69.2 on day 51), critical again at handoff's deadline
            {"health_critical": 56},
            id="critical-lifted-to-at-risk-critical-again-at-risk-not",
        ),
    ],
)
def test_health_alerts_fire_once_per_entry_into_the_band(
    done: dict[str, float],
    fired: list[str],
    now: float,
    entries: dict[Trigger, int],
    due: dict[str, float],
) -> None:
    progress = onboarding(done, fired)
    progress.health_entries = health_entries(progress, PB, day(now))
    assert progress.health_entries == entries
    assert health_due(progress) == due


def test_paused_no_health_alert_and_no_entry_counted() -> None:
    lifted = ENGAGED | {"data_import": 22}
    pause = Pause(by="csm@vendor.example", since=day(22), reason="customer reorg")
    progress = onboarding(lifted, [AT_RISK_KEY.format(0)], pause=pause)
    assert health_entries(progress, PB, day(23)) == {}
    assert health_due(progress) == {}


def test_re_entries_count_on() -> None:
    """A second lift after the second alert makes a third entry."""
    lifted = ENGAGED | {"data_import": 22}
    progress = onboarding(lifted, [AT_RISK_KEY.format(1)])
    progress.health_entries = {Trigger.HEALTH_AT_RISK: 1}
    progress.health_entries = health_entries(progress, PB, day(23))
    assert progress.health_entries == {Trigger.HEALTH_AT_RISK: 2}
    assert AT_RISK_KEY.format(2) in {s.key for s in ladder_steps(progress, PB)}


@pytest.mark.parametrize(
    ("score", "band", "inside"),
    [
        (80.0, HealthBand.AT_RISK, False),  # 80+ is healthy
        (79.9, HealthBand.AT_RISK, True),
        (60.0, HealthBand.CRITICAL, False),  # 60-79 is at risk
        (59.9, HealthBand.CRITICAL, True),
        (59.9, HealthBand.AT_RISK, True),  # critical is at risk or worse
    ],
)
def test_band_edges(score: float, band: HealthBand, inside: bool) -> None:
    progress = onboarding(ENGAGED, [])
    health = health_score(progress.milestones, day(10), PB.health)
    assert in_band(health.model_copy(update={"score": score, "band": _band(score)}), band) is inside


def _band(score: float) -> HealthBand:
    rule = PB.health
    if score >= rule.healthy:
        return HealthBand.HEALTHY
    return HealthBand.AT_RISK if score >= rule.at_risk else HealthBand.CRITICAL


def test_no_score_is_in_no_band() -> None:
    health = health_score(onboarding({}, []).milestones, day(1), PB.health)
    assert health.score is None
    assert not in_band(health, HealthBand.AT_RISK)


# --------------------------------------------------------------------------- on the server


async def test_tech_touch_health_alerts_at_the_deadlines_that_drop_it(
    onboardings: Onboardings,
) -> None:
    """A tech_touch account reaches its first gates early, then lets the others go
    overdue: the CSM hears at the deadline that makes it at risk (not a moment before),
    again after a milestone lifted it and a later deadline dropped it, and CS leadership
    hears when it turns critical, with a risk flag."""
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)

    async def on_day(n: float) -> None:
        await onboardings.days_later(n - (await onboardings.now() - closed) / DAY)

    async def alerts() -> list[tuple[str, float]]:
        st = await status(handle)
        return [
            (e.step_id, round((e.due_at - closed) / DAY, 2))
            for e in st.escalations
            if e.trigger in (Trigger.HEALTH_AT_RISK, Trigger.HEALTH_CRITICAL) and not e.superseded
        ]

    def subjects() -> list[str]:
        return [r["subject"] for r in onboardings.sent(deal.account_id)]

    for milestone_id, n in ENGAGED.items():
        # A little before the day, not on it: the group webinar's invitation falls due on
        # the day's very instant, and a report that lands with it races its timer on the
        # time-skipping server, which then refuses the task that cancels it ("invalid
        # history builder state for action"; the real server takes that cancel).
        await on_day(n - 0.3)
        await reach(handle, milestone_id)
    await on_day(21 - 0.01)
    assert (await status(handle)).health.score == 100
    assert await alerts() == []
    await on_day(21 + 0.01)  # data_import overdue: 77.8
    assert await alerts() == [("health_at_risk", 21)]
    await onboardings.subjects_once(deal.account_id, "[CSM] Acme Corp is at risk: health 77.8")

    await on_day(22 - 0.3)  # (not on a day's instant either)
    await reach(handle, "data_import")  # late, half credit: 88.9, healthy again
    await on_day(49 - 0.01)  # first_training overdue on day 28: 80.0, still healthy
    assert (await status(handle)).health.band is HealthBand.HEALTHY
    assert await alerts() == [("health_at_risk", 21)]
    await on_day(49 + 0.01)  # team_adoption overdue: 61.5, at risk again
    assert await alerts() == [("health_at_risk", 21), ("health_at_risk", 49)]

    await on_day(56 - 0.01)
    assert not any(s.startswith("[CS leadership] Acme Corp is critical") for s in subjects())
    await on_day(56 + 0.01)  # handoff overdue: 53.3
    assert await alerts() == [
        ("health_at_risk", 21),
        ("health_at_risk", 49),
        ("health_critical", 56),
    ]
    sent = await onboardings.subjects_once(
        deal.account_id, "[CS leadership] Acme Corp is critical: health 53.3"
    )
    assert sent.count("[CSM] Acme Corp is at risk: health 61.5") == 1
    st = await status(handle)
    assert st.health.band is HealthBand.CRITICAL
    assert any("health critical: CS leadership escalation" in f for f in st.risk_flags)
