"""The HTTP ingress, over HTTP, against the real app, a real dev server and its worker:
generic deal webhooks, status reads and operations (the CRM webhooks are in
`test_ingress_crm.py`, product events in `test_ingress_events.py`).

Signatures are computed here, independently of `starter.signatures`. Every rejection is
checked for its status, the field it names, and that it started or signalled nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from starter.app import create_app
from tests.support.ingress import (
    WHSEC_OLD_RAW,
    account,
    deal_body,
    dumps,
    error,
    exists,
    post_events,
    runs,
    settings,
    start_deal,
    std_headers,
    track,
)

# --------------------------------------------------------------------------- generic webhooks


async def test_a_signed_deal_starts_one_onboarding_however_often_it_is_delivered(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps(deal_body(acct))
    headers = std_headers(body)
    first = await http.post("/webhooks/deals", content=body, headers=headers)
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["started"] is True
    assert answer["workflow_id"] == f"onboarding-{acct}"
    assert answer["ui_url"].endswith(f"/namespaces/default/workflows/onboarding-{acct}")

    # The same delivery again (a retry) gets the same answer; another delivery of the
    # same deal attaches to the running onboarding.
    again = await http.post("/webhooks/deals", content=body, headers=headers)
    assert again.status_code == 201 and again.json()["started"] is True
    other = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert other.status_code == 200
    assert other.json()["started"] is False
    assert "already onboarding" in other.json()["detail"]
    assert await runs(dev_env.client, acct) == 1


async def test_the_previous_secret_still_verifies_during_rotation(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps(deal_body(acct))
    response = await http.post(
        "/webhooks/deals", content=body, headers=std_headers(body, WHSEC_OLD_RAW)
    )
    assert response.status_code == 201, response.text
    retired = std_headers(body, b"a-secret-that-was-removed-000000")
    assert (await http.post("/webhooks/deals", content=body, headers=retired)).status_code == 401


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        (lambda body: {"content-type": "application/json"}, "webhook-id"),
        (lambda body: std_headers(body, b"not-the-secret-at-all-0000000000"), "webhook-signature"),
        (lambda body: std_headers(body, ts=str(int(time.time()) - 600)), "webhook-timestamp"),
        (lambda body: std_headers(body, **{"webhook-signature": "v1,%%%"}), "webhook-signature"),
    ],
    ids=["unsigned", "wrong-secret", "stale", "garbled"],
)
async def test_unproven_deals_are_refused_with_401_and_start_nothing(
    http: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    headers: Callable[[bytes], dict[str, str]],
    field: str,
) -> None:
    acct = account()
    body = dumps(deal_body(acct))
    response = await http.post("/webhooks/deals", content=body, headers=headers(body))
    assert error(response)[:2] == (401, "invalid_signature")
    assert response.json()["field"] == field, response.json()
    assert not await exists(dev_env.client, acct)


async def test_a_tampered_body_is_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps(deal_body(acct))
    headers = std_headers(body)
    tampered = body.replace(b"20000", b"90000")
    response = await http.post("/webhooks/deals", content=tampered, headers=headers)
    assert error(response) == (401, "invalid_signature", "webhook-signature")
    assert not await exists(dev_env.client, acct)


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"acv_usd": -5}, 422, "acv_usd"),
        ({"close_date": "next tuesday"}, 422, "close_date"),
        (
            {"contacts": [{"name": "X", "email": "not-an-email", "role": "champion"}]},
            422,
            "contacts[0].email",
        ),
        ({"account_id": "has spaces"}, 422, "account_id"),
        ({"surprise": 1}, 422, "surprise"),
        # Closed-won 366 days ago: its whole plan has passed (and catching up years of
        # weekly steps would cost the workflow's first task seconds).
        (
            {"close_date": (datetime.now(UTC) - timedelta(days=366)).isoformat()},
            422,
            "close_date",
        ),
    ],
)
async def test_schema_invalid_deals_get_422_naming_the_field(
    http: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    change: dict[str, Any],
    status: int,
    field: str,
) -> None:
    acct = account()
    body = dumps(deal_body(acct) | change)
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert error(response) == (status, "invalid_payload", field), response.json()
    assert response.json()["reason"]
    assert not await exists(dev_env.client, acct)


async def test_a_deal_with_several_problems_names_each(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    bad = {"acv_usd": -5, "close_date": "next tuesday", "deal_type": "barter"}
    body = dumps(deal_body(acct) | bad)
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert error(response) == (422, "invalid_payload", "acv_usd")
    problems = response.json()["errors"]
    assert [p["field"] for p in problems] == ["acv_usd", "close_date", "deal_type"]
    assert all(p["reason"] for p in problems)
    assert not await exists(dev_env.client, acct)


async def test_malformed_json_is_400(http: httpx.AsyncClient) -> None:
    body = b'{"account_id": "acct-1", '
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert error(response) == (400, "malformed", "body")
    assert "not JSON" in response.json()["reason"]


async def test_oversized_requests_are_413_before_any_signature_work(
    dev_env: WorkflowEnvironment, dev_worker: Settings
) -> None:
    app = create_app(settings(max_body_bytes=2_000), dev_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        acct = account()
        body = dumps(deal_body(acct, success_criteria=["x" * 3_000]))
        response = await c.post("/webhooks/deals", content=body, headers=std_headers(body))
        assert error(response) == (413, "too_large", "body")
        assert "2000 bytes" in response.json()["reason"]
        events = dumps({"batch": [{"type": "track", "event": "e" * 3_000}]})
        assert (await c.post("/events", content=events)).status_code == 413
        assert not await exists(dev_env.client, acct)


# --------------------------------------------------------------------------- status and ops


async def test_status_endpoint(http: httpx.AsyncClient) -> None:
    acct = account()
    await start_deal(http, acct)
    status = await http.get(f"/accounts/{acct}")
    assert status.status_code == 200
    assert status.json()["tier"] == "tech_touch"
    assert status.json()["ui_url"].endswith(f"onboarding-{acct}")
    missing = await http.get(f"/accounts/{account()}")
    assert error(missing) == (404, "not_found", "account_id")
    assert error(await http.get("/accounts/bad%20id"))[0] == 422


async def test_health_readiness_and_docs(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    docs = await http.get("/openapi.json")
    assert "/webhooks/hubspot" in docs.json()["paths"]
    page = await http.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    # Everything the page loads comes from this server: no CDN.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        assert (await http.get(asset)).status_code == 200, asset
    assert (await http.get("/redoc")).status_code == 404


async def test_readyz_says_when_temporal_is_unreachable() -> None:
    client = await Client.connect("127.0.0.1:1", lazy=True)
    app = create_app(settings(), client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == "temporal_unavailable"
    assert response.headers["Retry-After"] == "5"  # when to try again


async def test_metrics_count_requests_rejections_starts_and_signals(
    http: httpx.AsyncClient,
) -> None:
    acct = account()
    await start_deal(http, acct)
    await post_events(http, [track(acct, "user_logged_in")])
    await http.post("/webhooks/deals", content=b"{}")
    text = (await http.get("/metrics")).text
    assert 'onboarding_ingress_onboardings_started_total{source="generic"} 1.0' in text
    assert "onboarding_ingress_signals_total 1.0" in text
    assert (
        "onboarding_ingress_rejections_total"
        '{reason="invalid_signature",route="/webhooks/deals"} 1.0' in text
    )
    assert 'onboarding_ingress_requests_total{route="/events",status="200"} 1.0' in text
