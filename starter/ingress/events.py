"""Product events: Segment-compatible calls move onboarding milestones.

    POST /events    track / identify / group calls and batches, signed with X-Signature
                    (Segment, HMAC-SHA1) or webhook-signature (Standard Webhooks)

Events are grouped by account, filtered by what each onboarding still awaits, and sent
as one `product_events` signal per account (signal-with-start: kept until the account's
closed-won deal arrives), shared with the requests for that account that arrive at the
same time (`signal_queue.py`). The answer gives each event's outcome.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.converter import WorkflowSerializationContext
from temporalio.service import RPCError, RPCStatusCode

from activities.starting import AlreadyOnboardedError, send_product_events
from starter import events, signatures
from starter.ingress.errors import ApiError, unavailable
from starter.ingress.reading import RawBody, as_domain, parse_json, verified
from starter.ingress.state import TEMPORAL_TIMEOUT, Ingress, IngressDep
from starter.settings import reveal
from workflows.event_mapping import event_names
from workflows.models import AwaitedEvents, ProductEventBatch, workflow_id_for

router = APIRouter(tags=["Product events"])


@router.post(
    "/events",
    summary="Segment-compatible track / identify / group calls and batches",
)
async def product_events(request: Request, body: RawBody, ingress: IngressDep) -> JSONResponse:
    settings = ingress.settings
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
    batches, outcomes = events.plan_signals(calls, ingress.playbook)
    look = functools.partial(_onboarding_state, ingress)
    signal = functools.partial(_signal_account, ingress)
    answers = await asyncio.gather(
        *(ingress.signals.send(b, look, signal) for b in batches.values())
    )
    for answered in answers:
        outcomes.extend(answered)
    outcomes.sort(key=lambda o: o.index)
    summary = dict.fromkeys(events.OUTCOMES, 0)
    for o in outcomes:
        summary[o.outcome] += 1
    for kind, count in summary.items():
        if count:
            ingress.metrics.events.labels(kind).inc(count)
    return JSONResponse(
        {
            **summary,
            "signals": sum(1 for a in answers if any(o.outcome == "accepted" for o in a)),
            "events": [o.answer() for o in outcomes],
        }
    )


async def _signal_account(
    ingress: Ingress, account_id: str, batches: list[events.AccountBatch], state: OnboardingLook
) -> list[list[events.EventOutcome]]:
    """Filter each batch (of one request each) by what the onboarding still awaits
    (`state`, looked at after they arrived), then one signal for the account with what is
    left: each batch's outcomes, in order."""
    running, awaited, finished = state
    if finished is not None:
        return [batch.answered("ignored", finished) for batch in batches]
    filtered = [_awaited(ingress, batch, running, awaited) for batch in batches]
    sent = [event for kept, _ in filtered if kept is not None for event in kept.events]
    if not sent:
        return [ignored for _, ignored in filtered]
    try:
        await send_product_events(
            ingress.temporal,
            account_id,
            ProductEventBatch(events=sent),
            ingress.playbook,
            running=running,
            options=ingress.settings.start_options(),
            rpc_timeout=TEMPORAL_TIMEOUT,
        )
    except AlreadyOnboardedError as exc:
        why = f"onboarding already {exc.outcome}"
        return [
            ignored + (kept.answered("ignored", why) if kept else []) for kept, ignored in filtered
        ]
    except RPCError as exc:
        raise unavailable(exc, account_id) from None
    ingress.metrics.signals.inc()
    return [ignored + (_accepted(kept, running) if kept else []) for kept, ignored in filtered]


def _awaited(
    ingress: Ingress, batch: events.AccountBatch, running: bool, awaited: list[str] | None
) -> tuple[events.AccountBatch | None, list[events.EventOutcome]]:
    """The batch's events the onboarding awaits (None: none), and the others' outcomes."""
    if running and awaited is not None:
        return events.filter_awaited(batch, awaited)
    if not running:  # identify calls start no onboarding (rules §7)
        names = event_names(ingress.playbook)
        return events.filter_awaited(batch, names, events.NO_ONBOARDING)
    return batch, []


def _accepted(kept: events.AccountBatch, running: bool) -> list[events.EventOutcome]:
    answers = kept.accepted()
    if not running:
        for a in answers:
            a.reason = "kept until the account's closed-won deal arrives"
    return answers


# (running, the events it awaits, why it takes no more)
OnboardingLook = tuple[bool, list[str] | None, str | None]


async def _onboarding_state(ingress: Ingress, account_id: str) -> OnboardingLook:
    """(running, the events it awaits, why it takes no more) from one describe.

    The describe's raw answer is read for just its status and the `awaited` memo: the
    SDK's `describe()` also decodes every search attribute into typed values, which
    was about a quarter of the ingress's busy CPU under a burst of product events
    (README *Benchmark*)."""
    client = ingress.temporal
    workflow_id = workflow_id_for(account_id)
    try:
        desc = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
            ),
            retry=True,
            timeout=TEMPORAL_TIMEOUT,
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False, None, None
        raise unavailable(exc, account_id) from None
    info = desc.workflow_execution_info
    status = WorkflowExecutionStatus(info.status)
    if status == WorkflowExecutionStatus.RUNNING:
        memo = info.memo.fields.get("awaited")
        if memo is None:
            return True, None, None
        converter = client.data_converter.with_context(
            WorkflowSerializationContext(namespace=client.namespace, workflow_id=workflow_id)
        )
        [awaited] = await converter.decode([memo], [AwaitedEvents])
        return True, awaited.events, None
    if status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW):
        return False, None, "the account's onboarding has finished"
    return False, None, None  # failed or terminated: a new onboarding may start
