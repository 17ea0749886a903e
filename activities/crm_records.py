"""The part of reading CRM records every sender shares: `PayloadError`, `StageMeaning`,
the deal fields each CRM maps and their conversion, and the deal built from them. Used by
the HubSpot records (`activities.hubspot_records`) and the CRM webhooks (`starter.crm`).
Pure functions: no I/O, no clock.

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
| deal_type             | `dealtype`                         | `Type`                     |
| churn_reason          | `churn_reason`                     | `Churn_Reason__c`          |

Integrations are separated by `;` (a HubSpot multi-checkbox, a Salesforce multi-select
picklist); success criteria one per line. Booleans are true/false.

A deal's products come from its lines, not from these fields: HubSpot line items and
Salesforce OpportunityLineItems (`activities.crm_products`).

The deal type picks the onboarding's track (`DEAL_TYPES`, compared without letter case,
spaces or punctuation): HubSpot's `newbusiness` and Salesforce's "New Business" / "New
Customer" are new business; HubSpot's `existingbusiness` and Salesforce's "Existing
Business", "Existing Customer - Upgrade" / "- Replacement" are an expansion; a
"Win Back" option (HubSpot internal value `winback`) is a win-back; a "Trial", "Free
Trial", "Free", "Freemium" or "POC" / "Proof of Concept" option (HubSpot internal values
`trial`, `freetrial`, `free`, `freemium`, `poc`) is a free or trial account. No value is
new business; any other value is refused, naming the field, since onboarding it on the
wrong track would go unnoticed.

ACV is the annual value, not a multi-year total: the CRM's annual-value field comes
first (HubSpot's `hs_acv`, calculated from recurring line items and 0 on a deal without
them; a custom `acv` / `ACV__c`), the deal amount only without one. It is in the deal's
currency (no currency field: USD, as in a single-currency portal or org) and is counted
in US dollars by `activities.deals.inbound_deal`, which every deal here is built with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from pydantic import ValidationError

from activities.deals import inbound_deal
from activities.money import FxRates
from workflows.models import ClosedWonDeal, Contact, ContactRole, DealStage, DealType
from workflows.validation import dotted, message


class PayloadError(Exception):
    """The body is not a usable CRM message: `field` is the dotted path in the sender's
    terms, `reason` says what is wrong with it; `problems` every problem found as
    `(field, reason)` (the first is `field`'s)."""

    def __init__(
        self, field: str, reason: str, problems: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.problems = problems or [(field, reason)]


class StageMeaning(NamedTuple):
    """What a deal stage id means, and a label naming it for people."""

    meaning: DealStage
    label: str


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
    ("deal_type", "deal_type", ("dealtype",)),
    ("churn_reason", "text", ("churn_reason",)),
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
    ("deal_type", "deal_type", ("Type",)),
    ("churn_reason", "text", ("Churn_Reason__c",)),
]
_REQUIRED = {"acv", "close_date"}

# A CRM's deal type -> our deal type, keyed by the value without case, spaces or
# punctuation (see the module docstring).
DEAL_TYPES: dict[str, DealType] = {
    "newbusiness": DealType.NEW_BUSINESS,  # HubSpot; Salesforce "New Business"
    "newcustomer": DealType.NEW_BUSINESS,  # Salesforce's standard picklist
    "existingbusiness": DealType.EXPANSION,  # HubSpot; Salesforce "Existing Business"
    "existingcustomerupgrade": DealType.EXPANSION,
    "existingcustomerreplacement": DealType.EXPANSION,
    "expansion": DealType.EXPANSION,
    "winback": DealType.WIN_BACK,  # "Win Back", "Win-Back", HubSpot `winback`
    "trial": DealType.TRIAL,  # a portal's or org's own options for free and trial accounts
    "freetrial": DealType.TRIAL,
    "free": DealType.TRIAL,
    "freemium": DealType.TRIAL,
    "poc": DealType.TRIAL,
    "proofofconcept": DealType.TRIAL,
}


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
    if kind == "deal_type":
        return _deal_type(value, field)
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


def _deal_type(value: object, field: str) -> DealType:
    key = "".join(c for c in str(value).casefold() if c.isalnum())
    if key not in DEAL_TYPES:
        raise PayloadError(
            field,
            f"deal type {value!r} is not one we know: new business (newbusiness, New "
            "Business, New Customer), expansion (existingbusiness, Existing Business, "
            "Existing Customer - Upgrade or - Replacement), win-back (winback, Win Back) "
            "or free / trial (Trial, Free Trial, Free, Freemium, POC, Proof of Concept)",
        )
    return DEAL_TYPES[key]


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


def build_deal(
    fields: Mapping[str, Any], paths: Mapping[str, str], rates: FxRates
) -> ClosedWonDeal:
    """Validate; the error names the sender's field (`paths`), else the model's path."""
    try:
        return inbound_deal(fields, rates)
    except ValidationError as exc:

        def named(loc: tuple[int | str, ...]) -> str:
            return (paths.get(str(loc[0])) if loc else None) or dotted(loc) or "body"

        problems = [(named(e["loc"]), message(e)) for e in exc.errors()]
        (field, reason), more = problems[0], len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise PayloadError(field, reason + suffix, problems) from None
