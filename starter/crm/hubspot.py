"""HubSpot webhooks: a batch of events -> each deal's `dealstage` change, then (with
what each stage id means, from HubSpot's pipelines) closed-won and closed-lost deal refs;
and each contact whose buying role became champion (rules §6.3 (docs/rules.md)). The
webhook carries only ids: `activities.crm` reads the deal or contact itself.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from activities.crm_records import PayloadError, StageMeaning, required_text
from starter.crm.messages import Ignored
from workflows.models import DealStage, HubSpotContactRef, HubSpotDealRef

MAX_HUBSPOT_EVENTS = 100  # HubSpot sends at most 100 events per request

HUBSPOT_DEAL_OBJECT_TYPE = "0-3"  # `object.*` subscriptions name deals by type id
HUBSPOT_CONTACT_OBJECT_TYPE = "0-1"  # and contacts


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


def _hubspot_ref(
    event: dict[str, Any], i: int, deal_id: str, event_id: str, kind: str = "deal"
) -> HubSpotDealRef:
    portal = event.get("portalId")
    if not isinstance(portal, int) or isinstance(portal, bool):
        raise PayloadError(f"[{i}].portalId", f"must be a number, got {portal!r}")
    if not deal_id.isdigit() or len(deal_id) > 20:
        raise PayloadError(f"[{i}].objectId", f"must be a numeric {kind} id, got {deal_id!r}")
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


def hubspot_champion_changes(
    events: Sequence[dict[str, Any]], role_property: str, champion_values: Sequence[str]
) -> tuple[list[HubSpotContactRef], list[Ignored]]:
    """Every contact whose buying role became champion in a batch `hubspot_stage_changes`
    has checked, and the contact events ignored, with the reason; other events are not
    looked at (the stage changes account for them).

    A `contact.propertyChange` (or `object.propertyChange` of a contact) of
    `role_property` (ONBOARDING_HUBSPOT_CHAMPION_PROPERTY, a multi-select: values joined
    by `;`) whose new value holds one of `champion_values` counts; a contact named twice
    in one batch gives one ref. A value without them (a champion leaving the role names
    no successor) is ignored. The contact as read decides (`activities.crm`).
    """
    refs: dict[str, HubSpotContactRef] = {}
    ignored: list[Ignored] = []
    for i, event in enumerate(events):
        kind = required_text(event, "subscriptionType", f"[{i}]")
        event_id = required_text(event, "eventId", f"[{i}]")
        if not (
            kind == "contact.propertyChange"
            or (
                kind == "object.propertyChange"
                and str(event.get("objectTypeId")) == HUBSPOT_CONTACT_OBJECT_TYPE
            )
        ):
            continue
        ref = f"event {event_id}"
        prop = event.get("propertyName")
        if prop != role_property:
            ignored.append(Ignored(ref=ref, reason=f"{prop} changed, not {role_property}"))
            continue
        value = event.get("propertyValue")
        roles = {v.strip() for v in value.split(";")} if isinstance(value, str) else set()
        if not roles & set(champion_values):
            wanted = " or ".join(champion_values)
            reason = f"{role_property} is {value!r}, not {wanted}: no new champion"
            ignored.append(Ignored(ref=ref, reason=reason))
            continue
        contact_id = required_text(event, "objectId", f"[{i}]")
        deal_ref = _hubspot_ref(event, i, contact_id, event_id, kind="contact")
        if contact_id in refs:
            first = refs[contact_id].event_id
            reason = f"contact {contact_id} is already in this batch (event {first})"
            ignored.append(Ignored(ref=ref, reason=reason))
            continue
        refs[contact_id] = HubSpotContactRef(
            portal_id=deal_ref.portal_id,
            contact_id=contact_id,
            event_id=deal_ref.event_id,
            occurred_at=deal_ref.occurred_at,
        )
    return list(refs.values()), ignored
