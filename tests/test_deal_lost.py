"""A lost deal on the time-skipping server: its running onboarding is cancelled (the
default) or kept running at risk with a decision to make, and the loss is audited.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.support.deals import TIER_DEALS, make_deal
from tests.support.onboardings import Onboardings
from workflows.models import DealLost, OnboardingState
from workflows.onboarding import AccountOnboarding


async def test_deal_lost_cancels_by_default_and_is_audited(onboardings: Onboardings) -> None:
    deal = make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    lost = DealLost(source="salesforce", deal_id="006X", reason="StageName 'Closed Lost'")

    status = await handle.execute_update(AccountOnboarding.deal_lost, lost)

    assert status.state is OnboardingState.CANCELLED
    final = await handle.result()
    [entry] = [a for a in final.audit if a.kind == "cancelled"]
    assert (entry.by, entry.detail) == (
        "salesforce deal 006X",
        "deal lost: StageName 'Closed Lost'",
    )


async def test_deal_lost_with_flag_keeps_it_running_at_risk_with_a_decision(
    onboardings: Onboardings,
) -> None:
    deal = make_deal(close_date=await onboardings.now(), **TIER_DEALS["tech_touch"])
    handle = await onboardings.start(deal)
    lost = DealLost(source="hubspot", deal_id="91", reason="dealstage closedlost", action="flag")

    status = await handle.execute_update(AccountOnboarding.deal_lost, lost)

    assert status.state is OnboardingState.AT_RISK and status.decision_required
    assert status.risk_flags[-1].endswith("deal lost: dealstage closedlost")
    assert (status.audit[-1].kind, status.audit[-1].by) == ("deal_lost", "hubspot deal 91")
    # The decision: cancel it after all. A finished onboarding refuses another loss.
    await handle.execute_update(
        AccountOnboarding.deal_lost, lost.model_copy(update={"action": "cancel"})
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(AccountOnboarding.deal_lost, lost)
