"""AccountOnboarding on the time-skipping test server: what a CS team would see happen."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, status, until
from workflows import business_days
from workflows import search_attributes as sa
from workflows.formats import day_text
from workflows.models import (
    CancelRequest,
    ContactChange,
    HealthBand,
    MilestoneReport,
    MilestoneStatus,
    OnboardingState,
    OnboardingStatus,
    PauseRequest,
    ProductEvent,
    ProductEventBatch,
    ResumeRequest,
    SkipRequest,
    Tier,
    TierOverride,
)
from workflows.onboarding import AccountOnboarding

DAY = timedelta(days=1)


async def reach(handle: WorkflowHandle[Any, Any], milestone_id: str, event_id: str = "") -> None:
    report = MilestoneReport(milestone_id=milestone_id, event_id=event_id or f"ev-{milestone_id}")
    await handle.signal(AccountOnboarding.milestone_reached, report)


async def schedule_kickoff(handle: WorkflowHandle[Any, Any]) -> None:
    """The CSM reports the kickoff call scheduled (in progress): the sales-to-CS handoff
    is done (rules §3 (docs/rules.md))."""
    report = MilestoneReport(
        milestone_id="kickoff_call", status="in_progress", event_id="ev-kickoff-scheduled"
    )
    await handle.signal(AccountOnboarding.milestone_reached, report)


def fired(st: OnboardingStatus, closed: datetime) -> list[tuple[str, str, float]]:
    """(tier, step, day it came due) for every escalation that really ran."""
    return [
        (e.tier.value, e.step_id, round((e.due_at - closed) / DAY, 2))
        for e in st.escalations
        if not e.superseded
    ]


# --------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("tier", list(Tier))
async def test_happy_path_reaches_handoff_with_full_health(
    onboardings: Onboardings, tier: Tier
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS[tier.value])
    handle = await onboardings.start(deal)
    plan = (await status(handle)).milestones
    assert (await status(handle)).tier is tier
    if tier is not Tier.SELF_SERVE:  # the CSM takes the handoff at once: kickoff scheduled
        await schedule_kickoff(handle)

    for m in plan:  # an engaged customer: one milestone every 2 days, never late
        await onboardings.days_later(2)
        await reach(handle, m.id)
    final = await handle.result()

    assert final.state is OnboardingState.COMPLETED
    assert final.health.score == 100
    assert final.completion_pct == 100
    assert all(m.status is MilestoneStatus.DONE and m.credit == 1.0 for m in final.milestones)
    assert fired(final, closed) == []  # nothing was late or stuck
    value_day = 2 * (1 + [m.id for m in plan].index("first_value"))
    assert final.ttv.total_days == pytest.approx(value_day, abs=0.01)
    assert final.audit[-1].kind == "completed"
    sent = onboardings.sent(deal.account_id)
    subjects = [r["subject"] for r in sent]
    to_customer = [r["subject"] for r in sent if r["key"].endswith(":customer")]
    assert to_customer[0] == "Welcome aboard, Acme Corp"  # the CSM's is sent at once with it
    assert "You're all set, Acme Corp!" in subjects
    assert "Acme Corp onboarding complete" in subjects
    assert (final.owner is None) == (tier is Tier.SELF_SERVE)


# --------------------------------------------------------------------------- the ladder

LADDER_31_DAYS = {
    # (tier, step, day due), in the order they fire, for an account that does nothing.
    Tier.HIGH_TOUCH: [
        ("high_touch", "overdue_alert", 5),  # first_login due day 5
        ("high_touch", "no_login_check_in", 5),
        ("high_touch", "stuck_call", 7),
        ("high_touch", "overdue_alert", 14),  # kickoff_call
        ("high_touch", "stall_exec_sponsor", 14),
        ("high_touch", "stall_status_email", 14),
        ("high_touch", "stall_decision", 21),
        ("high_touch", "stall_status_email", 21),
        ("high_touch", "stall_status_email", 28),
        ("high_touch", "activation_missed", 30),
        ("high_touch", "health_at_risk", 5),  # rules §2: first_login missed, health 0
        ("high_touch", "health_critical", 5),
    ],
    Tier.TECH_TOUCH: [
        ("tech_touch", "overdue_nudge", 3),
        ("tech_touch", "no_login_email", 3),
        ("tech_touch", "overdue_nudge", 7),
        ("tech_touch", "stuck_how_to", 7),
        ("tech_touch", "overdue_nudge", 14),
        ("tech_touch", "stall_outreach", 14),
        ("tech_touch", "stall_status_email", 14),
        ("tech_touch", "overdue_nudge", 21),
        ("tech_touch", "stall_decision", 21),
        ("tech_touch", "stall_status_email", 21),
        ("tech_touch", "overdue_nudge", 28),
        ("tech_touch", "stall_status_email", 28),
        ("tech_touch", "overdue_nudge", 30),
        ("tech_touch", "activation_missed", 30),
        ("tech_touch", "health_at_risk", 3),
        ("tech_touch", "health_critical", 3),
    ],
}


@pytest.mark.parametrize("tier", [Tier.HIGH_TOUCH, Tier.TECH_TOUCH])
async def test_every_ladder_step_fires_on_its_day_and_not_before(
    onboardings: Onboardings, tier: Tier
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, success_criteria=[], **TIER_DEALS[tier.value])
    deal.success_criteria = ["agreed"]  # keep the criteria step out of this table
    handle = await onboardings.start(deal)
    # rules §3: the handoff is late 24 business hours after closed-won, on the test clock's
    # calendar (the playbook's: UTC, US holidays), and first engagement on day 7.
    calendar = onboardings.playbook.business_calendar.of(None, None)
    handoff = (business_days.business_hours_end(closed, 24, calendar) - closed) / DAY
    expected = LADDER_31_DAYS[tier] + [
        (tier.value, "handoff_late", round(handoff, 2)),
        (tier.value, "first_engagement_late", 7),
    ]

    for day in sorted({d for _, _, d in expected}):
        await onboardings.days_later(day - (await onboardings.now() - closed) / DAY - 0.01)
        before = fired(await status(handle), closed)
        assert all(d < day for _, _, d in before), f"fired before day {day}: {before}"
        await onboardings.days_later(0.02)
    st = await status(handle)
    assert sorted(fired(st, closed)[: len(expected)]) == sorted(expected)
    # Each step ran when it came due, not later.
    assert all(abs(e.at - e.due_at) < timedelta(minutes=1) for e in st.escalations[:5])
    sent = {r["subject"] for r in onboardings.sent(deal.account_id)}
    if tier is Tier.HIGH_TOUCH:
        assert "[CSM] Acme Corp: no login after 5 days" in sent
        assert "Acme Corp onboarding needs your attention" in sent  # to the exec sponsor
        assert "[CS leadership] Acme Corp missed activation" in sent
        assert st.tier is Tier.HIGH_TOUCH
    else:
        assert "Anything blocking your setup, Acme Corp?" in sent
        assert any("human follow-up" in flag for flag in st.risk_flags)
        assert st.tier is Tier.HIGH_TOUCH  # activation missed at 30 d: upgraded
        assert st.tier_changes[0].kind == "automatic"
    assert st.decision_required and st.state is OnboardingState.AT_RISK


async def test_self_serve_without_progress_upgrades_to_tech_touch_keeping_credit(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["self_serve"])
    handle = await onboardings.start(deal)
    await onboardings.days_later(1)
    await reach(handle, "first_login")

    await onboardings.days_later(13.9)  # 14 days after the last progress: still self_serve
    assert (await status(handle)).tier is Tier.SELF_SERVE
    await onboardings.days_later(0.2)
    st = await status(handle)

    assert st.tier is Tier.TECH_TOUCH
    change = st.tier_changes[0]
    assert (change.from_tier, change.kind) == (Tier.SELF_SERVE, "automatic")
    assert "stall_upgrade" in change.reason
    plan = {m.id: m for m in st.milestones}
    assert plan["first_login"].status is MilestoneStatus.DONE and plan["first_login"].credit == 1
    assert {"kickoff_call", "data_import", "first_training"} <= plan.keys()
    assert all(m.due_at > change.at for m in st.milestones if m.status != MilestoneStatus.DONE)
    assert st.owner == "csm-1@localhost" or st.owner == "csm-2@localhost"  # CSM on upgrade
    # The new ladder's steps already due on the customer's clock (7 and 14 days after the
    # login) are recorded, not fired...
    assert not [step for tier, step, _ in fired(st, closed) if tier == "tech_touch"]
    passed = {e.step_id for e in st.escalations if e.superseded and e.tier is Tier.TECH_TOUCH}
    assert {"stuck_how_to", "stall_outreach"} <= passed
    await onboardings.days_later(7.1)
    # ...and the stall decision comes 21 days after the login, not 21 after the upgrade.
    assert ("tech_touch", "stall_decision", 22) in [
        (t, s, round(d)) for t, s, d in fired(await status(handle), closed)
    ]
    await onboardings.subjects_once(deal.account_id, "Acme Corp: your onboarding plan has changed")


async def test_a_silent_self_serve_account_is_escalated_on_day_14_and_asked_on_day_21(
    onboardings: Onboardings,
) -> None:
    """rules §4, §6.1 (docs/rules.md): the upgrade on day 14 is the vendor's move, so the
    stall clock still counts from closed-won; no success criteria by day 14 escalates."""
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, success_criteria=[], **TIER_DEALS["self_serve"])
    handle = await onboardings.start(deal)
    no_criteria = "[CS leadership] Acme Corp has no success criteria"

    await onboardings.days_later(13.99)
    st = await status(handle)
    assert st.tier is Tier.SELF_SERVE and st.success_criteria == []
    assert no_criteria not in [r["subject"] for r in onboardings.sent(deal.account_id)]
    await onboardings.days_later(0.02)
    st = await status(handle)
    assert [(t, s) for t, s, d in fired(st, closed) if d == 14][-2:] == [
        ("self_serve", "no_success_criteria"),
        ("self_serve", "stall_upgrade"),
    ]
    assert st.success_criteria == [onboardings.playbook.fallback_success_criterion]
    assert st.tier is Tier.TECH_TOUCH
    await onboardings.subjects_once(deal.account_id, no_criteria)

    await onboardings.days_later(20.99 - (await onboardings.now() - closed) / DAY)
    assert not (await status(handle)).decision_required
    await onboardings.days_later(0.02)
    st = await status(handle)
    assert st.decision_required and st.state is OnboardingState.AT_RISK
    assert ("tech_touch", "stall_decision", 21) in fired(st, closed)
    # The weekly status email goes on, on the same clock.
    assert ("tech_touch", "stall_status_email", 21) in fired(st, closed)


# --------------------------------------------------------------------------- pause


async def test_pause_freezes_every_clock_and_resume_shifts_deadlines(
    onboardings: Onboardings,
) -> None:
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    await schedule_kickoff(handle)  # the handoff SLA is met (rules §3)
    await onboardings.days_later(1)
    due_before = {m.id: m.due_at for m in (await status(handle)).milestones}

    paused = await handle.execute_update(
        AccountOnboarding.pause, PauseRequest(by="cs-lead", reason="customer re-org")
    )
    assert paused.state is OnboardingState.PAUSED
    await onboardings.days_later(60)  # far past every deadline
    st = await status(handle)
    assert st.escalations == []
    assert st.state is OnboardingState.PAUSED
    # Events are still recorded while paused, and credited.
    await reach(handle, "first_login")
    await until(handle, lambda st: st.milestones[0].status is MilestoneStatus.DONE)
    # (The group webinar's invitation, due on day 1, went out as the pause began.)
    customer_nudges = [
        r
        for r in onboardings.sent(deal.account_id)
        if ":customer" in r["key"] and ":program-" not in r["key"]
    ]
    assert [r["subject"] for r in customer_nudges] == ["Welcome aboard, Acme Corp"]
    reminders = [r for r in onboardings.sent(deal.account_id) if "pause-reminder" in r["key"]]
    assert len(reminders) == 4  # every 14 days over 60 days

    resumed = await handle.execute_update(AccountOnboarding.resume, ResumeRequest(by="cs-lead"))
    shifted = {m.id: m.due_at for m in resumed.milestones}
    assert resumed.state is not OnboardingState.PAUSED
    assert shifted["kickoff_call"] - due_before["kickoff_call"] == pytest.approx(
        60 * DAY, abs=DAY / 100
    )
    # first_login, due on day 3 and reached on day 61 in the pause, is on time: its
    # deadline moved by the 60 days paused before it (rules §5). Nothing is overdue.
    assert resumed.health.score == 100 and resumed.health.band is HealthBand.HEALTHY
    await onboardings.days_later(5.9)  # kickoff_call was due day 7 of the active clock: day 67
    assert fired(await status(handle), closed) == []
    await onboardings.days_later(0.2)
    assert ("tech_touch", "overdue_nudge") in {
        (t, s) for t, s, _ in fired(await status(handle), closed)
    }


async def test_pause_with_a_resume_date_resumes_itself(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    until = closed + 10 * DAY
    await handle.execute_update(
        AccountOnboarding.pause, PauseRequest(by="csm", reason="holidays", resume_on=until)
    )
    await onboardings.days_later(10.1)
    st = await status(handle)
    assert st.pause is None
    assert any(a.kind == "resumed" and a.by == "schedule" for a in st.audit)
    assert not [r for r in onboardings.sent(st.account_id) if "pause-reminder" in r["key"]]


async def test_a_pause_lets_celebrations_and_news_through(onboardings: Onboardings) -> None:
    """rules §5 (docs/rules.md): while paused, the customer still hears of a milestone
    reached and of a tier change, on the day they happen; nudges wait."""
    closed = await onboardings.now()
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    await onboardings.days_later(1)
    await handle.execute_update(
        AccountOnboarding.pause, PauseRequest(by="cs-lead", reason="customer re-org")
    )

    def subjects() -> list[str]:
        # Less the group webinar's invitation (rules §1), sent on day 1 as the pause began.
        sent = onboardings.sent(deal.account_id)
        return [r["subject"] for r in sent if ":program-" not in r["key"]]

    await onboardings.days_later(4)  # day 5: first_login (due day 3) is overdue, no nudge
    assert sorted(subjects()) == [  # sent at once: in either order
        "New onboarding: Acme Corp (tech_touch)",
        "Welcome aboard, Acme Corp",
    ]
    await reach(handle, "first_value")
    await onboardings.subjects_once(deal.account_id, "You're all set, Acme Corp!")
    await handle.execute_update(
        AccountOnboarding.override_tier,
        TierOverride(tier=Tier.HIGH_TOUCH, approver="vp-cs", reason="3 systems to integrate"),
    )
    await onboardings.subjects_once(deal.account_id, "Acme Corp: your onboarding plan has changed")
    st = await status(handle)
    assert st.state is OnboardingState.PAUSED and fired(st, closed) == []
    assert not [s for s in subjects() if "is due" in s or "blocking" in s]  # no nudge


# --------------------------------------------------------------------------- updates


async def update_error(handle: WorkflowHandle[Any, Any], update: Any, arg: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, arg)
    cause = err.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


async def test_updates_reject_bad_commands_with_a_clear_reason(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))

    same = TierOverride(tier=Tier.TECH_TOUCH, approver="vp-cs", reason="why not")
    assert await update_error(handle, AccountOnboarding.override_tier, same) == (
        "tier: already tech_touch"
    )
    skip = SkipRequest(milestone_id="nope", by="csm", reason="x")
    assert "milestone_id: no open milestone 'nope'" in await update_error(
        handle, AccountOnboarding.skip_milestone, skip
    )
    resume = ResumeRequest(by="csm")
    assert "neither paused" in await update_error(handle, AccountOnboarding.resume, resume)
    past = PauseRequest(by="csm", reason="r", resume_on=closed - DAY)
    assert (
        await update_error(handle, AccountOnboarding.pause, past)
        == "resume_on: must be in the future"
    )
    await handle.execute_update(AccountOnboarding.pause, PauseRequest(by="csm", reason="r"))
    again = PauseRequest(by="ops", reason="r2")
    assert "already paused by csm" in await update_error(handle, AccountOnboarding.pause, again)
    bad_due = ResumeRequest(by="csm", revised_due={"first_login": closed - DAY})
    assert (
        await update_error(handle, AccountOnboarding.resume, bad_due)
        == "revised_due.first_login: must be in the future"
    )

    # Nothing rejected changed anything.
    st = await status(handle)
    assert st.tier is Tier.TECH_TOUCH and st.tier_changes == []
    assert [a.kind for a in st.audit].count("paused") == 1


async def test_override_is_recorded_with_approver_and_replans(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    await reach(handle, "first_login")
    await until(handle, lambda st: st.milestones[0].status is MilestoneStatus.DONE)
    st = await handle.execute_update(
        AccountOnboarding.override_tier,
        TierOverride(tier=Tier.HIGH_TOUCH, approver="vp-cs", reason="5 systems to integrate"),
    )
    assert st.tier is Tier.HIGH_TOUCH
    change = st.tier_changes[0]
    assert (change.kind, change.by, change.reason) == (
        "override",
        "vp-cs",
        "5 systems to integrate",
    )
    assert st.tier_decision.tier is Tier.TECH_TOUCH  # the rule's own answer stays on record
    assert {m.id for m in st.milestones} >= {"kickoff_call", "first_training"}
    assert next(m for m in st.milestones if m.id == "first_login").status is MilestoneStatus.DONE


async def test_skip_raises_a_risk_flag_and_settles_the_gate(onboardings: Onboardings) -> None:
    handle = await onboardings.start(
        make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    )
    st = await handle.execute_update(
        AccountOnboarding.skip_milestone,
        SkipRequest(milestone_id="first_training", by="csm", reason="customer declined training"),
    )
    m = next(m for m in st.milestones if m.id == "first_training")
    assert m.status is MilestoneStatus.SKIPPED and m.credit is None
    assert any("customer declined training" in f for f in st.risk_flags)


async def test_stall_decision_is_settled_by_a_revised_timeline(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    await onboardings.days_later(21.1)
    assert (await status(handle)).decision_required
    msg = await update_error(handle, AccountOnboarding.resume, ResumeRequest(by="csm"))
    assert msg == "revised_due: a stalled onboarding resumes with a revised timeline"
    new_due = closed + 40 * DAY
    st = await handle.execute_update(
        AccountOnboarding.resume,
        ResumeRequest(by="csm", revised_due={"technical_setup": new_due}, reason="new plan"),
    )
    assert not st.decision_required
    assert next(m for m in st.milestones if m.id == "technical_setup").due_at == new_due


async def test_cancel_ends_the_onboarding_cleanly(onboardings: Onboardings) -> None:
    handle = await onboardings.start(
        make_deal(close_date=await onboardings.now(), **TIER_DEALS["high_touch"])
    )
    await handle.execute_update(
        AccountOnboarding.cancel, CancelRequest(by="ae", reason="deal churned before kickoff")
    )
    final = await handle.result()
    assert final.state is OnboardingState.CANCELLED
    cancelled = [a for a in final.audit if a.kind == "cancelled"]
    assert [(a.by, a.detail) for a in cancelled] == [("ae", "deal churned before kickoff")]
    later = PauseRequest(by="csm", reason="r")
    with pytest.raises(Exception):  # noqa: B017 - a finished workflow takes no updates
        await handle.execute_update(AccountOnboarding.pause, later)


async def test_contact_change_replaces_the_role(onboardings: Onboardings) -> None:
    handle = await onboardings.start(
        make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    )
    new = {"name": "Nia New", "email": "nia@acme.test", "role": "champion"}
    st = await handle.execute_update(
        AccountOnboarding.change_contact,
        ContactChange.model_validate({"contact": new, "by": "csm", "reason": "Cara left"}),
    )
    changed, opened = st.audit[-2:]  # a new champion opens a re-alignment window (§6.3)
    assert changed.kind == "contact_changed" and "nia@acme.test" in changed.detail
    assert opened.kind == "champion_window_opened"


# --------------------------------------------------------------------------- signals


async def test_duplicate_out_of_order_and_unknown_milestones(onboardings: Onboardings) -> None:
    closed = await onboardings.now()
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    await reach(handle, "team_adoption", "ev-1")  # out of order: credited
    await reach(handle, "team_adoption", "ev-1")  # duplicate: ignored
    await reach(handle, "first_login", "ev-1")  # same event id again: ignored
    await reach(handle, "not_a_milestone", "ev-2")  # unknown: recorded, no crash
    st = await until(handle, lambda st: bool(st.rejected))
    plan = {m.id: m for m in st.milestones}
    assert plan["team_adoption"].status is MilestoneStatus.DONE
    assert plan["first_login"].status is MilestoneStatus.NOT_STARTED
    assert st.phase is not None and st.phase.value == "kickoff"
    assert [a.kind for a in st.audit].count("milestone_reached") == 1
    assert [(r.kind, r.ref) for r in st.rejected] == [("milestone_reached", "not_a_milestone")]
    assert "unknown milestone" in st.rejected[0].reason
    await reach(handle, "first_login", "ev-3")
    await until(handle, lambda st: st.milestones[0].status is MilestoneStatus.DONE)


async def test_product_events_complete_milestones(onboardings: Onboardings) -> None:
    handle = await onboardings.start(
        make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    )
    invite = [ProductEvent(event_id=f"m{i}", name="user_invited") for i in range(3)]
    login = ProductEvent(event_id="m9", name="user_logged_in")
    await handle.signal(
        AccountOnboarding.product_events, ProductEventBatch(events=[invite[0], invite[0], login])
    )
    st = await until(handle, lambda st: st.milestones[0].status is MilestoneStatus.DONE)
    plan = {m.id: m for m in st.milestones}
    assert plan["team_adoption"].status is MilestoneStatus.NOT_STARTED  # 1 of 3 invites
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=invite))
    await until(
        handle,
        lambda st: {m.id: m for m in st.milestones}["team_adoption"].status is MilestoneStatus.DONE,
    )
    await onboardings.subjects_once(st.account_id, "Acme Corp: your team is on board")


async def test_a_batch_of_events_no_milestone_awaits_is_kept_and_logged_once(
    onboardings: Onboardings, caplog: pytest.LogCaptureFixture
) -> None:
    """A sender that signals the workflow directly (not through the ingress, which drops
    them first) with names no milestone is completed by: each is kept as rejected, and
    the worker's log has one line for the batch, not one per event."""
    handle = await onboardings.start(
        make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    )
    noise = [ProductEvent(event_id=f"n{i}", name=f"page_{i % 2}") for i in range(40)]
    with caplog.at_level(logging.WARNING, logger="temporalio.workflow"):
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=noise))
        st = await until(handle, lambda st: len(st.rejected) == 40)
    assert {(r.ref, r.reason) for r in st.rejected} == {
        ("page_0", "no milestone is completed by it"),
        ("page_1", "no milestone is completed by it"),
    }
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected")]
    assert len(lines) == 1, lines
    assert "product_events page_0: no milestone is completed by it (x20)" in lines[0]
    assert "product_events page_1: no milestone is completed by it (x20)" in lines[0]


