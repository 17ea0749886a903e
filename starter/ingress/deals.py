"""The CRM webhooks: closed-won deals start onboardings, closed-lost deals reach them,
and a new champion reaches its account's onboarding (rules §6.3 (docs/rules.md)).

    POST /webhooks/hubspot               deal.propertyChange, contact.propertyChange
                                         (X-HubSpot-Signature-v3)
    POST /webhooks/salesforce            Opportunity or OpportunityContactRole JSON
                                         (X-Salesforce-Signature)
    POST /webhooks/salesforce/outbound   Outbound Message (SOAP, ?token=)
    POST /webhooks/deals                 a full deal (Standard Webhooks)

Each is answered 2xx only after Temporal has taken the deal (an update or a started
intake workflow): a 2xx is never a deal dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
import temporalio.client
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError

from activities.crm_records import StageMeaning
from activities.starting import (
    AlreadyOnboardedError,
    deliver_deal,
    report_champion_change,
    report_deal_lost,
)
from activities.temporal_errors import update_rejection
from starter import crm, signatures
from starter.ingress.errors import (
    INTAKE_FAILED_RETRY_AFTER_S,
    UNAVAILABLE_RETRY_AFTER_S,
    ApiError,
    error_body,
    unavailable,
)
from starter.ingress.reading import RawBody, as_domain, parse_json, verified
from starter.ingress.state import TEMPORAL_TIMEOUT, Ingress, IngressDep
from starter.settings import reveal
from workflows import contract
from workflows.contract import (
    TASK_QUEUE,
    champion_intake_workflow_id,
    intake_workflow_id,
    lost_intake_workflow_id,
)
from workflows.models import (
    ChampionChangeOutcome,
    ClosedWonDeal,
    ContactChange,
    DealAcceptance,
    DealLost,
    DealLostOutcome,
    HubSpotChampionIntakeInput,
    HubSpotContactRef,
    HubSpotDealRef,
    HubSpotIntake,
    HubSpotLostIntake,
    OnboardingState,
)

log = structlog.get_logger("ingress")
R = TypeVar("R")

router = APIRouter(tags=["CRM webhooks"])


# ---------------------------------------------------------------------- the CRM webhooks


@router.post(
    "/webhooks/hubspot",
    summary="HubSpot deal stage and contact buying-role webhooks (X-HubSpot-Signature-v3)",
)
async def hubspot(request: Request, body: RawBody, ingress: IngressDep) -> JSONResponse:
    settings = ingress.settings
    uri = _public_uri(request, settings.public_url)
    verified(
        lambda: signatures.verify_hubspot_v3(
            reveal(settings.hubspot_secrets),
            method=request.method,
            uri=uri,
            body=body,
            signature=request.headers.get("X-HubSpot-Signature-v3"),
            timestamp=request.headers.get("X-HubSpot-Request-Timestamp"),
            tolerance_s=settings.signature_tolerance_s,
        )
    )
    events = parse_json(body)
    changes, ignored = as_domain(lambda: crm.hubspot_stage_changes(events))
    champions, not_champions = as_domain(
        lambda: crm.hubspot_champion_changes(
            events, settings.hubspot_champion_property, settings.hubspot_champion_values
        )
    )
    # The contact events are the champion parser's to explain, not the stage parser's.
    taken = {f"event {ref.event_id}" for ref in champions} | {i.ref for i in not_champions}
    ignored = [i for i in ignored if i.ref not in taken] + not_champions
    meanings = await _stage_meanings(ingress, {stage for _, stage in changes})
    won, lost, unclear = crm.sort_stage_changes(changes, meanings)
    started = [
        (
            ref,
            await _start_intake(
                ingress,
                contract.HUBSPOT_INTAKE,
                HubSpotIntake(ref=ref, playbook=ingress.playbook, options=settings.start_options()),
                intake_workflow_id(ref),
                f"HubSpot deal {ref.deal_id} (portal {ref.portal_id}) closed-won",
                DealAcceptance,
            ),
        )
        for ref in won
    ]
    lost_started = [
        (
            ref,
            await _start_intake(
                ingress,
                contract.HUBSPOT_LOST_INTAKE,
                HubSpotLostIntake(ref=ref, action=settings.deal_lost),
                lost_intake_workflow_id(ref),
                f"HubSpot deal {ref.deal_id} (portal {ref.portal_id}) closed-lost",
                DealLostOutcome,
            ),
        )
        for ref in lost
    ]
    champions_started = [
        (
            ref,
            await _start_intake(
                ingress,
                contract.HUBSPOT_CHAMPION_INTAKE,
                HubSpotChampionIntakeInput(ref=ref),
                champion_intake_workflow_id(ref),
                f"HubSpot contact {ref.contact_id} (portal {ref.portal_id}) became champion",
                ChampionChangeOutcome,
            ),
        )
        for ref in champions
    ]

    def won_answer(accepted: DealAcceptance) -> dict[str, Any]:
        _count_delivery(ingress, "hubspot", accepted)
        return _acceptance(accepted, ingress.link(accepted.workflow_id))

    def lost_answer(outcome: DealLostOutcome) -> dict[str, Any]:
        return _lost_answer(ingress, "hubspot", outcome)

    def champion_answer(outcome: ChampionChangeOutcome) -> dict[str, Any]:
        return _champion_answer(ingress, "hubspot", outcome)

    results = await asyncio.gather(
        *(_finish_intake(ingress, ref, h, won_answer) for ref, h in started),
        *(_finish_intake(ingress, ref, h, lost_answer) for ref, h in lost_started),
        *(_finish_intake(ingress, ref, h, champion_answer) for ref, h in champions_started),
    )
    deals_end = len(started) + len(lost_started)
    answer: dict[str, Any] = {
        "deals": results[: len(started)],
        "lost": results[len(started) : deals_end],
        "champions": results[deals_end:],
        "ignored": [i.model_dump() for i in ignored + unclear],
    }
    failed = [r for r in results if r.get("failed")]
    if failed:
        # Never acknowledge a won (or lost) deal or a new champion that was not acted on:
        # a 5xx makes HubSpot deliver it again, and its webhook log shows the reason.
        reason = "; ".join(
            f"deal {r['deal_id']}: {r['detail']}"
            if "deal_id" in r
            else f"contact {r['contact_id']}: {r['detail']}"
            for r in failed
        )
        field = "deals" if any("deal_id" in r for r in failed) else "champions"
        answer |= error_body("intake_failed", field, reason)
        headers = {"Retry-After": str(INTAKE_FAILED_RETRY_AFTER_S)}
        return JSONResponse(answer, status_code=503, headers=headers)
    pending = any(r.get("pending") for r in results)
    return JSONResponse(answer, status_code=202 if pending else 200)


@router.post(
    "/webhooks/salesforce",
    summary="Salesforce Opportunity or OpportunityContactRole JSON callout "
    "(X-Salesforce-Signature)",
)
async def salesforce(request: Request, body: RawBody, ingress: IngressDep) -> JSONResponse:
    settings = ingress.settings
    verified(
        lambda: signatures.verify_salesforce(
            reveal(settings.salesforce_secrets),
            body,
            request.headers.get("X-Salesforce-Signature"),
        )
    )
    payload = parse_json(body)
    if isinstance(payload, dict) and crm.CONTACT_ROLE in payload:
        role = as_domain(
            lambda: crm.salesforce_contact_role(payload, settings.salesforce_champion_roles)
        )
        if isinstance(role, crm.Ignored):
            log.info("ignored", source="salesforce", ref=role.ref, reason=role.reason)
            return JSONResponse({"ignored": [role.model_dump()]})
        return JSONResponse({"champions": [await _champion(ingress, role, "salesforce")]})
    result = as_domain(
        lambda: crm.salesforce_opportunity(
            payload,
            settings.salesforce_closed_won_stages,
            rates=ingress.rates,
            products=settings.crm_products,
        )
    )
    if isinstance(result, crm.Ignored):
        return JSONResponse({"ignored": [result.model_dump()]})
    if isinstance(result, crm.Lost):
        delivery = f"salesforce:{result.deal_id}"
        return JSONResponse({"lost": [await _lose(ingress, result, "salesforce", delivery)]})
    answer = await _deliver(ingress, result, f"salesforce:{result.crm.deal_id}")
    return JSONResponse(answer, status_code=_delivered_status(answer))


@router.post(
    "/webhooks/salesforce/outbound",
    summary="Salesforce Outbound Message (SOAP); authenticated by ?token=",
    response_class=Response,
)
async def salesforce_outbound(
    body: RawBody, ingress: IngressDep, token: str | None = None
) -> Response:
    settings = ingress.settings
    verified(
        lambda: signatures.verify_outbound_token(reveal(settings.salesforce_outbound_tokens), token)
    )
    notes, ignored = as_domain(
        lambda: verified(
            lambda: crm.salesforce_outbound(
                body,
                settings.salesforce_org_ids,
                settings.salesforce_closed_won_stages,
                rates=ingress.rates,
            )
        )
    )
    for notification_id, deal in notes:
        if isinstance(deal, crm.Lost):
            await _lose(ingress, deal, "salesforce", f"salesforce-om:{notification_id}")
        else:
            await _deliver(ingress, deal, f"salesforce-om:{notification_id}")
    for item in ignored:
        log.info("ignored", source="salesforce", ref=item.ref, reason=item.reason)
    # Acknowledged only now: Salesforce redelivers anything not acknowledged.
    return Response(crm.salesforce_ack(True), media_type="text/xml")


@router.post(
    "/webhooks/deals",
    summary="A full closed-won deal, signed per Standard Webhooks",
)
async def generic(request: Request, body: RawBody, ingress: IngressDep) -> JSONResponse:
    settings = ingress.settings
    webhook_id = verified(
        lambda: signatures.verify_standard_webhook(
            reveal(settings.webhook_secrets),
            body,
            request.headers,
            settings.signature_tolerance_s,
        )
    )
    deal = as_domain(lambda: crm.generic_deal(parse_json(body), rates=ingress.rates))
    answer = await _deliver(ingress, deal, f"webhook:{webhook_id}")
    return JSONResponse(answer, status_code=_delivered_status(answer))


# ---------------------------------------------------------------------- won and lost deals


async def _deliver(ingress: Ingress, deal: ClosedWonDeal, delivery_id: str) -> dict[str, Any]:
    """One closed-won deal to its onboarding; the answer names the workflow."""
    source = deal.crm.source
    try:
        accepted = await deliver_deal(
            ingress.temporal,
            deal,
            ingress.playbook,
            delivery_id,
            options=ingress.settings.start_options(),
            rpc_timeout=TEMPORAL_TIMEOUT,
        )
    except AlreadyOnboardedError as exc:
        accepted = exc.acceptance()
    except WorkflowUpdateFailedError as exc:
        raise ApiError(422, "invalid_payload", "account_id", update_rejection(exc)) from None
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise unavailable(exc, deal.account_id) from None
    _count_delivery(ingress, source, accepted)
    log.info(
        "deal delivered",
        account_id=deal.account_id,
        workflow_id=accepted.workflow_id,
        started=accepted.started,
        delivery_id=delivery_id,
    )
    return _acceptance(accepted, ingress.link(accepted.workflow_id))


async def _lose(ingress: Ingress, lost: crm.Lost, source: str, delivery_id: str) -> dict[str, Any]:
    """A closed-lost deal to its account's onboarding (the `deal_lost` rule)."""
    try:
        outcome = await report_deal_lost(
            ingress.temporal,
            lost.account_id,
            DealLost.model_validate(
                {"source": source, "deal_id": lost.deal_id, "reason": lost.reason}
                | {"action": ingress.settings.deal_lost}
            ),
            delivery_id,
            rpc_timeout=TEMPORAL_TIMEOUT,
        )
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise unavailable(exc, lost.account_id) from None
    return _lost_answer(ingress, source, outcome)


