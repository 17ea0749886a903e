"""Salesforce Outbound Messages (SOAP): the notifications of one message -> closed-won
or lost deals by notification id (the mapping of `starter.crm.salesforce`), and the
`Ack` that answers the message. The body is untrusted XML, read with defusedxml.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

from activities.crm_records import PayloadError, required_text
from activities.money import NO_RATES, FxRates
from starter.crm.messages import Ignored, Lost, MalformedError
from starter.crm.salesforce import salesforce_deal, salesforce_lost, salesforce_stage
from starter.signatures import SignatureError
from workflows.models import ClosedWonDeal, DealStage

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
            deals[note_id] = salesforce_lost(opp, opp_id, why, f"{path}.sObject")
        else:
            name = opp.get("Account_Name__c") or required_text(opp, "AccountId", f"{path}.sObject")
            deals[note_id] = salesforce_deal(opp, opp_id, name, [], f"{path}.sObject", rates)
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
