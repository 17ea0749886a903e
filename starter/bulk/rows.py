"""What reading an import file yields: per row a deal, a skipped row or a `RowError`,
and `ImportFileError` for a file that cannot be imported as a whole. Plain values, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from workflows.models import ClosedWonDeal


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


class DealFile(NamedTuple):
    rows: list[Row]
    layout: str  # how it was read: "a HubSpot deals export", "JSON lines", ...
