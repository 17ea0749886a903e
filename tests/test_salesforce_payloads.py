"""Salesforce bodies -> domain models: Opportunity callouts (JSON) and Outbound Messages
(SOAP), OpportunityContactRole callouts naming a new champion, with errors that name the
Salesforce field.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest

from activities.crm_records import (
    PayloadError,
)
from starter.crm import (
    Ignored,
    Lost,
    NewChampion,
    salesforce_ack,
    salesforce_contact_role,
    salesforce_opportunity,
    salesforce_outbound,
)
from starter.signatures import SignatureError
from workflows.models import ContactRole

# --------------------------------------------------------------------------- Salesforce JSON


def sf_payload(**opp: Any) -> dict[str, Any]:
    return {
        "Opportunity": {
            "Id": "006Ak000001",
            "AccountId": "001Ak000009",
            "Amount": 30000,
            "StageName": "Closed Won",
            "CloseDate": "2030-04-15",
            "Seats__c": 12,
            "Stakeholder_Count__c": 2,
            "Configuration_Hours__c": 1.5,
            "Needs_API_Integration__c": False,
            "Custom_Data_Migration__c": True,
            "Integrations__c": "HubSpot;Zendesk",
            "Success_Criteria__c": "First report shared",
        }
        | opp,
        "Account": {"Id": "001Ak000009", "Name": "Globex"},
        "Contacts": [
            {"Name": "Gail Sponsor", "Email": "gail@globex.test", "Role": "Decision Maker"},
            {"Name": "Carl Champ", "Email": "carl@globex.test", "Role": "Business User"},
            {"Name": "Ann Admin", "Email": "ann@globex.test", "Role": "Technical Buyer"},
            {"Name": "Ed User", "Email": "ed@globex.test", "Role": "Influencer"},
            {"Name": "No Email", "Email": None, "Role": "Champion"},
        ],
    }


def test_salesforce_closed_won_opportunity() -> None:
    deal = salesforce_opportunity(sf_payload(), ["Closed Won"])
    assert not isinstance(deal, Ignored)
    assert (deal.account_id, deal.account_name, deal.acv_usd) == ("001Ak000009", "Globex", 30000)
    assert deal.close_date == datetime(2030, 4, 15, tzinfo=UTC)
    assert (deal.seats, deal.stakeholder_count, deal.configuration_hours) == (12, 2, 1.5)
    assert deal.custom_data_migration and not deal.needs_api_integration
    assert deal.integrations == ["HubSpot", "Zendesk"]
    assert deal.success_criteria == ["First report shared"]
    assert [(c.email, c.role) for c in deal.contacts] == [
        ("gail@globex.test", ContactRole.EXECUTIVE_SPONSOR),
        ("carl@globex.test", ContactRole.CHAMPION),
        ("ann@globex.test", ContactRole.ADMIN),
        ("ed@globex.test", ContactRole.END_USER),
    ]
    assert deal.crm.model_dump() == {
        "source": "salesforce",
        "deal_id": "006Ak000001",
        "company_id": "001Ak000009",
    }
    with_acv = salesforce_opportunity(sf_payload(ACV__c=61000), ["Closed Won"])
    assert not isinstance(with_acv, Ignored) and with_acv.acv_usd == 61000


def test_salesforce_other_stage_is_ignored_with_the_reason() -> None:
    result = salesforce_opportunity(sf_payload(StageName="Negotiation"), ["Closed Won"])
    assert result == Ignored(
        ref="Opportunity 006Ak000001", reason="StageName is 'Negotiation', not 'Closed Won'"
    )


@pytest.mark.parametrize(
    ("payload", "field", "reason_part"),
    [
        (sf_payload(Amount=None), "Opportunity.Amount", "missing"),
        (sf_payload(Amount="a lot"), "Opportunity.Amount", "number"),
        (sf_payload(AccountId=None), "Opportunity.AccountId", "missing"),
        (sf_payload(AccountId="bad id!"), "Opportunity.AccountId", "pattern"),
        (sf_payload(CloseDate="15/04/2025"), "Opportunity.CloseDate", "date"),
        (sf_payload(Seats__c=True), "Opportunity.Seats__c", "number"),
        (sf_payload() | {"Account": {"Id": "001"}}, "Account.Name", "missing"),
        (
            sf_payload() | {"Contacts": [{"Name": "X", "Email": "nope", "Role": "Champion"}]},
            "Contacts[0].Email",
            "not an email address",
        ),
        ({"Account": {}}, "Opportunity", "missing"),
        ([], "body", "JSON object"),
    ],
)
def test_salesforce_errors_name_the_salesforce_field(
    payload: object, field: str, reason_part: str
) -> None:
    with pytest.raises(PayloadError) as err:
        salesforce_opportunity(payload, ["Closed Won"])
    assert err.value.field == field
    assert reason_part in err.value.reason


def opportunity_product(code: str, quantity: object, name: str = "", **product: Any) -> dict:
    """An OpportunityLineItem as Apex's `JSON.serialize` writes it when queried with
    `Quantity, Product2.ProductCode, Product2.Name`."""
    product2 = {"ProductCode": code, "Name": name or code.title()} | product
    return {
        "attributes": {"type": "OpportunityLineItem"},
        "Quantity": quantity,
        "Product2": product2,
    }


LINE_ITEMS = [
    opportunity_product("CRM", 40.0, "CRM Suite"),
    opportunity_product("SVC-IMPL", 1.0, "Implementation"),  # a service: not onboarded
    opportunity_product("ANL.PRO", 25.0, "Analytics Pro"),
    opportunity_product("BI", 5.0, Onboarding_Depends_On__c="CRM;ERP"),
]


@pytest.mark.parametrize(
    "items",
    [LINE_ITEMS, {"totalSize": 4, "done": True, "records": LINE_ITEMS}],
    ids=["array", "subquery"],
)
def test_salesforce_opportunity_products_are_the_deals_products(items: object) -> None:
    payload = sf_payload() | {"OpportunityLineItems": items}
    deal = salesforce_opportunity(payload, ["Closed Won"], products=["crm", "anl-pro", "bi"])
    assert not isinstance(deal, Ignored | Lost)
    assert [(p.id, p.name, p.licensed_seats, p.depends_on) for p in deal.products] == [
        ("crm", "CRM Suite", 40, None),
        ("anl-pro", "Analytics Pro", 25, None),
        ("bi", "Bi", 5, ["crm"]),  # ERP is not sold here: nothing to wait for
    ]


def test_salesforce_products_only_when_the_setting_names_them() -> None:
    payload = sf_payload() | {"OpportunityLineItems": LINE_ITEMS}
    for products in ([], ["crm"]):  # none, or one: the ordinary single-product deal
        deal = salesforce_opportunity(payload, ["Closed Won"], products=products)
        assert not isinstance(deal, Ignored | Lost) and deal.products == []
    # Without the setting, line items are not even looked at.
    bad = sf_payload() | {"OpportunityLineItems": "not a list"}
    assert not isinstance(salesforce_opportunity(bad, ["Closed Won"]), Ignored | Lost)


@pytest.mark.parametrize(
    ("items", "field", "reason_part"),
    [
        ("CRM", "OpportunityLineItems", "must be an array"),
        (["CRM"], "OpportunityLineItems[0]", "must be an object"),
        ([{"Quantity": 4}], "OpportunityLineItems[0].Product2", "missing"),
        (
            [opportunity_product("CRM", 40), opportunity_product("BI", 2.5)],
            "OpportunityLineItems[1].Quantity",
            "must be a whole number",
        ),
        (
            [opportunity_product("CRM", 40), opportunity_product("BI", 1001)],
            "OpportunityLineItems[1].Quantity",
            "less than or equal to 1000",
        ),
        (
            [
                opportunity_product("CRM", 40, Onboarding_Depends_On__c="BI"),
                opportunity_product("BI", 5, Onboarding_Depends_On__c="CRM"),
            ],
            "OpportunityLineItems[0].Product2.Onboarding_Depends_On__c",
            "cycle crm -> bi -> crm",
        ),
    ],
    ids=["not-array", "not-object", "no-product", "fraction", "too-many-seats", "cycle"],
)
def test_salesforce_product_errors_name_the_salesforce_field(
    items: object, field: str, reason_part: str
) -> None:
    payload = sf_payload() | {"OpportunityLineItems": items}
    with pytest.raises(PayloadError) as err:
        salesforce_opportunity(payload, ["Closed Won"], products=["crm", "bi"])
    assert err.value.field == field
    assert reason_part in err.value.reason


# --------------------------------------------------------------------------- Outbound Message


def notification(note_id: str, opp_id: str, stage: str = "Closed Won", extra: str = "") -> str:
    return f"""
   <Notification>
    <Id>{note_id}</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{opp_id}</sf:Id>
     <sf:AccountId>001Ak00000{opp_id[-1]}</sf:AccountId>
     <sf:Amount>75000.0</sf:Amount>
     <sf:CloseDate>{datetime.now(UTC).date().isoformat()}</sf:CloseDate>
     <sf:StageName>{stage}</sf:StageName>
     <sf:ACV__c xsi:nil="true"/>
     {extra}
    </sObject>
   </Notification>"""


def outbound(*notifications: str, org: str = "00DAk000000ORG1AAA") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04kAk0000001</ActionId>
   <SessionId xsi:nil="true"/>
   {"".join(notifications)}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>""".encode()


