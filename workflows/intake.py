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

    import workflows.contract as contract  # not `from workflows import`: see onboarding.py
    from workflows.models import (
        ChampionChangeOutcome,
        ChampionChangeReport,
        ClosedWonDeal,
        ContactChange,
        DealAcceptance,
        DealDelivery,
        DealHandoff,
        DealLost,
        DealLostAction,
        DealLostOutcome,
        DealLostReport,
        DealStage,
        HubSpotChampion,
        HubSpotContactRef,
        HubSpotDealRef,
        HubSpotDealStage,
        PinnedPlaybook,
        StartOptions,
        workflow_id_for,
    )


class HubSpotIntake(BaseModel):
    ref: HubSpotDealRef
    playbook: PinnedPlaybook = Field(description="Pinned when the webhook arrived")
    options: StartOptions = Field(default_factory=StartOptions)


class HubSpotLostIntake(BaseModel):
    ref: HubSpotDealRef
    action: DealLostAction = Field(description="ONBOARDING_DEAL_LOST when the webhook arrived")


@workflow.defn(name=contract.HUBSPOT_INTAKE)
class HubSpotDealIntake:
    @workflow.run
    async def run(self, intake: HubSpotIntake) -> DealAcceptance:
        ref = intake.ref
        deal = await contract.FETCH_HUBSPOT_DEAL.execute(
            ref,
            ClosedWonDeal,
            summary=f"Fetch HubSpot deal {ref.deal_id} (portal {ref.portal_id})",
        )
        return await contract.DELIVER_DEAL.execute(
            DealHandoff(
                delivery=DealDelivery(
                    deal=deal,
                    playbook=intake.playbook,
                    delivery_id=f"hubspot:{ref.portal_id}:{ref.deal_id}",
                ),
                options=intake.options,
            ),
            DealAcceptance,
            summary=f"Start the onboarding of {deal.account_name} ({deal.account_id})",
        )


@workflow.defn(name=contract.HUBSPOT_LOST_INTAKE)
class HubSpotDealLostIntake:
    @workflow.run
    async def run(self, intake: HubSpotLostIntake) -> DealLostOutcome:
        ref = intake.ref
        stage = await contract.FETCH_HUBSPOT_DEAL_STAGE.execute(
            ref,
            HubSpotDealStage,
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
        return await contract.REPORT_DEAL_LOST.execute(
            DealLostReport(
                account_id=stage.account_id, lost=lost, delivery_id=workflow.info().workflow_id
            ),
            DealLostOutcome,
            summary=f"Deal lost: {intake.action} the onboarding of {stage.account_id}",
        )


class HubSpotChampionIntakeInput(BaseModel):
    ref: HubSpotContactRef


@workflow.defn(name=contract.HUBSPOT_CHAMPION_INTAKE)
class HubSpotChampionIntake:
    @workflow.run
    async def run(self, intake: HubSpotChampionIntakeInput) -> ChampionChangeOutcome:
        ref = intake.ref
        read = await contract.FETCH_HUBSPOT_CHAMPION.execute(
            ref,
            HubSpotChampion,
            summary=f"Fetch HubSpot contact {ref.contact_id} (portal {ref.portal_id})",
        )
        if read.contact is None or read.account_id is None:
            return ChampionChangeOutcome(
                account_id=read.account_id,
                workflow_id=workflow_id_for(read.account_id) if read.account_id else None,
                champion=None,
                applied=False,
                detail=read.detail,
            )
        change = ContactChange(
            contact=read.contact,
            by=f"hubspot contact {ref.contact_id}",
            reason=f"(HubSpot event {ref.event_id}: {read.detail})",
        )
        return await contract.REPORT_CHAMPION_CHANGE.execute(
            ChampionChangeReport(
                account_id=read.account_id,
                change=change,
                delivery_id=workflow.info().workflow_id,
            ),
            ChampionChangeOutcome,
            summary=f"New champion for {read.account_id} (HubSpot contact {ref.contact_id})",
        )
