"""The CSV format of `onboarding import`: our columns, the reading options, and how a
file's header maps onto our columns (a CRM export's preset from `starter.exports`, or
`--column` mappings). Every problem with a header is reported at once, in one
`ImportFileError`. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starter.bulk.rows import ImportFileError
from starter.exports import (
    PRESETS,
    WON_STAGES,
    CellError,
    Preset,
    detect_preset,
    header_key,
    parse_amount,
)
from workflows.models import ContactRole

# The CSV header: ClosedWonDeal's fields, flattened. Lists are `;`-separated in one cell,
# and so are `products` (`analytics:40; warehouse:25>analytics`: `starter.bulk.products`).
# The ACV is `acv_usd`, or `acv` in `currency`; `stage` / `won` say whether a row is a
# closed-won deal (other rows are skipped); `deal_type` is ours (`trial`) or the CRM's
# (`Free Trial`), read as a CRM's deal type is (`activities.crm_records.DEAL_TYPES`).
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
    "products",
    "deal_type",
)
LIST_COLUMNS = ("integrations", "success_criteria")
CONTACT_COLUMNS = (("champion", ContactRole.CHAMPION), ("sponsor", ContactRole.EXECUTIVE_SPONSOR))
CRM_COLUMNS = {"crm_source": "source", "crm_deal_id": "deal_id"}
_CLOSED_WON_COLUMNS = ("stage", "won")
PRODUCTS_COLUMN = "products"  # a multi-product deal's products (`starter.bulk.products`)
PLAIN_COLUMNS = tuple(
    c
    for c in CSV_COLUMNS
    if c not in LIST_COLUMNS
    and c not in CRM_COLUMNS
    and c not in _CLOSED_WON_COLUMNS
    and c != PRODUCTS_COLUMN
    and not c.startswith(("champion_", "sponsor_"))
)
# A deal cannot be built without these, so a file lacking one fails as a whole.
REQUIRED_COLUMNS = ("account_id", "account_name", "close_date")
ACV_COLUMNS = ("acv_usd", "acv")  # one of them is required too


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV file's columns and cells (formats: `starter.exports`)."""

    preset: str | None = None  # a name in PRESETS; None: detected from the header
    columns: tuple[tuple[str, str], ...] = ()  # (their header, our column or "" to leave out)
    day_first: bool = False
    decimal_comma: bool = False
    won_stages: tuple[str, ...] = WON_STAGES


DEFAULT_OPTIONS = CsvOptions()  # our own columns, or the preset the header names


@dataclass(frozen=True)
class Layout:
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


def resolve_layout(path: Path, header: list[str], options: CsvOptions) -> tuple[Layout, str]:
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
    layout = Layout(header, sources, zero_is_empty, dict(preset.constants) if preset else {})
    return layout, preset.title if preset else "onboarding's own columns"
