"""HubSpot CRM v3 records -> domain models, for the HubSpot deal fetch (`activities.crm`):
what each deal stage id means (from the deal pipelines), the deal's company, contact and
line item ids (from its associations), and the closed-won deal from the deal, company,
contact and line item reads, and a contact read as the account's new champion
(`hubspot_champion`). Properties map as `activities.crm_records.HUBSPOT_FIELDS` says; line
items become the deal's products as `activities.crm_products` says. Pure functions:
no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from activities.crm_products import ProductLine, deal_products
from activities.crm_records import (
    HUBSPOT_FIELDS,
    PayloadError,
    StageMeaning,
    build_deal,
    deal_fields,
    mapped_contact,
)
from activities.money import NO_RATES, FxRates
from workflows.models import (
    ClosedWonDeal,
    Contact,
    ContactRole,
    CrmRef,
    DealProduct,
    DealStage,
    HubSpotChampion,
)


def hubspot_pipeline_stages(body: Mapping[str, Any]) -> dict[str, StageMeaning]:
    """Every stage of every deal pipeline from `GET /crm/v3/pipelines/deals`, by id.

    HubSpot's own rule: a stage is closed-won when its `metadata.isClosed` is true and
    its `metadata.probability` is 1.0, closed-lost when closed at probability 0.
    """
    out: dict[str, StageMeaning] = {}
    for pipeline in body.get("results") or []:
        if not isinstance(pipeline, dict):
            continue
        for stage in pipeline.get("stages") or []:
            if not isinstance(stage, dict) or not stage.get("id"):
                continue
            meta = stage.get("metadata") or {}
            closed = str(meta.get("isClosed", "")).lower() == "true"
            try:
                probability = float(meta.get("probability", "nan"))
            except (TypeError, ValueError):
                probability = math.nan
            if closed and probability == 1.0:
                meaning = DealStage.CLOSED_WON
            elif closed and probability == 0.0:
                meaning = DealStage.CLOSED_LOST
            else:
                meaning = DealStage.OPEN
            label = (
                f"{stage['id']} ({stage.get('label') or stage['id']!s} in pipeline "
                f"{pipeline.get('label') or pipeline.get('id')!s})"
            )
            out[str(stage["id"])] = StageMeaning(meaning, label)
    return out


def hubspot_company_id(deal: Mapping[str, Any]) -> str:
    """The deal's primary company from a CRM v3 deal read with `associations=companies`."""
    results = _association_results(deal, "companies")
    if not results:
        raise PayloadError(
            "associations.companies",
            "the deal has no associated company, so there is no account to onboard",
        )
    primary = [r for r in results if r.get("type") == "deal_to_company"]
    return str((primary or results)[0]["id"])


def hubspot_contact_ids(deal: Mapping[str, Any]) -> list[str]:
    """Associated contact ids, in HubSpot's order, each once."""
    ids = [str(r["id"]) for r in _association_results(deal, "contacts")]
    return list(dict.fromkeys(ids))


def hubspot_line_item_ids(deal: Mapping[str, Any]) -> list[str]:
    """Associated line item ids, in HubSpot's order, each once. A read with
    `associations=line_items` answers them under `line items` (with a space)."""
    found = _association_results(deal, "line items") or _association_results(deal, "line_items")
    return list(dict.fromkeys(str(r["id"]) for r in found))


# The line item properties the products are read from, besides the product code's.
LINE_ITEM_PROPERTIES = ("name", "quantity", "hs_position_on_quote", "onboarding_depends_on")


def hubspot_products(
    line_items: Sequence[Mapping[str, Any]], product_property: str, onboarded: Collection[str]
) -> list[DealProduct]:
    """A deal's products from its line items (`activities.crm_products.deal_products`):
    the product code from `product_property` (`ONBOARDING_HUBSPOT_PRODUCT_PROPERTY`,
    `hs_sku` by default), the name from `name`, the licensed seats from `quantity`, the
    products it waits for from `onboarding_depends_on` (a custom property of products and
    line items: product codes separated by `;`). Their order is the deal's: by
    `hs_position_on_quote`, those without one after, as given."""

    def position(i: int) -> tuple[bool, float, int]:
        value = (line_items[i].get("properties") or {}).get("hs_position_on_quote")
        try:
            at = float(str(value))
        except ValueError:
            at = math.nan
        return (False, at, i) if math.isfinite(at) else (True, 0.0, i)

    lines = []
    for n, i in enumerate(sorted(range(len(line_items)), key=position)):
        props = line_items[i].get("properties") or {}
        path = f"line_items[{n}].properties"
        lines.append(
            ProductLine(
                code=props.get(product_property),
                name=props.get("name"),
                seats=props.get("quantity"),
                depends_on=props.get("onboarding_depends_on"),
                fields={
                    "code": f"{path}.{product_property}",
                    "name": f"{path}.name",
                    "seats": f"{path}.quantity",
                    "depends_on": f"{path}.onboarding_depends_on",
                },
            )
        )
    return deal_products(lines, onboarded)


