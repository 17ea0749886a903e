"""One CSV row's cells -> a deal, a skipped row or a `RowError`: closed-won or not,
amounts and dates in the CRM's formats (`starter.exports`), the deal type as the CRMs'
(`activities.crm_records`), lists, contacts, the CRM reference and the products
(`starter.bulk.products`), then
`activities.deals.inbound_deal`, like a webhook's deal. A validation error names the
column as the file's header names it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from activities.crm_records import PayloadError, convert
from activities.deals import inbound_deal
from activities.money import USD, CurrencyError, FxRates, currency_code
from starter.bulk.columns import (
    ACV_COLUMNS,
    CONTACT_COLUMNS,
    CRM_COLUMNS,
    LIST_COLUMNS,
    PLAIN_COLUMNS,
    PRODUCTS_COLUMN,
    CsvOptions,
    Layout,
)
from starter.bulk.products import csv_products
from starter.bulk.rows import RowError, Skipped
from starter.exports import CellError, header_key, parse_amount, parse_date, parse_won
from workflows.models import ClosedWonDeal
from workflows.validation import message


def csv_deal(
    values: dict[str, str],
    headers: dict[str, str],
    layout: Layout,
    options: CsvOptions,
    rates: FxRates,
) -> ClosedWonDeal | RowError | Skipped:
    """One row: skipped unless closed-won; cells in CRM formats read; then the deal."""
    try:
        if "won" in values:
            if not parse_won(values["won"]):
                return Skipped(f"{headers['won']} is {values['won']!r}: not won")
        elif "stage" in layout.sources:
            stage = values.get("stage", "")
            if header_key(stage) not in {header_key(s) for s in options.won_stages}:
                return Skipped(
                    f"{headers['stage']} is {stage!r}, not closed-won "
                    f"({' or '.join(options.won_stages)})"
                )
    except CellError as exc:
        return RowError(headers["won"], str(exc))

    fields: dict[str, Any] = dict(values)
    column = ""
    try:
        if "close_date" in values:
            column = "close_date"
            fields[column] = parse_date(values[column], day_first=options.day_first)
        if "deal_type" in values:
            column = "deal_type"
            fields[column] = convert(values[column], column, headers[column])
        for column in ACV_COLUMNS:
            if column not in values:
                continue
            fields[column], named = parse_amount(
                values[column], decimal_comma=options.decimal_comma
            )
            if named is None:
                continue
            if column == "acv_usd" and named != USD:
                raise CellError(
                    f"{values[column]!r} is in {named}, but this column is in US dollars "
                    "(an amount in another currency goes in acv, with its currency)"
                )
            if column == "acv" and "currency" not in values:
                fields["currency"], headers["currency"] = named, headers[column]
            elif column == "acv" and _same_currency(values["currency"], named) is False:
                raise CellError(
                    f"{values[column]!r} is in {named}, but {headers['currency']} is "
                    f"{values['currency']!r}"
                )
    except CellError as exc:
        return RowError(headers[column], str(exc))
    except PayloadError as exc:
        return RowError(headers[column], exc.reason)
    account_id = values.get("account_id", "")
    if any(sep in account_id for sep in ";,"):
        return RowError(
            headers["account_id"],
            f"{account_id!r} names several accounts; a row onboards one: keep the one to onboard",
        )
    return _deal_from_cells(fields, headers, rates)


def _same_currency(given: str, named: str) -> bool | None:
    """Whether a currency column's value is `named`; None when it is no currency at all
    (the deal's validation names that)."""
    try:
        return currency_code(given) == named
    except CurrencyError:
        return None


def _deal_from_cells(
    cells: dict[str, Any], headers: dict[str, str], rates: FxRates
) -> ClosedWonDeal | RowError:
    """Build a deal from the non-empty cells of one CSV row (an empty cell: the default)."""
    fields: dict[str, Any] = {c: cells[c] for c in PLAIN_COLUMNS if c in cells}
    for column in LIST_COLUMNS:
        if column in cells:
            fields[column] = [item.strip() for item in cells[column].split(";") if item.strip()]
    contacts: list[dict[str, str]] = []
    contact_columns: list[str] = []  # contacts[i] came from these columns
    for prefix, role in CONTACT_COLUMNS:
        name, email = cells.get(f"{prefix}_name"), cells.get(f"{prefix}_email")
        if name is None and email is None:
            continue
        if name is None or email is None:
            given, missing = ("name", "email") if email is None else ("email", "name")
            header = headers.get(f"{prefix}_{given}", f"{prefix}_{given}")
            return RowError(
                headers.get(f"{prefix}_{missing}", f"{prefix}_{missing}"),
                f"required when {header} is given",
            )
        contacts.append({"name": name, "email": email, "role": role.value})
        contact_columns.append(prefix)
    if contacts:
        fields["contacts"] = contacts
    crm = {key: cells[column] for column, key in CRM_COLUMNS.items() if column in cells}
    if crm:
        fields["crm"] = crm
    if PRODUCTS_COLUMN in cells:
        try:
            fields["products"] = csv_products(cells[PRODUCTS_COLUMN])
        except CellError as exc:
            return RowError(headers.get(PRODUCTS_COLUMN, PRODUCTS_COLUMN), str(exc))

    def header_of(loc: tuple[int | str, ...]) -> str:
        column = _csv_column(loc, contact_columns)
        return headers.get(column, column)

    try:
        return inbound_deal(fields, rates)
    except ValidationError as exc:
        return row_error(exc, header_of)


def _csv_column(loc: tuple[int | str, ...], contact_columns: list[str]) -> str:
    """Our CSV column a pydantic error location came from."""
    if not loc:
        return "(row)"
    if loc[0] == "contacts" and len(loc) >= 3 and isinstance(loc[1], int):
        return f"{contact_columns[loc[1]]}_{loc[2]}"
    if loc[0] == "crm" and len(loc) >= 2:
        return f"crm_{loc[1]}"
    return str(loc[0])  # a list column names the column, not the item


def row_error(exc: ValidationError, field_of: Callable[[tuple[int | str, ...]], str]) -> RowError:
    problems = [(field_of(e["loc"]), _reason(e)) for e in exc.errors()]
    (field, reason), rest = problems[0], problems[1:]
    return RowError(field, "; ".join([reason, *(f"{f}: {r}" for f, r in rest)]))


# The format a value should have had, where pydantic's message does not say it.
_EXPECTED = {
    "bool_parsing": "is not true or false (yes/no, 1/0)",
    "bool_type": "is not true or false (yes/no, 1/0)",
    "int_parsing": "is not a whole number like 12",
    "int_from_float": "is not a whole number like 12",
    "float_parsing": "is not a number like 1.5",
}


def _reason(error: ErrorDetails) -> str:
    expected = _EXPECTED.get(error["type"])
    if expected is not None and isinstance(error["input"], str | int | float):
        return f"{error['input']!r} {expected}"
    return message(error)
