"""Every hostile signed body that once got a 5xx from the ingress (found by the fuzz in
`test_api_fuzz*.py`), kept: it is refused naming the field, or taken and its onboarding
answers its status.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.fuzz import (
    FuzzedApp,
    signed,
    track_call,
    valid_deal,
)
from tests.support.ingress import (
    OUTBOUND_TOKEN,
    dumps,
    today_iso,
    workflow_exists,
)

# A failing example shows itself; every feature is configured.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples", "fuzz_configured")


# --------------------------------------------------------------------------- found so far


def deal_json(**raw: str) -> Callable[[str], bytes]:
    """A valid deal for the account, with fields replaced by raw JSON text."""

    def body(account: str) -> bytes:
        fields = valid_deal(account) | {name: "@" + name for name in raw}
        text = json.dumps(fields)
        for name, value in raw.items():
            text = text.replace(json.dumps("@" + name), value)
        return text.encode()

    return body


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
