"""Reading an import file, `.csv` or `.jsonl`, into rows: each a deal, a skipped row or
an error naming its line and field; then one deal per account and, with a playbook,
migrated milestones that are its own. Reads the file; starts nothing.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pydantic import ValidationError

from activities.deals import inbound_deal, unknown_migrated_milestone
from activities.money import NO_RATES, FxRates
from starter.bulk.cells import csv_deal, row_error
from starter.bulk.columns import CSV_COLUMNS, DEFAULT_OPTIONS, CsvOptions, resolve_layout
from starter.bulk.rows import DealFile, ImportFileError, Row, RowError
from workflows.models import ClosedWonDeal, Playbook
from workflows.validation import dotted


def read_deals(
    path: Path,
    playbook: Playbook | None = None,
    *,
    options: CsvOptions = DEFAULT_OPTIONS,
    rates: FxRates = NO_RATES,
) -> list[Row]:
    """Every deal of a `.csv` or `.jsonl` file, or why its row is not one (`read_file`)."""
    return read_file(path, playbook, options=options, rates=rates).rows


def read_file(
    path: Path,
    playbook: Playbook | None = None,
    *,
    options: CsvOptions = DEFAULT_OPTIONS,
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


def _csv_rows(
    path: Path, text: str, options: CsvOptions, rates: FxRates
) -> tuple[list[Row], str, str]:
    """The rows, how the file was read, and the header of its account id column."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if not any(header):
        raise ImportFileError(f"{path}: no header line; expected columns {', '.join(CSV_COLUMNS)}")
    layout, title = resolve_layout(path, header, options)

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
        deal = csv_deal(values, headers, layout, options, rates)
        rows.append(Row(line, deal, values.get("account_id")))
    return rows, title, header[layout.sources["account_id"][0]]


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
                    deal = row_error(exc, _json_path)
            else:
                deal = RowError("(row)", "must be a JSON object (a ClosedWonDeal)")
        rows.append(Row(line, deal, account_id))
    return rows


def _json_path(loc: tuple[int | str, ...]) -> str:
    return dotted(loc) or "(row)"


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
            elif playbook is not None and (unknown := unknown_migrated_milestone(deal, playbook)):
                deal = RowError(*unknown)
        checked.append(Row(line, deal, account_id))
    return checked