def _lost_answer(ingress: Ingress, source: str, outcome: DealLostOutcome) -> dict[str, Any]:
    ingress.metrics.lost.labels(source, "applied" if outcome.applied else "no_onboarding").inc()
    log.info(
        "deal lost",
        account_id=outcome.account_id,
        deal_id=outcome.deal_id,
        applied=outcome.applied,
        detail=outcome.detail,
    )
    return outcome.model_dump(mode="json") | {"ui_url": ingress.link(outcome.workflow_id)}


async def _champion(ingress: Ingress, new: crm.NewChampion, source: str) -> dict[str, Any]:
    """A new champion to its account's onboarding (`change_contact`, rules §6.3)."""
    change = ContactChange(contact=new.contact, by=f"{source} {new.ref}", reason=f"({new.ref})")
    try:
        outcome = await report_champion_change(
            ingress.temporal, new.account_id, change, None, rpc_timeout=TEMPORAL_TIMEOUT
        )
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise unavailable(exc, new.account_id) from None
    return _champion_answer(ingress, source, outcome)


def _champion_answer(
    ingress: Ingress, source: str, outcome: ChampionChangeOutcome
) -> dict[str, Any]:
    ingress.metrics.champions.labels(source, "applied" if outcome.applied else "not_applied").inc()
    log.info(
        "champion change",
        account_id=outcome.account_id,
        champion=outcome.champion,
        applied=outcome.applied,
        window_opened=outcome.window_opened,
        detail=outcome.detail,
    )
    link = ingress.link(outcome.workflow_id) if outcome.workflow_id else None
    return outcome.model_dump(mode="json") | {"ui_url": link}


