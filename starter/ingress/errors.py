"""Refused requests: `ApiError`, the error body every refusal has, and the handlers that
answer with it.

    {"error": "invalid_signature", "field": "X-Signature", "reason": "..."}

A refused payload (422) and a refused query also list every problem, the first being
`field`'s: `"errors": [{"field": "acv_usd", "reason": "..."}, ...]`.

A 503 carries `Retry-After`: Temporal did not take the request in time, and nothing was
started or changed.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from starter.client import worker_catching_up
from starter.ingress.state import ingress_of
from workflows.validation import dotted, message

log = structlog.get_logger("ingress")

# Retry-After (seconds) of the 503 answers: Temporal did not take the request in time;
# the onboarding's workflow task is being retried (a task held by a killed worker is
# retried after the 10 s workflow task timeout).
UNAVAILABLE_RETRY_AFTER_S = 5
CATCHING_UP_RETRY_AFTER_S = 10
# A HubSpot intake that failed (no API token, a deal without a company): HubSpot retries
# a 5xx for up to a day, and each retry starts a fresh intake once the cause is fixed.
INTAKE_FAILED_RETRY_AFTER_S = 60


class ApiError(Exception):
    """A request refused with `status`; `error` is the machine-readable reason, and
    `retry_after_s` (a 503's) becomes the `Retry-After` header."""

    def __init__(
        self,
        status: int,
        error: str,
        field: str,
        reason: str,
        retry_after_s: int | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.error, self.field, self.reason = status, error, field, reason
        self.retry_after_s = retry_after_s
        self.errors = errors  # every problem of a refused payload, the first `field`'s


def error_body(error: str, field: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The body of every refusal: `error`, `field` (in the sender's terms), `reason`."""
    return {"error": error, "field": field, "reason": reason, **extra}


def validation_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, str]]:
    """Each problem as `{"field": "a.b[0]", "reason": ...}`, the field in dotted form."""
    out = []
    for e in exc.errors():
        loc = tuple(part for part in e["loc"] if part not in ("body", "path", "query"))
        out.append({"field": dotted(loc) or "body", "reason": message(e)})
    return out


def unavailable(exc: BaseException, account_id: str | None = None) -> ApiError:
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


def _route(request: Request) -> str:
    return getattr(request.scope.get("route"), "path", "unmatched")


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    """A refusal: counted by route and reason, logged, answered with its status."""
    route = _route(request)
    ingress_of(request).metrics.rejections.labels(route, exc.error).inc()
    log.warning("rejected", path=route, error=exc.error, field=exc.field, reason=exc.reason)
    retry = {} if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
    extra = {} if exc.errors is None else {"errors": exc.errors}
    return JSONResponse(
        error_body(exc.error, exc.field, exc.reason, **extra), status_code=exc.status, headers=retry
    )


async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A path or query parameter FastAPI refused: 422, the first problem and all of them."""
    errors = validation_errors(exc)
    ingress_of(request).metrics.rejections.labels(_route(request), "invalid_request").inc()
    first = errors[0]
    return JSONResponse(
        error_body("invalid_request", first["field"], first["reason"], errors=errors),
        status_code=422,
    )


def add_error_handlers(app: FastAPI) -> None:
    """Answer `ApiError` and FastAPI's own validation errors with the error body."""
    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, bad_request)  # type: ignore[arg-type]
