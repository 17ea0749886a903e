"""The rows the portfolio report reads from the records store: one `Onboarding` per
account with its milestones, escalations and tier changes, loaded in four queries (no
record document is parsed, except the risk flags of the accounts at risk).

    rows = load_rows(store, tier=Tier.HIGH_TOUCH, cohort="2031-04")   # list[Onboarding]

Reads only the store, so the report works while Temporal is down and after its retention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from activities.records.schema import escalation, milestone, onboarding, tier_change
from activities.records.store import RecordStore
from workflows.models import OnboardingState, Tier

COHORT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RUNNING = frozenset({OnboardingState.ACTIVE, OnboardingState.AT_RISK, OnboardingState.PAUSED})
ENDED = frozenset({OnboardingState.COMPLETED, OnboardingState.CANCELLED})

# Times in the rows are POSIX seconds (UTC), computed by the database: parsing 200,000
# datetimes in Python would cost the report most of its second over 10,000 onboardings.
Seconds = float
DAY_S = 86_400.0


def seconds(at: datetime) -> Seconds:
    return at.timestamp()


def utc(at: Seconds) -> datetime:
    return datetime.fromtimestamp(at, UTC)


@dataclass(frozen=True, slots=True)
class MilestoneRow:
    """One milestone of an account's plan; `done_at` None while not reached."""

    milestone_id: str
    status: str
    due_at: Seconds
    done_at: Seconds | None


@dataclass(frozen=True, slots=True)
class EscalationRow:
    """A ladder step that fired; `repeats` occurrences of a recurring step (rules §4)."""

    at: Seconds
    step_id: str
    trigger: str
    superseded: bool
    repeats: int


@dataclass(frozen=True, slots=True)
class TierChangeRow:
    at: Seconds
    from_tier: Tier
    to_tier: Tier
    kind: str  # "automatic" (the ladder) or "override" (a person, with approver and reason)


@dataclass(slots=True)
class Onboarding:
    """One account's onboarding as the report sees it. Times are `Seconds`; the TTV parts
    days (rules §3, None until reached); `milestones` are in plan order."""

    account_id: str
    account_name: str
    acv_usd: float
    closed_won_at: Seconds
    started_at: Seconds
    cohort: str
    initial_tier: Tier
    tier: Tier
    state: OnboardingState
    health_band: str
    owner: str | None
    next_deadline: Seconds | None
    decision_required: bool
    handoff_delay_days: float | None
    setup_days: float | None
    activation_days: float | None
    ttv_days: float | None
    finished_at: Seconds | None
    milestones: list[MilestoneRow] = field(default_factory=list)
    escalations: list[EscalationRow] = field(default_factory=list)
    tier_changes: list[TierChangeRow] = field(default_factory=list)
    risk_flags: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def needs_attention(self) -> bool:
        """Running and at risk, or waiting for a decision (rules §4: stall > 3 weeks)."""
        return self.running and (self.state is OnboardingState.AT_RISK or self.decision_required)


def cohort_error(cohort: str) -> str | None:
    """Why `cohort` is not a closed-won month `YYYY-MM`, or None."""
    return None if COHORT.match(cohort) else f"{cohort!r} is not a month (YYYY-MM)"


_TIMES = frozenset(
    {"closed_won_at", "started_at", "next_deadline", "finished_at", "due_at", "done_at", "at"}
)
_COLUMNS = (
    "account_id",
    "account_name",
    "acv_usd",
    "closed_won_at",
    "started_at",
    "cohort",
    "initial_tier",
    "tier",
    "state",
    "health_band",
    "owner",
    "next_deadline",
    "decision_required",
    "handoff_delay_days",
    "setup_days",
    "activation_days",
    "ttv_days",
    "finished_at",
)


class _Epoch(sa.sql.functions.FunctionElement[float]):
    """A time column as POSIX seconds (float), computed by the database."""

    type = sa.Float()
    inherit_cache = True


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # The store keeps naive UTC text on SQLite (`UtcDateTime`).
    return f"(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0"


@compiles(_Epoch, "postgresql")
def _epoch_postgresql(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS FLOAT8)"


class _Query:
    """The selects of the report's columns, with the filters applied."""

    def __init__(self, tier: Tier | None, cohort: str | None) -> None:
        self.tier, self.cohort = tier, cohort

    def filtered(self, query: sa.Select) -> sa.Select:
        if self.tier is not None:
            query = query.where(onboarding.c.tier == self.tier.value)
        if self.cohort is not None:
            query = query.where(onboarding.c.cohort == self.cohort)
        return query

    @staticmethod
    def select(table: sa.Table, columns: Sequence[str]) -> sa.Select:
        return sa.select(*(_Epoch(table.c[c]) if c in _TIMES else table.c[c] for c in columns))

    def children(self, table: sa.Table, columns: Sequence[str]) -> sa.Select:
        query = self.select(table, ("account_id", *columns))
        if self.tier is not None or self.cohort is not None:
            ids = self.filtered(sa.select(onboarding.c.account_id))
            query = query.where(table.c.account_id.in_(ids))
        return query.order_by(table.c.account_id, table.c.position)


_MILESTONE = ("milestone_id", "status", "due_at", "done_at")
_ESCALATION = ("at", "step_id", "trigger", "superseded", "repeats")
_TIER_CHANGE = ("at", "from_tier", "to_tier", "kind")


def load_rows(
    store: RecordStore, *, tier: Tier | None = None, cohort: str | None = None
) -> list[Onboarding]:
    """Every onboarding in the store (only the current `tier`, only closed-won month
    `cohort` when given), ordered by account id. Raises ValueError for a bad cohort and
    SQLAlchemyError when the store cannot be read."""
    if cohort is not None and (problem := cohort_error(cohort)):
        raise ValueError(problem)
    with store.engine.connect() as conn:
        q = _Query(tier, cohort)
        main = q.filtered(q.select(onboarding, _COLUMNS)).order_by(onboarding.c.account_id)
        rows: dict[str, Onboarding] = {}
        for values in conn.execute(main):
            r = Onboarding(*values)
            r.initial_tier, r.tier, r.state = (
                Tier(r.initial_tier),
                Tier(r.tier),
                OnboardingState(r.state),
            )
            rows[r.account_id] = r
        for key, *m in conn.execute(q.children(milestone, _MILESTONE)):
            rows[key].milestones.append(MilestoneRow(*m))
        for key, *e in conn.execute(q.children(escalation, _ESCALATION)):
            rows[key].escalations.append(EscalationRow(*e))
        for key, at, from_tier, to_tier, kind in conn.execute(
            q.children(tier_change, _TIER_CHANGE)
        ):
            rows[key].tier_changes.append(TierChangeRow(at, Tier(from_tier), Tier(to_tier), kind))
        # Risk flags live only in the record's document: read them for the accounts at risk.
        attention = q.filtered(
            sa.select(onboarding.c.account_id, onboarding.c.document["risk_flags"])
        ).where(
            onboarding.c.state.in_([s.value for s in RUNNING]),
            sa.or_(
                onboarding.c.state == OnboardingState.AT_RISK.value,
                onboarding.c.decision_required,
            ),
        )
        for key, flags in conn.execute(attention):
            rows[key].risk_flags = list(flags or [])
    return list(rows.values())
