"""Shared fixtures: time-skipping servers for workflow tests, one real dev server (with
the service's worker and a fake CRM API) for the ingress and end-to-end tests."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.money import FxRates
from starter.app import create_app
from tests.ingress_kit import READ_TOKEN, settings
from worker import build_worker
from workflows import search_attributes as sa
from workflows.models import ClosedWonDeal, OnboardingInput, OnboardingStatus, Playbook
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook
from workflows.search_attributes import CLI_TYPES

BIN = Path(sys.executable).parent
_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: _INDEXED[kind] for name, kind in CLI_TYPES.items()},
        )
    )


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    # One server per test: a workflow left mid-activity on a shared time-skipping
    # server can hold its clock for every later test.
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def playbook() -> Playbook:
    return load_playbook()


def make_deal(
    account_id: str | None = None, *, close_date: datetime, **overrides: Any
) -> ClosedWonDeal:
    """A deal closed at `close_date`: read it from the clock of the server under test
    (`await env.get_current_time()` on the time-skipping server, whose clock is not this
    machine's), so no test depends on the day it runs."""
    fields: dict[str, Any] = {
        "account_id": account_id or f"acct-{uuid.uuid4().hex[:8]}",
        "account_name": "Acme Corp",
        "acv_usd": 20_000,
        "close_date": close_date,
        "contacts": [
            {"name": "Cara Champion", "email": "cara@acme.test", "role": "champion"},
            {"name": "Sam Sponsor", "email": "sam@acme.test", "role": "executive_sponsor"},
        ],
        "success_criteria": ["10 invoices processed weekly"],
    }
    return ClosedWonDeal.model_validate(fields | overrides)


# The dev server runs on this machine's clock, so "closed now" or "happened now" on it is
# read from here; the time-skipping server's clock is its own (`env.get_current_time()`).


TIER_DEALS: dict[str, dict[str, Any]] = {
    "high_touch": {"acv_usd": 80_000, "stakeholder_count": 4},
    "tech_touch": {"acv_usd": 20_000},
    "self_serve": {"acv_usd": 2_000},
}


@dataclass
class Onboardings:
    """Starts onboardings on a private task queue and reads what they sent."""

    env: WorkflowEnvironment
    task_queue: str
    sent_log: Path
    playbook: Playbook
    records_url: str
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    async def start(
        self, deal: ClosedWonDeal, playbook: Playbook | None = None, **input: Any
    ) -> WorkflowHandle[Any, OnboardingStatus]:
        handle = await self.env.client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook or self.playbook, **input),
            id=deal.workflow_id,
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    def track(self, handle: WorkflowHandle[Any, Any]) -> WorkflowHandle[Any, Any]:
        """Record this workflow's history too (with RECORD_HISTORIES set)."""
        self.started.append(handle)
        return handle

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def days_later(self, days: float) -> None:
        await self.env.sleep(timedelta(days=days))

    def sent(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Notifications delivered, from the notifier's idempotency-key log."""
        if not self.sent_log.exists():
            return []
        rows = [json.loads(line) for line in self.sent_log.read_text().splitlines() if line]
        prefix = f"onboarding-{account_id}:" if account_id else ""
        return [r for r in rows if r["key"].startswith(prefix)]

    async def subjects_once(self, account_id: str, subject: str) -> list[str]:
        """Subjects sent so far, once `subject` is among them (activities run async)."""
        for _ in range(200):
            subjects = [r["subject"] for r in self.sent(account_id)]
            if subject in subjects:
                return subjects
            await asyncio.sleep(0.05)
        raise AssertionError(f"{subject!r} never sent; sent: {subjects}")


@pytest.fixture
async def onboardings(
    env: WorkflowEnvironment, playbook: Playbook, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Onboardings]:
    task_queue = f"onboarding-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        notify_channels=["log"],
        sent_log=tmp_path / "sent.jsonl",
        records_url=f"sqlite:///{tmp_path / 'records.db'}",
    )
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(settings),
        # A workflow bug fails the test at once instead of retrying the task forever.
        workflow_failure_exception_types=[Exception],
    ):
        it = Onboardings(
            env, task_queue, settings.sent_log or Path(), playbook, settings.records_url
        )
        yield it
        if folder := os.environ.get(RECORD_HISTORIES):
            await record_histories(env.client, it.started, HISTORIES / folder, request.node.name)


RECORD_HISTORIES = "RECORD_HISTORIES"
HISTORIES = Path(__file__).parent / "histories"


async def run_histories(client: Client, handle: WorkflowHandle[Any, Any]) -> list[WorkflowHistory]:
    """The history of every run of this workflow, following continue-as-new."""
    histories = []
    run_id: str | None = handle.first_execution_run_id or handle.result_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        attrs = history.events[-1].workflow_execution_continued_as_new_event_attributes
        run_id = attrs.new_execution_run_id or None
    return histories


async def record_histories(
    client: Client, handles: list[WorkflowHandle[Any, Any]], folder: Path, test_name: str
) -> None:
    """Save every run of these workflows' histories for the replay test (`make histories`),
    one file per run."""
    name = test_name.replace("[", "-").rstrip("]")
    files: dict[str, str] = {}
    for i, handle in enumerate(handles):
        for run, history in enumerate(await run_histories(client, handle)):
            files[f"{name}-{i}-run{run}.json.gz"] = history.to_json()
    _write(folder, files)