# --------------------------------------------------------------------------- migration, UI


async def test_backdated_start_with_milestones_done_catches_up(onboardings: Onboardings) -> None:
    now = await onboardings.now()
    closed = now - 6 * DAY
    deal = make_deal(
        close_date=closed,
        completed_milestones=[{"milestone_id": "kickoff_call", "at": closed + DAY}],
        **TIER_DEALS["high_touch"],
    )
    handle = await onboardings.start(deal)
    st = await status(handle)
    assert {m.id: m for m in st.milestones}["kickoff_call"].credit == 1.0
    # No login by day 5 for an enterprise account: the CSM check-in has already run.
    assert ("high_touch", "no_login_check_in", 5) in fired(st, closed)
    assert st.health.score is not None and st.health.score < 100


async def test_catching_up_sends_only_the_latest_weekly_status(onboardings: Onboardings) -> None:
    now = await onboardings.now()
    closed = now - 29 * DAY  # stall status emails were due on days 14, 21 and 28
    deal = make_deal(close_date=closed, **TIER_DEALS["high_touch"])
    handle = await onboardings.start(deal)
    st = await status(handle)
    status_emails = [e for e in st.escalations if e.step_id == "stall_status_email"]
    # Days 14 and 21 are passed over in one record; day 28's goes out.
    assert [(e.superseded, e.repeats) for e in status_emails] == [(True, 2), (False, 1)]
    subjects = await onboardings.subjects_once(
        deal.account_id, "Acme Corp onboarding: weekly status"
    )
    assert subjects.count("Acme Corp onboarding: weekly status") == 1


