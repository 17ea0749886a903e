"""The `fetch_hubspot_deal` and `fetch_hubspot_champion` activities against a local HTTP
server shaped like HubSpot's CRM v3 API, which records what it was asked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.crm import HubSpotClient
from activities.settings import Settings, settings_problems
from tests.support.fake_crm import HUBSPOT_DEFAULT_PIPELINE, FakeCrmApi
from workflows.models import (
    ClosedWonDeal,
    ContactRole,
    HubSpotChampion,
    HubSpotContactRef,
    HubSpotDealRef,
)

TOKEN = "pat-na1-test-token"

DEAL = {
    "id": "1234",
    "properties": {
        "amount": "64000",
        "closedate": "2030-03-31T17:00:00Z",
        "dealstage": "closedwon",
        "dealname": "Acme platform",
        "stakeholder_count": "3",
        "integrations": "Salesforce;Slack",
        "hs_object_id": "1234",
    },
    "createdAt": "2030-01-02T10:00:00Z",
    "updatedAt": "2030-03-31T17:00:05Z",
    "archived": False,
    "associations": {
        "companies": {"results": [{"id": "9000", "type": "deal_to_company"}]},
        "contacts": {
            "results": [
                {"id": "51", "type": "deal_to_contact"},
                {"id": "52", "type": "deal_to_contact"},
                {"id": "99", "type": "deal_to_contact"},  # deleted since
            ]
        },
    },
}
COMPANY = {"id": "9000", "properties": {"name": "Acme Corp", "domain": "acme.test"}}
CONTACTS = {
    "51": {
        "id": "51",
        "properties": {"email": "cara@acme.test", "firstname": "Cara", "lastname": "Ng"},
    },
    "52": {
        "id": "52",
        "properties": {
            "email": "sam@acme.test",
            "firstname": "Sam",
            "lastname": "Ruiz",
            "jobtitle": "Chief Financial Officer",
        },
    },
}


@pytest.fixture
def hubspot() -> Iterator[FakeCrmApi]:
    fake = FakeCrmApi()
    fake.routes = {
        "/crm/v3/objects/deals/1234": (200, DEAL),
        "/crm/v3/objects/companies/9000": (200, COMPANY),
        **{f"/crm/v3/objects/contacts/{cid}": (200, c) for cid, c in CONTACTS.items()},
    }
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ONBOARDING_"):
            monkeypatch.delenv(name)


REF = HubSpotDealRef(
    portal_id=62515,
    deal_id="1234",
    event_id="100",
    occurred_at=datetime(2030, 3, 31, 17, tzinfo=UTC),
)


async def fetch(
    hubspot: FakeCrmApi, ref: HubSpotDealRef = REF, token: str | None = TOKEN, **more: Any
) -> ClosedWonDeal:
    settings = Settings(
        hubspot_api_url=hubspot.url,
        hubspot_token=SecretStr(token) if token is not None else None,
        **more,
    )
    client = HubSpotClient(settings)
    return await ActivityEnvironment().run(client.fetch_hubspot_deal, ref)


async def test_fetch_returns_the_deal_with_company_and_contacts(hubspot: FakeCrmApi) -> None:
    deal = await fetch(hubspot)

    assert (deal.account_id, deal.account_name, deal.acv_usd) == ("9000", "Acme Corp", 64000)
    assert deal.close_date == datetime(2030, 3, 31, 17, tzinfo=UTC)
    assert (deal.stakeholder_count, deal.integrations) == (3, ["Salesforce", "Slack"])
    assert [(c.email, c.role) for c in deal.contacts] == [
        ("cara@acme.test", ContactRole.CHAMPION),
        ("sam@acme.test", ContactRole.EXECUTIVE_SPONSOR),
    ]
    assert deal.crm.model_dump() == {"source": "hubspot", "deal_id": "1234", "company_id": "9000"}

    assert {r["authorization"] for r in hubspot.requests} == {f"Bearer {TOKEN}"}
    paths = [r["path"] for r in hubspot.requests]
    assert paths == [
        "/crm/v3/objects/deals/1234",
        "/crm/v3/objects/companies/9000",
        "/crm/v3/objects/contacts/51",
        "/crm/v3/objects/contacts/52",
        "/crm/v3/objects/contacts/99",
    ]
    deal_query = hubspot.requests[0]["query"]
    assert deal_query["associations"] == ["companies,contacts"]
    assert {"amount", "acv", "closedate", "dealstage", "integrations"} <= set(
        deal_query["properties"][0].split(",")
    )


async def test_fetch_reads_at_most_ten_contacts(hubspot: FakeCrmApi) -> None:
    many = [{"id": str(100 + i), "type": "deal_to_contact"} for i in range(15)]
    deal = json.loads(json.dumps(DEAL))
    deal["associations"]["contacts"]["results"] = many
    hubspot.routes["/crm/v3/objects/deals/1234"] = (200, deal)
    await fetch(hubspot)
    assert sum("/contacts/" in r["path"] for r in hubspot.requests) == 10


async def test_a_deal_no_longer_closed_won_is_refused_with_its_stage(
    hubspot: FakeCrmApi,
) -> None:
    deal = json.loads(json.dumps(DEAL))
    deal["properties"]["dealstage"] = "contractsent"
    hubspot.routes["/crm/v3/objects/deals/1234"] = (200, deal)
    hubspot.routes["/crm/v3/pipelines/deals"] = (200, {"results": [HUBSPOT_DEFAULT_PIPELINE]})
    with pytest.raises(ApplicationError) as err:
        await fetch(hubspot)
    assert err.value.non_retryable and err.value.type == "DealNotClosedWon"
    assert err.value.message == (
        "deal 1234 is no longer closed-won: dealstage contractsent (Contract Sent in "
        "pipeline Sales Pipeline); nothing started"
    )
    # Nothing more is read for a deal that will not start.
    assert [r["path"] for r in hubspot.requests][-1] == "/crm/v3/pipelines/deals"


async def permanent_error(hubspot: FakeCrmApi, **kwargs: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as err:
        await fetch(hubspot, **kwargs)
    assert err.value.non_retryable, err.value
    assert err.value.type == "HubSpotDealError"
    return err.value


async def test_unknown_deal_is_permanent(hubspot: FakeCrmApi) -> None:
    ref = REF.model_copy(update={"deal_id": "777"})
    error = await permanent_error(hubspot, ref=ref)
    assert error.message == "deal 777 not found in portal 62515"


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_token_is_permanent_and_names_the_setting(
    hubspot: FakeCrmApi, status: int
) -> None:
    hubspot.routes["/crm/v3/objects/deals/1234"] = (status, {"status": "error"})
    error = await permanent_error(hubspot)
    assert "HubSpot rejected the token" in error.message
    assert "ONBOARDING_HUBSPOT_TOKEN" in error.message
    assert TOKEN not in error.message


async def test_no_token_is_permanent_and_nothing_is_sent(hubspot: FakeCrmApi) -> None:
    error = await permanent_error(hubspot, token=None)
    assert "ONBOARDING_HUBSPOT_TOKEN" in error.message
    assert hubspot.requests == []


async def test_deal_without_company_is_permanent(hubspot: FakeCrmApi) -> None:
    deal = json.loads(json.dumps(DEAL))
    del deal["associations"]["companies"]
    hubspot.routes["/crm/v3/objects/deals/1234"] = (200, deal)
    error = await permanent_error(hubspot)
    assert "associations.companies" in error.message
    assert "no associated company" in error.message


@pytest.mark.parametrize("status", [503, 429])
async def test_unavailable_or_throttled_is_retryable(hubspot: FakeCrmApi, status: int) -> None:
    hubspot.routes["/crm/v3/objects/companies/9000"] = (status, {"status": "error"})
    with pytest.raises(ApplicationError) as err:
        await fetch(hubspot)
    assert not err.value.non_retryable
    assert str(status) in err.value.message


async def test_connection_refused_is_retryable() -> None:
    closed = FakeCrmApi()
    closed.close()  # nobody listens on its port any more
    with pytest.raises(Exception) as err:
        await fetch(closed)
    assert not (isinstance(err.value, ApplicationError) and err.value.non_retryable)


# --------------------------------------------------------------------------- line items

LINE_ITEMS = [  # as HubSpot's batch read answers them: in no particular order
    {
        "id": "702",
        "properties": {
            "name": "Analytics Pro",
            "hs_sku": "ANL PRO",
            "quantity": "25",
            "hs_position_on_quote": "1",
        },
    },
    {
        "id": "701",
        "properties": {
            "name": "CRM Suite",
            "hs_sku": "CRM",
            "quantity": "40",
            "hs_position_on_quote": "0",
        },
    },
    {
        "id": "703",
        "properties": {
            "name": "Implementation package",
            "hs_sku": "IMPL-1",
            "quantity": "1",
            "hs_position_on_quote": "2",
        },
    },
]


def with_line_items(hubspot: FakeCrmApi, *items: dict[str, Any]) -> None:
    """Deal 1234 with `items` associated (under `line items`, as HubSpot names them), and
    the batch read answering them."""
    deal = json.loads(json.dumps(DEAL))
    ids = [{"id": i["id"], "type": "deal_to_line_item"} for i in items]
    deal["associations"]["line items"] = {"results": ids}
    hubspot.routes["/crm/v3/objects/deals/1234"] = (200, deal)
    body = {"status": "COMPLETE", "results": list(items)}
    hubspot.routes["/crm/v3/objects/line_items/batch/read"] = (200, body)


async def test_fetch_reads_the_line_items_of_the_products_it_onboards(
    hubspot: FakeCrmApi,
) -> None:
    with_line_items(hubspot, *LINE_ITEMS)

    deal = await fetch(hubspot, crm_products="crm,anl-pro")

    assert [(p.id, p.name, p.licensed_seats) for p in deal.products] == [
        ("crm", "CRM Suite", 40),
        ("anl-pro", "Analytics Pro", 25),  # after CRM, as the deal lists them
    ]
    assert hubspot.requests[0]["query"]["associations"] == ["companies,contacts,line_items"]
    [read] = [r for r in hubspot.requests if r["method"] == "POST"]
    assert read["path"] == "/crm/v3/objects/line_items/batch/read"
    assert read["authorization"] == f"Bearer {TOKEN}"
    assert read["body"] == {
        "properties": [
            "hs_sku",
            "name",
            "quantity",
            "hs_position_on_quote",
            "onboarding_depends_on",
        ],
        "inputs": [{"id": "702"}, {"id": "701"}, {"id": "703"}],
    }


async def test_without_onboarded_products_no_line_item_is_read(hubspot: FakeCrmApi) -> None:
    with_line_items(hubspot, *LINE_ITEMS)

    deal = await fetch(hubspot)

    assert deal.products == []
    assert hubspot.requests[0]["query"]["associations"] == ["companies,contacts"]
    assert all(r["method"] == "GET" for r in hubspot.requests)


async def test_one_onboarded_line_item_is_the_ordinary_single_product_deal(
    hubspot: FakeCrmApi,
) -> None:
    with_line_items(hubspot, *LINE_ITEMS)

    deal = await fetch(hubspot, crm_products="crm,warehouse")

    assert deal.products == []


async def test_the_product_code_comes_from_the_configured_property(
    hubspot: FakeCrmApi,
) -> None:
    items = json.loads(json.dumps(LINE_ITEMS))
    for item, code in zip(items, ["2002", "2001", "2003"], strict=True):
        item["properties"]["hs_product_id"] = code
    with_line_items(hubspot, *items)

    deal = await fetch(hubspot, crm_products="2001,2002", hubspot_product_property="hs_product_id")

    assert [p.id for p in deal.products] == ["2001", "2002"]
    [read] = [r for r in hubspot.requests if r["method"] == "POST"]
    assert read["body"]["properties"][0] == "hs_product_id"


async def test_a_line_item_with_a_bad_quantity_is_permanent_and_names_it(
    hubspot: FakeCrmApi,
) -> None:
    items = json.loads(json.dumps(LINE_ITEMS))
    items[0]["properties"]["quantity"] = "25.5"
    with_line_items(hubspot, *items)

    error = await permanent_error(hubspot, crm_products="crm,anl-pro")

    assert error.message == (
        "deal 1234: line_items[1].properties.quantity: must be a whole number, got '25.5'"
    )


async def test_line_items_hubspot_cannot_serve_now_are_retried(hubspot: FakeCrmApi) -> None:
    with_line_items(hubspot, *LINE_ITEMS)
    hubspot.routes["/crm/v3/objects/line_items/batch/read"] = (429, {"status": "error"})
    with pytest.raises(ApplicationError) as err:
        await fetch(hubspot, crm_products="crm,anl-pro")
    assert not err.value.non_retryable
    assert "429" in err.value.message


def test_onboarded_products_must_be_product_ids() -> None:
    with pytest.raises(ValidationError) as err:
        Settings(crm_products="crm, Analytics Pro")
    assert settings_problems(err.value) == (
        "bad settings: ONBOARDING_CRM_PRODUCTS: 'Analytics Pro' is not a product id (1-32 "
        "of a-z, 0-9, _ and -, starting with a letter or digit: the id product events "
        "carry in `product`)"
    )


# --------------------------------------------------------------------------- a new champion

CONTACT_REF = HubSpotContactRef(portal_id=62515, contact_id="51", event_id="200")


def champion_contact(role: str) -> dict[str, Any]:
    """Contact 51 as `GET /crm/v3/objects/contacts/51?associations=companies` answers."""
    return {
        "id": "51",
        "properties": {
            "email": "cara@acme.test",
            "firstname": "Cara",
            "lastname": "Ng",
            "hs_buying_role": role,
            "hs_object_id": "51",
        },
        "associations": {"companies": {"results": [{"id": "9000", "type": "contact_to_company"}]}},
    }


async def fetch_champion(hubspot: FakeCrmApi, **settings: Any) -> HubSpotChampion:
    client = HubSpotClient(Settings(hubspot_api_url=hubspot.url, hubspot_token=TOKEN, **settings))
    return await ActivityEnvironment().run(client.fetch_hubspot_champion, CONTACT_REF)


async def test_fetch_champion_reads_the_contact_its_role_and_company(hubspot: FakeCrmApi) -> None:
    hubspot.routes["/crm/v3/objects/contacts/51"] = (200, champion_contact("CHAMPION;INFLUENCER"))
    read = await fetch_champion(hubspot)
    assert read.account_id == "9000"
    assert read.contact is not None
    assert (read.contact.email, read.contact.role) == ("cara@acme.test", ContactRole.CHAMPION)
    [request] = hubspot.requests
    assert request["path"] == "/crm/v3/objects/contacts/51"
    assert request["query"] == {
        "properties": ["email,firstname,lastname,hs_buying_role"],
        "associations": ["companies"],
    }
    assert request["authorization"] == f"Bearer {TOKEN}"


async def test_fetch_champion_reads_the_configured_property_and_values(
    hubspot: FakeCrmApi,
) -> None:
    contact = champion_contact("")
    contact["properties"]["account_role"] = "Sponsor;Champion"
    hubspot.routes["/crm/v3/objects/contacts/51"] = (200, contact)
    read = await fetch_champion(
        hubspot, hubspot_champion_property="account_role", hubspot_champion_values="Champion"
    )
    assert read.contact is not None
    assert hubspot.requests[0]["query"]["properties"] == ["email,firstname,lastname,account_role"]


async def test_fetch_champion_of_a_contact_no_longer_one_or_deleted(hubspot: FakeCrmApi) -> None:
    hubspot.routes["/crm/v3/objects/contacts/51"] = (200, champion_contact("INFLUENCER"))
    read = await fetch_champion(hubspot)
    assert (read.account_id, read.contact) == ("9000", None)
    assert read.detail == "no longer the champion: hs_buying_role is INFLUENCER, none of CHAMPION"
    del hubspot.routes["/crm/v3/objects/contacts/51"]
    gone = await fetch_champion(hubspot)
    assert (gone.account_id, gone.contact, gone.detail) == (None, None, "contact not found")


async def test_fetch_champion_with_a_bad_email_is_permanent(hubspot: FakeCrmApi) -> None:
    contact = champion_contact("CHAMPION")
    contact["properties"]["email"] = "cara-at-acme"
    hubspot.routes["/crm/v3/objects/contacts/51"] = (200, contact)
    with pytest.raises(ApplicationError) as err:
        await fetch_champion(hubspot)
    assert (err.value.type, err.value.non_retryable) == ("HubSpotDealError", True)
    assert err.value.message.startswith("contact 51: properties.email")


async def test_fetch_champion_when_hubspot_is_down_is_retryable(hubspot: FakeCrmApi) -> None:
    hubspot.routes["/crm/v3/objects/contacts/51"] = (503, {"status": "error"})
    with pytest.raises(ApplicationError) as err:
        await fetch_champion(hubspot)
    assert not err.value.non_retryable