def test_outbound_message_with_two_notifications_and_a_duplicate() -> None:
    named = notification(
        "04lAk02",
        "006Ak02",
        extra="<sf:Account_Name__c>Initech</sf:Account_Name__c>"
        "<sf:Integrations__c>Jira;Okta</sf:Integrations__c>"
        "<sf:Needs_API_Integration__c>true</sf:Needs_API_Integration__c>",
    )
    body = outbound(notification("04lAk01", "006Ak01"), named, notification("04lAk01", "006Ak01"))
    pairs, ignored = salesforce_outbound(body, ["00DAk000000ORG1"], ["Closed Won"])

    assert [note_id for note_id, _ in pairs] == ["04lAk01", "04lAk02"]
    first, second = pairs[0][1], pairs[1][1]
    assert (first.account_id, first.account_name, first.acv_usd) == (
        "001Ak000001",
        "001Ak000001",
        75000,
    )
    assert (second.account_name, second.integrations, second.needs_api_integration) == (
        "Initech",
        ["Jira", "Okta"],
        True,
    )
    assert second.crm.model_dump() == {
        "source": "salesforce",
        "deal_id": "006Ak02",
        "company_id": "001Ak000002",
    }
    assert ignored == []


def test_outbound_message_ignores_other_stages_and_objects() -> None:
    account = (
        '<Notification><Id>04lAk09</Id><sObject xsi:type="sf:Account" '
        'xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>001X</sf:Id></sObject>'
        "</Notification>"
    )
    body = outbound(notification("04lAk03", "006Ak03", stage="Prospecting"), account)
    pairs, ignored = salesforce_outbound(body, [], ["Closed Won"])
    assert pairs == []
    assert ignored == [
        Ignored(ref="Opportunity 006Ak03", reason="StageName is 'Prospecting', not 'Closed Won'"),
        Ignored(ref="Notification 04lAk09", reason="Account is not an Opportunity"),
    ]


