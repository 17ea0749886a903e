"""CRM webhook bodies -> domain models. Pure functions: no I/O, no clock.

A body that cannot be used raises `PayloadError` naming the field in the sender's own
words (`[3].propertyValue`, `Opportunity.Amount`), which the app answers with 422 (400
when the body does not parse at all). A closed-lost deal comes back as `Lost` (for the
`deal_lost` rule). A message that is valid but not for us (another event type, a stage
neither closed-won nor closed-lost) comes back as `Ignored`, so the answer can say why it
was acknowledged and nothing started.

Deal properties shared by HubSpot and Salesforce (custom fields on the deal or
opportunity):

| domain field          | HubSpot property                   | Salesforce field           |
|-----------------------|------------------------------------|----------------------------|
| acv (annual value)    | `hs_acv` if not 0, `acv`, `amount` | `ACV__c`, else `Amount`    |
| currency (ISO 4217)   | `deal_currency_code`               | `CurrencyIsoCode`          |
| seats                 | `seats`                            | `Seats__c`                 |
| stakeholder_count     | `stakeholder_count`                | `Stakeholder_Count__c`     |
| configuration_hours   | `configuration_hours`              | `Configuration_Hours__c`   |
| needs_api_integration | `needs_api_integration`            | `Needs_API_Integration__c` |
| custom_data_migration | `custom_data_migration`            | `Custom_Data_Migration__c` |
| integrations          | `integrations`                     | `Integrations__c`          |
| success_criteria      | `success_criteria`                 | `Success_Criteria__c`      |

Integrations are separated by `;` (a HubSpot multi-checkbox, a Salesforce multi-select
picklist); success criteria one per line. Booleans are true/false.

ACV is the annual value, not a multi-year total: the CRM's annual-value field comes
first (HubSpot's `hs_acv`, calculated from recurring line items and 0 on a deal without
them; a custom `acv` / `ACV__c`), the deal amount only without one. It is in the deal's
currency (no currency field: USD, as in a single-currency portal or org) and is counted
in US dollars by `starter.deals.inbound_deal`, which every deal here is built with.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET
from pydantic import BaseModel, ValidationError

from starter.deals import inbound_deal
from starter.ids import canonical_account_id, salesforce_id18
from starter.money import NO_RATES, FxRates
from starter.signatures import SignatureError
from workflows.models import (
    ACCOUNT_ID,
    ClosedWonDeal,
    Contact,
    ContactRole,
    CrmRef,
    DealStage,
    HubSpotDealRef,
)

MAX_HUBSPOT_EVENTS = 100  # HubSpot sends at most 100 events per request


class PayloadError(Exception):
    """The body is not a usable CRM message: `field` is the dotted path in the sender's
    terms, `reason` says what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MalformedError(PayloadError):
    """The body cannot be parsed at all (HTTP 400, not 422)."""


class Ignored(BaseModel):
    """A message acknowledged and deliberately not acted on, and why."""

    ref: str
    reason: str


class Lost(BaseModel):
    """A deal the CRM says is closed-lost: for the `deal_lost` rule of its account's
    onboarding, if one runs."""

    account_id: str
    deal_id: str
    reason: str


# --------------------------------------------------------------------------- HubSpot

HUBSPOT_DEAL_OBJECT_TYPE = "0-3"  # `object.*` subscriptions name deals by type id


class StageMeaning(NamedTuple):
    """What a deal stage id means, and a label naming it for people."""

    meaning: DealStage
    label: str


