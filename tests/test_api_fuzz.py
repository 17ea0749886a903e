"""The HTTP API fuzzed: from its OpenAPI schema (schemathesis), and with signed hostile
bodies for the webhook routes, against the real app, a real dev server and its worker.

What a sender may rely on, whatever it sends: never a 5xx (a 5xx makes every sender
retry, forever, something that can never succeed), and a request answered 4xx started
and signalled nothing. Checked request by request with the app's own counters, and at
the end against the dev server: every workflow started during the run is one a 2xx
answer named.

The webhook routes read their raw body (the signature covers its bytes), so the schema
documents no request body for them and schemathesis generates none: their bodies are
generated here (JSON values, near-valid deals and Segment calls, random bytes) and signed
by hand, so the fuzzer reaches the parsers behind the signature checks. The size and
batch caps are checked at their edges; `HOSTILE` keeps every crash found so far.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import hypothesis.core
import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.vendor import pretty
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from starter.app import create_app
from starter.settings import IngressSettings
from tests.support.fake_crm import FakeCrmApi
from tests.support.ingress import now_iso, today_iso, workflow_exists
from tests.support.strategies import json_scalars, json_values

T = TypeVar("T")
BASE_URL = "http://ingress.test"
WHSEC_RAW = b"fuzz-webhook-secret-0123456789ab"
WHSEC = "whsec_" + base64.b64encode(WHSEC_RAW).decode()
SEGMENT_SECRET = "fuzz-segment-secret"
HUBSPOT_SECRET = "fuzz-hubspot-secret"
SALESFORCE_SECRET = "fuzz-salesforce-secret"
OUTBOUND_TOKEN = "fuzz-outbound-token"
API_TOKEN = "fuzz-api-token"
# The app's counters of what it set going: a refused request must move none of them.
SIDE_EFFECTS = (
    "onboarding_ingress_onboardings_started",
    "onboarding_ingress_deals",
    "onboarding_ingress_signals",
)
# No example database (nothing written to the repo); requests are slow next to Hypothesis.
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def ingress_settings(**overrides: Any) -> IngressSettings:
    return IngressSettings.model_validate(
        {
            "webhook_secrets": WHSEC,
            "segment_secrets": SEGMENT_SECRET,
            "events_webhook_secrets": WHSEC,
            "hubspot_secrets": HUBSPOT_SECRET,
            "salesforce_secrets": SALESFORCE_SECRET,
            "salesforce_outbound_tokens": OUTBOUND_TOKEN,
            "salesforce_org_ids": "00D000000000001AAA",
            "intake_wait_s": 0,  # HubSpot intakes answer "pending" at once
            "api_tokens": API_TOKEN,
        }
        | overrides
    )


@pytest.fixture(autouse=True)
def _failures_show_their_example(monkeypatch: pytest.MonkeyPatch) -> None:
    # schemathesis swaps Hypothesis' printer for one that prints nothing (for speed):
    # put it back, so a failure shows the request that broke the API.
    monkeypatch.setattr(hypothesis.core, "RepresentationPrinter", pretty.RepresentationPrinter)


# --------------------------------------------------------------------------- signing, by hand


def standard_webhook(body: bytes) -> dict[str, str]:
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    mac = hmac.new(WHSEC_RAW, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def segment(body: bytes) -> dict[str, str]:
    return {"X-Signature": hmac.new(SEGMENT_SECRET.encode(), body, hashlib.sha1).hexdigest()}


def hubspot(body: bytes, url: str) -> dict[str, str]:
    stamp = str(int(time.time() * 1000))
    source = f"POST{url}".encode() + body + stamp.encode()
    mac = hmac.new(HUBSPOT_SECRET.encode(), source, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(mac).decode(),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def salesforce(body: bytes) -> dict[str, str]:
    mac = hmac.new(SALESFORCE_SECRET.encode(), body, hashlib.sha256).digest()
    return {"X-Salesforce-Signature": base64.b64encode(mac).decode()}


def signed(path: str, body: bytes, url: str = "") -> dict[str, str]:
    """The headers that prove `body` comes from the route's sender."""
    if path == "/webhooks/deals":
        return standard_webhook(body)
    if path == "/events":
        return segment(body)
    if path == "/webhooks/hubspot":
        return hubspot(body, url or f"{BASE_URL}{path}")
    if path == "/webhooks/salesforce":
        return salesforce(body)
    if path.startswith(("/codec/", "/accounts/")):
        return {"Authorization": f"Bearer {API_TOKEN}"}
    return {}


