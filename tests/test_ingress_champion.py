"""A CRM's report of a new champion (rules §6.3 (docs/rules.md)) over HTTP, against the
real app on real uvicorn, the session's dev server and worker: a Salesforce
OpportunityContactRole callout and a HubSpot `contact.propertyChange` of the buying role
(the contact read from the fake HubSpot API, which records what it was asked) reach the
account's onboarding as `change_contact` and open its re-alignment window; repeats,
other roles, unknown accounts and bad bodies are answered with the reason."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.settings import Settings
from starter.devserver import free_port
from tests.support.fake_crm import FakeCrmApi
from tests.support.ingress import (
    READ_TOKEN,
    account,
    dumps,
    error,
    hubspot_headers,
    salesforce_headers,
    served,
    today_iso,
    until,
)
from tests.support.ingress import settings as ingress_settings


@pytest.fixture(scope="module")
async def site(
    dev_env: WorkflowEnvironment, dev_worker: Settings, fake_crm: FakeCrmApi
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the ingress served by uvicorn on a free port (reads with the token)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = ingress_settings(
        port=port,
        public_url=url,
        hubspot_api_url=fake_crm.url,
        hubspot_token="pat-test-token",
    )
    async with (
        served(dev_env.client, settings),
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=30
        ) as http,
    ):
        yield http


async def status(http: httpx.AsyncClient, acct: str) -> dict[str, Any]:
    response = await http.get(f"/accounts/{acct}")
    assert response.status_code == 200, response.text
    return dict(response.json())


# --------------------------------------------------------------------------- Salesforce


async def post_salesforce(http: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    body = dumps(payload)
    return await http.post("/webhooks/salesforce", content=body, headers=salesforce_headers(body))


def contact_role(acct: str, email: str, role: str = "Champion", **contact: Any) -> dict[str, Any]:
    """An OpportunityContactRole as Apex's JSON.serialize writes the queried record."""
    return {
        "OpportunityContactRole": {
            "attributes": {"type": "OpportunityContactRole"},
            "Id": f"00K{uuid.uuid4().hex[:12]}",
            "Role": role,
            "IsPrimary": False,
            "Contact": {"Name": "Nia New", "Email": email} | contact,
            "Opportunity": {"Id": "006000000000001", "AccountId": acct},
        }
    }


async def test_a_salesforce_champion_contact_role_opens_the_window_once(
    site: httpx.AsyncClient,
) -> None:
    acct = account()
    started = await post_salesforce(
        site,
        {
            "Opportunity": {
                "Id": f"006{uuid.uuid4().hex[:12]}",
                "AccountId": acct,
                "Amount": 20_000,
                "StageName": "Closed Won",
                "CloseDate": today_iso(),
            },
            "Account": {"Id": acct, "Name": "Umbrella Corp"},
            "Contacts": [
                {"Name": "Cara Champion", "Email": "cara@umbrella.test", "Role": "Champion"}
            ],
        },
    )
    assert started.status_code == 201, started.text

    async def owned() -> bool:  # the owner's assignment lands in the audit after the start
        return bool((await status(site, acct))["owner"])

    assert await until(owned)

    new = contact_role(acct, "Nia@Umbrella.test")
    response = await post_salesforce(site, new)
    assert response.status_code == 200, response.text
    [answer] = response.json()["champions"]
    assert answer["applied"] is True
    assert answer["window_opened"] is True
    assert answer["champion"] == "nia@umbrella.test"
    assert answer["workflow_id"] == f"onboarding-{acct}"
    assert "a re-alignment window is open to the end of" in answer["detail"]
    opened = await status(site, acct)
    [window] = opened["champion_windows"]
    assert (window["previous"], window["champion"]) == ("cara@umbrella.test", "nia@umbrella.test")
    ref = new["OpportunityContactRole"]["Id"]
    [entry] = [a for a in opened["audit"] if a["kind"] == "contact_changed"]
    assert entry["by"].startswith("salesforce OpportunityContactRole 00K")
    assert ref[3:] in entry["by"]

    # Salesforce retries, or a second trigger reports the same champion: nothing changes.
    again = await post_salesforce(site, new)
    assert again.status_code == 200
    [repeat] = again.json()["champions"]
    assert repeat["applied"] is False
    assert repeat["detail"] == (
        "contact: Nia New <nia@umbrella.test> is already the champion; nothing changed"
    )
    assert (await status(site, acct))["audit"] == opened["audit"]

    other = await post_salesforce(site, contact_role(acct, "bo@umbrella.test", "Business User"))
    assert other.status_code == 200
    [ignored] = other.json()["ignored"]
    assert ignored["reason"] == "Role is 'Business User', not 'Champion': no new champion"
    assert (await status(site, acct))["audit"] == opened["audit"]