def hubspot_stage_changes(
    payload: object,
) -> tuple[list[tuple[HubSpotDealRef, str]], list[Ignored]]:
    """Every deal's `dealstage` change in a HubSpot webhook batch: (ref, new stage id).

    Only a `deal.propertyChange` (or `object.propertyChange` of a deal) of `dealstage`
    counts; every other event is ignored, with the reason. The webhook carries only the
    stage id (often numeric, one per pipeline): `sort_stage_changes` says what it means.
    """
    if not isinstance(payload, list):
        raise PayloadError("body", "must be a JSON array of HubSpot events")
    if not payload:
        raise PayloadError("body", "the array is empty; HubSpot sends 1 to 100 events")
    if len(payload) > MAX_HUBSPOT_EVENTS:
        raise PayloadError(
            "body", f"{len(payload)} events; HubSpot sends at most {MAX_HUBSPOT_EVENTS}"
        )
    changes: list[tuple[HubSpotDealRef, str]] = []
    ignored: list[Ignored] = []
    for i, event in enumerate(payload):
        if not isinstance(event, dict):
            raise PayloadError(f"[{i}]", "must be an object")
        event_id = _text(event, "eventId", f"[{i}]")
        kind = _text(event, "subscriptionType", f"[{i}]")
        ref = f"event {event_id}"
        is_deal_change = kind == "deal.propertyChange" or (
            kind == "object.propertyChange"
            and str(event.get("objectTypeId")) == HUBSPOT_DEAL_OBJECT_TYPE
        )
        if not is_deal_change:
            ignored.append(Ignored(ref=ref, reason=f"{kind} is not a deal stage change"))
            continue
        prop = event.get("propertyName")
        if prop != "dealstage":
            ignored.append(Ignored(ref=ref, reason=f"{prop} changed, not dealstage"))
            continue
        stage = event.get("propertyValue")
        if not isinstance(stage, str) or not stage.strip():
            ignored.append(Ignored(ref=ref, reason=f"dealstage is {stage!r}, not a stage id"))
            continue
        deal_id = _text(event, "objectId", f"[{i}]")
        changes.append((_hubspot_ref(event, i, deal_id, event_id), stage.strip()))
    return changes, ignored


def sort_stage_changes(
    changes: Sequence[tuple[HubSpotDealRef, str]], stages: Mapping[str, StageMeaning]
) -> tuple[list[HubSpotDealRef], list[HubSpotDealRef], list[Ignored]]:
    """(closed-won refs, closed-lost refs, ignored) from a batch's stage changes and what
    each stage id means. A deal named twice with the same meaning in one batch gives one
    ref; one both won and lost (moved on within seconds) gives one of each, and the deal
    as it is when fetched decides."""
    won: dict[str, HubSpotDealRef] = {}
    lost: dict[str, HubSpotDealRef] = {}
    ignored: list[Ignored] = []
    for ref, stage in changes:
        meaning, label = stages[stage]
        kept = {DealStage.CLOSED_WON: won, DealStage.CLOSED_LOST: lost}.get(meaning)
        if kept is None:
            reason = f"dealstage {label} is neither closed-won nor closed-lost"
            ignored.append(Ignored(ref=f"event {ref.event_id}", reason=reason))
        elif ref.deal_id in kept:
            first = kept[ref.deal_id].event_id
            reason = f"deal {ref.deal_id} is already in this batch (event {first})"
            ignored.append(Ignored(ref=f"event {ref.event_id}", reason=reason))
        else:
            kept[ref.deal_id] = ref
    return list(won.values()), list(lost.values()), ignored


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