# --------------------------------------------------------------------------- the fuzzed app


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


@pytest.fixture(autouse=True)
def _codec_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every feature configured: "not configured" (503) is the operator's business, and
    # an unconfigured route never reaches its parser.
    monkeypatch.setenv("ONBOARDING_API_TOKENS", API_TOKEN)
    monkeypatch.setenv("ONBOARDING_CODEC_KEYS", "fuzz:" + base64.b64encode(bytes(32)).decode())


@pytest.fixture
async def fuzzed(
    dev_env: WorkflowEnvironment, dev_worker: Settings, fake_crm: FakeCrmApi
) -> AsyncIterator[FuzzedApp]:
    # HubSpot's pipelines say what a stage means; unreadable, they would answer 503.
    hubspot_api = {"hubspot_api_url": fake_crm.url, "hubspot_token": "pat-test-token"}
    async with fuzzing(dev_env, ingress_settings(**hubspot_api)) as fuzz:
        yield fuzz


# --------------------------------------------------------------------------- from the schema


def _prepared(case: schemathesis.Case) -> tuple[str, str, dict[str, str], bytes]:
    """The exact request schemathesis would send: method, URL, headers, body bytes."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    kwargs.pop("auth", None)
    request = requests.Request(**kwargs).prepare()
    body = request.body or b""
    assert isinstance(body, str | bytes), f"a streamed body: {body!r}"
    data = body.encode() if isinstance(body, str) else body
    headers = {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
    return request.method or "GET", request.url or BASE_URL, headers, data


async def test_no_request_the_schema_allows_or_forbids_gets_a_5xx(fuzzed: FuzzedApp) -> None:
    """Every operation, with valid and invalid parameters, signed (where the route takes
    a signature) and not: no 5xx, answers as documented, no side effect when refused."""
    schema = await asyncio.to_thread(schemathesis.openapi.from_asgi, "/openapi.json", fuzzed.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {"POST /webhooks/deals", "POST /events", "GET /accounts/{account_id}"} <= {
        op.label for op in operations
    }
    # One real onboarding, so the status route answers 200 and its schema is checked too.
    known = f"fz-{uuid.uuid4().hex[:12]}"
    body = dumps(valid_deal(known))
    sent, response = await fuzzed.exchange("POST", "/webhooks/deals", standard_webhook(body), body)
    assert response.status_code == 201, f"{sent}"

    def fuzz(operation: schemathesis.APIOperation) -> None:
        cases = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )
        if "{account_id}" in operation.path:
            cases |= operation.as_strategy(path_parameters={"account_id": known})

        @settings(FUZZ, max_examples=40)
        @given(case=cases, sign=st.booleans())
        def check(case: schemathesis.Case, sign: bool) -> None:
            method, url, headers, body = _prepared(case)
            if sign:
                headers |= signed(operation.path, body, url)
            _, response = fuzzed.run(fuzzed.exchange(method, url, headers, body))
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        check()

    for operation in operations:
        await asyncio.to_thread(fuzz, operation)
    assert fuzzed.exchanges > 2 * len(operations)


# --------------------------------------------------------------------------- signed bodies

accounts = st.uuids().map(lambda u: f"fz-{u.hex[:12]}")
# ISO 8601 at the edges of the calendar too, in several zones.
instants = st.builds(
    lambda at, zone: at.isoformat() + zone,
    st.datetimes(),
    st.sampled_from(["", "Z", "+05:00", "-10:00"]),
)
dates = instants | st.dates().map(str) | json_scalars
# The usual values are read from the clock when drawn: a deal closed now, an event now.
nows = st.builds(now_iso)
todays = st.builds(today_iso)
numbers = st.sampled_from(["1e400", "Infinity", "NaN", "-0", "3"]) | json_scalars


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity stay, as a sender may send them


def near_valid(
    usual: dict[str, st.SearchStrategy[Any]], hostile: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the usual fields, one of them perhaps missing, and up to two fields
    (usual or extra) hostile: near enough to valid to reach deep into the parser."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        broken = draw(st.sets(st.sampled_from(sorted(hostile)), max_size=2))
        missing = draw(st.sets(st.sampled_from(sorted(usual)), max_size=1))
        out = {name: draw(value) for name, value in usual.items() if name not in missing}
        return out | {name: draw(hostile[name]) for name in sorted(broken)}

    return build()


contacts = near_valid(
    {
        "name": st.just("Ann Example"),
        "email": st.just("ann@acme.test"),
        "role": st.sampled_from(["champion", "admin"]),
    },
    {"name": json_scalars, "email": json_scalars, "role": json_scalars},
)
deals = near_valid(
    {
        "account_id": accounts,
        "account_name": st.just("Acme"),
        "acv_usd": st.floats(min_value=0, max_value=1e6),
        "close_date": todays | nows,
        "contacts": st.lists(contacts, max_size=2),
    },
    {
        "account_id": json_scalars,
        "account_name": json_scalars,
        "acv_usd": numbers,
        "close_date": dates,
        "contacts": json_values,
        "seats": numbers,
        "stakeholder_count": numbers,
        "configuration_hours": numbers,
        "integrations": json_values,
        "success_criteria": json_values,
        "crm": json_values,
        "completed_milestones": st.lists(
            st.fixed_dictionaries({"milestone_id": json_scalars, "at": dates}), max_size=2
        ),
        "surprise": json_values,
    },
)


async def test_signed_deals_of_any_shape_get_no_5xx(fuzzed: FuzzedApp) -> None:
    """Near-valid deals, JSON of any shape, random bytes: signed, never a 5xx."""
    bodies = deals.map(dumps) | json_values.map(dumps) | st.binary(max_size=200)

    @settings(FUZZ, max_examples=100)
    @given(body=bodies)
    def check(body: bytes) -> None:
        fuzzed.post("/webhooks/deals", body, standard_webhook(body))

    await asyncio.to_thread(check)


segment_calls = near_valid(
    {
        "type": st.just("track"),
        "messageId": st.uuids().map(str),
        "event": st.sampled_from(["user_logged_in", "user_invited", "page_viewed"]),
        "groupId": accounts,
        "userId": st.just("u-1"),
        "timestamp": nows,
        "properties": st.dictionaries(st.sampled_from(["role", "seats"]), json_scalars),
    },
    {
        "type": st.sampled_from(["identify", "group", "alias"]) | json_scalars,
        "messageId": json_scalars,
        "event": json_scalars,
        "groupId": json_scalars,
        "userId": json_scalars,
        "timestamp": dates,
        "properties": json_values,
        "traits": json_values,
        "context": json_values,
    },
)
segment_bodies = (
    segment_calls
    | st.lists(segment_calls, max_size=4)
    | st.fixed_dictionaries(
        {"batch": st.lists(segment_calls, max_size=4)},
        optional={"context": json_values, "sentAt": dates},
    )
    | json_values
)


async def test_signed_product_events_of_any_shape_get_no_5xx(fuzzed: FuzzedApp) -> None:
    """Segment calls, batches and arrays of them, near-valid or not, under either
    signature scheme: never a 5xx, and every refused request signalled nothing."""
    bodies = segment_bodies.map(dumps) | st.binary(max_size=200)

    @settings(FUZZ, max_examples=80)
    @given(body=bodies, scheme=st.sampled_from([segment, standard_webhook]))
    def check(body: bytes, scheme: Callable[[bytes], dict[str, str]]) -> None:
        fuzzed.post("/events", body, scheme(body))

    await asyncio.to_thread(check)


hubspot_events = near_valid(
    {
        "eventId": st.integers(min_value=1, max_value=10**9),
        "subscriptionType": st.just("deal.propertyChange"),
        "propertyName": st.just("dealstage"),
        "propertyValue": st.sampled_from(["closedwon", "closedlost", "appointmentscheduled"]),
        "objectId": st.integers(min_value=1, max_value=10**12),
        "portalId": st.integers(min_value=1, max_value=10**9),
        "occurredAt": st.integers(min_value=0, max_value=2 * 10**12),
    },
    {
        "eventId": json_scalars,
        "subscriptionType": st.just("object.propertyChange") | json_scalars,
        "objectTypeId": st.just("0-3") | json_scalars,
        "propertyName": json_scalars,
        "propertyValue": json_scalars,
        "objectId": json_scalars,
        "portalId": json_scalars,
        "occurredAt": json_scalars,
    },
)


async def test_signed_hubspot_webhooks_of_any_shape_get_no_5xx(fuzzed: FuzzedApp) -> None:
    """HubSpot event batches, near-valid or not: never a 5xx; intakes only when named."""
    bodies = (
        st.lists(hubspot_events, min_size=1, max_size=3).map(dumps)
        | json_values.map(dumps)
        | st.binary(max_size=100)
    )

    @settings(FUZZ, max_examples=50)
    @given(body=bodies)
    def check(body: bytes) -> None:
        fuzzed.post("/webhooks/hubspot", body, hubspot(body, f"{BASE_URL}/webhooks/hubspot"))

    await asyncio.to_thread(check)


opportunities = near_valid(
    {
        "Id": st.uuids().map(lambda u: f"006{u.hex[:12]}"),
        "AccountId": accounts,
        "StageName": st.just("Closed Won"),
        "Amount": st.integers(min_value=0, max_value=10**6),
        "CloseDate": todays,
    },
    {
        "Id": json_scalars,
        "AccountId": json_scalars,
        "StageName": json_scalars,
        "Amount": numbers,
        "CloseDate": dates,
        "Seats__c": numbers,
        "Configuration_Hours__c": numbers,
        "Needs_API_Integration__c": json_scalars,
        "Integrations__c": json_scalars,
        "Success_Criteria__c": json_scalars,
    },
)
salesforce_callouts = near_valid(
    {
        "Opportunity": opportunities,
        "Account": st.fixed_dictionaries({"Name": st.just("Umbrella")}),
    },
    {
        "Opportunity": json_values,
        "Account": json_values,
        "Contacts": st.lists(
            st.fixed_dictionaries({"Email": json_scalars, "Name": json_scalars}), max_size=2
        )
        | json_values,
    },
)


async def test_signed_salesforce_callouts_of_any_shape_get_no_5xx(fuzzed: FuzzedApp) -> None:
    """Salesforce Opportunity callouts, near-valid or not: never a 5xx."""
    bodies = salesforce_callouts.map(dumps) | json_values.map(dumps) | st.binary(max_size=100)

    @settings(FUZZ, max_examples=50)
    @given(body=bodies)
    def check(body: bytes) -> None:
        fuzzed.post("/webhooks/salesforce", body, salesforce(body))

    await asyncio.to_thread(check)


# --------------------------------------------------------------------------- caps

CAP = 512
BODY_ROUTES = [
    "/webhooks/deals",
    "/events",
    "/webhooks/hubspot",
    "/webhooks/salesforce",
    f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}",
    "/codec/encode",
    "/codec/decode",
]


async def test_no_route_takes_a_body_over_the_size_cap(
    dev_env: WorkflowEnvironment, dev_worker: Settings
) -> None:
    """Over `max_body_bytes`, signed or not, announced or streamed: 413, nothing read."""
    async with fuzzing(dev_env, ingress_settings(max_body_bytes=CAP)) as fuzz:

        @settings(FUZZ, max_examples=60)
        @given(
            route=st.sampled_from(BODY_ROUTES),
            size=st.integers(CAP - 1, CAP + 1) | st.integers(0, 4 * CAP),
            chunked=st.booleans(),
        )
        def check(route: str, size: int, chunked: bool) -> None:
            body = b"{" * size
            headers = signed(route, body, f"{BASE_URL}{route}")
            exchange = fuzz.exchange("POST", route, headers, body, chunked=chunked)
            sent, response = fuzz.run(exchange)
            if size > CAP:
                assert response.status_code == 413, f"{sent}"
                assert response.json()["field"] == "body", f"{sent}"
            else:
                assert response.status_code != 413, f"{sent}"

        await asyncio.to_thread(check)


async def test_an_events_batch_over_the_cap_is_refused_whole(fuzzed: FuzzedApp) -> None:
    """Up to 1000 calls a request are answered one by one; more are refused, untouched."""
    account = f"fz-{uuid.uuid4().hex[:12]}"

    @settings(FUZZ, max_examples=8)
    @given(calls=st.sampled_from([999, 1000, 1001]) | st.integers(990, 1100))
    @example(calls=1001)
    def check(calls: int) -> None:
        body = dumps({"batch": [track_call(account, event="page_viewed")] * calls})
        sent, response = fuzzed.run(fuzzed.exchange("POST", "/events", segment(body), body))
        if calls > 1000:
            assert response.status_code == 422, f"{sent}"
            assert response.json()["field"] == "batch", f"{sent}"
        else:
            assert len(response.json()["events"]) == calls, f"{sent}"

    await asyncio.to_thread(check)


# --------------------------------------------------------------------------- found so far


def valid_deal(account: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "account_name": "Acme",
        "acv_usd": 20_000,
        "close_date": today_iso(),
        "contacts": [{"name": "Ann Example", "email": "ann@acme.test", "role": "champion"}],
    }


def deal_json(**raw: str) -> Callable[[str], bytes]:
    """A valid deal for the account, with fields replaced by raw JSON text."""

    def body(account: str) -> bytes:
        fields = valid_deal(account) | {name: "@" + name for name in raw}
        text = json.dumps(fields)
        for name, value in raw.items():
            text = text.replace(json.dumps("@" + name), value)
        return text.encode()

    return body


def track_call(account: str, **over: Any) -> dict[str, Any]:
    call = {
        "type": "track",
        "messageId": f"m-{uuid.uuid4().hex}",
        "event": "user_logged_in",
        "groupId": account,
        "timestamp": now_iso(),
    }
    return call | over


def track(**over: Any) -> Callable[[str], bytes]:
    return lambda account: dumps({"batch": [track_call(account, **over)]})


def opportunity(**over: Any) -> Callable[[str], bytes]:
    def body(account: str) -> bytes:
        opp = {
            "Id": f"006{uuid.uuid4().hex[:12]}",
            "AccountId": account,
            "StageName": "Closed Won",
            "Amount": 64_000,
            "CloseDate": today_iso(),
        }
        return dumps({"Opportunity": opp | over, "Account": {"Name": "Umbrella"}})

    return body


def raw(data: bytes) -> Callable[[str], bytes]:
    return lambda account: data


def hubspot_batch(account: str) -> bytes:
    """Two closed-won deals; the second event's id is a lone surrogate."""
    deal = int(uuid.uuid4().int % 10**11)
    event = {
        "eventId": 1,
        "subscriptionType": "deal.propertyChange",
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "objectId": deal,
        "portalId": 62515,
    }
    return dumps([event, event | {"eventId": "\ud800", "objectId": deal + 1}])


