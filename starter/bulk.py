"""Bulk import of closed-won deals: `onboarding import deals.csv` (or `deals.jsonl`).

Reading is pure: every row becomes a deal, a skipped row (not closed-won) or an error
naming its line, its column as the file's header names it and the format expected. A
file that cannot be read as a whole (unknown or missing columns) fails before anything
starts, with every problem at once. CSV files come in this module's own columns, or as
a CRM exports them (`starter.exports`: HubSpot and Salesforce presets, `--column`
mappings, amounts like `$50,000.00`, dates like `11/30/2026`). Every deal is built by
`activities.deals.inbound_deal`, like a webhook's. Delivering hands each good deal to
`deliver_deal`, a few at a time, so one account's failure never stops the others and
importing the same file twice starts nothing twice.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import temporalio.client
from pydantic import BaseModel, Field, ValidationError, computed_field
from pydantic_core import ErrorDetails
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from activities.deals import inbound_deal
from activities.money import NO_RATES, USD, CurrencyError, FxRates, currency_code
from activities.starting import AlreadyOnboardedError, deliver_deal
from activities.temporal_errors import update_rejection
from starter.exports import (
    PRESETS,
    WON_STAGES,
    CellError,
    Preset,
    detect_preset,
    header_key,
    parse_amount,
    parse_date,
    parse_won,
)
from workflows.models import ClosedWonDeal, ContactRole, Playbook
from workflows.validation import dotted, message

# The CSV header: ClosedWonDeal's fields, flattened. Lists are `;`-separated in one cell.
# The ACV is `acv_usd`, or `acv` in `currency`; `stage` / `won` say whether a row is a
# closed-won deal (other rows are skipped).
CSV_COLUMNS = (
    "account_id",
    "account_name",
    "acv_usd",
    "acv",
    "currency",
    "seats",
    "integrations",
    "needs_api_integration",
    "custom_data_migration",
    "stakeholder_count",
    "configuration_hours",
    "close_date",
    "success_criteria",
    "champion_name",
    "champion_email",
    "sponsor_name",
    "sponsor_email",
    "crm_source",
    "crm_deal_id",
    "stage",
    "won",
)
_LIST_COLUMNS = ("integrations", "success_criteria")
_CONTACTS = (("champion", ContactRole.CHAMPION), ("sponsor", ContactRole.EXECUTIVE_SPONSOR))
_CRM_COLUMNS = {"crm_source": "source", "crm_deal_id": "deal_id"}
_CLOSED_WON_COLUMNS = ("stage", "won")
_PLAIN_COLUMNS = tuple(
    c
    for c in CSV_COLUMNS
    if c not in _LIST_COLUMNS
    and c not in _CRM_COLUMNS
    and c not in _CLOSED_WON_COLUMNS
    and not c.startswith(("champion_", "sponsor_"))
)
# A deal cannot be built without these, so a file lacking one fails as a whole.
REQUIRED_COLUMNS = ("account_id", "account_name", "close_date")
ACV_COLUMNS = ("acv_usd", "acv")  # one of them is required too

# How long one row waits for its onboarding to take the deal (a worker must be polling).
DELIVERY_TIMEOUT = timedelta(seconds=30)


class ImportFileError(Exception):
    """The file as a whole cannot be imported; the message says where and why."""


@dataclass(frozen=True)
class RowError:
    """Why one row is not a deal: the field (the CSV column as the file's header names
    it, or a JSON path) and the reason.

    When a row has several bad fields, `field` is the first and `reason` goes on to name
    the others, so one line tells the whole story.
    """

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True)
class Skipped:
    """A row that is not a closed-won deal (its stage says so): nothing starts for it."""

    reason: str

    def __str__(self) -> str:
        return self.reason


class Row(NamedTuple):
    line: int
    deal: ClosedWonDeal | RowError | Skipped
    account_id: str | None = None  # as given, so a rejected row still names its account


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV file's columns and cells (formats: `starter.exports`)."""

    preset: str | None = None  # a name in PRESETS; None: detected from the header
    columns: tuple[tuple[str, str], ...] = ()  # (their header, our column or "" to leave out)
    day_first: bool = False
    decimal_comma: bool = False
    won_stages: tuple[str, ...] = WON_STAGES


