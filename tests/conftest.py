"""Shared fixtures: time-skipping servers for workflow tests, one real dev server (with
the service's worker and a fake CRM API) for the ingress and end-to-end tests. What they
build on is in `tests/support/`."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis.core
import pytest
from aiosmtpd.controller import Controller
from hypothesis.vendor import pretty
from playwright.async_api import Browser
from sqlalchemy import delete
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings, activities_for
from activities.client import data_converter
from activities.converter import CONVERTER
from activities.money import FxRates
from activities.records.schema import assignment, customer_link, onboarding, playbook_content
from activities.records.store import RecordStore
from starter.app import create_app
from starter.devserver import free_port
from tests.support.browser import chromium
from tests.support.fake_crm import FakeCrmApi
from tests.support.fuzz import FuzzedApp, fuzz_settings, fuzzing
from tests.support.histories import HISTORIES, RECORD_HISTORIES, record_histories
from tests.support.ingress import READ_TOKEN, IngressFactory, settings
from tests.support.mail import Mailbox
from tests.support.onboardings import Onboardings
from tests.support.postgres import postgres_server
from tests.support.temporal import TEST_START, dev_server, start_moment, time_skipping
from worker import build_worker
from workflows.models import Playbook
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook


@pytest.fixture(scope="session", autouse=True)
def records_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every worker and command the tests start (in this process or as a subprocess)
    keeps its onboarding records in a throwaway SQLite file, never the checkout's .data."""
    url = f"sqlite:///{tmp_path_factory.mktemp('records') / 'records.db'}"
    # As the worker leaves it: the reports refuse a store that is not there.
    RecordStore.open(url).close()
    before = os.environ.get("ONBOARDING_RECORDS_URL")
    os.environ["ONBOARDING_RECORDS_URL"] = url
    yield url
    if before is None:
        del os.environ["ONBOARDING_RECORDS_URL"]
    else:
        os.environ["ONBOARDING_RECORDS_URL"] = before


@pytest.fixture(scope="session", autouse=True)
def workflow_sandbox() -> Iterator[None]:
    """Every worker the tests build in this process runs its workflows in the SDK's
    sandbox (production runs without it: see `worker.workflow_runner`), so a workflow
    that reads the clock, does I/O or imports what it must not fails the test that runs
    it. Workers the tests start as processes run as production does."""
    before = os.environ.get("ONBOARDING_WORKFLOW_SANDBOX")
    os.environ["ONBOARDING_WORKFLOW_SANDBOX"] = "true"
    yield
    if before is None:
        del os.environ["ONBOARDING_WORKFLOW_SANDBOX"]
    else:
        os.environ["ONBOARDING_WORKFLOW_SANDBOX"] = before


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throwaway PostgreSQL server (Debian's package) for the session."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    """An empty records store, once on SQLite (in a folder not made yet) and once on
    PostgreSQL; emptied again afterwards (the PostgreSQL server is the session's)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nested' / 'records.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = RecordStore.open(url)

    def empty() -> None:
        with opened.engine.begin() as conn:
            for table in (onboarding, customer_link, assignment, playbook_content):
                conn.execute(delete(table))

    empty()  # other tests share the session's PostgreSQL server
    yield opened
    empty()
    opened.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium (Debian's) for the session's page tests."""
    async with chromium() as it:
        yield it


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    # One server per test: a workflow left mid-activity on a shared time-skipping
    # server can hold its clock for every later test.
    environment = await time_skipping(CONVERTER)
    if when := os.environ.get(TEST_START):
        now = await environment.get_current_time()
        await environment.sleep(start_moment(now, when) - now)
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def playbook() -> Playbook:
    return load_playbook()


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[RecordStore]:
    """A new records store of the test's own (SQLite, latest schema), for the reports."""
    store = RecordStore.open(f"sqlite:///{tmp_path / 'report.db'}")
    yield store
    store.close()


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
        elif failed(request):  # kept to look at (e.g. replayed by hand with the Replayer)
            kept = tmp_path / "histories"
            await asyncio.wait_for(
                record_histories(env.client, it.started, kept, request.node.name), 30
            )
            print(f"the failed test's workflow histories: {kept}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keeps each phase's report on its test item, for fixtures to read (`failed`)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request: pytest.FixtureRequest) -> bool:
    """True in a fixture's teardown when its test failed."""
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def hypothesis_shows_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing schemathesis (its pytest plugin loads with the session) swaps Hypothesis'
    printer for one that prints nothing, for speed: put it back, so that a failing
    property shows the example that broke it. Property tests use it (`usefixtures`)."""
    monkeypatch.setattr(hypothesis.core, "RepresentationPrinter", pretty.RepresentationPrinter)


# --------------------------------------------------------------------------- real dev server


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (in memory) for the ingress and end-to-end tests."""
    # As the service's processes convert: playbooks by reference.
    environment = await dev_server(data_converter())
    yield environment
    await environment.shutdown()


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


@pytest.fixture
async def ingress(
    dev_env: WorkflowEnvironment, dev_worker: Settings, fake_crm: FakeCrmApi
) -> AsyncIterator[IngressFactory]:
    """Clients of the real ingress app on the session's dev server and worker:
    `ingress(fx_rates=..., **settings)` overrides the test settings
    (`tests.support.ingress.settings`); every client reads status with the API token."""
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


# --------------------------------------------------------------------------- the API fuzz


@pytest.fixture
def fuzz_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every feature configured: "not configured" (503) is the operator's business, and
    an unconfigured route never reaches its parser. The fuzz tests use it (`usefixtures`)."""
    monkeypatch.setenv("ONBOARDING_API_TOKENS", READ_TOKEN)
    monkeypatch.setenv("ONBOARDING_CODEC_KEYS", "fuzz:" + base64.b64encode(bytes(32)).decode())


@pytest.fixture
async def fuzzed(
    dev_env: WorkflowEnvironment, dev_worker: Settings, fake_crm: FakeCrmApi
) -> AsyncIterator[FuzzedApp]:
    """The real app under fuzzing (`tests.support.fuzz`), on the session's dev server."""
    # HubSpot's pipelines say what a stage means; unreadable, they would answer 503.
    hubspot_api = {"hubspot_api_url": fake_crm.url, "hubspot_token": "pat-test-token"}
    async with fuzzing(dev_env, fuzz_settings(**hubspot_api)) as fuzz:
        yield fuzz