async def test_a_salesforce_champion_for_an_account_without_onboarding_is_answered(
    site: httpx.AsyncClient,
) -> None:
    response = await post_salesforce(site, contact_role(account(), "nia@nowhere.test"))
    assert response.status_code == 200, response.text
    [answer] = response.json()["champions"]
    assert (answer["applied"], answer["detail"]) == (False, "no onboarding")


async def test_bad_salesforce_contact_roles_are_refused_naming_the_field(
    site: httpx.AsyncClient,
) -> None:
    acct = account()
    bad_email = await post_salesforce(site, contact_role(acct, "nia-at-umbrella"))
    assert error(bad_email) == (422, "invalid_payload", "OpportunityContactRole.Contact.Email")
    assert "not an email address" in bad_email.json()["reason"]
    no_account = contact_role(acct, "nia@umbrella.test")
    del no_account["OpportunityContactRole"]["Opportunity"]["AccountId"]
    assert error(await post_salesforce(site, no_account)) == (
        422,
        "invalid_payload",
        "OpportunityContactRole.Opportunity.AccountId",
    )
    body = dumps(contact_role(acct, "nia@umbrella.test"))
    forged = await site.post(
        "/webhooks/salesforce", content=body, headers={"X-Salesforce-Signature": "AAAA"}
    )
    assert error(forged) == (401, "invalid_signature", "X-Salesforce-Signature")


# --------------------------------------------------------------------------- HubSpot


def contact_event(contact_id: str, value: str = "CHAMPION", **over: Any) -> dict[str, Any]:
    return {
        "eventId": int(uuid.uuid4().int % 10**9),
        "subscriptionId": 2002,
        "portalId": 62515,
        "appId": 1160452,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": int(contact_id),
        "propertyName": "hs_buying_role",
        "propertyValue": value,
        "changeSource": "CRM_UI",
    } | over


def serve_contact(fake_crm: FakeCrmApi, contact_id: str, company: str, role: str) -> None:
    """Contact `contact_id` as HubSpot's `GET /crm/v3/objects/contacts/{id}` answers."""
    fake_crm.routes[f"/crm/v3/objects/contacts/{contact_id}"] = (
        200,
        {
            "id": contact_id,
            "properties": {
                "email": "nia@globex.test",
                "firstname": "Nia",
                "lastname": "New",
                "hs_buying_role": role,
            },
            "associations": {
                "companies": {"results": [{"id": company, "type": "contact_to_company"}]}
            },
        },
    )