async def test_a_deal_closed_years_ago_catches_up_in_one_step(onboardings: Onboardings) -> None:
    # Found by the API fuzz: a close date decades back made the first task walk every
    # weekly repeat one by one, past the SDK's deadlock detector.
    now = await onboardings.now()
    deal = make_deal(close_date=now - 3650 * DAY, **TIER_DEALS["high_touch"])
    handle = await onboardings.start(deal)
    st = await status(handle)
    status_emails = [e for e in st.escalations if e.step_id == "stall_status_email"]
    weeks = (3650 - 14) // 7  # repeats due after day 14, all but the latest passed over
    assert [(e.superseded, e.repeats) for e in status_emails] == [(True, weeks), (False, 1)]
    assert st.state.value == "at_risk"


async def test_search_attributes_and_current_details_track_the_state(
    onboardings: Onboardings,
) -> None:
    deal = make_deal(close_date=await onboardings.now(), **TIER_DEALS["high_touch"])
    handle = await onboardings.start(deal)
    await handle.execute_update(AccountOnboarding.pause, PauseRequest(by="csm", reason="re-org"))
    for _ in range(400):  # upserted on the workflow's next tasks (the owner: after assign)
        attrs = (await handle.describe()).typed_search_attributes
        if attrs.get(sa.ONBOARDING_STATE) == "paused" and attrs.get(sa.CSM_OWNER):
            break
        await asyncio.sleep(0.05)
    st = await status(handle)
    assert attrs.get(sa.ONBOARDING_TIER) == "high_touch"
    assert attrs.get(sa.ONBOARDING_STATE) == "paused"
    assert attrs.get(sa.ONBOARDING_PHASE) == "kickoff"
    assert attrs.get(sa.ACV_USD) == 80_000
    assert attrs.get(sa.CSM_OWNER) == st.owner
    assert attrs.get(sa.NEXT_DEADLINE) == st.next_deadline
    details = await handle.query("__temporal_workflow_metadata")
    text = details.current_details
    assert "- [ ] kickoff: First login / account activation — due" in text
    assert "Paused by csm" in text
    # The deal's facts at its foot, not in the start request's static details.
    pb = onboardings.playbook
    assert f"Deal: ACV $80,000, {deal.seats} seats, closed-won {day_text(deal.close_date)}" in text
    assert st.tier_decision is not None
    assert f"Tier at the start: high_touch (`{st.tier_decision.clause}`)" in text
    assert f"Playbook: {pb.name}, version {pb.version} (sha256 `{pb.content_hash}`)" in text


async def test_a_status_polled_while_nothing_happens_shows_the_next_change_at_once(
    onboardings: Onboardings,
) -> None:
    """The `status` query keeps its answer while the onboarding's state stands still (a
    page polling it); the first query after a change answers the new state."""
    deal = make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    polled = [await status(handle) for _ in range(5)]
    assert polled[-1].milestones == polled[-2].milestones
    kickoff = polled[-1].milestones[0]
    assert kickoff.done_at is None
    report = MilestoneReport(milestone_id=kickoff.id, event_id="ev-kickoff")
    await handle.signal(AccountOnboarding.milestone_reached, report)
    await handle.query(AccountOnboarding.snapshot)  # the signal has been taken
    after = await status(handle)
    assert after.milestones[0].done_at is not None
    assert after.completion_pct > polled[-1].completion_pct
