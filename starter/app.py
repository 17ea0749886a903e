"""The HTTP ingress: signed CRM webhooks start onboardings, product events move milestones.

Every request is verified over its raw body before anything parses it, and answered 2xx
only after Temporal has taken what it was given (a start, an update, a signal): there is
no buffer in memory that a crash could lose. A rejected request starts and signals
nothing, and its answer names the field and the reason:

    {"error": "invalid_signature", "field": "X-Signature", "reason": "..."}

    uvicorn --factory starter.app:create_app     # or: onboarding serve / onboarding up
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import structlog
import temporalio.client
import uvicorn
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    disable_created_metrics,
    generate_latest,
)
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.crm import NOT_CLOSED_WON, HubSpotStages
from activities.logging import configure_logging
from starter import crm, events, signatures
from starter.auth import ApiAuth
from starter.client import TASK_QUEUE, connect, ui_url, worker_catching_up
from starter.codec import codec_router
from starter.ids import canonical_account_id
from starter.limits import BodyTooLarge, read_capped
from starter.money import FxRates, load_fx_rates
from starter.settings import IngressSettings, reveal
from starter.starting import (
    AlreadyOnboardedError,
    deliver_deal,
    report_deal_lost,
    send_product_events,
)
from workflows.intake import (
    HubSpotIntake,
    HubSpotLostIntake,
    intake_workflow_id,
    lost_intake_workflow_id,
)
from workflows.models import (
    ACCOUNT_ID,
    AwaitedEvents,
    ClosedWonDeal,
    DealAcceptance,
    DealLost,
    DealLostOutcome,
    HubSpotDealRef,
    OnboardingState,
    OnboardingStatus,
    Playbook,
    ProductEventBatch,
    workflow_id_for,
)
from workflows.playbook import load_playbook

log = structlog.get_logger("ingress")
R = TypeVar("R")
disable_created_metrics()  # `*_created` series only add noise to counters scraped here

# How long a request waits for Temporal before answering 503 (the sender retries).
TEMPORAL_TIMEOUT = timedelta(seconds=10)
# Retry-After (seconds) of the 503 answers: Temporal did not take the request in time;
# the onboarding's workflow task is being retried (a task held by a killed worker is
# retried after the 10 s workflow task timeout).
UNAVAILABLE_RETRY_AFTER_S = 5
CATCHING_UP_RETRY_AFTER_S = 10


class ApiError(Exception):
    """A request refused with `status`; `error` is the machine-readable reason, and
    `retry_after_s` (a 503's) becomes the `Retry-After` header."""

    def __init__(
        self, status: int, error: str, field: str, reason: str, retry_after_s: int | None = None
    ) -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.error, self.field, self.reason = status, error, field, reason
        self.retry_after_s = retry_after_s


class Metrics:
    """The ingress's own Prometheus metrics (the SDK's are appended on /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "onboarding_ingress_requests",
            "HTTP requests by route and status code",
            ["route", "status"],
            registry=registry,
        )
        self.rejections = Counter(
            "onboarding_ingress_rejections",
            "Requests refused, by route and reason",
            ["route", "reason"],
            registry=registry,
        )
        self.starts = Counter(
            "onboarding_ingress_onboardings_started",
            "Onboardings started by a delivered deal, by CRM",
            ["source"],
            registry=registry,
        )
        self.deliveries = Counter(
            "onboarding_ingress_deals",
            "Closed-won deals delivered, by CRM and outcome",
            ["source", "outcome"],
            registry=registry,
        )
        self.lost = Counter(
            "onboarding_ingress_deals_lost",
            "Closed-lost deals received, by CRM and outcome (applied / no_onboarding)",
            ["source", "outcome"],
            registry=registry,
        )
        self.signals = Counter(
            "onboarding_ingress_signals",
            "product_events signals sent to onboardings",
            registry=registry,
        )
        self.events = Counter(
            "onboarding_ingress_events",
            "Product events received, by outcome",
            ["outcome"],
            registry=registry,
        )


def _error_body(error: str, field: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "field": field, "reason": reason, **extra}


def _validation_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    out = []
    for e in exc.errors():
        loc = tuple(part for part in e["loc"] if part not in ("body", "path", "query"))
        out.append({"field": crm.dotted(loc) or "body", "reason": e["msg"]})
    return out


def create_app(
    settings: IngressSettings | None = None,
    client: temporalio.client.Client | None = None,
    *,
    playbook: Playbook | None = None,
    fx_rates: FxRates | None = None,
    sdk_metrics_url: str | None = None,
) -> FastAPI:
    """The ingress app. Without `client` it connects at startup from the environment."""
    settings = settings or IngressSettings()
    playbook = playbook or load_playbook(settings.playbook)
    rates = fx_rates or load_fx_rates(settings.fx_rates)
    metrics = Metrics(CollectorRegistry())
    auth = ApiAuth(settings.api_tokens)
    hubspot_stages = HubSpotStages(settings)
    state: dict[str, temporalio.client.Client] = {"client": client} if client else {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if "client" not in state:  # standalone (`uvicorn --factory`): set up like a service
            configure_logging()
            state["client"] = await connect()
        log.info("ingress ready", playbook=playbook.version, namespace=state["client"].namespace)
        yield

    app = FastAPI(
        title="Onboarding ingress",
        summary="Signed CRM webhooks start onboardings; product events move milestones.",
        version="1",
        lifespan=lifespan,
    )
    # /codec/*: the Web UI's and the CLI's decryption of payloads
    app.include_router(codec_router(auth, max_body_bytes=settings.max_body_bytes))

    def temporal() -> temporalio.client.Client:
        return state["client"]

    def link(workflow_id: str) -> str:
        return ui_url(workflow_id, temporal().namespace)

    # ------------------------------------------------------------------ plumbing

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(path, str(response.status_code)).inc()
        log.debug(
            "request",
            method=request.method,
            path=path,
            status=response.status_code,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.rejections.labels(route, exc.error).inc()
        log.warning("rejected", path=route, error=exc.error, field=exc.field, reason=exc.reason)
        retry = {} if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(
            _error_body(exc.error, exc.field, exc.reason), status_code=exc.status, headers=retry
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.rejections.labels(route, "invalid_request").inc()
        first = errors[0]
        return JSONResponse(
            _error_body("invalid_request", first["field"], first["reason"], errors=errors),
            status_code=422,
        )

    async def raw_body(request: Request) -> bytes:
        try:
            return await read_capped(request, settings.max_body_bytes)
        except BodyTooLarge as exc:
            raise ApiError(413, "too_large", "body", str(exc)) from None

    def parse_json(body: bytes) -> Any:
        try:
            value = json.loads(body)
            # A lone surrogate (`"\ud800"`) is valid JSON but not Unicode: nothing
            # downstream (Temporal's payloads, our answers) can carry it.
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeDecodeError:
            raise ApiError(400, "malformed", "body", "not UTF-8 text") from None
        except UnicodeEncodeError:
            raise ApiError(
                400, "malformed", "body", "a string holds a lone surrogate (not Unicode)"
            ) from None
        except json.JSONDecodeError as exc:
            raise ApiError(
                400, "malformed", "body", f"not JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        except RecursionError:
            raise ApiError(400, "malformed", "body", "JSON nested too deeply") from None
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            raise ApiError(400, "malformed", "body", f"not usable JSON: {exc}") from None
        return value

    def verified(check: Callable[[], object]) -> Any:
        try:
            return check()
        except signatures.SignatureError as exc:
            raise ApiError(401, "invalid_signature", exc.header, exc.reason) from None

    def as_domain(make: Callable[[], Any]) -> Any:
        """Payload -> domain model; a field problem becomes 422 naming the field."""
        try:
            return make()
        except crm.MalformedError as exc:
            raise ApiError(400, "malformed", exc.field, exc.reason) from None
        except crm.PayloadError as exc:
            raise ApiError(422, "invalid_payload", exc.field, exc.reason) from None
        except ValidationError as exc:
            first = _validation_errors(exc)[0]
            raise ApiError(422, "invalid_payload", first["field"], first["reason"]) from None

    def count_delivery(source: str, accepted: DealAcceptance) -> None:
        finished = accepted.state in (OnboardingState.COMPLETED, OnboardingState.CANCELLED)
        outcome = "started" if accepted.started else "already_running"
        metrics.deliveries.labels(source, "already_onboarded" if finished else outcome).inc()
        if accepted.started:
            metrics.starts.labels(source).inc()

    async def deliver(deal: ClosedWonDeal, delivery_id: str) -> dict[str, Any]:
        """One closed-won deal to its onboarding; the answer names the workflow."""
        source = deal.crm.source
        try:
            accepted = await deliver_deal(
                temporal(),
                deal,
                playbook,
                delivery_id,
                options=settings.start_options(),
                rpc_timeout=TEMPORAL_TIMEOUT,
            )
        except AlreadyOnboardedError as exc:
            accepted = exc.acceptance()
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ApiError(422, "invalid_payload", "account_id", reason) from None
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            raise _unavailable(exc, deal.account_id) from None
        count_delivery(source, accepted)
        log.info(
            "deal delivered",
            account_id=deal.account_id,
            workflow_id=accepted.workflow_id,
            started=accepted.started,
            delivery_id=delivery_id,
        )
        return _acceptance(accepted, link(accepted.workflow_id))

    async def lose(lost: crm.Lost, source: str, delivery_id: str) -> dict[str, Any]:
        """A closed-lost deal to its account's onboarding (the `deal_lost` rule)."""
        try:
            outcome = await report_deal_lost(
                temporal(),
                lost.account_id,
                DealLost.model_validate(
                    {"source": source, "deal_id": lost.deal_id, "reason": lost.reason}
                    | {"action": settings.deal_lost}
                ),
                delivery_id,
                rpc_timeout=TEMPORAL_TIMEOUT,
            )
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            raise _unavailable(exc, lost.account_id) from None
        return lost_answer(source, outcome)

    def lost_answer(source: str, outcome: DealLostOutcome) -> dict[str, Any]:
        metrics.lost.labels(source, "applied" if outcome.applied else "no_onboarding").inc()
        log.info(
            "deal lost",
            account_id=outcome.account_id,
            deal_id=outcome.deal_id,
            applied=outcome.applied,
            detail=outcome.detail,
        )
        return outcome.model_dump(mode="json") | {"ui_url": link(outcome.workflow_id)}

    # ------------------------------------------------------------------ CRM webhooks

    @app.post(
        "/webhooks/hubspot",
        summary="HubSpot deal.propertyChange webhooks (X-HubSpot-Signature-v3)",
        tags=["CRM webhooks"],
    )
    async def hubspot(request: Request) -> JSONResponse:
        body = await raw_body(request)
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
        changes, ignored = as_domain(lambda: crm.hubspot_stage_changes(parse_json(body)))
        meanings = await stage_meanings({stage for _, stage in changes})
        won, lost, unclear = crm.sort_stage_changes(changes, meanings)
        started = [
            (
                ref,
                await start_intake(
                    "HubSpotDealIntake",
                    HubSpotIntake(ref=ref, playbook=playbook, options=settings.start_options()),
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
                await start_intake(
                    "HubSpotDealLostIntake",
                    HubSpotLostIntake(ref=ref, action=settings.deal_lost),
                    lost_intake_workflow_id(ref),
                    f"HubSpot deal {ref.deal_id} (portal {ref.portal_id}) closed-lost",
                    DealLostOutcome,
                ),
            )
            for ref in lost
        ]
        results = await asyncio.gather(
            *(finish_intake(ref, h, won_answer) for ref, h in started),
            *(finish_intake(ref, h, hubspot_lost_answer) for ref, h in lost_started),
        )
        pending = any(r.get("pending") for r in results)
        return JSONResponse(
            {
                "deals": results[: len(started)],
                "lost": results[len(started) :],
                "ignored": [i.model_dump() for i in ignored + unclear],
            },
            status_code=202 if pending else 200,
        )

    async def stage_meanings(stages: set[str]) -> dict[str, crm.StageMeaning]:
        """What each stage id means. A stage HubSpot's pipelines must explain, when they
        cannot be read, is answered 503: HubSpot retries it (it never retries a 2xx)."""
        try:
            return await hubspot_stages.meanings(stages)
        except ApplicationError as exc:
            raise ApiError(
                503,
                "hubspot_unavailable",
                "dealstage",
                f"cannot tell which stages are closed-won: {exc.message}",
                UNAVAILABLE_RETRY_AFTER_S,
            ) from None

    async def start_intake(
        workflow: str, arg: BaseModel, intake_id: str, summary: str, result_type: type[R]
    ) -> temporalio.client.WorkflowHandle[Any, R]:
        try:
            return await temporal().start_workflow(
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
            return temporal().get_workflow_handle(intake_id, result_type=result_type)
        except RPCError as exc:
            raise _unavailable(exc) from None

    def won_answer(accepted: DealAcceptance) -> dict[str, Any]:
        count_delivery("hubspot", accepted)
        return _acceptance(accepted, link(accepted.workflow_id))

    def hubspot_lost_answer(outcome: DealLostOutcome) -> dict[str, Any]:
        return lost_answer("hubspot", outcome)

    async def finish_intake(
        ref: HubSpotDealRef,
        handle: temporalio.client.WorkflowHandle[Any, R],
        answer: Callable[[R], dict[str, Any]],
    ) -> dict[str, Any]:
        """The intake's answer, if the deal is fetched within `intake_wait_s`; else pending."""
        base = {
            "deal_id": ref.deal_id,
            "intake_workflow_id": handle.id,
            "intake_ui_url": link(handle.id),
        }
        try:
            result = await asyncio.wait_for(handle.result(), settings.intake_wait_s)
        except TimeoutError:
            return base | {
                "pending": True,
                "detail": "fetching the deal from HubSpot; it is acted on when it arrives",
            }
        except temporalio.client.WorkflowFailureError as exc:
            # The intake failed for good (e.g. the deal has no company): say why.
            cause: BaseException = exc.cause
            while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause:
                cause = cause.cause
            if isinstance(cause, ApplicationError) and cause.type == NOT_CLOSED_WON:
                return base | {"pending": False, "started": False, "detail": cause.message}
            return base | {"pending": False, "failed": True, "detail": str(cause)}
        return base | {"pending": False} | answer(result)

    @app.post(
        "/webhooks/salesforce",
        summary="Salesforce Opportunity JSON callout (X-Salesforce-Signature)",
        tags=["CRM webhooks"],
    )
    async def salesforce(request: Request) -> JSONResponse:
        body = await raw_body(request)
        verified(
            lambda: signatures.verify_salesforce(
                reveal(settings.salesforce_secrets),
                body,
                request.headers.get("X-Salesforce-Signature"),
            )
        )
        result = as_domain(
            lambda: crm.salesforce_opportunity(
                parse_json(body), settings.salesforce_closed_won_stages, rates=rates
            )
        )
        if isinstance(result, crm.Ignored):
            return JSONResponse({"ignored": [result.model_dump()]})
        if isinstance(result, crm.Lost):
            delivery = f"salesforce:{result.deal_id}"
            return JSONResponse({"lost": [await lose(result, "salesforce", delivery)]})
        answer = await deliver(result, f"salesforce:{result.crm.deal_id}")
        return JSONResponse(answer, status_code=201 if answer["started"] else 200)

    @app.post(
        "/webhooks/salesforce/outbound",
        summary="Salesforce Outbound Message (SOAP); authenticated by ?token=",
        tags=["CRM webhooks"],
        response_class=Response,
    )
    async def salesforce_outbound(request: Request, token: str | None = None) -> Response:
        body = await raw_body(request)
        verified(
            lambda: signatures.verify_outbound_token(
                reveal(settings.salesforce_outbound_tokens), token
            )
        )
        notes, ignored = as_domain(
            lambda: verified(
                lambda: crm.salesforce_outbound(
                    body,
                    settings.salesforce_org_ids,
                    settings.salesforce_closed_won_stages,
                    rates=rates,
                )
            )
        )
        for notification_id, deal in notes:
            if isinstance(deal, crm.Lost):
                await lose(deal, "salesforce", f"salesforce-om:{notification_id}")
            else:
                await deliver(deal, f"salesforce-om:{notification_id}")
        for item in ignored:
            log.info("ignored", source="salesforce", ref=item.ref, reason=item.reason)
        # Acknowledged only now: Salesforce redelivers anything not acknowledged.
        return Response(crm.salesforce_ack(True), media_type="text/xml")

    @app.post(
        "/webhooks/deals",
        summary="A full closed-won deal, signed per Standard Webhooks",
        tags=["CRM webhooks"],
    )
    async def generic(request: Request) -> JSONResponse:
        body = await raw_body(request)
        webhook_id = verified(
            lambda: signatures.verify_standard_webhook(
                reveal(settings.webhook_secrets),
                body,
                request.headers,
                settings.signature_tolerance_s,
            )
        )
        deal = as_domain(lambda: crm.generic_deal(parse_json(body), rates=rates))
        answer = await deliver(deal, f"webhook:{webhook_id}")
        return JSONResponse(answer, status_code=201 if answer["started"] else 200)

    # ------------------------------------------------------------------ product events

    @app.post(
        "/events",
        summary="Segment-compatible track / identify / group calls and batches",
        tags=["Product events"],
    )
    async def product_events(request: Request) -> JSONResponse:
        body = await raw_body(request)
        if request.headers.get("X-Signature") is not None:
            verified(
                lambda: signatures.verify_segment(
                    reveal(settings.segment_secrets), body, request.headers.get("X-Signature")
                )
            )
        elif request.headers.get(signatures.WEBHOOK_SIGNATURE) is not None:
            verified(
                lambda: signatures.verify_standard_webhook(
                    reveal(settings.events_webhook_secrets),
                    body,
                    request.headers,
                    settings.signature_tolerance_s,
                )
            )
        else:
            raise ApiError(
                401,
                "invalid_signature",
                "X-Signature",
                "unsigned: sign with X-Signature (Segment, HMAC-SHA1) or webhook-signature "
                "(Standard Webhooks)",
            )
        calls = as_domain(
            lambda: events.parse_calls(
                parse_json(body), settings.event_account_paths, received=datetime.now(UTC)
            )
        )
        batches, outcomes = events.plan_signals(calls, playbook)
        answers = await asyncio.gather(*(signal_account(b) for b in batches.values()))
        for answered in answers:
            outcomes.extend(answered)
        outcomes.sort(key=lambda o: o.index)
        for o in outcomes:
            metrics.events.labels(o.outcome).inc()
        summary = {kind: sum(o.outcome == kind for o in outcomes) for kind in events.OUTCOMES}
        return JSONResponse(
            {
                **summary,
                "signals": sum(1 for a in answers if any(o.outcome == "accepted" for o in a)),
                "events": [o.model_dump(exclude_none=True) for o in outcomes],
            }
        )

    async def signal_account(batch: events.AccountBatch) -> list[events.EventOutcome]:
        """Filter by what the onboarding still awaits, then one signal for the account."""
        running, awaited, finished = await onboarding_state(batch.account_id)
        if finished is not None:
            return batch.answered("ignored", finished)
        kept: events.AccountBatch | None = batch
        ignored: list[events.EventOutcome] = []
        if running and awaited is not None:
            kept, ignored = events.filter_awaited(batch, awaited)
        if kept is None:
            return ignored
        try:
            await send_product_events(
                temporal(),
                batch.account_id,
                ProductEventBatch(events=kept.events),
                playbook,
                running=running,
                options=settings.start_options(),
                rpc_timeout=TEMPORAL_TIMEOUT,
            )
        except AlreadyOnboardedError as exc:
            return ignored + kept.answered("ignored", f"onboarding already {exc.outcome}")
        except RPCError as exc:
            raise _unavailable(exc, batch.account_id) from None
        metrics.signals.inc()
        answers = kept.accepted()
        if not running:
            for a in answers:
                a.reason = "kept until the account's closed-won deal arrives"
        return ignored + answers

    async def onboarding_state(account_id: str) -> tuple[bool, list[str] | None, str | None]:
        """(running, the events it awaits, why it takes no more) from one describe()."""
        handle = temporal().get_workflow_handle(workflow_id_for(account_id))
        try:
            desc = await handle.describe(rpc_timeout=TEMPORAL_TIMEOUT)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False, None, None
            raise _unavailable(exc, account_id) from None
        if desc.status == WorkflowExecutionStatus.RUNNING:
            awaited = await desc.memo_value("awaited", None, type_hint=AwaitedEvents)
            return True, awaited.events if awaited else None, None
        if desc.status in (
            WorkflowExecutionStatus.COMPLETED,
            WorkflowExecutionStatus.CONTINUED_AS_NEW,
        ):
            return False, None, "the account's onboarding has finished"
        return False, None, None  # failed or terminated: a new onboarding may start

    # ------------------------------------------------------------------ status and ops

    def reader(request: Request) -> None:
        """Customer data only for a valid token or sign-in, checked before Temporal is asked."""
        refused = auth.refusal(request)
        if refused is not None:
            raise ApiError(refused.status, refused.error, refused.field, refused.reason)

    @app.get(
        "/accounts/{account_id}",
        summary="The onboarding's full status (its `status` query); needs a token",
        description="`Authorization: Bearer <token>` (one of ONBOARDING_API_TOKENS), or the "
        "cookie /codec/login sets in a browser.",
        tags=["Status"],
        response_model=OnboardingStatus,
        responses={
            401: {"description": "No valid token or sign-in"},
            404: {"description": "No onboarding for that account"},
            503: {"description": "No token configured, or Temporal did not answer"},
        },
        dependencies=[Depends(reader)],
    )
    async def account(account_id: str) -> JSONResponse:
        account_id = canonical_account_id(account_id)
        if not ACCOUNT_ID.match(account_id):
            raise ApiError(422, "invalid_request", "account_id", f"{account_id!r} is not an id")
        workflow_id = workflow_id_for(account_id)
        handle = temporal().get_workflow_handle(workflow_id)
        try:
            status = await asyncio.wait_for(
                handle.query("status", result_type=OnboardingStatus),
                TEMPORAL_TIMEOUT.total_seconds(),
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ApiError(
                    404, "not_found", "account_id", f"no onboarding for account {account_id}"
                ) from None
            raise _unavailable(exc, account_id) from None
        except TimeoutError:
            raise ApiError(
                503,
                "temporal_unavailable",
                "worker",
                "no worker answered the status query",
                UNAVAILABLE_RETRY_AFTER_S,
            ) from None
        body = status.model_dump(mode="json") | {"ui_url": link(workflow_id)}
        return JSONResponse(body)

    @app.get("/healthz", summary="The process is up", tags=["Operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Temporal is reachable", tags=["Operations"])
    async def readyz() -> JSONResponse:
        try:
            await temporal().service_client.check_health(timeout=timedelta(seconds=3))
        except Exception as exc:
            return JSONResponse(
                _error_body("temporal_unavailable", "temporal", str(exc) or type(exc).__name__),
                status_code=503,
                headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
            )
        return JSONResponse({"status": "ready", "namespace": temporal().namespace})

    @app.get("/metrics", summary="Prometheus metrics", tags=["Operations"])
    async def prometheus() -> Response:
        text = generate_latest(metrics.registry)
        if sdk_metrics_url:
            async with httpx.AsyncClient(timeout=2) as http:
                try:
                    text += (await http.get(sdk_metrics_url)).content
                except httpx.HTTPError as exc:
                    log.warning("sdk metrics unavailable", url=sdk_metrics_url, error=str(exc))
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Describe the webhook bodies in the OpenAPI schema. The routes read raw bytes (the
    signature is checked before anything parses them), so FastAPI cannot infer them."""
    any_object = {"type": "object", "additionalProperties": True}
    call = any_object | {
        "description": "A Segment call: type, messageId, event, properties / traits, "
        "userId, groupId or context.groupId, timestamp"
    }
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "/webhooks/deals": ("application/json", {"$ref": "#/components/schemas/ClosedWonDeal"}),
        "/webhooks/hubspot": (
            "application/json",
            {"type": "array", "minItems": 1, "maxItems": 100, "items": any_object},
        ),
        "/webhooks/salesforce": (
            "application/json",
            any_object | {"required": ["Opportunity", "Account"]},
        ),
        "/webhooks/salesforce/outbound": ("text/xml", {"type": "string"}),
        "/events": (
            "application/json",
            {
                "oneOf": [
                    call,
                    {"type": "array", "maxItems": 1000, "items": call},
                    {
                        "type": "object",
                        "required": ["batch"],
                        "properties": {"batch": {"type": "array", "maxItems": 1000, "items": call}},
                    },
                ]
            },
        ),
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            deal = ClosedWonDeal.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(deal.pop("$defs", {}))
            # A deal in another currency gives `acv` and `currency` instead (starter.deals).
            deal["required"].remove("acv_usd")
            components["ClosedWonDeal"] = deal
            for path, (media, body) in bodies.items():
                schema["paths"][path]["post"]["requestBody"] = {
                    "required": True,
                    "content": {media: {"schema": body}},
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _acceptance(accepted: DealAcceptance, ui: str) -> dict[str, Any]:
    return {
        "account_id": accepted.account_id,
        "workflow_id": accepted.workflow_id,
        "ui_url": ui,
        "started": accepted.started,
        "state": accepted.state.value,
        "detail": accepted.detail,
    }


def _unavailable(exc: BaseException, account_id: str | None = None) -> ApiError:
    """The 503 for a request Temporal did not take; nothing was started or changed."""
    if worker_catching_up(exc):
        log.warning("worker catching up", account_id=account_id, error=str(exc))
        return ApiError(
            503,
            "worker_catching_up",
            "temporal",
            f"the worker is catching up on this onboarding ({exc}); nothing was recorded: "
            f"retry in {CATCHING_UP_RETRY_AFTER_S} s",
            CATCHING_UP_RETRY_AFTER_S,
        )
    log.warning("temporal unavailable", account_id=account_id, error=str(exc))
    return ApiError(
        503,
        "temporal_unavailable",
        "temporal",
        f"Temporal did not take the request: {exc}",
        UNAVAILABLE_RETRY_AFTER_S,
    )


def _public_uri(request: Request, public_url: str | None) -> str:
    """The URI the sender called (HubSpot signs it): behind a proxy, set ONBOARDING_PUBLIC_URL."""
    if not public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{public_url.rstrip('/')}{request.url.path}{query}"


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that handles its own signals (`onboarding up`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    client: temporalio.client.Client,
    stop: asyncio.Event,
    settings: IngressSettings | None = None,
    *,
    sdk_metrics_url: str | None = None,
) -> None:
    """Serve the ingress on `settings.host:port` until `stop` is set."""
    settings = settings or IngressSettings()
    app = create_app(settings, client, sdk_metrics_url=sdk_metrics_url)
    server = _EmbeddedServer(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_config=None, access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopped.cancel()
    try:
        await task
    except SystemExit:  # uvicorn exits when it cannot bind
        raise RuntimeError(
            f"the HTTP ingress cannot listen on {settings.host}:{settings.port} "
            "(in use? set ONBOARDING_PORT)"
        ) from None
    if not stop.is_set():
        raise RuntimeError("the HTTP ingress stopped unexpectedly")
