"""Bounded history: an onboarding under an event storm continues-as-new and loses nothing."""

from __future__ import annotations

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.histories import run_histories
from tests.support.onboardings import Onboardings
from workflows.models import (
    MilestoneReport,
    OnboardingStatus,
    ProductEvent,
    ProductEventBatch,
    Tier,
    TierOverride,
)
from workflows.onboarding import MAX_REJECTED, AccountOnboarding

STORM = 1_100  # product-event signals: far over 2,000 history events in one run
MAX_EVENTS = 300  # a low limit, so the storm spans several runs


async def test_an_event_storm_continues_as_new_and_loses_nothing(
    onboardings: Onboardings,
) -> None:
    deal = make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal, max_history_events=MAX_EVENTS)
    latest = onboardings.env.client.get_workflow_handle(deal.workflow_id)
    for i in range(STORM):
        name = "user_invited" if i % 50 == 0 else f"feature_used_{i % 7}"
        # Every tenth batch repeats the previous event id: counted once.
        event_id = f"ev-{i - 1 if i % 10 == 9 else i}"
        batch = ProductEventBatch(events=[ProductEvent(event_id=event_id, name=name)])
        await latest.signal(AccountOnboarding.product_events, batch)
        if i == STORM // 2:
            report = MilestoneReport(milestone_id="kickoff_call", event_id="call-1")
            await latest.signal(AccountOnboarding.milestone_reached, report)
            override = TierOverride(tier=Tier.HIGH_TOUCH, approver="vp-cs", reason="strategic")
            await latest.execute_update(AccountOnboarding.override_tier, override)
        if i % 150 == 0:
            await onboardings.days_later(1)  # timers fire and escalate along the way

    await onboardings.days_later(10)  # after the storm, the ladder goes on in the new run
    st: OnboardingStatus = await latest.query(AccountOnboarding.status)
    assert st.escalations, "no escalation ran after the storm"
    distinct = {i - 1 if i % 10 == 9 else i for i in range(STORM)}
    invited = sum(1 for i in distinct if i % 50 == 0)
    assert st.event_counts == {"user_invited": invited}
    # The others complete no milestone: recorded as rejected, with the reason (the last
    # MAX_REJECTED of them), not counted.
    assert len(distinct) - invited > MAX_REJECTED == len(st.rejected)
    assert {r.ref for r in st.rejected} == {f"feature_used_{k}" for k in range(7)}
    assert {r.reason for r in st.rejected} == {"no milestone is completed by it"}
    done = {m.id: m.status.value for m in st.milestones}
    assert done["kickoff_call"] == "done"
    assert done["team_adoption"] == "done"  # 3+ invitations, across runs
    assert st.tier is Tier.HIGH_TOUCH
    assert [c.to_tier for c in st.tier_changes] == [Tier.HIGH_TOUCH]
    keys = [(e.tier, e.step_id, e.milestone_id, e.due_at) for e in st.escalations]
    assert len(keys) == len(set(keys)), "an escalation ran twice"
    sent = [r["key"] for r in onboardings.sent(deal.account_id)]
    assert len(sent) == len(set(sent)), "a notification went out twice"
    assert len(await run_histories(onboardings.env.client, handle)) >= 3
    first_run = await handle.fetch_history()
    assert len(first_run.events) < MAX_EVENTS + 50  # continued soon after the limit
