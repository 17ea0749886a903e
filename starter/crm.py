"""CRM webhook bodies -> domain models. Pure functions: no I/O, no clock.

A body that cannot be used raises `PayloadError` naming the field in the sender's own
words (`[3].propertyValue`, `Opportunity.Amount`), which the app answers with 422 (400
when the body does not parse at all). A closed-lost deal comes back as `Lost` (for the
`deal_lost` rule). A message that is valid but not for us (another event type, a stage
neither closed-won nor closed-lost) comes back as `Ignored`, so the answer can say why it
was acknowledged and nothing started. The deal fields each CRM maps (HubSpot properties,
Salesforce fields) are in `activities.crm_records`, which the HubSpot deal fetch uses too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET
from pydantic import BaseModel

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
from starter.signatures import SignatureError
from workflows.ids import canonical_account_id, salesforce_id18
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
        event_id = required_text(event, "eventId", f"[{i}]")
        kind = required_text(event, "subscriptionType", f"[{i}]")
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
        deal_id = required_text(event, "objectId", f"[{i}]")
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
    return None if value in (None, "") else bool(convert(value, "bool", f"{path}.{key}"))


def _salesforce_lost(opp: Mapping[str, Any], opp_id: str, why: str, path: str) -> Lost:
    # The account's one id, as `activities.deals` names it for a closed-won deal.
    account_id = canonical_account_id(required_text(opp, "AccountId", path))
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
    opp_id = required_text(opp, "Id", "Opportunity")
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
        contacts.append(mapped_contact(name, email, role, f"Contacts[{i}].Email"))
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
    account_id = required_text(opp, "AccountId", path)
    fields, paths = deal_fields(opp, SALESFORCE_FIELDS, path)
    fields |= {
        "account_id": account_id,
        "account_name": account_name,
        "contacts": contacts,
        "crm": CrmRef(source="salesforce", deal_id=opp_id, company_id=account_id),
    }
    return build_deal(fields, paths | {"account_id": f"{path}.AccountId"}, rates)


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
        opp_id = required_text(opp, "Id", f"{path}.sObject")
        meaning, why = salesforce_stage(opp, won_stages, f"{path}.sObject")
        if meaning is DealStage.OPEN:
            ignored.append(Ignored(ref=f"Opportunity {opp_id}", reason=why))
        elif meaning is DealStage.CLOSED_LOST:
            deals[note_id] = _salesforce_lost(opp, opp_id, why, f"{path}.sObject")
        else:
            name = opp.get("Account_Name__c") or required_text(opp, "AccountId", f"{path}.sObject")
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
    return build_deal(payload, {}, rates)