async def post_hubspot(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    body = dumps(events)
    uri = f"{str(http.base_url).rstrip('/')}/webhooks/hubspot"  # ONBOARDING_PUBLIC_URL + path
    return await http.post("/webhooks/hubspot", content=body, headers=hubspot_headers(uri, body))


async def test_a_hubspot_contact_who_became_champion_is_read_and_opens_the_window(
    site: httpx.AsyncClient, fake_crm: FakeCrmApi
) -> None:
    deal_id = str(uuid.uuid4().int % 10**11)
    company = str(uuid.uuid4().int % 10**10)
    fake_crm.hubspot_deal(deal_id, company, amount="12000", name="Globex")
    won = await post_hubspot(
        site,
        [
            {
                "eventId": int(uuid.uuid4().int % 10**9),
                "portalId": 62515,
                "occurredAt": int(time.time() * 1000),
                "subscriptionType": "deal.propertyChange",
                "objectId": int(deal_id),
                "propertyName": "dealstage",
                "propertyValue": "closedwon",
            }
        ],
    )
    assert won.json()["deals"][0]["started"] is True, won.text

    async def owned() -> bool:  # the owner's assignment lands in the audit after the start
        return bool((await status(site, company))["owner"])

    assert await until(owned)

    contact_id = str(uuid.uuid4().int % 10**11)
    serve_contact(fake_crm, contact_id, company, "CHAMPION;INFLUENCER")
    event = contact_event(contact_id, "CHAMPION;INFLUENCER")
    other_contact = str(uuid.uuid4().int % 10**11)
    batch = [event, contact_event(other_contact, "INFLUENCER")]
    response = await post_hubspot(site, batch)
    assert response.status_code == 200, response.text
    answer = response.json()
    [champion] = answer["champions"]
    assert champion["contact_id"] == contact_id
    assert champion["intake_workflow_id"] == (
        f"hubspot-champion-62515-{contact_id}-{event['eventId']}"
    )
    assert (champion["applied"], champion["window_opened"]) == (True, True)
    assert champion["workflow_id"] == f"onboarding-{company}"
    [ignored] = answer["ignored"]
    assert ignored["reason"] == "hs_buying_role is 'INFLUENCER', not CHAMPION: no new champion"
    assert answer["deals"] == answer["lost"] == []
    [read] = [r for r in fake_crm.requests if r["path"].endswith(f"/contacts/{contact_id}")]
    assert read["query"]["associations"] == ["companies"]
    assert "hs_buying_role" in read["query"]["properties"][0]
    assert read["authorization"] == "Bearer pat-test-token"
    assert not any(r["path"].endswith(f"/contacts/{other_contact}") for r in fake_crm.requests)
    opened = await status(site, company)
    [window] = opened["champion_windows"]
    assert (window["previous"], window["champion"]) == ("hank@globex.test", "nia@globex.test")

    # HubSpot redelivers the event: the same intake answers, nothing is read or changed.
    reads = len(fake_crm.requests)
    again = (await post_hubspot(site, [event])).json()["champions"][0]
    assert again["intake_workflow_id"] == champion["intake_workflow_id"]
    assert again["applied"] is True
    assert len(fake_crm.requests) == reads
    # Another event for the same role (the multi-select changed again): refused, no trace.
    repeat = (await post_hubspot(site, [contact_event(contact_id, "CHAMPION")])).json()
    assert repeat["champions"][0]["applied"] is False
    assert "nia@globex.test> is already the champion" in repeat["champions"][0]["detail"]
    assert (await status(site, company))["audit"] == opened["audit"]


async def test_a_hubspot_champion_not_one_when_read_or_without_onboarding_changes_nothing(
    site: httpx.AsyncClient, fake_crm: FakeCrmApi
) -> None:
    no_longer = str(uuid.uuid4().int % 10**11)
    serve_contact(fake_crm, no_longer, str(uuid.uuid4().int % 10**10), "INFLUENCER")
    nobody = str(uuid.uuid4().int % 10**11)
    company = str(uuid.uuid4().int % 10**10)
    serve_contact(fake_crm, nobody, company, "CHAMPION")
    response = await post_hubspot(site, [contact_event(no_longer), contact_event(nobody)])
    assert response.status_code == 200, response.text
    first, second = response.json()["champions"]
    assert first["applied"] is False
    assert first["detail"] == (
        "no longer the champion: hs_buying_role is INFLUENCER, none of CHAMPION"
    )
    assert (second["applied"], second["detail"]) == (False, "no onboarding")
    assert second["workflow_id"] == f"onboarding-{company}"


async def test_a_hubspot_champion_with_a_bad_email_is_answered_503_so_hubspot_retries(
    site: httpx.AsyncClient, fake_crm: FakeCrmApi
) -> None:
    contact_id = str(uuid.uuid4().int % 10**11)
    serve_contact(fake_crm, contact_id, "4242", "CHAMPION")
    fake_crm.routes[f"/crm/v3/objects/contacts/{contact_id}"][1]["properties"]["email"] = "x"
    response = await post_hubspot(site, [contact_event(contact_id)])
    assert error(response) == (503, "intake_failed", "champions")
    assert response.json()["reason"] == (
        f"contact {contact_id}: HubSpotDealError: contact {contact_id}: properties.email: "
        "'x' is not an email address"
    )
    assert response.headers["Retry-After"] == "60"
