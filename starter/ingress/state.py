"""What the ingress's routes share: one `Ingress` on `app.state.ingress`, handed to a
route by the `IngressDep` dependency (or read with `ingress_of(request)`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

import temporalio.client
from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from activities.crm import HubSpotStages
from activities.money import FxRates
from activities.records.links import CustomerLinks
from activities.records.store import LazyStore
from starter.auth import ApiAuth
from starter.client import ui_url
from starter.ingress.dashboard_cache import ReportCache
from starter.ingress.metrics import Metrics
from starter.ingress.signal_queue import AccountSignals
from starter.settings import IngressSettings
from workflows.models import Playbook

# How long a request waits for Temporal before answering 503 (the sender retries).
TEMPORAL_TIMEOUT = timedelta(seconds=10)


@dataclass
class Ingress:
    """The settings, playbook, exchange rates, metrics, token check, HubSpot stage cache,
    records store (opened on first use), progress links, the dashboard's portfolio
    pages and the product events waiting per account of one app, and its Temporal
    client (set at startup when not given)."""

    settings: IngressSettings
    playbook: Playbook
    rates: FxRates
    client: temporalio.client.Client | None = None
    sdk_metrics_url: str | None = None
    metrics: Metrics = field(default_factory=lambda: Metrics(CollectorRegistry()))
    auth: ApiAuth = field(init=False)
    hubspot_stages: HubSpotStages = field(init=False)
    records: LazyStore = field(init=False)
    links: CustomerLinks | None = field(init=False)
    portfolio_views: ReportCache = field(default_factory=ReportCache)
    signals: AccountSignals = field(init=False)

    def __post_init__(self) -> None:
        self.auth = ApiAuth(self.settings.api_tokens)
        self.hubspot_stages = HubSpotStages(self.settings)
        # The ingress only reads the store: the worker creates it.
        self.records = LazyStore(self.settings.records_url, create=False)
        self.links = CustomerLinks.of(self.settings)
        self.signals = AccountSignals(spacing=self.settings.event_signal_spacing_ms / 1000)

    @property
    def temporal(self) -> temporalio.client.Client:
        """The Temporal client; requests are served only after startup has set it."""
        if self.client is None:
            raise RuntimeError("the ingress has no Temporal client: it is not started")
        return self.client

    def link(self, workflow_id: str) -> str:
        """The workflow's page in the Temporal Web UI; without a client yet, in the
        namespace the environment names (the dashboard reads only the records store)."""
        return ui_url(workflow_id, self.client.namespace if self.client else None)


def ingress_of(request: Request) -> Ingress:
    """The app's shared state (`create_app` puts it on `app.state.ingress`)."""
    ingress: Ingress = request.app.state.ingress
    return ingress


async def _ingress(request: Request) -> Ingress:
    # A dependency that is a plain function runs on a worker thread, a thread hop in
    # every request; this one does nothing that blocks.
    return ingress_of(request)


IngressDep = Annotated[Ingress, Depends(_ingress)]
