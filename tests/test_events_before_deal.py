"""Product events before the closed-won deal (PLG sign-ups), on the time-skipping server.

The workflow itself is the buffer: events signal-with-start an onboarding that waits for
its deal, applies what it got once the deal comes, and ends if none comes in time.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.support.deals import make_deal
from tests.support.onboardings import Onboardings, events_first
from workflows.models import (
    DealDelivery,
    MilestoneReport,
    OnboardingState,
    PauseRequest,
    ProductEvent,
    ProductEventBatch,
)
from workflows.onboarding import AccountOnboarding


def batch(*names: str) -> ProductEventBatch:
    return ProductEventBatch(
        events=[ProductEvent(event_id=f"e-{uuid.uuid4().hex}", name=n) for n in names]
    )


async def test_events_wait_for_the_deal_then_count(onboardings: Onboardings) -> None:
    account_id = f"plg-{uuid.uuid4().hex[:8]}"
    handle = await events_first(onboardings, account_id, batch("user_logged_in", "user_invited"))
    await handle.signal(AccountOnboarding.product_events, batch("user_invited", "user_invited"))
    await handle.signal(
        AccountOnboarding.milestone_reached,
        MilestoneReport(milestone_id="kickoff_call", event_id="call-1", reported_by="csm"),
    )
    waiting = await handle.query(AccountOnboarding.status)
    assert waiting.state is OnboardingState.AWAITING_DEAL
    assert waiting.tier is None
    assert waiting.event_counts == {"user_logged_in": 1, "user_invited": 3}
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            AccountOnboarding.pause, PauseRequest(by="ops", reason="holiday")
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert "no closed-won deal yet" in refused.value.cause.message
    assert not onboardings.sent(account_id)  # nobody is nudged before there is a deal

    deal = make_deal(account_id, close_date=await onboardings.now())
    accepted = await handle.execute_update(
        AccountOnboarding.provide_deal,
        DealDelivery(deal=deal, playbook=onboardings.playbook, delivery_id="crm-1"),
    )
    assert accepted.started is True
    st = await handle.query(AccountOnboarding.status)
    done = {m.id: m.status.value for m in st.milestones}
    # The login, the three invitations and the reported kickoff all count now.
    assert done["first_login"] == "done"
    assert done["team_adoption"] == "done"
    assert done["kickoff_call"] == "done"
    assert st.state is OnboardingState.ACTIVE
    assert await onboardings.subjects_once(account_id, "Welcome aboard, Acme Corp")

    # The same delivery again gets the same answer; another delivery changes nothing.
    again = await handle.execute_update(
        AccountOnboarding.provide_deal,
        DealDelivery(deal=deal, playbook=onboardings.playbook, delivery_id="crm-1"),
    )
    assert again.started is True
    other = await handle.execute_update(
        AccountOnboarding.provide_deal,
        DealDelivery(
            deal=make_deal(account_id, acv_usd=500_000, close_date=deal.close_date),
            playbook=onboardings.playbook,
            delivery_id="crm-2",
        ),
    )
    assert other.started is False
    assert "already onboarding" in other.detail
    assert (await handle.query(AccountOnboarding.status)).acv_usd == deal.acv_usd


async def test_a_deal_for_another_account_is_refused(onboardings: Onboardings) -> None:
    account_id = f"plg-{uuid.uuid4().hex[:8]}"
    handle = await events_first(onboardings, account_id, batch("user_logged_in"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            AccountOnboarding.provide_deal,
            DealDelivery(
                deal=make_deal("someone-else", close_date=await onboardings.now()),
                playbook=onboardings.playbook,
                delivery_id="x",
            ),
        )
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.message.startswith("deal.account_id:")
    st = await handle.query(AccountOnboarding.status)
    assert st.state is OnboardingState.AWAITING_DEAL


async def test_without_a_deal_in_time_it_ends_recording_what_it_got(
    onboardings: Onboardings,
) -> None:
    account_id = f"plg-{uuid.uuid4().hex[:8]}"
    handle = await events_first(
        onboardings, account_id, batch("user_logged_in", "user_logged_in"), wait_days=10
    )
    await onboardings.days_later(9)
    assert (await handle.query(AccountOnboarding.status)).state is OnboardingState.AWAITING_DEAL
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    cause = ended.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "NoClosedWonDeal"
    assert "within 10 days" in cause.message
    assert "user_logged_in x2" in cause.message
    assert not onboardings.sent(account_id)
