"""End to end, as a user runs it: `onboarding up` (dev server + worker + uvicorn ingress)
as a subprocess on free ports, a signed HubSpot webhook, then product events over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import temporalio.client
from dotenv import dotenv_values

from starter.devserver import free_port
from tests.support.fake_crm import FakeCrmApi
from tests.support.ingress import now_iso
from tests.support.temporal import BIN, process_env

ONBOARDING = BIN / "onboarding"
HUBSPOT_SECRET = "e2e-hubspot-secret"
SEGMENT_SECRET = "e2e-segment-secret"


class Stack:
    def __init__(
        self, proc: asyncio.subprocess.Process, base: str, address: str, data: Path
    ) -> None:
        self.proc, self.base, self.address, self.data = proc, base, address, data


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        try:
            value = await check()
        except (httpx.HTTPError, RuntimeError):
            value = None
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


@pytest.fixture
async def stack(tmp_path: Path, fake_crm: FakeCrmApi) -> AsyncIterator[Stack]:
    port, ui_port, http_port = free_port(), free_port(), free_port()
    env = process_env(
        tmp_path,
        ONBOARDING_PORT=str(http_port),
        ONBOARDING_HUBSPOT_SECRETS=HUBSPOT_SECRET,
        ONBOARDING_SEGMENT_SECRETS=SEGMENT_SECRET,
        ONBOARDING_HUBSPOT_API_URL=fake_crm.url,
        ONBOARDING_HUBSPOT_TOKEN="pat-e2e",
        ONBOARDING_UI_URL=f"http://127.0.0.1:{ui_port}",
    )
    proc = await asyncio.create_subprocess_exec(
        str(ONBOARDING),
        "up",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db",
        str(tmp_path / "temporal.db"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{http_port}"
    stack = Stack(proc, base, f"127.0.0.1:{port}", tmp_path)

    async def ready() -> bool:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{base}/readyz")).status_code == 200

    if not await eventually(ready, within=60):
        proc.kill()
        out = (await proc.communicate())[0].decode()
        raise AssertionError(f"`onboarding up` never became ready:\n{out[-3000:]}")
    yield stack
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)


async def test_hubspot_webhook_to_onboarding_then_events_complete_a_milestone(
    stack: Stack, fake_crm: FakeCrmApi
) -> None:
    deal_id = str(uuid.uuid4().int % 10**11)
    company = str(uuid.uuid4().int % 10**10)
    fake_crm.hubspot_deal(deal_id, company, amount="2500", name="Vandelay Industries")
    body = json.dumps(
        [
            {
                "eventId": 1,
                "subscriptionId": 7,
                "portalId": 99,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "deal.propertyChange",
                "attemptNumber": 0,
                "objectId": int(deal_id),
                "propertyName": "dealstage",
                "propertyValue": "closedwon",
            }
        ]
    ).encode()
    uri = f"{stack.base}/webhooks/hubspot"
    ts = str(int(time.time() * 1000))
    mac = hmac.new(HUBSPOT_SECRET.encode(), b"POST" + uri.encode() + body + ts.encode(), "sha256")
    headers = {
        "X-HubSpot-Signature-v3": base64.b64encode(mac.digest()).decode(),
        "X-HubSpot-Request-Timestamp": ts,
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        response = await http.post("/webhooks/hubspot", content=body, headers=headers)
        assert response.status_code in (200, 202), response.text
        assert response.json()["deals"][0]["intake_workflow_id"] == f"hubspot-deal-99-{deal_id}"

        # The onboarding is found by its search attributes, as a CS lead would find it.
        client = await temporalio.client.Client.connect(stack.address)
        query = f'OnboardingTier = "self_serve" AND WorkflowId = "onboarding-{company}"'

        async def listed() -> list[Any]:
            return [w async for w in client.list_workflows(query)]

        [found] = await eventually(listed)
        assert found.id == f"onboarding-{company}"

        calls = [
            {
                "type": "track",
                "messageId": f"m-{uuid.uuid4().hex}",
                "event": name,
                "groupId": company,
                "userId": "art",
                "timestamp": now_iso(),
            }
            for name in ("user_logged_in", "page_viewed", "setup_completed")
        ]
        events = json.dumps({"batch": calls}).encode()
        signature = hmac.new(SEGMENT_SECRET.encode(), events, hashlib.sha1).hexdigest()
        answer = await http.post("/events", content=events, headers={"X-Signature": signature})
        assert answer.status_code == 200, answer.text
        assert [e["outcome"] for e in answer.json()["events"]] == [
            "accepted",
            "ignored",
            "accepted",
        ]

        # `onboarding up` made a read token beside its database, as for the webhooks.
        secrets = dotenv_values(stack.data / "ingress-secrets.env")
        token = str(secrets["ONBOARDING_API_TOKENS"])
        assert (await http.get(f"/accounts/{company}")).status_code == 401
        http.headers["Authorization"] = f"Bearer {token}"

        async def setup_done() -> dict[str, Any] | None:
            status = (await http.get(f"/accounts/{company}")).json()
            done = {m["id"]: m["status"] for m in status["milestones"]}
            return status if done["technical_setup"] == "done" else None

        status = await eventually(setup_done)
        assert status is not None, "the product events never completed technical_setup"
        assert status["account_name"] == "Vandelay Industries"
        assert {m["id"]: m["status"] for m in status["milestones"]}["first_login"] == "done"

        metrics = (await http.get("/metrics")).text
        assert "onboarding_ingress_signals_total 1.0" in metrics
        # Each call counted once, by its outcome.
        assert 'onboarding_ingress_events_total{outcome="accepted"} 2.0' in metrics
        assert 'onboarding_ingress_events_total{outcome="ignored"} 1.0' in metrics
        assert "temporal_request" in metrics  # the SDK runtime's own metrics

    stack.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(stack.proc.wait(), 30) == 0
