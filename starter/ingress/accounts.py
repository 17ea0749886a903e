"""An onboarding's status for people allowed to read customer data.

GET /accounts/{account_id}    the workflow's `status` query, plus its Web UI link;
                              needs `Authorization: Bearer <token>` or the sign-in cookie
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

from starter.ingress.errors import UNAVAILABLE_RETRY_AFTER_S, ApiError, unavailable
from starter.ingress.reading import reader
from starter.ingress.state import TEMPORAL_TIMEOUT, IngressDep
from workflows import contract
from workflows.ids import canonical_account_id
from workflows.models import ACCOUNT_ID, OnboardingStatus, workflow_id_for

router = APIRouter(tags=["Status"])


@router.get(
    "/accounts/{account_id}",
    summary="The onboarding's full status (its `status` query); needs a token",
    description="`Authorization: Bearer <token>` (one of ONBOARDING_API_TOKENS), or the "
    "cookie /codec/login sets in a browser.",
    response_model=OnboardingStatus,
    responses={
        401: {"description": "No valid token or sign-in"},
        404: {"description": "No onboarding for that account"},
        503: {"description": "No token configured, or Temporal did not answer"},
    },
    dependencies=[Depends(reader)],
)
async def account(account_id: str, ingress: IngressDep) -> JSONResponse:
    account_id = canonical_account_id(account_id)
    if not ACCOUNT_ID.match(account_id):
        raise ApiError(422, "invalid_request", "account_id", f"{account_id!r} is not an id")
    workflow_id = workflow_id_for(account_id)
    handle = ingress.temporal.get_workflow_handle(workflow_id)
    try:
        status = await asyncio.wait_for(
            handle.query(contract.STATUS, result_type=OnboardingStatus),
            TEMPORAL_TIMEOUT.total_seconds(),
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(
                404, "not_found", "account_id", f"no onboarding for account {account_id}"
            ) from None
        raise unavailable(exc, account_id) from None
    except TimeoutError:
        raise ApiError(
            503,
            "temporal_unavailable",
            "worker",
            "no worker answered the status query",
            UNAVAILABLE_RETRY_AFTER_S,
        ) from None
    body = status.model_dump(mode="json") | {"ui_url": ingress.link(workflow_id)}
    return JSONResponse(body)
