"""`HubSpotDealIntake`: a HubSpot closed-won webhook, turned into an onboarding;
`HubSpotDealLostIntake`: a closed-lost one, turned into the `deal_lost` rule.

HubSpot's webhook carries only ids. The ingress starts this small workflow (one per deal,
id `hubspot-deal-<portal>-<deal>`) and answers HubSpot at once; the deal and its company
are then fetched with retries, however long HubSpot's API is down, and handed to the
account's onboarding. A redelivered webhook finds the same intake.

The fetched deal decides, not the webhook: a deal no longer closed-won when it is read
fails its intake with `DealNotClosedWon` (nothing starts; a failed intake lets a later
closed-won webhook for the deal start a fresh one), and a lost deal that is no longer
closed-lost changes nothing.
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
        DealLost,
        DealLostAction,
        DealLostOutcome,
        DealLostReport,
        DealStage,
        HubSpotDealRef,
        HubSpotDealStage,
        Playbook,
        StartOptions,
        workflow_id_for,
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


class HubSpotLostIntake(BaseModel):
    ref: HubSpotDealRef
    action: DealLostAction = Field(description="ONBOARDING_DEAL_LOST when the webhook arrived")


def intake_workflow_id(ref: HubSpotDealRef) -> str:
    return f"hubspot-deal-{ref.portal_id}-{ref.deal_id}"


def lost_intake_workflow_id(ref: HubSpotDealRef) -> str:
    """Per event: a deal lost, won again and lost again is acted on twice."""
    return f"hubspot-deal-lost-{ref.portal_id}-{ref.deal_id}-{ref.event_id}"


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


@workflow.defn(name="HubSpotDealLostIntake")
class HubSpotDealLostIntake:
    @workflow.run
    async def run(self, intake: HubSpotLostIntake) -> DealLostOutcome:
        ref = intake.ref
        stage: HubSpotDealStage = await workflow.execute_activity(
            "fetch_hubspot_deal_stage",
            ref,
            result_type=HubSpotDealStage,
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(days=3),
            retry_policy=FETCH_RETRY,
            summary=f"Fetch the stage of HubSpot deal {ref.deal_id} (portal {ref.portal_id})",
        )
        if stage.meaning is not DealStage.CLOSED_LOST:
            return DealLostOutcome(
                account_id=stage.account_id,
                workflow_id=workflow_id_for(stage.account_id),
                deal_id=ref.deal_id,
                applied=False,
                detail=f"deal {ref.deal_id} is no longer closed-lost ({stage.label}): "
                "nothing changed",
            )
        lost = DealLost(
            source="hubspot", deal_id=ref.deal_id, reason=stage.label, action=intake.action
        )
        return await workflow.execute_activity(
            "report_deal_lost",
            DealLostReport(
                account_id=stage.account_id, lost=lost, delivery_id=workflow.info().workflow_id
            ),
            result_type=DealLostOutcome,
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=timedelta(days=1),
            retry_policy=DELIVER_RETRY,
            summary=f"Deal lost: {intake.action} the onboarding of {stage.account_id}",
        )