def _hubspot_ref(event: dict[str, Any], i: int, deal_id: str, event_id: str) -> HubSpotDealRef:
    portal = event.get("portalId")
    if not isinstance(portal, int) or isinstance(portal, bool):
        raise PayloadError(f"[{i}].portalId", f"must be a number, got {portal!r}")
    if not deal_id.isdigit() or len(deal_id) > 20:
        raise PayloadError(f"[{i}].objectId", f"must be a numeric deal id, got {deal_id!r}")
    occurred = event.get("occurredAt")
    occurred_at = None
    if occurred is not None:
        try:
            if isinstance(occurred, bool) or not isinstance(occurred, int):
                raise TypeError(occurred)
            occurred_at = datetime.fromtimestamp(occurred / 1000, UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise PayloadError(
                f"[{i}].occurredAt", f"must be milliseconds since the epoch, got {occurred!r}"
            ) from None
    return HubSpotDealRef(
        portal_id=portal, deal_id=deal_id, event_id=event_id, occurred_at=occurred_at
    )


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
) -> ClosedWonDeal:
    """A closed-won deal from HubSpot CRM v3 reads of the deal, its company and contacts.

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
    fields, paths = _deal_fields(props, HUBSPOT_FIELDS, "properties")
    fields |= {
        "account_id": str(company_id),
        "account_name": name,
        "contacts": _hubspot_contacts(contacts),
        "crm": CrmRef(source="hubspot", deal_id=str(deal.get("id")), company_id=str(company_id)),
    }
    paths |= {"account_id": "company.id", "account_name": "company.properties.name"}
    return _build(fields, paths, rates)


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
        out.append(_contact(name or email, email, role, f"contacts[{i}].properties.email"))
    return out


# --------------------------------------------------------------------------- Salesforce

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
    return None if value in (None, "") else bool(_convert(value, "bool", f"{path}.{key}"))


def _salesforce_lost(opp: Mapping[str, Any], opp_id: str, why: str, path: str) -> Lost:
    # The account's one id, as `starter.deals` names it for a closed-won deal.
    account_id = canonical_account_id(_text(opp, "AccountId", path))
    if not ACCOUNT_ID.match(account_id):
        raise PayloadError(f"{path}.AccountId", f"{account_id!r} is not an account id")
    return Lost(account_id=account_id, deal_id=salesforce_id18(opp_id) or opp_id, reason=why)


def salesforce_opportunity(
    payload: object, won_stages: Sequence[str], *, rates: FxRates = NO_RATES
) -> ClosedWonDeal | Lost | Ignored:
    """A closed-won deal from an Apex / Flow JSON callout, a lost one, or why it is
    ignored (`salesforce_stage` decides which).

    Body: `{"Opportunity": {...}, "Account": {"Id", "Name"}, "Contacts": [{"Name", "Email",
    "Role"}]}`; `Role` is the OpportunityContactRole, mapped by `SALESFORCE_ROLES`.
    """
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object with Opportunity and Account")
    opp = payload.get("Opportunity")
    if not isinstance(opp, dict):
        raise PayloadError("Opportunity", "missing, or not an object")
    opp_id = _text(opp, "Id", "Opportunity")
    meaning, why = salesforce_stage(opp, won_stages, "Opportunity")
    if meaning is DealStage.CLOSED_LOST:
        return _salesforce_lost(opp, opp_id, why, "Opportunity")
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
        contacts.append(_contact(name, email, role, f"Contacts[{i}].Email"))
    return _salesforce_deal(opp, opp_id, account_name, contacts, "Opportunity", rates)


def _salesforce_deal(
    opp: Mapping[str, Any],
    opp_id: str,
    account_name: str,
    contacts: list[Contact],
    path: str,
    rates: FxRates,
) -> ClosedWonDeal:
    """The JSON callout and the Outbound Message share this mapping."""
    account_id = _text(opp, "AccountId", path)
    fields, paths = _deal_fields(opp, SALESFORCE_FIELDS, path)
    fields |= {
        "account_id": account_id,
        "account_name": account_name,
        "contacts": contacts,
        "crm": CrmRef(source="salesforce", deal_id=opp_id, company_id=account_id),
    }
    return _build(fields, paths | {"account_id": f"{path}.AccountId"}, rates)


OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def salesforce_outbound(
    body: bytes, org_ids: Sequence[str], won_stages: Sequence[str], *, rates: FxRates = NO_RATES
) -> tuple[list[tuple[str, ClosedWonDeal | Lost]], list[Ignored]]:
    """(notification id, closed-won or lost deal) pairs from an Outbound Message of
    Opportunities (`salesforce_stage` decides which; other stages are ignored).

    The notification id is the delivery's idempotency key; a notification repeated in one
    message is taken once. Account name: `Account_Name__c` if the message carries it,
    else the AccountId. If `org_ids` is set, another org's message raises SignatureError.
    One bad notification fails the whole message (no Ack), so Salesforce shows the
    reason in its Outbound Message queue and retries it once fixed.

    The body is untrusted XML: defusedxml refuses any DTD (so entity expansion, the
    "billion laughs", and external entities never happen) with MalformedError.
    """
    try:
        root = DefusedET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        kind = type(exc).__name__
        raise MalformedError(
            "body", f"DOCTYPE and ENTITY declarations are not accepted ({kind})"
        ) from None
    except ET.ParseError as exc:
        raise MalformedError("body", f"not well-formed XML: {exc}") from None
    notifications = root if root.tag == f"{{{OUTBOUND_NS}}}notifications" else None
    if notifications is None:
        notifications = root.find(f".//{{{OUTBOUND_NS}}}notifications")
    if notifications is None:
        raise PayloadError("notifications", "not an Outbound Message (no <notifications>)")
    org = (notifications.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") or "").strip()
    # Salesforce sends 18-character ids; a 15-character id names the same org.
    if org_ids and not any(org[:15] == allowed.strip()[:15] for allowed in org_ids):
        raise SignatureError(
            "OrganizationId",
            f"organization {org or '(none)'} is not allowed (ONBOARDING_SALESFORCE_ORG_IDS)",
        )
    deals: dict[str, ClosedWonDeal | Lost] = {}
    ignored: list[Ignored] = []
    seen: set[str] = set()
    for i, note in enumerate(notifications.iter(f"{{{OUTBOUND_NS}}}Notification")):
        path = f"Notification[{i}]"
        note_id = (note.findtext(f"{{{OUTBOUND_NS}}}Id") or "").strip()
        if not note_id:
            raise PayloadError(f"{path}.Id", "missing")
        if note_id in seen:
            continue
        seen.add(note_id)
        sobject = note.find(f"{{{OUTBOUND_NS}}}sObject")
        if sobject is None:
            raise PayloadError(f"{path}.sObject", "missing")
        kind = sobject.get(f"{_XSI}type", "").rpartition(":")[2]
        if kind != "Opportunity":
            ignored.append(
                Ignored(ref=f"Notification {note_id}", reason=f"{kind} is not an Opportunity")
            )
            continue
        opp = _sobject_fields(sobject)
        opp_id = _text(opp, "Id", f"{path}.sObject")
        meaning, why = salesforce_stage(opp, won_stages, f"{path}.sObject")
        if meaning is DealStage.OPEN:
            ignored.append(Ignored(ref=f"Opportunity {opp_id}", reason=why))
        elif meaning is DealStage.CLOSED_LOST:
            deals[note_id] = _salesforce_lost(opp, opp_id, why, f"{path}.sObject")
        else:
            name = opp.get("Account_Name__c") or _text(opp, "AccountId", f"{path}.sObject")
            deals[note_id] = _salesforce_deal(opp, opp_id, name, [], f"{path}.sObject", rates)
    return list(deals.items()), ignored


def _sobject_fields(sobject: ET.Element) -> dict[str, str | None]:
    """`sf:` children by local name; `xsi:nil="true"` is None."""
    fields: dict[str, str | None] = {}
    for child in sobject:
        if not child.tag.startswith(f"{{{SOBJECT_NS}}}"):
            continue
        nil = child.get(f"{_XSI}nil") == "true"
        fields[child.tag.rpartition("}")[2]] = None if nil else (child.text or "").strip()
    return fields


def salesforce_ack(ok: bool = True) -> str:
    """The SOAP answer to an Outbound Message; only `true` stops Salesforce retrying."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        "<soapenv:Body>"
        f'<notificationsResponse xmlns="{OUTBOUND_NS}">'
        f"<Ack>{'true' if ok else 'false'}</Ack>"
        "</notificationsResponse>"
        "</soapenv:Body>"
        "</soapenv:Envelope>"
    )