class DealFile(NamedTuple):
    rows: list[Row]
    layout: str  # how it was read: "a HubSpot deals export", "JSON lines", ...


# --------------------------------------------------------------------------- reading


def read_deals(
    path: Path,
    playbook: Playbook | None = None,
    *,
    options: CsvOptions = CsvOptions(),
    rates: FxRates = NO_RATES,
) -> list[Row]:
    """Every deal of a `.csv` or `.jsonl` file, or why its row is not one (`read_file`)."""
    return read_file(path, playbook, options=options, rates=rates).rows


def read_file(
    path: Path,
    playbook: Playbook | None = None,
    *,
    options: CsvOptions = CsvOptions(),
    rates: FxRates = NO_RATES,
) -> DealFile:
    """Every deal of a `.csv` or `.jsonl` file, or why its row is not one, and how the
    file was read.

    With a playbook, migrated `completed_milestones` must be milestones of it. A second
    row for an account already on an earlier line is rejected (one onboarding per
    account). Deals in other currencies are converted with `rates`. Raises
    `ImportFileError` when the file as a whole is unusable.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ImportFileError(f"{path}: expected a .csv or .jsonl file")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a spreadsheet's byte-order mark
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"{path}: not UTF-8 text") from None
    if suffix == ".csv":
        rows, layout, account_column = _csv_rows(path, text, options, rates)
    else:
        rows, layout, account_column = _jsonl_rows(text, rates), "JSON lines", "account_id"
    return DealFile(_one_per_account(rows, playbook, account_column), layout)


@dataclass(frozen=True)
class _Layout:
    """Which cells of a row feed which of our columns."""

    header: list[str]
    sources: dict[str, list[int]]  # our column -> cell indexes, in order of preference
    zero_is_empty: frozenset[int]
    constants: dict[str, str]

    def values(self, cells: list[str]) -> tuple[dict[str, str], dict[str, str]]:
        """Our columns' non-empty values in this row, and the header each came from."""
        values: dict[str, str] = {}
        headers: dict[str, str] = {}
        for column, indexes in self.sources.items():
            headers[column] = self.header[indexes[0]]
            for i in indexes:
                cell = cells[i].strip() if i < len(cells) else ""
                if cell and not (i in self.zero_is_empty and _is_zero(cell)):
                    values[column], headers[column] = cell, self.header[i]
                    break
        for column, value in self.constants.items():
            values.setdefault(column, value)
        return values, headers


def _is_zero(cell: str) -> bool:
    try:
        return parse_amount(cell)[0] == 0
    except CellError:
        return False


