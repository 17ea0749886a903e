"""CRM exports as they are downloaded: column presets and the cell formats they use.

`onboarding import` reads its own columns (`starter.bulk.CSV_COLUMNS`), a HubSpot deals
export, or a Salesforce opportunity report, through the presets below; `--column "Their
Header=our_column"` maps any other header. Pure functions: no I/O.

Cells, precisely:

- amounts: digits with an optional decimal point and `,` between groups of three
  (`50000`, `50,000.00`); with `--decimal-comma`, a decimal comma and `.` or a space
  between groups (`50.000,00`, `50 000,00`). A currency may come before or after: `$`
  or `US$` (USD), `€` (EUR), `£` (GBP), or an ISO 4217 code (`JPY 7,200,000`,
  `50.000,00 EUR`). It must agree with the row's currency column, if there is one.
- dates: ISO 8601 (`2026-11-30`, `2026-11-30T14:00:00Z`), or month/day/year with `/`,
  `.` or `-` (`11/30/2026`), day first with `--day-first` (`30/11/2026`). The year has
  four digits.
- closed-won: a `won` column (Salesforce's `Won`: true/false, yes/no, 1/0) decides when
  the file has one; else a `stage` column must name a closed-won stage (`Closed Won` or
  `closedwon` unless `--won-stage` says otherwise; any letter case). Other rows are
  skipped, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from activities.money import USD, CurrencyError, currency_code


@dataclass(frozen=True)
class Preset:
    """The columns of one CRM's export: header -> our column (None: known, not imported).

    Headers match in any letter case. Several headers for one column are tried in the
    order listed, the first non-empty cell winning (`zero_is_empty`: a 0 there does not
    count, for a calculated field that is 0 when it does not apply).
    """

    name: str
    title: str
    columns: tuple[tuple[str, str | None], ...]
    detect_by: tuple[str, ...] = field(default=())
    constants: tuple[tuple[str, str], ...] = field(default=())
    zero_is_empty: frozenset[str] = field(default=frozenset())


HUBSPOT = Preset(
    name="hubspot",
    title="a HubSpot deals export",
    columns=(
        ("Record ID", "crm_deal_id"),
        ("Deal Name", None),
        ("Deal Stage", "stage"),
        ("Pipeline", None),
        ("Close Date", "close_date"),
        ("Deal owner", None),
        ("Create Date", None),
        ("Deal Type", "deal_type"),  # dealtype
        ("Annual contract value", "acv"),  # hs_acv
        ("ACV", "acv"),  # the custom `acv` property
        ("Amount", "acv"),
        ("Currency", "currency"),  # deal_currency_code
        ("Associated Company", "account_name"),
        ("Associated Company IDs", "account_id"),
    ),
    detect_by=("Record ID", "Associated Company IDs"),
    constants=(("crm_source", "hubspot"),),
    zero_is_empty=frozenset({"annual contract value"}),
)
SALESFORCE = Preset(
    name="salesforce",
    title="a Salesforce opportunity report",
    columns=(
        ("Opportunity ID", "crm_deal_id"),
        ("Opportunity Name", None),
        ("Account ID", "account_id"),
        ("Account Name", "account_name"),
        ("ACV", "acv"),  # ACV__c
        ("Amount", "acv"),
        ("Amount Currency", "currency"),
        ("Opportunity Currency", "currency"),  # CurrencyIsoCode
        ("Close Date", "close_date"),
        ("Stage", "stage"),
        ("Won", "won"),
        ("Closed", None),
        ("Opportunity Owner", None),
        ("Probability (%)", None),
        ("Fiscal Period", None),
        ("Age", None),
        ("Created Date", None),
        ("Next Step", None),
        ("Lead Source", None),
        ("Type", "deal_type"),
    ),
    detect_by=("Opportunity ID", "Account ID"),
    constants=(("crm_source", "salesforce"),),
)
PRESETS = {p.name: p for p in (HUBSPOT, SALESFORCE)}
WON_STAGES = ("Closed Won", "closedwon")


def header_key(header: str) -> str:
    """Headers compare by this: any letter case, runs of white space as one space."""
    return " ".join(header.split()).casefold()


def detect_preset(header: list[str]) -> Preset | None:
    """The preset whose identifying columns (`detect_by`) the header has any of."""
    keys = {header_key(h) for h in header}
    for preset in PRESETS.values():
        if any(header_key(h) in keys for h in preset.detect_by):
            return preset
    return None


class CellError(ValueError):
    """A cell in a format we do not read; the message says which formats we do."""


_SYMBOLS = {"$": USD, "US$": USD, "€": "EUR", "£": "GBP"}
_CURRENCY_PREFIX = re.compile(r"^(US\$|\$|€|£|[A-Za-z]{3}(?![A-Za-z]))\s*")
_CURRENCY_SUFFIX = re.compile(r"\s*(US\$|\$|€|£|(?<![A-Za-z])[A-Za-z]{3})$")
_POINT = re.compile(r"^(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_COMMA = re.compile(r"^(\d{1,3}([. \u00a0\u202f]\d{3})+|\d+)(,\d+)?$")


def parse_amount(cell: str, *, decimal_comma: bool = False) -> tuple[float, str | None]:
    """(amount, the currency the cell names or None); see the module docstring."""
    if decimal_comma:
        expected = "50000, 50.000,00 or 50.000,00 €"
    else:
        expected = "50000, 50,000.00 or $50,000.00 (--decimal-comma reads 50.000,00)"
    text = cell.strip()
    negative = text.startswith("-")
    text = text.removeprefix("-").strip()
    symbols = []
    if prefix := _CURRENCY_PREFIX.match(text):
        symbols.append(prefix.group(1))
        text = text[prefix.end() :]
    if suffix := _CURRENCY_SUFFIX.search(text):
        symbols.append(suffix.group(1))
        text = text[: suffix.start()]
    if len(symbols) == 2:
        raise CellError(f"{cell!r} names a currency twice; expected an amount like {expected}")
    text = text.strip()
    if text.startswith("-") and not negative:
        negative, text = True, text[1:].strip()
    currency = None
    if symbols:
        try:
            currency = _SYMBOLS.get(symbols[0]) or currency_code(symbols[0])
        except CurrencyError as exc:
            raise CellError(f"{cell!r}: {exc}") from None
    if decimal_comma:
        if not _COMMA.match(text):
            raise CellError(f"{cell!r} is not an amount like {expected}")
        text = re.sub(r"[. \u00a0\u202f]", "", text).replace(",", ".")
    else:
        if not _POINT.match(text):
            raise CellError(f"{cell!r} is not an amount like {expected}")
        text = text.replace(",", "")
    number = float(text)
    return (-number if negative else number), currency


_DMY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})$")


def parse_date(cell: str, *, day_first: bool = False) -> date | datetime:
    """A close date; see the module docstring."""
    text = cell.strip()
    if day_first:
        expected = "30/11/2026 (day first) or 2026-11-30"
    else:
        expected = "11/30/2026 (month first; --day-first reads 30/11/2026) or 2026-11-30"
    slashed = _DMY.match(text)
    try:
        if slashed:
            first, _, second, year = slashed.groups()
            day, month = (first, second) if day_first else (second, first)
            return date(int(year), int(month), int(day))
        if re.match(r"^\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        pass
    raise CellError(f"{cell!r} is not a date like {expected}")


_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def parse_won(cell: str) -> bool:
    text = cell.strip().casefold()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise CellError(f"{cell!r} is not true or false (yes/no, 1/0)")