def _delivered_status(answer: dict[str, Any]) -> int:
    """201 when this delivery started an onboarding, 202 when its expansion onboarding
    waits for the running one (rules §2), else 200."""
    return 201 if answer["started"] else 202 if answer["queued"] else 200


def _count_delivery(ingress: Ingress, source: str, accepted: DealAcceptance) -> None:
    finished = accepted.state in (OnboardingState.COMPLETED, OnboardingState.CANCELLED)
    outcome = (
        "started"
        if accepted.started
        else "queued"
        if accepted.queued
        else "already_onboarded"
        if finished
        else "already_running"
    )
    ingress.metrics.deliveries.labels(source, outcome).inc()
    if accepted.started:
        ingress.metrics.starts.labels(source).inc()


def _acceptance(accepted: DealAcceptance, ui: str) -> dict[str, Any]:
    return {
        "account_id": accepted.account_id,
        "workflow_id": accepted.workflow_id,
        "ui_url": ui,
        "started": accepted.started,
        "queued": accepted.queued,
        "state": accepted.state.value,
        "detail": accepted.detail,
    }


# ---------------------------------------------------------------------- HubSpot's intakes


async def _stage_meanings(ingress: Ingress, stages: set[str]) -> dict[str, StageMeaning]:
    """What each stage id means. A stage HubSpot's pipelines must explain, when they
    cannot be read, is answered 503: HubSpot retries it (it never retries a 2xx)."""
    try:
        return await ingress.hubspot_stages.meanings(stages)
    except ApplicationError as exc:
        raise ApiError(
            503,
            "hubspot_unavailable",
            "dealstage",
            f"cannot tell which stages are closed-won: {exc.message}",
            UNAVAILABLE_RETRY_AFTER_S,
        ) from None


