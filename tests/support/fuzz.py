"""The HTTP API under fuzzing: the real app on the session's dev server, every answer
checked (no 5xx; a refused request moved none of the app's side-effect counters; every
workflow started is one a 2xx answer named), and requests signed as each route's sender.

The `fuzzed` fixture (with `fuzz_configured`, every feature configured) is in
`tests/conftest.py`; the fuzz tests are `tests/test_api_fuzz*.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from starter.app import create_app
from starter.settings import IngressSettings
from tests.support.ingress import (
    READ_TOKEN,
    hubspot_signature,
    now_iso,
    salesforce_headers,
    segment_signature,
    standard_signature,
    today_iso,
)
from tests.support.ingress import (
    settings as ingress_settings,
)

T = TypeVar("T")
BASE_URL = "http://ingress.test"
# The app's counters of what it set going: a refused request must move none of them.
SIDE_EFFECTS = (
    "onboarding_ingress_onboardings_started",
    "onboarding_ingress_deals",
    "onboarding_ingress_signals",
)
# No example database (nothing written to the repo); requests are slow next to Hypothesis.
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def fuzz_settings(**overrides: Any) -> IngressSettings:
    """The tests' ingress settings; HubSpot intakes answer "pending" at once."""
    return ingress_settings(intake_wait_s=0, **overrides)


def signed(path: str, body: bytes, url: str = "") -> dict[str, str]:
    """The headers that prove `body` comes from the route's sender."""
    if path == "/webhooks/deals":
        return standard_signature(body)
    if path == "/events":
        return segment_signature(body)
    if path == "/webhooks/hubspot":
        return hubspot_signature(url or f"{BASE_URL}{path}", body)
    if path == "/webhooks/salesforce":
        return salesforce_headers(body)
    if path.startswith(("/codec/", "/accounts/", "/reports/")):
        return {"Authorization": f"Bearer {READ_TOKEN}"}
    return {}


@dataclass
class Exchange:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int
    answer: str

    def __str__(self) -> str:
        shown = self.body[:300] + (b"..." if len(self.body) > 300 else b"")
        return (
            f"{self.method} {self.url} -> {self.status}\n"
            f"  headers: {self.headers}\n  body ({len(self.body)} bytes): {shown!r}\n"
            f"  answer: {self.answer[:500]}"
        )


@dataclass
class FuzzedApp:
    """The app on the dev server; sends from Hypothesis' thread, runs on the test's loop
    (where the Temporal client lives), and checks every answer."""

    app: FastAPI
    env: WorkflowEnvironment
    http: httpx.AsyncClient
    loop: asyncio.AbstractEventLoop
    counted: dict[str, float] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)  # workflow ids 2xx answers named
    exchanges: int = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    async def side_effects(self) -> dict[str, float]:
        text = (await self.http.get("/metrics")).text
        return {
            f"{sample.name}{sorted(sample.labels.items())}": sample.value
            for family in text_string_to_metric_families(text)
            if family.name in SIDE_EFFECTS
            for sample in family.samples
        }

    async def exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes, *, chunked: bool = False
    ) -> tuple[Exchange, httpx.Response]:
        """One request; fails on a 5xx, and on a 4xx that moved any side-effect counter.
        `chunked`: the body is streamed, with no Content-Length to refuse it by."""
        content = _in_chunks(body) if chunked else body
        response = await self.http.request(method, url, headers=headers, content=content)
        sent = Exchange(method, url, headers, body, response.status_code, response.text)
        self.exchanges += 1
        after = await self.side_effects()
        before = self.counted
        moved = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k)}
        done = f", after it started or signalled {moved}" if moved else ""
        assert response.status_code < 500, f"server error{done}:\n{sent}"
        if response.status_code >= 400:
            assert not moved, f"refused{done}:\n{sent}"
        else:
            self.named |= named_workflows(response)
        self.counted = after
        return sent, response

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> Exchange:
        return self.run(self.exchange("POST", path, headers, body))[0]

    async def assert_only_answered_workflows_started(self, before: set[str], t0: str) -> None:
        """Every workflow the dev server started since `t0` is one a 2xx answer named."""
        await asyncio.sleep(0.3)  # visibility is eventually consistent
        query = f'StartTime >= "{t0}"'
        started = {w.id async for w in self.env.client.list_workflows(query)} - before
        unexplained = started - self.named
        assert not unexplained, f"started by no accepted request: {sorted(unexplained)}"


async def _in_chunks(body: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(body), 100):
        yield body[start : start + 100]


def named_workflows(response: httpx.Response) -> set[str]:
    """Workflow ids a 2xx answer says it started or signalled."""
    try:
        answer = response.json()
    except ValueError:
        return set()
    if not isinstance(answer, dict):
        return set()
    ids = {answer.get("workflow_id")}
    for deal in [*(answer.get("deals") or []), *(answer.get("lost") or [])]:
        ids |= {deal.get("workflow_id"), deal.get("intake_workflow_id")}
    for event in answer.get("events") or []:
        if event.get("outcome") == "accepted":
            ids.add(f"onboarding-{event.get('account_id')}")
    return {i for i in ids if isinstance(i, str)}


async def workflow_ids(env: WorkflowEnvironment) -> set[str]:
    return {w.id async for w in env.client.list_workflows()}


@asynccontextmanager
async def fuzzing(env: WorkflowEnvironment, settings: IngressSettings) -> AsyncIterator[FuzzedApp]:
    """The app, checked at the end: it started no workflow that no 2xx answer named."""
    app = create_app(settings, env.client)
    # A crash is answered 500 (as uvicorn would) rather than raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        fuzz = FuzzedApp(app, env, http, asyncio.get_running_loop())
        fuzz.counted = await fuzz.side_effects()
        before, t0 = await workflow_ids(env), datetime.now(UTC).isoformat()
        yield fuzz
        await fuzz.assert_only_answered_workflows_started(before, t0)


# --------------------------------------------------------------------------- valid requests


def valid_deal(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "account_name": "Acme",
        "acv_usd": 20_000,
        "close_date": today_iso(),
        "contacts": [{"name": "Ann Example", "email": "ann@acme.test", "role": "champion"}],
    }


def track_call(account: str, **over: Any) -> dict[str, Any]:
    call = {
        "type": "track",
        "messageId": f"m-{uuid.uuid4().hex}",
        "event": "user_logged_in",
        "groupId": account,
        "timestamp": now_iso(),
    }
    return call | over
