"""The HTTP ingress, over HTTP, against the real app, a real dev server and its worker.

Signatures are computed here, independently of `starter.signatures`. Every rejection is
checked for its status, the field it names, and that it started or signalled nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from starter.app import create_app
from tests.support.fake_crm import FakeCrmApi
from tests.support.ingress import (
    ORG_ID,
    OUTBOUND_TOKEN,
    WHSEC_OLD_RAW,
    account,
    deal_body,
    dumps,
    error,
    exists,
    hubspot_headers,
    post_events,
    runs,
    salesforce_headers,
    segment_headers,
    settings,
    start_deal,
    std_headers,
    today_iso,
    track,
    until,
)
from workflows.models import AwaitedEvents

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


# --------------------------------------------------------------------------- Salesforce


def opportunity(acct: str, stage: str = "Closed Won") -> dict[str, Any]:
    return {
        "Opportunity": {
            "Id": f"006{uuid.uuid4().hex[:12]}",
            "AccountId": acct,
            "Amount": 64_000,
            "StageName": stage,
            "CloseDate": today_iso(),
        },
        "Account": {"Id": acct, "Name": "Umbrella Corp"},
    }


async def test_salesforce_closed_won_starts_an_onboarding_and_other_stages_are_ignored(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps(opportunity(acct))
    response = await http.post(
        "/webhooks/salesforce", content=body, headers=salesforce_headers(body)
    )
    assert response.status_code == 201, response.text
    assert response.json()["workflow_id"] == f"onboarding-{acct}"
    status = (await http.get(f"/accounts/{acct}")).json()
    assert status["account_name"] == "Umbrella Corp"
    assert status["tier"] == "high_touch"  # ACV 64k

    other = account()
    body = dumps(opportunity(other, stage="Negotiation/Review"))
    ignored = await http.post(
        "/webhooks/salesforce", content=body, headers=salesforce_headers(body)
    )
    assert ignored.status_code == 200
    assert "Negotiation/Review" in ignored.json()["ignored"][0]["reason"]
    assert not await exists(dev_env.client, other)

    forged = await http.post(
        "/webhooks/salesforce", content=body, headers={"X-Salesforce-Signature": "AAAA"}
    )
    assert error(forged) == (401, "invalid_signature", "X-Salesforce-Signature")


def outbound_message(org_id: str, notes: list[tuple[str, str]]) -> bytes:
    items = "".join(
        f"""<Notification><Id>{note_id}</Id><sObject xsi:type="sf:Opportunity">
        <sf:Id>006{note_id[-6:]}</sf:Id><sf:AccountId>{acct}</sf:AccountId>
        <sf:Amount>12000.0</sf:Amount><sf:StageName>Closed Won</sf:StageName>
        <sf:CloseDate>{today_iso()}</sf:CloseDate><sf:Account_Name__c>Hooli</sf:Account_Name__c>
        </sObject></Notification>"""
        for note_id, acct in notes
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"
 xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
<OrganizationId>{org_id}</OrganizationId><ActionId>04k000000000001</ActionId>
{items}</notifications></soapenv:Body></soapenv:Envelope>""".encode()


async def test_salesforce_outbound_messages_are_acknowledged_once_taken(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    note = f"04l{uuid.uuid4().hex[:12]}"
    body = outbound_message(ORG_ID, [(note, acct), (note, acct)])
    url = f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}"
    response = await http.post(url, content=body, headers={"content-type": "text/xml"})
    assert response.status_code == 200, response.text
    assert "<Ack>true</Ack>" in response.text
    # Salesforce redelivers until acknowledged: the same notification changes nothing.
    assert (await http.post(url, content=body)).status_code == 200
    assert await runs(dev_env.client, acct) == 1

    for broken in (b"<notifications><unclosed>", b'<!DOCTYPE x [<!ENTITY a "b">]><x/>'):
        assert error(await http.post(url, content=broken)) == (400, "malformed", "body")
    wrong_token = await http.post("/webhooks/salesforce/outbound?token=guess", content=body)
    assert error(wrong_token)[:2] == (401, "invalid_signature")
    stranger = account()
    foreign = outbound_message("00D999999999999ZZZ", [(f"04l{uuid.uuid4().hex[:12]}", stranger)])
    refused = await http.post(url, content=foreign)
    assert error(refused) == (401, "invalid_signature", "OrganizationId")
    assert not await exists(dev_env.client, stranger)


# --------------------------------------------------------------------------- HubSpot


def hubspot_event(deal_id: str, value: str = "closedwon", **over: Any) -> dict[str, Any]:
    return {
        "eventId": int(uuid.uuid4().int % 10**9),
        "subscriptionId": 2001,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": int(deal_id),
        "propertyName": "dealstage",
        "propertyValue": value,
        "changeSource": "CRM_UI",
    } | over


