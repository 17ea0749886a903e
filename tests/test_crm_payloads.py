"""CRM webhook bodies -> domain models, with errors that name the sender's field: HubSpot
and generic deals, HubSpot contacts who became champion (Salesforce's are in
`test_salesforce_payloads.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.crm_records import PayloadError, StageMeaning
from activities.hubspot_records import (
    hubspot_champion,
    hubspot_company_id,
    hubspot_contact_ids,
    hubspot_deal,
    hubspot_line_item_ids,
    hubspot_products,
)
from starter.crm import (
    generic_deal,
    hubspot_champion_changes,
    hubspot_stage_changes,
    sort_stage_changes,
)
from workflows.models import ContactRole, DealStage

# --------------------------------------------------------------------------- HubSpot webhook


def hs_event(event_id: int, **fields: Any) -> dict[str, Any]:
    return {
        "eventId": event_id,
        "subscriptionId": 2,
        "portalId": 62515,
        "appId": 1,
        "occurredAt": 1_700_000_000_000,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": 1234,
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM",
    } | fields


MEANINGS = {
    "closedwon": StageMeaning(DealStage.CLOSED_WON, "closedwon"),
    "appointmentscheduled": StageMeaning(DealStage.OPEN, "appointmentscheduled"),
}


def test_hubspot_batch_keeps_only_closed_won_stage_changes() -> None:
    batch = [
        hs_event(100),
        hs_event(101, subscriptionType="deal.creation", propertyName=None),
        hs_event(102, objectId=555, propertyValue="appointmentscheduled"),
        hs_event(103, objectId=1234),  # the same deal again
        hs_event(104, objectId=777, propertyName="amount", propertyValue="9000"),
        hs_event(105, subscriptionType="contact.creation", objectId=42),
        hs_event(106, objectId=888, subscriptionType="object.propertyChange", objectTypeId="0-3"),
    ]
    changes, ignored = hubspot_stage_changes(batch)
    refs, lost, unclear = sort_stage_changes(changes, MEANINGS)

    assert lost == []
    assert [(r.deal_id, r.event_id, r.portal_id) for r in refs] == [
        ("1234", "100", 62515),
        ("888", "106", 62515),
    ]
    assert refs[0].occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    reasons = {i.ref: i.reason for i in ignored + unclear}
    assert reasons == {
        "event 101": "deal.creation is not a deal stage change",
        "event 102": "dealstage appointmentscheduled is neither closed-won nor closed-lost",
        "event 103": "deal 1234 is already in this batch (event 100)",
        "event 104": "amount changed, not dealstage",
        "event 105": "contact.creation is not a deal stage change",
    }


@pytest.mark.parametrize(
    ("payload", "field", "reason_part"),
    [
        ([hs_event(i) for i in range(101)], "body", "at most 100"),
        ([], "body", "empty"),
        ({"eventId": 1}, "body", "JSON array"),
        ([hs_event(1), "oops"], "[1]", "object"),
        ([hs_event(1), hs_event(2, objectId="12ab")], "[1].objectId", "numeric"),
        ([hs_event(1, portalId="x")], "[0].portalId", "number"),
        ([hs_event(1, subscriptionType=None)], "[0].subscriptionType", "missing"),
    ],
)
def test_hubspot_batch_errors_name_the_field(payload: object, field: str, reason_part: str) -> None:
    with pytest.raises(PayloadError) as err:
        hubspot_stage_changes(payload)
    assert err.value.field == field
    assert reason_part in err.value.reason


def test_hubspot_batch_of_exactly_100_is_accepted() -> None:
    changes, _ = hubspot_stage_changes([hs_event(i, objectId=i + 1) for i in range(100)])
    assert len(changes) == 100


# --------------------------------------------------------------------------- HubSpot API reads

DEAL = {
    "id": "1234",
    "properties": {
        "dealname": "Acme platform",
        "amount": "40000",
        "acv": "52000.50",
        "closedate": "2030-03-31T17:00:00.000Z",
        "dealstage": "closedwon",
        "seats": "25",
        "stakeholder_count": "4",
        "configuration_hours": "3.5",
        "needs_api_integration": "true",
        "custom_data_migration": "false",
        "integrations": "Salesforce; Slack;;",
        "success_criteria": "Invoices automated\n\n10 users active weekly\n",
    },
    "associations": {
        "companies": {
            "results": [
                {"id": "9001", "type": "deal_to_company_unlabeled"},
                {"id": "9000", "type": "deal_to_company"},
            ]
        },
        "contacts": {
            "results": [
                {"id": "51", "type": "deal_to_contact"},
                {"id": "52", "type": "deal_to_contact"},
                {"id": "51", "type": "deal_to_contact_unlabeled"},
                {"id": "53", "type": "deal_to_contact"},
            ]
        },
    },
}
COMPANY = {"id": "9000", "properties": {"name": "Acme Corp", "domain": "acme.test"}}


def contact(email: str | None, first: str, last: str, title: str = "") -> dict[str, Any]:
    props = {"email": email, "firstname": first, "lastname": last, "jobtitle": title}
    return {"id": "x", "properties": props}


def test_hubspot_deal_maps_properties_company_and_contacts() -> None:
    contacts = [
        contact("Cara@Acme.test", "Cara", "Champion", "Ops Manager"),
        contact(None, "No", "Email"),
        contact("dana@acme.test", "Dana", "Doe", "Analyst"),
        contact("sam@acme.test", "Sam", "Sponsor", "VP Finance"),
        contact("ceo@acme.test", "", "", "CEO"),
    ]
    deal = hubspot_deal(DEAL, COMPANY, contacts)

    assert (deal.account_id, deal.account_name, deal.acv_usd) == ("9000", "Acme Corp", 52000.5)
    assert deal.close_date == datetime(2030, 3, 31, 17, tzinfo=UTC)
    assert (deal.seats, deal.stakeholder_count, deal.configuration_hours) == (25, 4, 3.5)
    assert deal.needs_api_integration and not deal.custom_data_migration
    assert deal.integrations == ["Salesforce", "Slack"]
    assert deal.success_criteria == ["Invoices automated", "10 users active weekly"]
    assert [(c.name, c.email, c.role) for c in deal.contacts] == [
        ("Cara Champion", "cara@acme.test", ContactRole.CHAMPION),
        ("Dana Doe", "dana@acme.test", ContactRole.END_USER),
        ("Sam Sponsor", "sam@acme.test", ContactRole.EXECUTIVE_SPONSOR),
        ("ceo@acme.test", "ceo@acme.test", ContactRole.END_USER),  # a sponsor exists already
    ]
    assert deal.crm.model_dump() == {"source": "hubspot", "deal_id": "1234", "company_id": "9000"}


def test_hubspot_deal_uses_amount_without_acv_and_defaults_custom_fields() -> None:
    props = {"amount": "4000", "closedate": "2030-03-31", "acv": ""}
    deal = hubspot_deal({"id": "1", "properties": props}, COMPANY, [])
    assert deal.acv_usd == 4000
    assert (deal.seats, deal.stakeholder_count, deal.integrations, deal.contacts) == (0, 1, [], [])


def test_hubspot_associations() -> None:
    assert hubspot_company_id(DEAL) == "9000"  # the primary company, not the first listed
    assert hubspot_contact_ids(DEAL) == ["51", "52", "53"]
    with pytest.raises(PayloadError) as err:
        hubspot_company_id({"id": "1", "associations": {"contacts": {"results": []}}})
    assert err.value.field == "associations.companies"
    assert "no associated company" in err.value.reason


@pytest.mark.parametrize(
    ("changes", "field", "reason_part"),
    [
        ({"amount": None, "acv": None}, "properties.amount", "missing"),
        ({"acv": "lots"}, "properties.acv", "number"),
        ({"acv": "-5"}, "properties.acv", "greater than or equal to 0"),
        ({"closedate": "next tuesday"}, "properties.closedate", "date"),
        ({"seats": "2.5"}, "properties.seats", "whole number"),
        ({"needs_api_integration": "maybe"}, "properties.needs_api_integration", "true or false"),
    ],
)
def test_hubspot_deal_errors_name_the_property(
    changes: dict[str, Any], field: str, reason_part: str
) -> None:
    deal = DEAL | {"properties": DEAL["properties"] | changes}  # type: ignore[operator]
    with pytest.raises(PayloadError) as err:
        hubspot_deal(deal, COMPANY, [])
    assert err.value.field == field
    assert reason_part in err.value.reason


def test_hubspot_deal_needs_a_company_name_and_valid_emails() -> None:
    with pytest.raises(PayloadError) as err:
        hubspot_deal(DEAL, {"id": "9000", "properties": {}}, [])
    assert err.value.field == "company.properties.name"
    with pytest.raises(PayloadError) as err:
        hubspot_deal(DEAL, COMPANY, [contact("not-an-email", "A", "B")])
    assert err.value.field == "contacts[0].properties.email"
    assert "not an email address" in err.value.reason


def line_item(sku: str | None, quantity: str | None, position: str | None = None, **more: str):
    props = {"name": f"{sku} plan", "hs_sku": sku, "quantity": quantity}
    return {"id": "7", "properties": props | {"hs_position_on_quote": position} | more}


ONBOARDED = ["crm", "analytics", "bi"]


def products_of(items: list[dict[str, Any]]) -> list[tuple[str, str, int, list[str] | None]]:
    products = hubspot_products(items, "hs_sku", ONBOARDED)
    return [(p.id, p.name, p.licensed_seats, p.depends_on) for p in products]


def test_hubspot_line_items_in_their_deal_order_are_the_products() -> None:
    items = [
        line_item("ANALYTICS", "25", "1"),
        line_item("IMPL-PKG", "1", "2"),  # a service: not an onboarded product
        line_item("CRM", "40", "0"),
    ]
    assert products_of(items) == [
        ("crm", "CRM plan", 40, None),
        ("analytics", "ANALYTICS plan", 25, None),  # waits for the one before it
    ]
    assert hubspot_line_item_ids(
        {"associations": {"line items": {"results": [{"id": "7"}, {"id": "8"}, {"id": "7"}]}}}
    ) == ["7", "8"]


@pytest.mark.parametrize(
    ("items", "products"),
    [
        # One product is the ordinary single-product deal: no products, nothing waits,
        # and nothing of its line is used (so nothing there can refuse the deal).
        ([line_item("crm", "40"), line_item("IMPL-PKG", "1")], []),
        ([line_item("crm", "2.5"), line_item("crm", None)], []),
        ([], []),
        # A product on two lines is one product with the seats of both.
        (
            [line_item("crm", "40"), line_item("bi", "5"), line_item("CRM", "10")],
            [("crm", "crm plan", 50, None), ("bi", "bi plan", 5, None)],
        ),
        # Without a position, after those with one, as HubSpot listed them.
        (
            [line_item("bi", "5"), line_item("crm", "40", "3"), line_item("analytics", "9")],
            [
                ("crm", "crm plan", 40, None),
                ("bi", "bi plan", 5, None),
                ("analytics", "analytics plan", 9, None),
            ],
        ),
        # Dependencies from the product library: one on a product this deal does not
        # sell is left out, so a product whose every dependency is left out waits for none.
        (
            [
                line_item("crm", "40", onboarding_depends_on="erp"),
                line_item("analytics", "9"),
                line_item("bi", "5", onboarding_depends_on="CRM;erp"),
            ],
            [
                ("crm", "crm plan", 40, []),
                ("analytics", "analytics plan", 9, None),
                ("bi", "bi plan", 5, ["crm"]),
            ],
        ),
    ],
    ids=["one", "one-unused-quantity", "none", "two-lines", "positions", "depends-on"],
)
def test_which_hubspot_line_items_are_products(
    items: list[dict[str, Any]], products: list[tuple[str, str, int, list[str] | None]]
) -> None:
    assert products_of(items) == products


@pytest.mark.parametrize(
    ("items", "field", "reason"),
    [
        (
            [line_item("crm", "40"), line_item("bi", "2.5")],
            "line_items[1].properties.quantity",
            "must be a whole number, got '2.5'",
        ),
        (
            [line_item("crm", "40"), line_item("bi", None)],
            "line_items[1].properties.quantity",
            "missing: a product's licensed seats",
        ),
        (
            [line_item("crm", "0"), line_item("bi", "5")],
            "line_items[0].properties.quantity",
            "Input should be greater than 0",
        ),
        (
            [
                line_item("crm", "40", onboarding_depends_on="bi"),
                line_item("bi", "5", onboarding_depends_on="crm"),
            ],
            "line_items[0].properties.onboarding_depends_on",
            "cycle crm -> bi -> crm",
        ),
        (
            [line_item("crm", "40"), line_item("bi", "5", onboarding_depends_on="bi")],
            "line_items[1].properties.onboarding_depends_on",
            "'bi' is the product itself",
        ),
    ],
    ids=["fraction", "no-quantity", "no-seats", "cycle", "itself"],
)
def test_hubspot_line_item_errors_name_the_property(
    items: list[dict[str, Any]], field: str, reason: str
) -> None:
    with pytest.raises(PayloadError) as err:
        hubspot_products(items, "hs_sku", ONBOARDED)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_more_hubspot_products_than_a_deal_may_have_are_refused() -> None:
    onboarded = [f"p{i}" for i in range(6)]
    with pytest.raises(PayloadError) as err:
        hubspot_products([line_item(p, "1") for p in onboarded], "hs_sku", onboarded)
    assert err.value.field == "line_items[5].properties.hs_sku"
    assert err.value.reason.startswith("'p5' would be product 6: a deal has at most 5")


def test_a_hubspot_deal_carries_its_products() -> None:
    products = hubspot_products([line_item("crm", "40"), line_item("bi", "5")], "hs_sku", ONBOARDED)
    deal = hubspot_deal(DEAL, COMPANY, [], products=products)
    assert [(p.id, p.licensed_seats) for p in deal.products] == [("crm", 40), ("bi", 5)]


# --------------------------------------------------------------------------- generic


def test_generic_deal_defaults_the_crm_source() -> None:
    body = {
        "account_id": "acme-1",
        "account_name": "Acme",
        "acv_usd": 12000,
        "close_date": "2030-06-01",
        "contacts": [{"name": "Cara", "email": "cara@acme.test", "role": "champion"}],
    }
    deal = generic_deal(body)
    assert (deal.account_id, deal.crm.source) == ("acme-1", "generic")
    assert generic_deal(body | {"crm": {"deal_id": "D-9"}}).crm.model_dump() == {
        "source": "generic",
        "deal_id": "D-9",
        "company_id": None,
    }
    assert generic_deal(body | {"crm": {"source": "manual"}}).crm.source == "manual"


@pytest.mark.parametrize(
    ("changes", "field", "reason_part"),
    [
        (
            {"contacts": [{"name": "C", "email": "nope", "role": "champion"}]},
            "contacts[0].email",
            "email",
        ),
        ({"acv_usd": "many"}, "acv_usd", "number"),
        ({"tier": "high_touch"}, "tier", "Extra inputs"),
        ({"account_id": None}, "account_id", "string"),
    ],
)
def test_generic_deal_errors_name_the_field(
    changes: dict[str, Any], field: str, reason_part: str
) -> None:
    body = {"account_id": "a", "account_name": "A", "acv_usd": 1, "close_date": "2030-06-01"}
    with pytest.raises(PayloadError) as err:
        generic_deal(body | changes)
    assert err.value.field == field
    assert reason_part in err.value.reason


# --------------------------------------------------------------------------- HubSpot champions


def hs_contact_event(event_id: int, **fields: Any) -> dict[str, Any]:
    return (
        hs_event(
            event_id,
            subscriptionType="contact.propertyChange",
            objectId=51,
            propertyName="hs_buying_role",
            propertyValue="CHAMPION",
        )
        | fields
    )


def champion_changes(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(contact ids taken, reasons ignored) of a batch, as the ingress reads it."""
    hubspot_stage_changes(events)  # the batch is checked as a whole first
    refs, ignored = hubspot_champion_changes(events, "hs_buying_role", ["CHAMPION"])
    return [r.contact_id for r in refs], [i.reason for i in ignored]


