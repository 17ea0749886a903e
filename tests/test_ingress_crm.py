"""The CRM webhooks over HTTP, against the real app, a real dev server and its worker:
Salesforce callouts and Outbound Messages, HubSpot deal-stage webhooks (the deal fetched
from the fake CRM API). Signatures are computed here, independently of `starter.signatures`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.support.fake_crm import FakeCrmApi
from tests.support.ingress import (
    ORG_ID,
    OUTBOUND_TOKEN,
    IngressFactory,
    account,
    dumps,
    error,
    exists,
    hubspot_headers,
    runs,
    salesforce_headers,
    today_iso,
)

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


async def test_a_salesforce_opportunity_with_products_onboards_them_in_its_order(
    ingress: IngressFactory,
) -> None:
    http = ingress(crm_products="crm,bi")
    acct = account()
    items = [
        {"Quantity": 40, "Product2": {"ProductCode": "CRM", "Name": "CRM Suite"}},
        {"Quantity": 1, "Product2": {"ProductCode": "SVC", "Name": "Implementation"}},
        {"Quantity": 5, "Product2": {"ProductCode": "BI", "Name": "BI Studio"}},
    ]
    body = dumps(opportunity(acct) | {"OpportunityLineItems": {"records": items}})
    response = await http.post(
        "/webhooks/salesforce", content=body, headers=salesforce_headers(body)
    )
    assert response.status_code == 201, response.text
    status = (await http.get(f"/accounts/{acct}")).json()
    assert [(p["id"], p["name"], p["licensed_seats"]) for p in status["products"]] == [
        ("crm", "CRM Suite", 40),
        ("bi", "BI Studio", 5),
    ]

    bad = dumps(opportunity(account()) | {"OpportunityLineItems": [items[0], {"Quantity": 2}]})
    refused = await http.post("/webhooks/salesforce", content=bad, headers=salesforce_headers(bad))
    assert error(refused) == (422, "invalid_payload", "OpportunityLineItems[1].Product2")


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
