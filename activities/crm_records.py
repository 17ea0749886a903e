"""CRM records -> domain models, for the HubSpot deal fetch (`activities.crm`) and the
CRM webhooks (`starter.crm`). Pure functions: no I/O, no clock.

A record that cannot be used raises `PayloadError` naming the field in the sender's own
words (`properties.amount`, `Opportunity.Amount`).

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
in US dollars by `activities.deals.inbound_deal`, which every deal here is built with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from activities.deals import inbound_deal
from activities.money import NO_RATES, FxRates
from workflows.models import ClosedWonDeal, Contact, ContactRole, CrmRef, DealStage
from workflows.validation import dotted, message


class PayloadError(Exception):
    """The body is not a usable CRM message: `field` is the dotted path in the sender's
    terms, `reason` says what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class StageMeaning(NamedTuple):
    """What a deal stage id means, and a label naming it for people."""

    meaning: DealStage
    label: str


# --------------------------------------------------------------------------- HubSpot


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
    fields, paths = deal_fields(props, HUBSPOT_FIELDS, "properties")
    fields |= {
        "account_id": str(company_id),
        "account_name": name,
        "contacts": _hubspot_contacts(contacts),
        "crm": CrmRef(source="hubspot", deal_id=str(deal.get("id")), company_id=str(company_id)),
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


# --------------------------------------------------------------------------- shared parsing

# (domain field, kind, source field(s) in order of preference)
FieldMap = list[tuple[str, str, tuple[str, ...]]]

HUBSPOT_FIELDS: FieldMap = [
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
SALESFORCE_FIELDS: FieldMap = [
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


def deal_fields(
    source: Mapping[str, Any], mapping: FieldMap, path: str
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
        fields[name] = convert(source[key], kind, paths[name])
    return fields, paths


def convert(value: object, kind: str, field: str) -> object:
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


def required_text(record: Mapping[str, Any], key: str, path: str) -> str:
    value = record.get(key)
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        raise PayloadError(f"{path}.{key}" if path else key, "missing")
    return str(value).strip()


def mapped_contact(name: str, email: str, role: ContactRole, field: str) -> Contact:
    try:
        return Contact(name=name, email=email, role=role)
    except ValidationError as exc:
        raise PayloadError(field, message(exc.errors()[0])) from None


def _is_zero(value: object) -> bool:
    try:
        return float(value) == 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def build_deal(
    fields: Mapping[str, Any], paths: Mapping[str, str], rates: FxRates
) -> ClosedWonDeal:
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
        raise PayloadError(field, message(exc.errors()[0]) + suffix) from None
