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

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, Field

    from workflows import contract
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


class HubSpotIntake(BaseModel):
    ref: HubSpotDealRef
    playbook: Playbook = Field(description="Pinned when the webhook arrived")
    options: StartOptions = Field(default_factory=StartOptions)


class HubSpotLostIntake(BaseModel):
    ref: HubSpotDealRef
    action: DealLostAction = Field(description="ONBOARDING_DEAL_LOST when the webhook arrived")


@workflow.defn(name=contract.HUBSPOT_INTAKE)
class HubSpotDealIntake:
    @workflow.run
    async def run(self, intake: HubSpotIntake) -> DealAcceptance:
        ref = intake.ref
        deal: ClosedWonDeal = await workflow.execute_activity(
            contract.FETCH_HUBSPOT_DEAL.name,
            ref,
            result_type=ClosedWonDeal,
            start_to_close_timeout=contract.FETCH_HUBSPOT_DEAL.start_to_close,
            schedule_to_close_timeout=contract.FETCH_HUBSPOT_DEAL.schedule_to_close,
            retry_policy=contract.FETCH_HUBSPOT_DEAL.retry,
            summary=f"Fetch HubSpot deal {ref.deal_id} (portal {ref.portal_id})",
        )
        return await workflow.execute_activity(
            contract.DELIVER_DEAL.name,
            DealHandoff(
                delivery=DealDelivery(
                    deal=deal,
                    playbook=intake.playbook,
                    delivery_id=f"hubspot:{ref.portal_id}:{ref.deal_id}",
                ),
                options=intake.options,
            ),
            result_type=DealAcceptance,
            start_to_close_timeout=contract.DELIVER_DEAL.start_to_close,
            schedule_to_close_timeout=contract.DELIVER_DEAL.schedule_to_close,
            retry_policy=contract.DELIVER_DEAL.retry,
            summary=f"Start the onboarding of {deal.account_name} ({deal.account_id})",
        )


@workflow.defn(name=contract.HUBSPOT_LOST_INTAKE)
class HubSpotDealLostIntake:
    @workflow.run
    async def run(self, intake: HubSpotLostIntake) -> DealLostOutcome:
        ref = intake.ref
        stage: HubSpotDealStage = await workflow.execute_activity(
            contract.FETCH_HUBSPOT_DEAL_STAGE.name,
            ref,
            result_type=HubSpotDealStage,
            start_to_close_timeout=contract.FETCH_HUBSPOT_DEAL_STAGE.start_to_close,
            schedule_to_close_timeout=contract.FETCH_HUBSPOT_DEAL_STAGE.schedule_to_close,
            retry_policy=contract.FETCH_HUBSPOT_DEAL_STAGE.retry,
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
            contract.REPORT_DEAL_LOST.name,
            DealLostReport(
                account_id=stage.account_id, lost=lost, delivery_id=workflow.info().workflow_id
            ),
            result_type=DealLostOutcome,
            start_to_close_timeout=contract.REPORT_DEAL_LOST.start_to_close,
            schedule_to_close_timeout=contract.REPORT_DEAL_LOST.schedule_to_close,
            retry_policy=contract.REPORT_DEAL_LOST.retry,
            summary=f"Deal lost: {intake.action} the onboarding of {stage.account_id}",
        )