@pytest.mark.parametrize(
    ("events", "taken", "ignored_part"),
    [
        ([hs_contact_event(1)], ["51"], []),
        ([hs_contact_event(1, propertyValue="INFLUENCER;CHAMPION")], ["51"], []),
        (
            [hs_contact_event(1, subscriptionType="object.propertyChange", objectTypeId="0-1")],
            ["51"],
            [],
        ),
        ([hs_contact_event(1), hs_contact_event(2)], ["51"], ["already in this batch (event 1)"]),
        ([hs_contact_event(1, propertyValue="INFLUENCER")], [], ["not CHAMPION: no new champion"]),
        ([hs_contact_event(1, propertyValue="")], [], ["is '', not CHAMPION"]),
        (
            [hs_contact_event(1, propertyName="jobtitle")],
            [],
            ["jobtitle changed, not hs_buying_role"],
        ),
        ([hs_event(1)], [], []),  # a deal's stage: the stage changes' business
        ([hs_event(1, subscriptionType="contact.creation")], [], []),
    ],
    ids=[
        "champion",
        "multi-select",
        "object-subscription",
        "twice-in-a-batch",
        "another-role",
        "role-cleared",
        "another-property",
        "deal-event",
        "other-contact-event",
    ],
)
def test_hubspot_contacts_who_became_champion(
    events: list[dict[str, Any]], taken: list[str], ignored_part: list[str]
) -> None:
    ids, reasons = champion_changes(events)
    assert ids == taken
    assert len(reasons) == len(ignored_part)
    assert all(part in reason for part, reason in zip(ignored_part, reasons, strict=True))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (hs_contact_event(1, objectId="abc"), "[0].objectId"),
        (hs_contact_event(1, objectId=None), "[0].objectId"),
        (hs_contact_event(1, portalId="x"), "[0].portalId"),
        (hs_contact_event(1, occurredAt="yesterday"), "[0].occurredAt"),
    ],
)
def test_hubspot_champion_errors_name_the_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        hubspot_champion_changes([event], "hs_buying_role", ["CHAMPION"])
    assert caught.value.field == field