def test_outbound_message_from_another_org_is_refused() -> None:
    with pytest.raises(SignatureError) as err:
        salesforce_outbound(outbound(notification("04l1", "006A1")), ["00DOTHER"], ["Closed Won"])
    assert err.value.header == "OrganizationId"
    assert "00DAk000000ORG1AAA" in err.value.reason


def test_outbound_message_with_doctype_is_refused_before_parsing() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">&lol2;</notifications>"""
    with pytest.raises(PayloadError) as err:
        salesforce_outbound(bomb, [], ["Closed Won"])
    assert err.value.field == "body"
    assert "DOCTYPE" in err.value.reason


@pytest.mark.parametrize(
    ("body", "field", "reason_part"),
    [
        (b"<notifications", "body", "well-formed"),
        (b"<Envelope/>", "notifications", "not an Outbound Message"),
        (
            outbound(notification("04l1", "006A1").replace("75000.0", "lots")),
            "Notification[0].sObject.Amount",
            "number",
        ),
        (
            outbound(notification("04l1", "006A1").replace("<sf:Amount>75000.0</sf:Amount>", "")),
            "Notification[0].sObject.Amount",
            "missing",
        ),
    ],
)
def test_outbound_message_errors_name_the_field(body: bytes, field: str, reason_part: str) -> None:
    with pytest.raises(PayloadError) as err:
        salesforce_outbound(body, [], ["Closed Won"])
    assert err.value.field == field
    assert reason_part in err.value.reason


