"""`HubSpotDealIntake`: a HubSpot closed-won webhook, turned into an onboarding.

HubSpot's webhook carries only ids. The ingress starts this small workflow (one per deal,
id `hubspot-deal-<portal>-<deal>`) and answers HubSpot at once; the deal and its company
are then fetched with retries, however long HubSpot's API is down, and handed to the
account's onboarding. A redelivered webhook finds the same intake.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from workflows.models import (
        ClosedWonDeal,
        DealAcceptance,
        DealDelivery,
        DealHandoff,
        HubSpotDealRef,
        Playbook,
        StartOptions,
    )

FETCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["HubSpotDealError"],
)
DELIVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=["DealRejected"],
)


class HubSpotIntake(BaseModel):
    ref: HubSpotDealRef
    playbook: Playbook = Field(description="Pinned when the webhook arrived")
    options: StartOptions = Field(default_factory=StartOptions)


def intake_workflow_id(ref: HubSpotDealRef) -> str:
    return f"hubspot-deal-{ref.portal_id}-{ref.deal_id}"


@workflow.defn(name="HubSpotDealIntake")
class HubSpotDealIntake:
    @workflow.run
    async def run(self, intake: HubSpotIntake) -> DealAcceptance:
        ref = intake.ref
        deal: ClosedWonDeal = await workflow.execute_activity(
            "fetch_hubspot_deal",
            ref,
            result_type=ClosedWonDeal,
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(days=3),
            retry_policy=FETCH_RETRY,
            summary=f"Fetch HubSpot deal {ref.deal_id} (portal {ref.portal_id})",
        )
        return await workflow.execute_activity(
            "deliver_deal",
            DealHandoff(
                delivery=DealDelivery(
                    deal=deal,
                    playbook=intake.playbook,
                    delivery_id=f"hubspot:{ref.portal_id}:{ref.deal_id}",
                ),
                options=intake.options,
            ),
            result_type=DealAcceptance,
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(days=1),
            retry_policy=DELIVER_RETRY,
            summary=f"Start the onboarding of {deal.account_name} ({deal.account_id})",
        )