def events_batch(account: str) -> bytes:
    """A usable call for the account, and one for another account with a lone surrogate."""
    other = track_call(f"{account}-b", messageId="m-\ud800")
    return dumps({"batch": [track_call(account), other]})


def outbound(close_date: str) -> Callable[[str], bytes]:
    def body(account: str) -> bytes:
        note = f"04l{uuid.uuid4().hex[:12]}"
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"
 xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
<OrganizationId>00D000000000001AAA</OrganizationId>
<Notification><Id>{note}</Id><sObject xsi:type="sf:Opportunity">
<sf:Id>006{note[-6:]}</sf:Id><sf:AccountId>{account}</sf:AccountId>
<sf:Amount>12000.0</sf:Amount><sf:StageName>Closed Won</sf:StageName>
<sf:CloseDate>{close_date}</sf:CloseDate></sObject></Notification>
</notifications></soapenv:Body></soapenv:Envelope>""".encode()

    return body


# Each: a body a signed sender can send, that the ingress answered with a 5xx.
HOSTILE: dict[str, tuple[str, Callable[[str], bytes]]] = {
    "deal-nested-50k-deep": ("/webhooks/deals", raw(b"[" * 50_000)),
    "deal-5000-digit-int": ("/webhooks/deals", raw(b'{"seats": ' + b"7" * 5_000 + b"}")),
    "deal-acv-1e400": ("/webhooks/deals", deal_json(acv_usd="1e400")),
    "deal-acv-Infinity": ("/webhooks/deals", deal_json(acv_usd="Infinity")),
    "deal-close-date-past-9999": (
        "/webhooks/deals",
        deal_json(close_date='"9999-12-31T23:00:00-05:00"'),
    ),
    "deal-close-date-before-0001": (
        "/webhooks/deals",
        deal_json(close_date='"0001-01-01T00:00:00+05:00"'),
    ),
    "deal-name-lone-surrogate": ("/webhooks/deals", deal_json(account_name='"Acme \\ud800"')),
    "deal-configuration-hours-1e400": ("/webhooks/deals", deal_json(configuration_hours="1e400")),
    "events-nested-50k-deep": ("/events", raw(b"[" * 50_000)),
    "events-timestamp-past-9999": ("/events", track(timestamp="9999-12-31T23:00:00-05:00")),
    "events-message-id-lone-surrogate": ("/events", track(messageId="m-\ud800")),
    "events-user-id-lone-surrogate": ("/events", track(userId="u-\ud800")),
    "events-batch-with-a-lone-surrogate": ("/events", events_batch),
    "hubspot-nested-50k-deep": ("/webhooks/hubspot", raw(b"[" * 50_000)),
    "hubspot-batch-with-a-lone-surrogate": ("/webhooks/hubspot", hubspot_batch),
    "salesforce-amount-huge-int": ("/webhooks/salesforce", opportunity(Amount=10**400)),
    "salesforce-amount-Infinity": ("/webhooks/salesforce", opportunity(Amount="Infinity")),
    "salesforce-close-date-past-9999": (
        "/webhooks/salesforce",
        opportunity(CloseDate="9999-12-31T23:00:00-05:00"),
    ),
    "salesforce-outbound-close-date-past-9999": (
        f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}",
        outbound("9999-12-31T23:00:00-05:00"),
    ),
}


@pytest.mark.parametrize(("route", "make"), HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_signed_bodies_are_answered_without_a_5xx(
    fuzzed: FuzzedApp, route: str, make: Callable[[str], bytes]
) -> None:
    """A signed request that cannot be used is refused (4xx) naming the field, or, if it
    is taken (2xx), its onboarding works: its status can be read."""
    account = f"fz-{uuid.uuid4().hex[:12]}"
    body = make(account)
    sent, response = await fuzzed.exchange("POST", route, signed(route, body), body)
    if response.status_code >= 400:
        answer = response.json()
        assert answer["field"] and answer["reason"], f"{sent}"
        assert not await workflow_exists(fuzzed.env.client, f"onboarding-{account}"), f"{sent}"
    elif route != "/events" or response.json()["accepted"]:
        # A worker that cannot run the onboarding never answers: do not wait 10 s for it.
        try:
            read = fuzzed.http.get(f"/accounts/{account}", headers=signed("/accounts/", b""))
            status = await asyncio.wait_for(read, 5)
        except TimeoutError:
            pytest.fail(f"taken, but its onboarding does not answer its status:\n{sent}")
        assert status.status_code == 200, f"taken, but its onboarding is broken:\n{sent}"
