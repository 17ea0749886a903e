"""The HTTP ingress as the tests drive it: settings with test secrets, requests signed by
hand (independently of `starter.signatures`), and what to ask Temporal afterwards.

The `http` fixture (an ingress client over the real app and the session's dev server)
and the `ingress` factory (an `IngressFactory`: the same with other settings) are in
`tests/conftest.py`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from starter.settings import IngressSettings
from workflows.models import workflow_id_for

WHSEC_RAW = b"generic-webhook-secret-0123456789"
WHSEC = "whsec_" + base64.b64encode(WHSEC_RAW).decode()
WHSEC_OLD_RAW = b"the-secret-being-rotated-out-0000"
WHSEC_OLD = "whsec_" + base64.b64encode(WHSEC_OLD_RAW).decode()
SEGMENT_SECRET = "segment-shared-secret"
HUBSPOT_SECRET = "hubspot-client-secret"
SALESFORCE_SECRET = "salesforce-secret"
OUTBOUND_TOKEN = "outbound-token-1"
ORG_ID = "00D000000000001AAA"
READ_TOKEN = "api-read-token"

# `ingress(fx_rates=..., **settings)`: a client of the real app with other settings.
IngressFactory = Callable[..., httpx.AsyncClient]


def settings(**overrides: Any) -> IngressSettings:
    fields: dict[str, Any] = {
        "webhook_secrets": f"{WHSEC},{WHSEC_OLD}",
        "segment_secrets": SEGMENT_SECRET,
        "events_webhook_secrets": WHSEC,
        "hubspot_secrets": HUBSPOT_SECRET,
        "salesforce_secrets": SALESFORCE_SECRET,
        "salesforce_outbound_tokens": OUTBOUND_TOKEN,
        "salesforce_org_ids": ORG_ID,
        "intake_wait_s": 10,
        "api_tokens": READ_TOKEN,
    }
    return IngressSettings.model_validate(fields | overrides)


def account() -> str:
    return f"acct-{uuid.uuid4().hex[:10]}"


def deal_body(account_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "account_name": "Initech",
        "acv_usd": 20_000,
        "close_date": now_iso(),
        "contacts": [{"name": "Peter Gibbons", "email": "peter@initech.test", "role": "champion"}],
        "success_criteria": ["TPS reports filed weekly"],
    } | overrides


# --------------------------------------------------------------------------- signing, by hand


async def post_deal(http: httpx.AsyncClient, account_id: str, **overrides: Any) -> httpx.Response:
    """`POST /webhooks/deals` of `deal_body(account_id, **overrides)`, signed."""
    body = dumps(deal_body(account_id, **overrides))
    return await http.post("/webhooks/deals", content=body, headers=std_headers(body))


def standard_signature(
    body: bytes, secret_raw: bytes = WHSEC_RAW, msg_id: str | None = None, ts: str | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers that sign `body` (a fresh id, now, unless given)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = ts or str(int(time.time()))
    mac = hmac.new(secret_raw, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def std_headers(body: bytes, secret_raw: bytes = WHSEC_RAW, **over: str) -> dict[str, str]:
    signature = standard_signature(body, secret_raw, over.pop("msg_id", None), over.pop("ts", None))
    return signature | {"content-type": "application/json"} | over


def segment_signature(body: bytes, secret: str = SEGMENT_SECRET) -> dict[str, str]:
    return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def segment_headers(body: bytes, secret: str = SEGMENT_SECRET) -> dict[str, str]:
    return segment_signature(body, secret) | {"content-type": "application/json"}


def hubspot_signature(uri: str, body: bytes, *, age_s: float = 0) -> dict[str, str]:
    """HubSpot's v3 signature of a POST to `uri` (the full URL HubSpot called)."""
    ts = str(int((time.time() - age_s) * 1000))
    source = f"POST{uri}".encode() + body + ts.encode()
    mac = hmac.new(HUBSPOT_SECRET.encode(), source, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(mac).decode(),
        "X-HubSpot-Request-Timestamp": ts,
    }


def hubspot_headers(uri: str, body: bytes, *, age_s: float = 0) -> dict[str, str]:
    return hubspot_signature(uri, body, age_s=age_s) | {"content-type": "application/json"}


def salesforce_headers(body: bytes) -> dict[str, str]:
    mac = hmac.new(SALESFORCE_SECRET.encode(), body, hashlib.sha256).digest()
    return {"X-Salesforce-Signature": base64.b64encode(mac).decode()}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity stay, as a sender may send them


# --------------------------------------------------------------------------- Temporal side


async def exists(client: Client, account_id: str) -> bool:
    """The account has an onboarding (running or not)."""
    return await workflow_exists(client, workflow_id_for(account_id))


async def workflow_exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def runs(client: Client, account_id: str) -> int:
    """How many runs the account's workflow id has had (a second onboarding would show)."""
    query = f'WorkflowId = "onboarding-{account_id}"'
    for _ in range(50):  # visibility is eventually consistent
        count = len([w async for w in client.list_workflows(query)])
        if count:
            return count
        await asyncio.sleep(0.1)
    return 0


async def until(check: Callable[[], Any], within: float = 10) -> Any:
    """`check()` (a plain or an async function) once it is truthy, polled in real time for
    up to `within` seconds; its last value otherwise."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error"], body["field"]


def iso(at: datetime) -> str:
    """A time as senders write it: `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""
    return at.isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    """This machine's UTC time (the dev server's clock) as senders write it."""
    return iso(datetime.now(UTC))


def today_iso() -> str:
    """This machine's UTC date, for date-only fields: `YYYY-MM-DD`."""
    return datetime.now(UTC).date().isoformat()


def track(acct: str, event: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"msg-{uuid.uuid4().hex}",
        "event": event,
        "userId": "u-1",
        "context": {"groupId": acct},
        "properties": props,
        "timestamp": now_iso(),
    }


async def post_events(http: httpx.AsyncClient, calls: list[dict[str, Any]]) -> httpx.Response:
    body = dumps({"batch": calls})
    return await http.post("/events", content=body, headers=segment_headers(body))


async def start_deal(http: httpx.AsyncClient, acct: str, **over: Any) -> None:
    body = dumps(deal_body(acct, **over))
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert response.status_code == 201, response.text


def moved_to(text: str, day: date) -> str:
    """A real-world case's text with its dates moved so the earliest is `day`, the gaps
    between them kept (a case is an example of its day: tests run on theirs)."""
    found = sorted({date.fromisoformat(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", text)})
    if not found:
        return text
    shift = day - found[0]
    return re.sub(
        r"\d{4}-\d{2}-\d{2}", lambda m: (date.fromisoformat(m[0]) + shift).isoformat(), text
    )


async def until_healthy(http: httpx.AsyncClient, within: float) -> None:
    """Until the ingress at `http`'s base URL answers `/healthz` (at most `within` s)."""
    for _ in range(round(within * 10)):
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.ConnectError:
            pass
        await asyncio.sleep(0.1)


@asynccontextmanager
async def served(client: Client, settings: IngressSettings) -> AsyncIterator[str]:
    """The real ingress app on real uvicorn at `settings.port`, until the block ends;
    yields its base URL once `/healthz` answers."""
    from starter.app import serve  # the app, only for the tests that serve it

    url = f"http://127.0.0.1:{settings.port}"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(client, stop, settings))
    async with httpx.AsyncClient(base_url=url) as http:
        await until_healthy(http, within=10)
    try:
        yield url
    finally:
        stop.set()
        await task
