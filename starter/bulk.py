"""Bulk import of closed-won deals: `onboarding import deals.csv` (or `deals.jsonl`).

Reading is pure: every row becomes a deal or an error naming its line and field, and a
file that cannot be read as a whole (an unknown column) fails before anything starts.
Delivering hands each good deal to `deliver_deal`, a few at a time, so one account's
failure never stops the others and importing the same file twice starts nothing twice.
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
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, TemporalError
from temporalio.service import RPCError

from starter.starting import AlreadyOnboardedError, deliver_deal
from workflows.models import ClosedWonDeal, ContactRole, Playbook

# The CSV header: ClosedWonDeal's fields, flattened. Lists are `;`-separated in one cell.
CSV_COLUMNS = (
    "account_id",
    "account_name",
    "acv_usd",
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
)
_LIST_COLUMNS = ("integrations", "success_criteria")
_CONTACTS = (("champion", ContactRole.CHAMPION), ("sponsor", ContactRole.EXECUTIVE_SPONSOR))
_CRM_COLUMNS = {"crm_source": "source", "crm_deal_id": "deal_id"}
_PLAIN_COLUMNS = tuple(
    c
    for c in CSV_COLUMNS
    if c not in _LIST_COLUMNS
    and c not in _CRM_COLUMNS
    and not c.startswith(("champion_", "sponsor_"))
)
# A deal cannot be built without these, so a file lacking one fails as a whole.
REQUIRED_COLUMNS = tuple(
    name for name, field in ClosedWonDeal.model_fields.items() if field.is_required()
)

# How long one row waits for its onboarding to take the deal (a worker must be polling).
DELIVERY_TIMEOUT = timedelta(seconds=30)


class ImportFileError(Exception):
    """The file as a whole cannot be imported; the message says where and why."""


@dataclass(frozen=True)
class RowError:
    """Why one row is not a deal: the field (CSV column or JSON path) and the reason.

    When a row has several bad fields, `field` is the first and `reason` goes on to name
    the others, so one line tells the whole story.
    """

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class Row(NamedTuple):
    line: int
    deal: ClosedWonDeal | RowError
    account_id: str | None = None  # as given, so a rejected row still names its account


# --------------------------------------------------------------------------- reading


def read_deals(path: Path, playbook: Playbook | None = None) -> list[Row]:
    """Every deal of a `.csv` or `.jsonl` file, or why its row is not one.

    With a playbook, migrated `completed_milestones` must be milestones of it. A second
    row for an account already on an earlier line is rejected (one onboarding per
    account). Raises `ImportFileError` when the file as a whole is unusable.
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
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(text)
    return _one_per_account(rows, playbook)


def _csv_rows(path: Path, text: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not any(header):
        raise ImportFileError(f"{path}: no header line; expected columns {', '.join(CSV_COLUMNS)}")
    for name in header:
        if name not in CSV_COLUMNS:
            raise ImportFileError(
                f"{path}: line 1: unknown column {name!r} (known: {', '.join(CSV_COLUMNS)})"
            )
        if header.count(name) > 1:
            raise ImportFileError(f"{path}: line 1: column {name!r} appears twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ImportFileError(f"{path}: line 1: missing column(s) {', '.join(missing)}")

    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        line = reader.line_num
        if len(cells) > len(header):
            error = RowError("(row)", f"{len(cells)} cells, but the header has {len(header)}")
            rows.append(Row(line, error))
            continue
        given = {
            name: cell.strip() for name, cell in zip(header, cells, strict=False) if cell.strip()
        }
        rows.append(Row(line, _deal_from_cells(given), given.get("account_id")))
    return rows


def _deal_from_cells(cells: dict[str, str]) -> ClosedWonDeal | RowError:
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
            return RowError(f"{prefix}_{missing}", f"required when {prefix}_{given} is given")
        contacts.append({"name": name, "email": email, "role": role.value})
        contact_columns.append(prefix)
    if contacts:
        fields["contacts"] = contacts
    crm = {key: cells[column] for column, key in _CRM_COLUMNS.items() if column in cells}
    if crm:
        fields["crm"] = crm
    try:
        return ClosedWonDeal.model_validate(fields)
    except ValidationError as exc:
        return _row_error(exc, lambda loc: _csv_column(loc, contact_columns))


def _csv_column(loc: tuple[int | str, ...], contact_columns: list[str]) -> str:
    """The CSV column a pydantic error location came from."""
    if not loc:
        return "(row)"
    if loc[0] == "contacts" and len(loc) >= 3 and isinstance(loc[1], int):
        return f"{contact_columns[loc[1]]}_{loc[2]}"
    if loc[0] == "crm" and len(loc) >= 2:
        return f"crm_{loc[1]}"
    return str(loc[0])  # a list column names the column, not the item


def _jsonl_rows(text: str) -> list[Row]:
    rows = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            deal: ClosedWonDeal | RowError = ClosedWonDeal.model_validate_json(content)
        except ValidationError as exc:
            deal = _row_error(exc, _json_path)
        rows.append(Row(line, deal, _given_account_id(content)))
    return rows


def _given_account_id(content: str) -> str | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    account_id = value.get("account_id") if isinstance(value, dict) else None
    return account_id if isinstance(account_id, str) else None


def _json_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(row)"


def _row_error(exc: ValidationError, field_of: Callable[[tuple[int | str, ...]], str]) -> RowError:
    problems = [(field_of(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
    (field, reason), rest = problems[0], problems[1:]
    return RowError(field, "; ".join([reason, *(f"{f}: {r}" for f, r in rest)]))


def _one_per_account(rows: list[Row], playbook: Playbook | None) -> list[Row]:
    first_line: dict[str, int] = {}
    checked = []
    for line, deal, account_id in rows:
        if isinstance(deal, ClosedWonDeal):
            first = first_line.setdefault(deal.account_id, line)
            if first != line:
                deal = RowError(
                    "account_id",
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
    REJECTED = "rejected"
    VALID = "valid"  # a dry run: would be delivered


_IMPORT_COUNTS = (
    Outcome.STARTED,
    Outcome.ALREADY_RUNNING,
    Outcome.ALREADY_FINISHED,
    Outcome.REJECTED,
)
_DRY_RUN_COUNTS = (Outcome.VALID, Outcome.REJECTED)


class RowResult(BaseModel):
    line: int
    outcome: Outcome
    account_id: str | None = None
    workflow_id: str | None = None
    reason: str = Field(
        default="", description="Why the row was rejected, or how the earlier onboarding ended"
    )


class ImportSummary(BaseModel):
    import_id: str = Field(description="Delivery ids of this run are import:<import_id>:<line>")
    dry_run: bool = False
    results: list[RowResult] = Field(description="One per row, in file order")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        shown = _DRY_RUN_COUNTS if self.dry_run else _IMPORT_COUNTS
        return {o.value: len(self.of(o)) for o in shown}

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
    if isinstance(row.deal, RowError):
        return RowResult(
            line=row.line,
            outcome=Outcome.REJECTED,
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
            if isinstance(row.deal, RowError):
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
        cause = exc.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
    except RPCError as exc:
        reason = f"temporal: {exc.message}"
    except TemporalError as exc:
        reason = f"temporal: {exc}"
    else:
        outcome = Outcome.STARTED if acceptance.started else Outcome.ALREADY_RUNNING
        return result.model_copy(update={"outcome": outcome, "workflow_id": acceptance.workflow_id})
    return result.model_copy(update={"reason": reason})