def test_ack_is_the_soap_answer_salesforce_expects() -> None:
    ns = {
        "soapenv": "http://schemas.xmlsoap.org/soap/envelope/",
        "out": "http://soap.sforce.com/2005/09/outbound",
    }
    for ok, text in ((True, "true"), (False, "false")):
        root = ET.fromstring(salesforce_ack(ok))
        assert root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
        assert (
            root.findtext("soapenv:Body/out:notificationsResponse/out:Ack", namespaces=ns) == text
        )


# --------------------------------------------------------------------------- new champions


def contact_role(**ocr: Any) -> dict[str, Any]:
    """An OpportunityContactRole as Apex's JSON.serialize writes a queried record."""
    return {
        "OpportunityContactRole": {
            "attributes": {"type": "OpportunityContactRole"},
            "Id": "00K5e00000AbCdE",
            "Role": "Champion",
            "IsPrimary": False,
            "Contact": {"Id": "0035e00000XyZab", "Name": "Nia New", "Email": "Nia@Acme.test"},
            "Opportunity": {"Id": "0065e00000QwErT", "AccountId": "0015e00000AbCdE"},
        }
        | ocr
    }


def test_a_contact_role_of_champion_names_the_new_champion() -> None:
    new = salesforce_contact_role(contact_role(), ["Champion"])
    assert isinstance(new, NewChampion)
    assert new.account_id == "0015e00000AbCdEAAV"  # the 18-character id, as deals have it
    assert (new.contact.name, new.contact.email) == ("Nia New", "nia@acme.test")
    assert new.contact.role is ContactRole.CHAMPION
    assert new.ref == "OpportunityContactRole 00K5e00000AbCdEEAV"
    # The role names are the operator's (ONBOARDING_SALESFORCE_CHAMPION_ROLES).
    assert isinstance(
        salesforce_contact_role(contact_role(Role="Business User"), ["Champion", "Business User"]),
        NewChampion,
    )


@pytest.mark.parametrize("role", ["Business User", "Decision Maker", None])
def test_another_contact_role_is_ignored_with_its_role(role: str | None) -> None:
    ignored = salesforce_contact_role(contact_role(Role=role), ["Champion"])
    assert isinstance(ignored, Ignored)
    assert ignored.reason == f"Role is {role!r}, not 'Champion': no new champion"


@pytest.mark.parametrize(
    ("ocr", "field", "reason_part"),
    [
        ({"Id": None}, "OpportunityContactRole.Id", "missing"),
        ({"Contact": None}, "OpportunityContactRole.Contact", "not an object"),
        ({"Opportunity": "x"}, "OpportunityContactRole.Opportunity", "not an object"),
        (
            {"Contact": {"Name": "Nia New"}},
            "OpportunityContactRole.Contact.Email",
            "missing",
        ),
        (
            {"Contact": {"Name": "Nia", "Email": "nia-at-acme"}},
            "OpportunityContactRole.Contact.Email",
            "not an email address",
        ),
        (
            {"Opportunity": {"Id": "0065e00000QwErT"}},
            "OpportunityContactRole.Opportunity.AccountId",
            "missing",
        ),
        (
            {"Opportunity": {"AccountId": "acme corp!"}},
            "OpportunityContactRole.Opportunity.AccountId",
            "is not an account id",
        ),
    ],
)
def test_contact_role_errors_name_the_salesforce_field(
    ocr: dict[str, Any], field: str, reason_part: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        salesforce_contact_role(contact_role(**ocr), ["Champion"])
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_a_contact_role_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError) as caught:
        salesforce_contact_role({"OpportunityContactRole": []}, ["Champion"])
    assert caught.value.field == "OpportunityContactRole"
