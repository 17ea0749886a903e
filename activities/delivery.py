"""`deliver_deal`: hand a fetched CRM deal to the account's onboarding (a start, or the
`provide_deal` update); `report_deal_lost`: a lost deal, to its `deal_lost` update;
`report_champion_change`: a CRM's new champion, to its `change_contact` update."""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.starting import (
    AlreadyOnboardedError,
    deliver_deal,
    report_champion_change,
    report_deal_lost,
)
from activities.temporal_errors import update_rejection
from workflows import contract
from workflows.models import (
    ChampionChangeOutcome,
    ChampionChangeReport,
    DealAcceptance,
    DealHandoff,
    DealLostOutcome,
    DealLostReport,
)

log = structlog.get_logger("activities.delivery")


@activity.defn(name=contract.DELIVER_DEAL.name)
async def deliver_deal_activity(handoff: DealHandoff) -> DealAcceptance:
    """Idempotent: the onboarding keys the delivery by `delivery_id`."""
    delivery = handoff.delivery
    deal = delivery.deal
    try:
        accepted = await deliver_deal(
            activity.client(),
            deal,
            delivery.playbook,
            delivery.delivery_id,
            options=handoff.options,
        )
    except AlreadyOnboardedError as exc:
        return exc.acceptance()
    except WorkflowUpdateFailedError as exc:  # the onboarding's validator refused the deal
        raise ApplicationError(
            update_rejection(exc), type=contract.DEAL_REJECTED, non_retryable=True
        ) from exc
    log.info(
        "deal delivered",
        account_id=deal.account_id,
        workflow_id=accepted.workflow_id,
        started=accepted.started,
    )
    return accepted


@activity.defn(name=contract.REPORT_DEAL_LOST.name)
async def report_deal_lost_activity(report: DealLostReport) -> DealLostOutcome:
    """Idempotent: the update's id is the report's `delivery_id`."""
    outcome = await report_deal_lost(
        activity.client(), report.account_id, report.lost, report.delivery_id
    )
    log.info(
        "deal lost", account_id=report.account_id, applied=outcome.applied, detail=outcome.detail
    )
    return outcome


@activity.defn(name=contract.REPORT_CHAMPION_CHANGE.name)
async def report_champion_change_activity(report: ChampionChangeReport) -> ChampionChangeOutcome:
    """Idempotent: the update's id is the report's `delivery_id`, and the onboarding
    refuses a champion it already has."""
    outcome = await report_champion_change(
        activity.client(), report.account_id, report.change, report.delivery_id
    )
    log.info(
        "champion change",
        account_id=report.account_id,
        applied=outcome.applied,
        window_opened=outcome.window_opened,
        detail=outcome.detail,
    )
    return outcome
