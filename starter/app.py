"""The HTTP ingress: signed CRM webhooks start onboardings, product events move milestones.

Every request is verified over its raw body before anything parses it, and answered 2xx
only after Temporal has taken what it was given (a start, an update, a signal): there is
no buffer in memory that a crash could lose. A rejected request starts and signals
nothing, and its answer names the field and the reason:

    {"error": "invalid_signature", "field": "X-Signature", "reason": "..."}

    uvicorn --factory starter.app:create_app     # or: onboarding serve / onboarding up

The routes are `starter.ingress`'s routers (and `/codec`, `starter.codec`), with the
dashboard's pages (`/dashboard`, HTML) and the customers' progress pages
(`/progress/{token}`, HTML); this module wires them to one shared `Ingress` state and
serves the app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import structlog
import temporalio.client
import uvicorn
from fastapi import FastAPI

from activities.client import connect
from activities.logging import configure_logging
from activities.money import FxRates, load_fx_rates
from starter.codec import codec_router
from starter.ingress import accounts, customer, dashboard, deals, events, ops, reports
from starter.ingress.errors import add_error_handlers
from starter.ingress.openapi import document_bodies, serve_docs_page
from starter.ingress.state import Ingress
from starter.settings import IngressSettings
from workflows.models import Playbook
from workflows.playbook import load_playbook

log = structlog.get_logger("ingress")


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
    ingress = Ingress(
        settings=settings,
        playbook=playbook or load_playbook(settings.playbook),
        rates=fx_rates or load_fx_rates(settings.fx_rates),
        client=client,
        sdk_metrics_url=sdk_metrics_url,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if ingress.client is None:  # standalone (`uvicorn --factory`): set up like a service
            configure_logging()
            ingress.client = await connect()
        log.info(
            "ingress ready", playbook=ingress.playbook.version, namespace=ingress.client.namespace
        )
        yield
        ingress.records.close()

    app = FastAPI(
        title="Onboarding ingress",
        summary="Signed CRM webhooks start onboardings; product events move milestones.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served from this server instead (`serve_docs_page`)
        redoc_url=None,
    )
    app.state.ingress = ingress
    # /codec/*: the Web UI's and the CLI's decryption of payloads
    app.include_router(codec_router(ingress.auth, max_body_bytes=settings.max_body_bytes))
    app.add_middleware(ops.CountRequests)
    add_error_handlers(app)
    for area in (deals, events, accounts, reports, dashboard, customer, ops):
        app.include_router(area.router)
    document_bodies(app)
    serve_docs_page(app)
    return app


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
