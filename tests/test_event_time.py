"""Product events credit milestones when they happened, on the time-skipping server.

Events replayed from a mobile app's offline queue or a warehouse backfill arrive days
late and in any order; the customer did the thing on time, so the plan must say so.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings, events_first, status, until
from workflows.models import (
    DealDelivery,
    MilestoneStatus,
    OnboardingState,
    ProductEvent,
    ProductEventBatch,
)
from workflows.onboarding import AccountOnboarding

DAY = timedelta(days=1)


def event(name: str, at: datetime | None) -> ProductEvent:
    return ProductEvent(event_id=f"e-{uuid.uuid4().hex}", name=name, at=at)


def batch(*events: ProductEvent) -> ProductEventBatch:
    return ProductEventBatch(events=list(events))


async def test_a_late_delivered_login_is_credited_on_time(onboardings: Onboardings) -> None:
    now = await onboardings.now()
    closed = now - 5 * DAY  # tech_touch: first login is due on day 3
    deal = make_deal(close_date=closed, **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    logged_in = closed + 2 * DAY  # on time, delivered three days later
    await handle.signal(AccountOnboarding.product_events, batch(event("user_logged_in", logged_in)))
    st = await until(handle, lambda s: s.milestones[0].status is MilestoneStatus.DONE)
    login = st.milestones[0]
    assert (login.id, login.done_at, login.credit) == ("first_login", logged_in, 1.0)
    assert st.health.score == 100
    assert st.state is OnboardingState.ACTIVE


async def test_several_names_count_together_at_the_count_th_earliest_time(
    onboardings: Onboardings,
) -> None:
    now = await onboardings.now()
    closed = now - 10 * DAY
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    # Team adoption needs 3 invites, under our name or Segment's spec names, in any order.
    await handle.signal(
        AccountOnboarding.product_events,
        batch(event("Invite Sent", closed + 6 * DAY), event("user_invited", closed + 2 * DAY)),
    )
    st = await until(handle, lambda s: s.event_counts.get("user_invited") == 1)
    assert next(m for m in st.milestones if m.id == "team_adoption").status is (
        MilestoneStatus.NOT_STARTED
    )
    await handle.signal(
        AccountOnboarding.product_events,
        batch(event("Account Added User", closed + 4 * DAY)),
    )
    st = await until(handle, lambda s: s.milestones[-2].status is MilestoneStatus.DONE)
    adoption = next(m for m in st.milestones if m.id == "team_adoption")
    assert adoption.done_at == closed + 6 * DAY  # the third invite, by when it happened
    audit = [a.detail for a in st.audit if a.kind == "milestone_reached"]
    assert audit[-1].startswith("Team adoption (3+ active users)")


async def test_event_times_are_kept_within_the_deal_and_now(onboardings: Onboardings) -> None:
    now = await onboardings.now()
    closed = now - 20 * DAY
    handle = await onboardings.start(make_deal(close_date=closed, **TIER_DEALS["tech_touch"]))
    await handle.signal(
        AccountOnboarding.product_events,
        batch(
            # A trial user's login from before the deal closed counts from closed-won.
            event("Signed In", closed - 30 * DAY),
            # A client whose clock runs ahead cannot finish a milestone in the future.
            event("setup_completed", now + 2 * DAY),
        ),
    )
    st = await until(handle, lambda s: s.milestones[2].status is MilestoneStatus.DONE)
    done = {m.id: m.done_at for m in st.milestones if m.done_at}
    assert done["first_login"] == closed
    assert done["technical_setup"] is not None and closed < done["technical_setup"] <= (
        await onboardings.now()
    )


async def test_events_before_the_deal_keep_their_times(onboardings: Onboardings) -> None:
    now = await onboardings.now()
    account_id = f"plg-{uuid.uuid4().hex[:8]}"
    logged_in = now - DAY
    handle = await events_first(onboardings, account_id, batch(event("user_logged_in", logged_in)))
    deal = make_deal(account_id, close_date=now - 2 * DAY, **TIER_DEALS["tech_touch"])
    await handle.execute_update(
        AccountOnboarding.provide_deal,
        DealDelivery(deal=deal, playbook=onboardings.playbook, delivery_id="d-1"),
    )
    st = await status(handle)
    assert (st.milestones[0].id, st.milestones[0].done_at) == ("first_login", logged_in)