async def test_hubspot_closed_won_fetches_the_deal_and_starts_its_onboarding(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment, fake_crm: FakeCrmApi
) -> None:
    deal_id = str(uuid.uuid4().int % 10**11)
    company = f"{uuid.uuid4().int % 10**10}"
    fake_crm.hubspot_deal(deal_id, company, amount="3000", name="Globex")
    other_deal = str(uuid.uuid4().int % 10**11)
    payload = [
        hubspot_event(deal_id),
        hubspot_event(other_deal, value="appointmentscheduled"),
        hubspot_event(deal_id, subscriptionType="deal.creation"),
    ]
    body = dumps(payload)
    uri = "http://ingress.test/webhooks/hubspot"
    response = await http.post(
        "/webhooks/hubspot", content=body, headers=hubspot_headers(uri, body)
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    [deal] = answer["deals"]
    assert deal["workflow_id"] == f"onboarding-{company}"
    assert deal["started"] is True
    assert len(answer["ignored"]) == 2
    assert any("appointmentscheduled" in i["reason"] for i in answer["ignored"])
    status = (await http.get(f"/accounts/{company}")).json()
    assert status["account_name"] == "Globex"
    assert status["tier"] == "self_serve"
    assert any(
        r["path"] == f"/crm/v3/objects/deals/{deal_id}"
        and r["authorization"] == "Bearer pat-test-token"
        for r in fake_crm.requests
    )

    # HubSpot retries: the redelivery finds the same intake and the same onboarding.
    again = await http.post("/webhooks/hubspot", content=body, headers=hubspot_headers(uri, body))
    assert again.json()["deals"][0]["workflow_id"] == f"onboarding-{company}"
    assert await runs(dev_env.client, company) == 1


async def test_hubspot_signatures_are_checked_and_stale_ones_refused(
    http: httpx.AsyncClient, fake_crm: FakeCrmApi
) -> None:
    body = dumps([hubspot_event("123")])
    uri = "http://ingress.test/webhooks/hubspot"
    stale = await http.post(
        "/webhooks/hubspot", content=body, headers=hubspot_headers(uri, body, age_s=360)
    )
    assert error(stale) == (401, "invalid_signature", "X-HubSpot-Request-Timestamp")
    wrong_uri = hubspot_headers("http://elsewhere.test/webhooks/hubspot", body)
    assert (
        await http.post("/webhooks/hubspot", content=body, headers=wrong_uri)
    ).status_code == 401
    too_many = dumps([hubspot_event(str(i + 1)) for i in range(101)])
    response = await http.post(
        "/webhooks/hubspot", content=too_many, headers=hubspot_headers(uri, too_many)
    )
    assert response.status_code == 422


# --------------------------------------------------------------------------- product events


async def test_product_events_complete_milestones_with_one_signal_per_account(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    await start_deal(http, acct)
    login = track(acct, "user_logged_in")
    calls = [
        login,
        track(acct, "page_viewed"),
        dict(login),  # the same messageId twice in one request
        track(acct, "setup_completed"),
    ]
    response = await post_events(http, calls)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["signals"] == 1
    outcomes = [e["outcome"] for e in answer["events"]]
    assert outcomes == ["accepted", "ignored", "duplicate", "accepted"]
    assert "page_viewed" in answer["events"][1]["reason"]

    async def milestones() -> dict[str, str]:
        status = (await http.get(f"/accounts/{acct}")).json()
        done = {m["id"]: m["status"] for m in status["milestones"]}
        return done if done["technical_setup"] == "done" else {}

    done = await until(milestones)
    assert done["first_login"] == "done"
    assert done["technical_setup"] == "done"

    # Now no open milestone needs a login (the workflow's memo says so once its task
    # is recorded): such events stop at the ingress and no longer reach the workflow.
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")

    async def login_not_awaited() -> bool:
        awaited = await (await handle.describe()).memo_value("awaited", type_hint=AwaitedEvents)
        return "user_logged_in" not in awaited.events

    assert await until(login_not_awaited)
    again = await post_events(http, [track(acct, "user_logged_in")])
    [answer] = again.json()["events"]
    assert answer["outcome"] == "ignored"
    assert answer["reason"] == "no open milestone of this onboarding needs 'user_logged_in'"
    history = [e async for e in handle.fetch_history_events()]
    signals = [e for e in history if e.HasField("workflow_execution_signaled_event_attributes")]
    assert len(signals) == 1


async def test_events_before_the_deal_are_kept_and_applied_when_it_comes(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    response = await post_events(
        http, [track(acct, "user_logged_in"), track(acct, "user_invited"), track(acct, "x_clicked")]
    )
    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["outcome"] for e in events] == ["accepted", "accepted", "ignored"]
    assert "kept until" in events[0]["reason"]
    waiting = (await http.get(f"/accounts/{acct}")).json()
    assert waiting["state"] == "awaiting_deal"
    assert waiting["event_counts"] == {"user_logged_in": 1, "user_invited": 1}

    await start_deal(http, acct)
    status = (await http.get(f"/accounts/{acct}")).json()
    assert status["state"] == "active"
    assert {m["id"]: m["status"] for m in status["milestones"]}["first_login"] == "done"
    assert await runs(dev_env.client, acct) == 1


async def test_events_that_cannot_be_used_are_answered_one_by_one(http: httpx.AsyncClient) -> None:
    acct = account()
    calls = [
        {"type": "track", "event": "user_logged_in", "context": {"groupId": acct}},
        {"type": "track", "messageId": "m-1", "event": "user_logged_in"},
        track("bad account!", "user_logged_in"),
        track(acct, "core_workflow_completed") | {"timestamp": "yesterday"},
    ]
    response = await post_events(http, calls)
    assert response.status_code == 200
    answers = response.json()["events"]
    assert [a["outcome"] for a in answers] == ["rejected"] * 4
    assert "messageId" in answers[0]["reason"]
    assert "account" in answers[1]["reason"] or "groupId" in answers[1]["reason"]
    assert "timestamp" in answers[3]["reason"]


async def test_unsigned_or_forged_events_are_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps({"batch": [track(acct, "user_logged_in")]})
    unsigned = await http.post("/events", content=body)
    assert error(unsigned) == (401, "invalid_signature", "X-Signature")
    forged = await http.post("/events", content=body, headers=segment_headers(body, "guess"))
    assert error(forged) == (401, "invalid_signature", "X-Signature")
    standard = await http.post("/events", content=body, headers=std_headers(body))
    assert standard.status_code == 200  # the Standard Webhooks scheme is accepted too
    too_many = dumps({"batch": [track(acct, "page_viewed") for _ in range(1001)]})
    response = await http.post("/events", content=too_many, headers=segment_headers(too_many))
    assert error(response) == (422, "invalid_payload", "batch")
    not_json = b"\xff\xfe"
    assert (
        error(await http.post("/events", content=not_json, headers=segment_headers(not_json)))[0]
        == 400
    )


async def test_events_for_a_finished_onboarding_are_answered_not_dropped(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    await start_deal(http, acct)
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")
    await handle.execute_update("cancel", {"by": "ops", "reason": "deal churned"})
    await until(lambda: _closed(handle))
    response = await post_events(http, [track(acct, "user_logged_in")])
    [answer] = response.json()["events"]
    assert answer["outcome"] == "ignored"
    assert "finished" in answer["reason"]


async def _closed(handle: Any) -> bool:
    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING


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
    assert (await http.get("/docs")).status_code == 200


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


async def test_once_no_milestone_needs_events_none_reach_the_workflow(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    await start_deal(http, acct)
    names = ["user_logged_in", "setup_completed", "data_import_validated"]
    names += ["core_workflow_completed"] + ["user_invited"] * 3
    first = await post_events(http, [track(acct, name) for name in names])
    assert first.json()["signals"] == 1
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")

    async def nothing_awaited() -> bool:
        memo = await (await handle.describe()).memo_value(
            "awaited", None, type_hint=AwaitedEvents | None
        )
        return memo is not None and memo.events == []

    assert await until(nothing_awaited)
    later = await post_events(http, [track(acct, "setup_completed"), track(acct, "user_invited")])
    assert later.json()["signals"] == 0
    assert {e["outcome"] for e in later.json()["events"]} == {"ignored"}


async def test_a_hubspot_deal_without_a_company_is_answered_with_why(
    http: httpx.AsyncClient, fake_crm: FakeCrmApi
) -> None:
    deal_id = str(uuid.uuid4().int % 10**11)
    fake_crm.routes[f"/crm/v3/objects/deals/{deal_id}"] = (
        200,
        {"id": deal_id, "properties": {"amount": "9000", "closedate": today_iso()}},
    )
    body = dumps([hubspot_event(deal_id)])
    uri = "http://ingress.test/webhooks/hubspot"
    response = await http.post(
        "/webhooks/hubspot", content=body, headers=hubspot_headers(uri, body)
    )
    # Not acknowledged: HubSpot delivers it again (once someone adds the company).
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "60"
    answer = response.json()
    assert (answer["error"], answer["field"]) == ("intake_failed", "deals")
    assert f"deal {deal_id}: " in answer["reason"]
    [deal] = answer["deals"]
    assert deal["failed"] is True
    assert "no associated company" in deal["detail"]
    assert "workflow_id" not in deal