async def _start_intake(
    ingress: Ingress,
    workflow: str,
    arg: BaseModel,
    intake_id: str,
    summary: str,
    result_type: type[R],
) -> temporalio.client.WorkflowHandle[Any, R]:
    try:
        return await ingress.temporal.start_workflow(
            workflow,
            arg,
            id=intake_id,
            task_queue=TASK_QUEUE,
            result_type=result_type,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=summary,
            rpc_timeout=TEMPORAL_TIMEOUT,
        )
    except WorkflowAlreadyStartedError:  # delivered before: its intake has the answer
        return ingress.temporal.get_workflow_handle(intake_id, result_type=result_type)
    except RPCError as exc:
        raise unavailable(exc) from None


async def _finish_intake(
    ingress: Ingress,
    ref: HubSpotDealRef | HubSpotContactRef,
    handle: temporalio.client.WorkflowHandle[Any, R],
    answer: Callable[[R], dict[str, Any]],
) -> dict[str, Any]:
    """The intake's answer, if the deal (or contact) is fetched within `intake_wait_s`;
    else pending."""
    what, key, ref_id = (
        ("deal", "deal_id", ref.deal_id)
        if isinstance(ref, HubSpotDealRef)
        else ("contact", "contact_id", ref.contact_id)
    )
    base = {
        key: ref_id,
        "intake_workflow_id": handle.id,
        "intake_ui_url": ingress.link(handle.id),
    }
    try:
        result = await asyncio.wait_for(handle.result(), ingress.settings.intake_wait_s)
    except TimeoutError:
        return base | {
            "pending": True,
            "detail": f"fetching the {what} from HubSpot; it is acted on when it arrives",
        }
    except temporalio.client.WorkflowFailureError as exc:
        # The intake failed for good (e.g. the deal has no company): say why.
        cause: BaseException = exc.cause
        while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause:
            cause = cause.cause
        if isinstance(cause, ApplicationError) and cause.type == contract.DEAL_NOT_CLOSED_WON:
            return base | {"pending": False, "started": False, "detail": cause.message}
        return base | {"pending": False, "failed": True, "detail": str(cause)}
    return base | {"pending": False} | answer(result)


def _public_uri(request: Request, public_url: str | None) -> str:
    """The URI the sender called (HubSpot signs it): behind a proxy, set ONBOARDING_PUBLIC_URL."""
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_url.rstrip('/')}{request.url.path}{query}"
