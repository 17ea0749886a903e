"""Operations: liveness, readiness, Prometheus metrics, and the count of every request.

GET /healthz    the process is up
GET /readyz     Temporal is reachable (503 with Retry-After when not)
GET /metrics    the ingress's counters, then the Temporal SDK's (`sdk_metrics_url`)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from starter.ingress.errors import UNAVAILABLE_RETRY_AFTER_S, error_body
from starter.ingress.state import IngressDep, ingress_of

log = structlog.get_logger("ingress")

router = APIRouter(tags=["Operations"])


async def count_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: count each request by route and status, and log it (debug)."""
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    ingress_of(request).metrics.requests.labels(path, str(response.status_code)).inc()
    log.debug(
        "request",
        method=request.method,
        path=path,
        status=response.status_code,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Temporal is reachable")
async def readyz(ingress: IngressDep) -> JSONResponse:
    try:
        await ingress.temporal.service_client.check_health(timeout=timedelta(seconds=3))
    except Exception as exc:
        return JSONResponse(
            error_body("temporal_unavailable", "temporal", str(exc) or type(exc).__name__),
            status_code=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )
    return JSONResponse({"status": "ready", "namespace": ingress.temporal.namespace})


@router.get("/metrics", summary="Prometheus metrics")
async def prometheus(ingress: IngressDep) -> Response:
    text = generate_latest(ingress.metrics.registry)
    url = ingress.sdk_metrics_url
    if url:
        async with httpx.AsyncClient(timeout=2) as http:
            try:
                text += (await http.get(url)).content
            except httpx.HTTPError as exc:
                log.warning("sdk metrics unavailable", url=url, error=str(exc))
    return Response(text, media_type=CONTENT_TYPE_LATEST)