# --------------------------------------------------------------------------- generic


def generic_deal(payload: object, *, rates: FxRates = NO_RATES) -> ClosedWonDeal:
    """The generic webhook body is a ClosedWonDeal as JSON; `crm.source` defaults to
    "generic". A deal in another currency gives `acv` and `currency` instead of `acv_usd`.
    Validation errors become PayloadError naming the field (`contacts[0].email`).
    """
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object (a ClosedWonDeal)")
    crm = payload.get("crm")
    if crm is None:
        payload = payload | {"crm": {"source": "generic"}}
    elif isinstance(crm, dict) and "source" not in crm:
        payload = payload | {"crm": crm | {"source": "generic"}}
    return _build(payload, {}, rates)


# --------------------------------------------------------------------------- shared parsing

# (domain field, kind, source field(s) in order of preference)
_FieldMap = list[tuple[str, str, tuple[str, ...]]]

HUBSPOT_FIELDS: _FieldMap = [
    ("acv", "number", ("hs_acv", "acv", "amount")),
    ("currency", "text", ("deal_currency_code",)),
    ("close_date", "date", ("closedate",)),
    ("seats", "int", ("seats",)),
    ("stakeholder_count", "int", ("stakeholder_count",)),
    ("configuration_hours", "number", ("configuration_hours",)),
    ("needs_api_integration", "bool", ("needs_api_integration",)),
    ("custom_data_migration", "bool", ("custom_data_migration",)),
    ("integrations", "list;", ("integrations",)),
    ("success_criteria", "lines", ("success_criteria",)),
]
SALESFORCE_FIELDS: _FieldMap = [
    ("acv", "number", ("ACV__c", "Amount")),
    ("currency", "text", ("CurrencyIsoCode",)),
    ("close_date", "date", ("CloseDate",)),
    ("seats", "int", ("Seats__c",)),
    ("stakeholder_count", "int", ("Stakeholder_Count__c",)),
    ("configuration_hours", "number", ("Configuration_Hours__c",)),
    ("needs_api_integration", "bool", ("Needs_API_Integration__c",)),
    ("custom_data_migration", "bool", ("Custom_Data_Migration__c",)),
    ("integrations", "list;", ("Integrations__c",)),
    ("success_criteria", "lines", ("Success_Criteria__c",)),
]
_REQUIRED = {"acv", "close_date"}


