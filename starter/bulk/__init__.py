"""Bulk import of closed-won deals: `onboarding import deals.csv` (or `deals.jsonl`).

Reading is pure: every row becomes a deal, a skipped row (not closed-won) or an error
naming its line, its column as the file's header names it and the format expected. A
file that cannot be read as a whole (unknown or missing columns) fails before anything
starts, with every problem at once. CSV files come in this package's own columns, or as
a CRM exports them (`starter.exports`: HubSpot and Salesforce presets, `--column`
mappings, amounts like `$50,000.00`, dates like `11/30/2026`). Every deal is built by
`activities.deals.inbound_deal`, like a webhook's. Delivering hands each good deal to
`deliver_deal`, a few at a time, so one account's failure never stops the others and
importing the same file twice starts nothing twice.

The parts: `rows` (what reading yields), `columns` (our columns and a file's header),
`cells` (one CSV row -> a deal), `reading` (a file -> rows), `report` (outcomes and the
summary), `run` (delivering the deals). This module re-exports their public names.
"""

from starter.bulk.columns import ACV_COLUMNS, CSV_COLUMNS, REQUIRED_COLUMNS, CsvOptions
from starter.bulk.reading import read_deals, read_file
from starter.bulk.report import ImportSummary, Outcome, ResultCallback, RowResult, validate_only
from starter.bulk.rows import DealFile, ImportFileError, Row, RowError, Skipped
from starter.bulk.run import DELIVERY_TIMEOUT, import_deals

__all__ = [
    "ACV_COLUMNS",
    "CSV_COLUMNS",
    "DELIVERY_TIMEOUT",
    "REQUIRED_COLUMNS",
    "CsvOptions",
    "DealFile",
    "ImportFileError",
    "ImportSummary",
    "Outcome",
    "ResultCallback",
    "Row",
    "RowError",
    "RowResult",
    "Skipped",
    "import_deals",
    "read_deals",
    "read_file",
    "validate_only",
]