def _layout(path: Path, header: list[str], options: CsvOptions) -> tuple[_Layout, str]:
    """Resolve the header; every problem with it at once in one ImportFileError."""
    problems: list[str] = []
    preset: Preset | None = None
    if options.preset is not None:
        preset = PRESETS.get(options.preset)
        if preset is None:
            problems.append(f"no preset {options.preset!r} (known: {', '.join(PRESETS)})")
    else:
        preset = detect_preset(header)
    mapped: dict[str, str] = {}
    for theirs, ours in options.columns:
        if ours and ours not in CSV_COLUMNS:
            problems.append(
                f"--column '{theirs}={ours}': {ours!r} is not a column "
                f"(known: {', '.join(CSV_COLUMNS)})"
            )
        mapped[header_key(theirs)] = ours
    known: dict[str, tuple[int, str | None]] = {}
    for rank, (theirs, column) in enumerate(preset.columns if preset else ()):
        known.setdefault(header_key(theirs), (rank, column))

    ranked: dict[str, list[tuple[int, int]]] = {}
    seen: set[str] = set()
    unknown: list[str] = []
    for i, name in enumerate(header):
        key = header_key(name)
        if key in seen:
            problems.append(f"column {name!r} appears twice")
            continue
        seen.add(key)
        if key in mapped:
            rank, column = -1, mapped[key] or None
        elif name in CSV_COLUMNS:
            rank, column = -1, name
        elif key in known:
            rank, column = known[key]
        else:
            unknown.append(name)
            continue
        if column:
            ranked.setdefault(column, []).append((rank, i))
    if unknown:
        names = ", ".join(map(repr, unknown))
        problems.append(
            f"unknown column{'s' if len(unknown) > 1 else ''} {names} "
            f"(known: {', '.join(CSV_COLUMNS)}"
            + (
                f"; and {preset.title}'s: {', '.join(h for h, _ in preset.columns)}"
                if preset
                else ""
            )
            + "); say which column each one is with --column 'Their Header=column', "
            "or leave it out with --column 'Their Header='"
        )
    for theirs, ours in options.columns:
        if header_key(theirs) not in seen:
            problems.append(f"--column '{theirs}={ours}': the file has no column {theirs!r}")
    missing = [c for c in REQUIRED_COLUMNS if c not in ranked]
    if not any(c in ranked for c in ACV_COLUMNS):
        missing.insert(2, " or ".join(ACV_COLUMNS))
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if problems:
        raise ImportFileError(f"{path}: line 1: " + "; ".join(problems))

    sources = {column: [i for _, i in sorted(found)] for column, found in ranked.items()}
    zero_is_empty = frozenset(
        i for i, name in enumerate(header) if preset and header_key(name) in preset.zero_is_empty
    )
    layout = _Layout(header, sources, zero_is_empty, dict(preset.constants) if preset else {})
    return layout, preset.title if preset else "onboarding's own columns"