def _association_results(deal: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    # A labelled association lists the same id once per label.
    block = (deal.get("associations") or {}).get(kind) or {}
    results = block.get("results") or []
    return [r for r in results if isinstance(r, dict) and r.get("id") is not None]


# Job titles that make an associated contact the executive sponsor (whole words).
_EXECUTIVE_TITLE = re.compile(
    r"\b(CEO|CFO|CTO|COO|CIO|CRO|[SE]?VP|Vice President|Chief|Head|Founder)\b", re.IGNORECASE
)


def hubspot_deal(
    deal: Mapping[str, Any],
    company: Mapping[str, Any],
    contacts: Sequence[Mapping[str, Any]],
    *,
    rates: FxRates = NO_RATES,
    products: Sequence[DealProduct] = (),
) -> ClosedWonDeal:
    """A closed-won deal from HubSpot CRM v3 reads of the deal, its company and contacts,
    with the `products` its line items make (`hubspot_products`).

    Contacts: the first associated contact is the champion; after it, the first whose job
    title names an executive (CEO, CFO, CTO, COO, CIO, CRO, VP, Vice President, Chief,
    Head, Founder) is the executive sponsor; the rest are end users. Contacts without an
    email address are left out: nobody could be notified.
    """
    props = deal.get("properties") or {}
    if _is_zero(props.get("hs_acv")):  # no recurring line items: not an annual value
        props = {**props, "hs_acv": None}
    company_id = company.get("id")
    if not company_id:
        raise PayloadError("company.id", "missing")
    company_props = company.get("properties") or {}
    name = company_props.get("name") or company_props.get("domain")
    if not name:
        raise PayloadError("company.properties.name", "the company has no name or domain")
    fields, paths = deal_fields(props, HUBSPOT_FIELDS, "properties")
    fields |= {
        "account_id": str(company_id),
        "account_name": name,
        "contacts": _hubspot_contacts(contacts),
        "crm": CrmRef(source="hubspot", deal_id=str(deal.get("id")), company_id=str(company_id)),
        "products": list(products),
    }
    paths |= {"account_id": "company.id", "account_name": "company.properties.name"}
    return build_deal(fields, paths, rates)


def _hubspot_contacts(contacts: Sequence[Mapping[str, Any]]) -> list[Contact]:
    out: list[Contact] = []
    for i, contact in enumerate(contacts):
        p = contact.get("properties") or {}
        email = (p.get("email") or "").strip()
        if not email:
            continue
        name = " ".join(x.strip() for x in (p.get("firstname"), p.get("lastname")) if x)
        if not out:
            role = ContactRole.CHAMPION
        elif _EXECUTIVE_TITLE.search(p.get("jobtitle") or "") and not any(
            c.role is ContactRole.EXECUTIVE_SPONSOR for c in out
        ):
            role = ContactRole.EXECUTIVE_SPONSOR
        else:
            role = ContactRole.END_USER
        out.append(mapped_contact(name or email, email, role, f"contacts[{i}].properties.email"))
    return out


def _is_zero(value: object) -> bool:
    try:
        return float(value) == 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def hubspot_champion(
    contact: Mapping[str, Any], contact_id: str, role_property: str, champion_values: Sequence[str]
) -> HubSpotChampion:
    """A contact read (`GET /crm/v3/objects/contacts/{id}` with `associations=companies`)
    as the account's new champion (rules §6.3 (docs/rules.md)), or why it is not one.

    The champion is a contact whose `role_property` (multi-select: values joined by `;`)
    holds one of `champion_values`, with an email (to be reached) and a company (its
    primary one, `contact_to_company`, is the account). `{}` (deleted since) is not one.
    Raises PayloadError for an email that is not an address.
    """
    if not contact:
        return HubSpotChampion(
            contact_id=contact_id, account_id=None, contact=None, detail="contact not found"
        )
    props = contact.get("properties") or {}
    roles = [v.strip() for v in str(props.get(role_property) or "").split(";") if v.strip()]
    companies = _association_results(contact, "companies")
    primary = [r for r in companies if r.get("type") == "contact_to_company"]
    account_id = str((primary or companies)[0]["id"]) if companies else None
    found = f"{role_property} is {';'.join(roles) or '(empty)'}"
    email = str(props.get("email") or "").strip()
    why_not = (
        f"no longer the champion: {found}, none of {', '.join(champion_values)}"
        if not set(roles) & set(champion_values)
        else "the contact has no email address, so nobody could be reached"
        if not email
        else "the contact has no company, so there is no account to re-align"
        if account_id is None
        else None
    )
    if why_not is not None:
        return HubSpotChampion(
            contact_id=contact_id, account_id=account_id, contact=None, detail=why_not
        )
    name = " ".join(str(x).strip() for x in (props.get("firstname"), props.get("lastname")) if x)
    champion = mapped_contact(name or email, email, ContactRole.CHAMPION, "properties.email")
    return HubSpotChampion(
        contact_id=contact_id, account_id=account_id, contact=champion, detail=found
    )
