"""The report of an import: each row's `Outcome` (`RowResult`) and the `ImportSummary`
the CLI prints (counts, headline); `validate_only` is the report of a dry run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from pydantic import BaseModel, Field, computed_field

from starter.bulk.rows import Row, RowError, Skipped


class Outcome(StrEnum):
    STARTED = "started"
    ALREADY_RUNNING = "already_running"
    ALREADY_FINISHED = "already_finished"
    SKIPPED = "skipped"  # not a closed-won deal
    REJECTED = "rejected"
    VALID = "valid"  # a dry run: would be delivered
    QUEUED = "queued"  # an expansion deal: onboarded when the running onboarding finishes


_IMPORT_COUNTS = (
    Outcome.STARTED,
    Outcome.ALREADY_RUNNING,
    Outcome.ALREADY_FINISHED,
    Outcome.SKIPPED,
    Outcome.REJECTED,
    Outcome.QUEUED,
)
# Shown only when some rows had them.
_WHEN_ANY = (Outcome.SKIPPED, Outcome.QUEUED)
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
        """Rows per outcome; `skipped` only when some rows were not closed-won deals,
        `queued` only when some were expansion deals queued behind a running onboarding."""
        shown = _DRY_RUN_COUNTS if self.dry_run else _IMPORT_COUNTS
        return {o.value: len(self.of(o)) for o in shown if o not in _WHEN_ANY or self.of(o)}

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
        results=[parsed_result(row, Outcome.VALID) for row in rows],
    )


def parsed_result(row: Row, outcome: Outcome) -> RowResult:
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