def _deal_fields(
    source: Mapping[str, Any], mapping: _FieldMap, path: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Domain fields from a CRM record, and the source path of each (for errors).

    An empty value means "not set", so the domain default applies.
    """
    fields: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for name, kind, keys in mapping:
        key = next((k for k in keys if source.get(k) not in (None, "")), None)
        if key is None:
            if name in _REQUIRED:
                raise PayloadError(f"{path}.{keys[-1]}", "missing: a closed-won deal needs it")
            continue
        paths[name] = f"{path}.{key}"
        fields[name] = _convert(source[key], kind, paths[name])
    return fields, paths


def _convert(value: object, kind: str, field: str) -> object:
    if kind == "text":
        return value
    if kind == "list;":
        return [part.strip() for part in str(value).split(";") if part.strip()]
    if kind == "lines":
        return [line.strip() for line in str(value).splitlines() if line.strip()]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("true", "false"):
            raise PayloadError(field, f"must be true or false, got {value!r}")
        return text == "true"
    if kind == "date":
        return _date(value, field)
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise PayloadError(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise PayloadError(field, f"must be a finite number, got {value!r}")
    if kind == "int":
        if not number.is_integer():
            raise PayloadError(field, f"must be a whole number, got {value!r}")
        return int(number)
    return number


def _date(value: object, field: str) -> datetime | date:
    text = str(value).strip()
    try:
        if text.isdigit():  # HubSpot's older epoch-milliseconds form
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(field, f"must be a date like 2025-01-31, got {value!r}") from None


def _text(record: Mapping[str, Any], key: str, path: str) -> str:
    value = record.get(key)
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        raise PayloadError(f"{path}.{key}" if path else key, "missing")
    return str(value).strip()


def _contact(name: str, email: str, role: ContactRole, field: str) -> Contact:
    try:
        return Contact(name=name, email=email, role=role)
    except ValidationError as exc:
        raise PayloadError(field, _first_message(exc)) from None


def _is_zero(value: object) -> bool:
    try:
        return float(value) == 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _build(fields: Mapping[str, Any], paths: Mapping[str, str], rates: FxRates) -> ClosedWonDeal:
    """Validate; the error names the sender's field (`paths`), else the model's path."""
    try:
        return inbound_deal(fields, rates)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error["loc"]
        head = paths.get(str(loc[0])) if loc else None
        field = head or dotted(loc) or "body"
        more = exc.error_count() - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise PayloadError(field, _first_message(exc) + suffix) from None


def dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _first_message(exc: ValidationError) -> str:
    message = exc.errors()[0]["msg"]
    return message.removeprefix("Value error, ")