def _csv_rows(
    path: Path, text: str, options: CsvOptions, rates: FxRates
) -> tuple[list[Row], str, str]:
    """The rows, how the file was read, and the header of its account id column."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not any(header):
        raise ImportFileError(f"{path}: no header line; expected columns {', '.join(CSV_COLUMNS)}")
    layout, title = _layout(path, header, options)

    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        line = reader.line_num
        if len(cells) > len(header):
            error = RowError("(row)", f"{len(cells)} cells, but the header has {len(header)}")
            rows.append(Row(line, error))
            continue
        values, headers = layout.values(cells)
        deal = _csv_deal(values, headers, layout, options, rates)
        rows.append(Row(line, deal, values.get("account_id")))
    return rows, title, header[layout.sources["account_id"][0]]


def _csv_deal(
    values: dict[str, str],
    headers: dict[str, str],
    layout: _Layout,
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
    fields: dict[str, Any] = {c: cells[c] for c in _PLAIN_COLUMNS if c in cells}
    for column in _LIST_COLUMNS:
        if column in cells:
            fields[column] = [item.strip() for item in cells[column].split(";") if item.strip()]
    contacts: list[dict[str, str]] = []
    contact_columns: list[str] = []  # contacts[i] came from these columns
    for prefix, role in _CONTACTS:
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
    crm = {key: cells[column] for column, key in _CRM_COLUMNS.items() if column in cells}
    if crm:
        fields["crm"] = crm

    def header_of(loc: tuple[int | str, ...]) -> str:
        column = _csv_column(loc, contact_columns)
        return headers.get(column, column)

    try:
        return inbound_deal(fields, rates)
    except ValidationError as exc:
        return _row_error(exc, header_of)


def _csv_column(loc: tuple[int | str, ...], contact_columns: list[str]) -> str:
    """Our CSV column a pydantic error location came from."""
    if not loc:
        return "(row)"
    if loc[0] == "contacts" and len(loc) >= 3 and isinstance(loc[1], int):
        return f"{contact_columns[loc[1]]}_{loc[2]}"
    if loc[0] == "crm" and len(loc) >= 2:
        return f"crm_{loc[1]}"
    return str(loc[0])  # a list column names the column, not the item


def _jsonl_rows(text: str, rates: FxRates) -> list[Row]:
    rows = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        account_id = None
        deal: ClosedWonDeal | RowError
        try:
            value = json.loads(content)
        except ValueError as exc:
            deal = RowError("(row)", f"Invalid JSON: {exc}")
        else:
            if isinstance(value, dict):
                given = value.get("account_id")
                account_id = given if isinstance(given, str) else None
                try:
                    deal = inbound_deal(value, rates)
                except ValidationError as exc:
                    deal = _row_error(exc, _json_path)
            else:
                deal = RowError("(row)", "must be a JSON object (a ClosedWonDeal)")
        rows.append(Row(line, deal, account_id))
    return rows


def _json_path(loc: tuple[int | str, ...]) -> str:
    return dotted(loc) or "(row)"


def _row_error(exc: ValidationError, field_of: Callable[[tuple[int | str, ...]], str]) -> RowError:
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


def _one_per_account(rows: list[Row], playbook: Playbook | None, column: str) -> list[Row]:
    first_line: dict[str, int] = {}
    checked = []
    for line, deal, account_id in rows:
        if isinstance(deal, ClosedWonDeal):
            first = first_line.setdefault(deal.account_id, line)
            if first != line:
                deal = RowError(
                    column,
                    f"{deal.account_id!r} is already on line {first} (one onboarding per "
                    "account; this row is not imported)",
                )
            elif playbook is not None:
                deal = _milestones_known(deal, playbook)
        checked.append(Row(line, deal, account_id))
    return checked


def _milestones_known(deal: ClosedWonDeal, playbook: Playbook) -> ClosedWonDeal | RowError:
    for i, done in enumerate(deal.completed_milestones):
        if playbook.milestone(done.milestone_id) is None:
            known = ", ".join(m.id for m in playbook.milestones)
            return RowError(
                f"completed_milestones[{i}].milestone_id",
                f"{done.milestone_id!r} is not a milestone of playbook {playbook.version} "
                f"(known: {known})",
            )
    return deal


# --------------------------------------------------------------------------- delivering


class Outcome(StrEnum):
    STARTED = "started"
    ALREADY_RUNNING = "already_running"
    ALREADY_FINISHED = "already_finished"
    SKIPPED = "skipped"  # not a closed-won deal
    REJECTED = "rejected"
    VALID = "valid"  # a dry run: would be delivered


_IMPORT_COUNTS = (
    Outcome.STARTED,
    Outcome.ALREADY_RUNNING,
    Outcome.ALREADY_FINISHED,
    Outcome.SKIPPED,
    Outcome.REJECTED,
)
_DRY_RUN_COUNTS = (Outcome.VALID, Outcome.SKIPPED, Outcome.REJECTED)


class RowResult(BaseModel):
    line: int
    outcome: Outcome
    account_id: str | None = None
    workflow_id: str | None = None
    reason: str = Field(
        default="",
        description="Why the row was rejected or skipped, or how the earlier onboarding ended",
    )


class ImportSummary(BaseModel):
    import_id: str = Field(description="Delivery ids of this run are import:<import_id>:<line>")
    dry_run: bool = False
    results: list[RowResult] = Field(description="One per row, in file order")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        """Rows per outcome; `skipped` only when some rows were not closed-won deals."""
        shown = _DRY_RUN_COUNTS if self.dry_run else _IMPORT_COUNTS
        return {
            o.value: len(self.of(o))
            for o in shown
            if o is not Outcome.SKIPPED or self.of(Outcome.SKIPPED)
        }

    def of(self, outcome: Outcome) -> list[RowResult]:
        return [r for r in self.results if r.outcome is outcome]

    @property
    def has_rejected(self) -> bool:
        return any(r.outcome is Outcome.REJECTED for r in self.results)

    def headline(self) -> str:
        """`started 12 · already running 3 · already finished 1 · rejected 2`."""
        parts = [f"{name.replace('_', ' ')} {n}" for name, n in self.counts.items()]
        line = " · ".join(parts)
        return f"dry run: {line} (nothing started)" if self.dry_run else line


ResultCallback = Callable[[RowResult], None]


def validate_only(rows: Iterable[Row]) -> ImportSummary:
    """A dry run: what `import_deals` would be given, without starting anything."""
    return ImportSummary(
        import_id="dry-run",
        dry_run=True,
        results=[_parsed_result(row, Outcome.VALID) for row in rows],
    )


def _parsed_result(row: Row, outcome: Outcome) -> RowResult:
    if isinstance(row.deal, RowError | Skipped):
        return RowResult(
            line=row.line,
            outcome=Outcome.REJECTED if isinstance(row.deal, RowError) else Outcome.SKIPPED,
            account_id=row.account_id,
            reason=str(row.deal),
        )
    return RowResult(
        line=row.line,
        outcome=outcome,
        account_id=row.deal.account_id,
        workflow_id=row.deal.workflow_id,
    )


async def import_deals(
    client: temporalio.client.Client,
    rows: Iterable[Row],
    playbook: Playbook,
    *,
    concurrency: int = 8,
    on_result: ResultCallback | None = None,
    answer_within: timedelta = DELIVERY_TIMEOUT,
) -> ImportSummary:
    """Deliver every good row's deal, at most `concurrency` at once.

    A rejected row starts nothing; a row Temporal refuses, or whose onboarding does not
    answer within `answer_within` (no worker polling), is rejected with the reason while
    the others go on. `on_result` hears about each row as it is settled.
    """
    import_id = str(uuid.uuid4())
    gate = asyncio.Semaphore(concurrency)
    results: list[RowResult] = []

    def settle(result: RowResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    async def deliver(line: int, deal: ClosedWonDeal) -> None:
        async with gate:
            settle(
                await _deliver(
                    client, line, deal, playbook, f"import:{import_id}:{line}", answer_within
                )
            )

    async with asyncio.TaskGroup() as group:
        for row in rows:
            if isinstance(row.deal, RowError | Skipped):
                settle(_parsed_result(row, Outcome.REJECTED))
            else:
                group.create_task(deliver(row.line, row.deal))
    results.sort(key=lambda r: r.line)
    return ImportSummary(import_id=import_id, results=results)


async def _deliver(
    client: temporalio.client.Client,
    line: int,
    deal: ClosedWonDeal,
    playbook: Playbook,
    delivery_id: str,
    answer_within: timedelta,
) -> RowResult:
    result = RowResult(
        line=line,
        outcome=Outcome.REJECTED,
        account_id=deal.account_id,
        workflow_id=deal.workflow_id,
    )
    try:
        acceptance = await asyncio.wait_for(
            deliver_deal(client, deal, playbook, delivery_id), answer_within.total_seconds()
        )
    except AlreadyOnboardedError as exc:
        return result.model_copy(
            update={"outcome": Outcome.ALREADY_FINISHED, "reason": exc.outcome}
        )
    except TimeoutError:
        reason = (
            f"no answer within {answer_within.total_seconds():g} s: is a worker running "
            "(`onboarding up`)? The onboarding may have started; import again to see"
        )
    except WorkflowUpdateFailedError as exc:
        reason = update_rejection(exc)
    except RPCError as exc:
        reason = f"temporal: {exc.message}"
    except TemporalError as exc:
        reason = f"temporal: {exc}"
    else:
        outcome = Outcome.STARTED if acceptance.started else Outcome.ALREADY_RUNNING
        return result.model_copy(update={"outcome": outcome, "workflow_id": acceptance.workflow_id})
    return result.model_copy(update={"reason": reason})