def hs_contact_read(role: str = "CHAMPION", email: str = "nia@acme.test") -> dict[str, Any]:
    return {
        "id": "51",
        "properties": {
            "email": email,
            "firstname": "Nia",
            "lastname": "New",
            "hs_buying_role": role,
        },
        "associations": {
            "companies": {
                "results": [
                    {"id": "7000", "type": "contact_to_company_unlabeled"},
                    {"id": "9000", "type": "contact_to_company"},
                ]
            }
        },
    }


@pytest.mark.parametrize(
    ("read", "account", "champion", "detail_part"),
    [
        (hs_contact_read(), "9000", "nia@acme.test", "hs_buying_role is CHAMPION"),
        (hs_contact_read("DECISION_MAKER;CHAMPION"), "9000", "nia@acme.test", "DECISION_MAKER"),
        (hs_contact_read("INFLUENCER"), "9000", None, "no longer the champion"),
        (hs_contact_read(email=""), "9000", None, "no email address"),
        (
            hs_contact_read() | {"associations": {}},
            None,
            None,
            "no company, so there is no account",
        ),
        ({}, None, None, "contact not found"),
    ],
    ids=["champion", "multi-select", "not-any-more", "no-email", "no-company", "deleted"],
)
def test_a_hubspot_contact_read_as_the_new_champion(
    read: dict[str, Any], account: str | None, champion: str | None, detail_part: str
) -> None:
    found = hubspot_champion(read, "51", "hs_buying_role", ["CHAMPION"])
    assert found.account_id == account
    assert (found.contact.email if found.contact else None) == champion
    assert found.contact is None or found.contact.role is ContactRole.CHAMPION
    assert found.contact is None or found.contact.name == "Nia New"
    assert detail_part in found.detail


def test_a_hubspot_champion_with_a_bad_email_names_the_property() -> None:
    with pytest.raises(PayloadError) as caught:
        hubspot_champion(hs_contact_read(email="nia-at-acme"), "51", "hs_buying_role", ["CHAMPION"])
    assert caught.value.field == "properties.email"
