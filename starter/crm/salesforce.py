"""Salesforce Opportunities: what an Opportunity's stage means (`salesforce_stage`), the
mapping of a closed-won one to a deal and of a closed-lost one to `Lost`, and the Apex /
Flow JSON callout (`salesforce_opportunity`, with the opportunity's products); an
OpportunityContactRole callout naming
the account's new champion (`salesforce_contact_role`). The Outbound Message (SOAP) shares the
mapping: `starter.crm.salesforce_outbound`. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from activities.crm_products import ProductLine, deal_products
from activities.crm_records import (
    SALESFORCE_FIELDS,
    PayloadError,
    StageMeaning,
    build_deal,
    convert,
    deal_fields,
    mapped_contact,
    required_text,
)
from activities.money import NO_RATES, FxRates
from starter.crm.messages import Ignored, Lost, NewChampion
from workflows.ids import canonical_account_id, salesforce_id18
from workflows.models import (
    ACCOUNT_ID,
    ClosedWonDeal,
    Contact,
    ContactRole,
    CrmRef,
    DealProduct,
    DealStage,
)

# OpportunityContactRole.Role -> our contact role; any other role is an end user.
SALESFORCE_ROLES: dict[str, ContactRole] = {
    "Executive Sponsor": ContactRole.EXECUTIVE_SPONSOR,
    "Decision Maker": ContactRole.EXECUTIVE_SPONSOR,
    "Economic Decision Maker": ContactRole.EXECUTIVE_SPONSOR,
    "Economic Buyer": ContactRole.EXECUTIVE_SPONSOR,
    "Champion": ContactRole.CHAMPION,
    "Business User": ContactRole.CHAMPION,
    "Technical Buyer": ContactRole.ADMIN,
    "Admin": ContactRole.ADMIN,
    "Administrator": ContactRole.ADMIN,
}


SALESFORCE_CLOSED_LOST = "Closed Lost"  # the standard stage, for messages without IsClosed


def salesforce_stage(opp: Mapping[str, Any], won_stages: Sequence[str], path: str) -> StageMeaning:
    """Whether an Opportunity is closed-won, closed-lost or open, and why.

    `IsWon` decides when the message carries it (Salesforce sets it from the stage's
    own definition, whatever the stage is called); otherwise `StageName` is one of
    `won_stages` (ONBOARDING_SALESFORCE_CLOSED_WON_STAGES). Closed-lost: `IsClosed` and
    not `IsWon`, or `StageName` "Closed Lost". Raises PayloadError for an IsWon / IsClosed
    that is not true or false.
    """
    is_won, is_closed = (_flag(opp, name, path) for name in ("IsWon", "IsClosed"))
    stage = opp.get("StageName")
    named = f"StageName {stage!r}"
    if is_won is None:
        won = stage in won_stages
        listed = " or ".join(map(repr, won_stages))
        why = named if won else f"StageName is {stage!r}, not {listed}"
    else:
        won, why = is_won, f"IsWon is {str(is_won).lower()} ({named})"
    if won:
        return StageMeaning(DealStage.CLOSED_WON, why)
    if is_closed:
        return StageMeaning(DealStage.CLOSED_LOST, f"IsClosed and not IsWon ({named})")
    if stage == SALESFORCE_CLOSED_LOST:
        return StageMeaning(DealStage.CLOSED_LOST, named)
    return StageMeaning(DealStage.OPEN, why)


def _flag(record: Mapping[str, Any], key: str, path: str) -> bool | None:
    """A Salesforce checkbox, None when the message does not carry it."""
    value = record.get(key)
    return None if value in (None, "") else bool(convert(value, "bool", f"{path}.{key}"))


def salesforce_lost(opp: Mapping[str, Any], opp_id: str, why: str, path: str) -> Lost:
    # The account's one id, as `activities.deals` names it for a closed-won deal.
    account_id = canonical_account_id(required_text(opp, "AccountId", path))
    if not ACCOUNT_ID.match(account_id):
        raise PayloadError(f"{path}.AccountId", f"{account_id!r} is not an account id")
    return Lost(account_id=account_id, deal_id=salesforce_id18(opp_id) or opp_id, reason=why)


def salesforce_opportunity(
    payload: object,
    won_stages: Sequence[str],
    *,
    rates: FxRates = NO_RATES,
    products: Collection[str] = (),
) -> ClosedWonDeal | Lost | Ignored:
    """A closed-won deal from an Apex / Flow JSON callout, a lost one, or why it is
    ignored (`salesforce_stage` decides which).

    Body: `{"Opportunity": {...}, "Account": {"Id", "Name"}, "Contacts": [{"Name", "Email",
    "Role"}], "OpportunityLineItems": [...]}`; `Role` is the OpportunityContactRole, mapped
    by `SALESFORCE_ROLES`. The line items are the deal's products when `products`
    (ONBOARDING_CRM_PRODUCTS) names any (`salesforce_products`).
    """
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object with Opportunity and Account")
    opp = payload.get("Opportunity")
    if not isinstance(opp, dict):
        raise PayloadError("Opportunity", "missing, or not an object")
    opp_id = required_text(opp, "Id", "Opportunity")
    meaning, why = salesforce_stage(opp, won_stages, "Opportunity")
    if meaning is DealStage.CLOSED_LOST:
        return salesforce_lost(opp, opp_id, why, "Opportunity")
    if meaning is DealStage.OPEN:
        return Ignored(ref=f"Opportunity {opp_id}", reason=why)
    account = payload.get("Account")
    if not isinstance(account, dict):
        raise PayloadError("Account", "missing, or not an object")
    account_name = account.get("Name")
    if not isinstance(account_name, str) or not account_name.strip():
        raise PayloadError("Account.Name", "missing: the account needs a name")
    raw_contacts = payload.get("Contacts") or []
    if not isinstance(raw_contacts, list):
        raise PayloadError("Contacts", "must be an array")
    contacts: list[Contact] = []
    for i, c in enumerate(raw_contacts):
        if not isinstance(c, dict):
            raise PayloadError(f"Contacts[{i}]", "must be an object")
        email = c.get("Email")
        if not email:
            continue  # a contact role without an email cannot be reached
        role = SALESFORCE_ROLES.get(str(c.get("Role") or ""), ContactRole.END_USER)
        name = str(c.get("Name") or "").strip() or email
        contacts.append(mapped_contact(name, email, role, f"Contacts[{i}].Email"))
    items = salesforce_products(payload.get(LINE_ITEMS), products) if products else []
    return salesforce_deal(opp, opp_id, account_name, contacts, "Opportunity", rates, items)


LINE_ITEMS = "OpportunityLineItems"


def salesforce_products(items: object, onboarded: Collection[str]) -> list[DealProduct]:
    """A deal's products from its OpportunityLineItems
    (`activities.crm_products.deal_products`), in the order given (query them `ORDER BY
    SortOrder`): the product code from `Product2.ProductCode`, the name from
    `Product2.Name`, the licensed seats from `Quantity`, the products it waits for from
    `Product2.Onboarding_Depends_On__c` (a custom multi-select picklist or text of
    product codes separated by `;`). An array, or the `{"records": [...]}` that Apex's
    `JSON.serialize` writes for a subquery; none: no products."""
    if isinstance(items, dict):
        items = items.get("records")
    if items is None:
        return []
    if not isinstance(items, list):
        raise PayloadError(LINE_ITEMS, "must be an array (or a subquery's {records: [...]})")
    lines = []
    for i, item in enumerate(items):
        path = f"{LINE_ITEMS}[{i}]"
        if not isinstance(item, dict):
            raise PayloadError(path, "must be an object")
        product = item.get("Product2")
        if not isinstance(product, dict):
            raise PayloadError(f"{path}.Product2", "missing, or not an object")
        lines.append(
            ProductLine(
                code=product.get("ProductCode"),
                name=product.get("Name"),
                seats=item.get("Quantity"),
                depends_on=product.get("Onboarding_Depends_On__c"),
                fields={
                    "code": f"{path}.Product2.ProductCode",
                    "name": f"{path}.Product2.Name",
                    "seats": f"{path}.Quantity",
                    "depends_on": f"{path}.Product2.Onboarding_Depends_On__c",
                },
            )
        )
    return deal_products(lines, onboarded)


def salesforce_deal(
    opp: Mapping[str, Any],
    opp_id: str,
    account_name: str,
    contacts: list[Contact],
    path: str,
    rates: FxRates,
    products: Sequence[DealProduct] = (),
) -> ClosedWonDeal:
    """The JSON callout and the Outbound Message share this mapping (only the callout
    carries products: an Outbound Message holds the Opportunity's own fields)."""
    account_id = required_text(opp, "AccountId", path)
    fields, paths = deal_fields(opp, SALESFORCE_FIELDS, path)
    fields |= {
        "account_id": account_id,
        "account_name": account_name,
        "contacts": contacts,
        "crm": CrmRef(source="salesforce", deal_id=opp_id, company_id=account_id),
        "products": list(products),
    }
    return build_deal(fields, paths | {"account_id": f"{path}.AccountId"}, rates)


CONTACT_ROLE = "OpportunityContactRole"


def salesforce_contact_role(
    payload: Mapping[str, Any], champion_roles: Sequence[str]
) -> NewChampion | Ignored:
    """The account's new champion from an Apex / Flow JSON callout of an
    OpportunityContactRole (rules §6.3 (docs/rules.md)), or why it is ignored.

    Body: `{"OpportunityContactRole": {"Id", "Role", "Contact": {"Name", "Email"},
    "Opportunity": {"AccountId"}}}`, the record as Apex's `JSON.serialize` writes it when
    queried with `Contact.Name, Contact.Email, Opportunity.AccountId`. A `Role` in
    `champion_roles` (ONBOARDING_SALESFORCE_CHAMPION_ROLES) makes the contact the
    champion; any other role is ignored. Raises PayloadError naming the field.
    """
    ocr = payload.get(CONTACT_ROLE)
    if not isinstance(ocr, dict):
        raise PayloadError(CONTACT_ROLE, "must be an object (the OpportunityContactRole)")
    ocr_id = required_text(ocr, "Id", CONTACT_ROLE)
    ref = f"{CONTACT_ROLE} {salesforce_id18(ocr_id) or ocr_id}"
    role = ocr.get("Role")
    if role not in champion_roles:
        listed = " or ".join(map(repr, champion_roles))
        return Ignored(ref=ref, reason=f"Role is {role!r}, not {listed}: no new champion")
    related: dict[str, dict[str, Any]] = {}
    for key in ("Contact", "Opportunity"):
        record = ocr.get(key)
        if not isinstance(record, dict):
            raise PayloadError(f"{CONTACT_ROLE}.{key}", "missing, or not an object")
        related[key] = record
    contact, opp = related["Contact"], related["Opportunity"]
    path = f"{CONTACT_ROLE}.Opportunity"
    account_id = canonical_account_id(required_text(opp, "AccountId", path))
    if not ACCOUNT_ID.match(account_id):
        raise PayloadError(f"{path}.AccountId", f"{account_id!r} is not an account id")
    email = required_text(contact, "Email", f"{CONTACT_ROLE}.Contact")
    name = str(contact.get("Name") or "").strip() or email
    champion = mapped_contact(name, email, ContactRole.CHAMPION, f"{CONTACT_ROLE}.Contact.Email")
    return NewChampion(account_id=account_id, contact=champion, ref=ref)
