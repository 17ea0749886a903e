"""Operations: liveness, readiness, Prometheus metrics, and the count of every request.

GET /healthz    the process is up
GET /readyz     Temporal is reachable (503 with Retry-After when not)
GET /metrics    the ingress's counters, then the Temporal SDK's (`sdk_metrics_url`)
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import structlog
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.ingress.errors import UNAVAILABLE_RETRY_AFTER_S, error_body
from starter.ingress.state import IngressDep

log = structlog.get_logger("ingress")

router = APIRouter(tags=["Operations"])


class CountRequests:
    """ASGI middleware: count each HTTP request by route and status, and log it (debug).
    Plain ASGI, not `BaseHTTPMiddleware`: that one runs every request in a task group of
    its own, which costs the ingress more CPU than the count (README *Benchmark*)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an app that never answers: uvicorn answers 500

        async def answering(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, answering)
        path = getattr(scope.get("route"), "path", "unmatched")
        scope["app"].state.ingress.metrics.requests.labels(path, str(status)).inc()
        log.debug(
            "request",
            method=scope["method"],
            path=path,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )


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