def _write(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        # mtime=0: the same history gives the same bytes, so re-recording makes no diff.
        (folder / name).write_bytes(gzip.compress(text.encode(), mtime=0))


# --------------------------------------------------------------------------- real dev server


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (in memory) for the ingress and end-to-end tests."""
    environment = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=list(sa.ALL),
        dev_server_log_level="error",
    )
    yield environment
    await environment.shutdown()


def hubspot_pipeline(
    pipeline_id: str, label: str, stages: list[tuple[str, str, str, bool]]
) -> dict[str, Any]:
    """One deal pipeline as `GET /crm/v3/pipelines/deals` lists it; each stage is
    (id, label, probability, isClosed), in HubSpot's own string forms."""
    return {
        "id": pipeline_id,
        "label": label,
        "displayOrder": 0,
        "archived": False,
        "stages": [
            {
                "id": stage_id,
                "label": stage_label,
                "displayOrder": i,
                "archived": False,
                "metadata": {"isClosed": str(closed).lower(), "probability": probability},
            }
            for i, (stage_id, stage_label, probability, closed) in enumerate(stages)
        ],
    }


# HubSpot's default deal pipeline, as every portal has it.
HUBSPOT_DEFAULT_PIPELINE = hubspot_pipeline(
    "default",
    "Sales Pipeline",
    [
        ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
        ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
        ("contractsent", "Contract Sent", "0.9", False),
        ("closedwon", "Closed Won", "1.0", True),
        ("closedlost", "Closed Lost", "0.0", True),
    ],
)


class FakeCrmApi:
    """A local HTTP server answering like a CRM's REST API, recording every request.

    `routes` maps a path (without the query) to (status, JSON body); each request is
    recorded as `{"path", "query" (parsed), "authorization"}`. HubSpot's deal pipelines
    are served from the start (the default one; `hubspot_pipelines` adds others)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                api.requests.append(
                    {
                        "path": parts.path,
                        "query": parse_qs(parts.query),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                status, body = api.routes.get(
                    parts.path, (404, {"status": "error", "message": "Object not found"})
                )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.hubspot_pipelines()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def hubspot_pipelines(self, *extra: dict[str, Any]) -> None:
        """Serve `GET /crm/v3/pipelines/deals`: the default pipeline and `extra` ones."""
        pipelines = [HUBSPOT_DEFAULT_PIPELINE, *extra]
        self.routes["/crm/v3/pipelines/deals"] = (200, {"results": pipelines})

    def hubspot_deal(
        self, deal_id: str, company_id: str, *, amount: str = "24000", name: str = "Globex"
    ) -> None:
        """Serve a HubSpot CRM v3 deal with its company and one contact, closed now (the
        dev server's clock is this machine's): an onboarding that starts on time."""
        closed = datetime.now(UTC)
        self.routes[f"/crm/v3/objects/deals/{deal_id}"] = (
            200,
            {
                "id": deal_id,
                "properties": {
                    "dealname": f"{name} - annual",
                    "amount": amount,
                    "dealstage": "closedwon",
                    "closedate": closed.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                },
                "associations": {
                    "companies": {"results": [{"id": company_id, "type": "deal_to_company"}]},
                    "contacts": {"results": [{"id": f"{deal_id}9", "type": "deal_to_contact"}]},
                },
            },
        )
        self.routes[f"/crm/v3/objects/companies/{company_id}"] = (
            200,
            {"id": company_id, "properties": {"name": name, "domain": "globex.test"}},
        )
        self.routes[f"/crm/v3/objects/contacts/{deal_id}9"] = (
            200,
            {
                "id": f"{deal_id}9",
                "properties": {
                    "email": "hank@globex.test",
                    "firstname": "Hank",
                    "lastname": "Scorpio",
                    "jobtitle": "Operations lead",
                },
            },
        )


@pytest.fixture(scope="session")
def fake_crm() -> Iterator[FakeCrmApi]:
    api = FakeCrmApi()
    yield api
    api.close()


@pytest.fixture(scope="session")
async def dev_worker(
    dev_env: WorkflowEnvironment, fake_crm: FakeCrmApi, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Settings]:
    """The service's worker on the real `onboarding` task queue of the dev server."""
    settings = Settings(
        notify_channels=["log"],
        sent_log=tmp_path_factory.mktemp("worker") / "sent.jsonl",
        hubspot_api_url=fake_crm.url,
        hubspot_token="pat-test-token",
    )
    async with build_worker(dev_env.client, settings, workflow_failure_exception_types=[Exception]):
        yield settings


# --------------------------------------------------------------------------- the ingress

IngressFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def ingress(
    dev_env: WorkflowEnvironment, dev_worker: Settings, fake_crm: FakeCrmApi
) -> AsyncIterator[IngressFactory]:
    """Clients of the real ingress app on the session's dev server and worker:
    `ingress(fx_rates=..., **settings)` overrides the test settings
    (`tests.ingress_kit.settings`); every client reads status with the API token."""
    clients: list[httpx.AsyncClient] = []

    def make(fx_rates: FxRates | None = None, **overrides: Any) -> httpx.AsyncClient:
        hubspot_api = {"hubspot_api_url": fake_crm.url, "hubspot_token": "pat-test-token"}
        app = create_app(settings(**(hubspot_api | overrides)), dev_env.client, fx_rates=fx_rates)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://ingress.test",
            headers={"Authorization": f"Bearer {READ_TOKEN}"},  # reads of status need it
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def http(ingress: IngressFactory) -> httpx.AsyncClient:
    """A client of the ingress with the test settings."""
    return ingress()
