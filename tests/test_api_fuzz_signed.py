"""The webhook routes fuzzed with signed bodies of any shape: near-valid deals, Segment
calls, HubSpot batches and Salesforce callouts, JSON of any shape and random bytes, each
signed as its sender signs (the schema documents no body for them: they read raw bytes).
Never a 5xx, and a refused request started and signalled nothing (`tests.support.fuzz`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fuzz import (
    BASE_URL,
    FUZZ,
    FuzzedApp,
)
from tests.support.ingress import (
    dumps,
    hubspot_signature,
    now_iso,
    salesforce_headers,
    segment_signature,
    standard_signature,
    today_iso,
)
from tests.support.strategies import json_scalars, json_values

# A failing example shows itself; every feature is configured.
pytestmark = pytest.mark.usefixtures("hypothesis_shows_examples", "fuzz_configured")


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
        fuzzed.post("/webhooks/deals", body, standard_signature(body))

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
    @given(body=bodies, scheme=st.sampled_from([segment_signature, standard_signature]))
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
        fuzzed.post(
            "/webhooks/hubspot", body, hubspot_signature(f"{BASE_URL}/webhooks/hubspot", body)
        )

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
        fuzzed.post("/webhooks/salesforce", body, salesforce_headers(body))

    await asyncio.to_thread(check)
