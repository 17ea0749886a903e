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
from datetime import datetime

import sqlalchemy as sa

from activities.records.schema import escalation, milestone, onboarding, tier_change
from activities.records.store import RecordStore
from workflows.models import OnboardingState, Tier

COHORT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RUNNING = frozenset({OnboardingState.ACTIVE, OnboardingState.AT_RISK, OnboardingState.PAUSED})
ENDED = frozenset({OnboardingState.COMPLETED, OnboardingState.CANCELLED})


@dataclass(frozen=True, slots=True)
class MilestoneRow:
    """One milestone of an account's plan; `done_at` None while not reached."""

    milestone_id: str
    status: str
    due_at: datetime
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class EscalationRow:
    """A ladder step that fired; `repeats` occurrences of a recurring step (rules §4)."""

    at: datetime
    step_id: str
    trigger: str
    superseded: bool
    repeats: int


@dataclass(frozen=True, slots=True)
class TierChangeRow:
    at: datetime
    from_tier: Tier
    to_tier: Tier
    kind: str  # "automatic" (the ladder) or "override" (a person, with approver and reason)


@dataclass(slots=True)
class Onboarding:
    """One account's onboarding as the report sees it. Days are floats (rules §3 parts,
    None until reached); `milestones` are in plan order."""

    account_id: str
    account_name: str
    acv_usd: float
    closed_won_at: datetime
    started_at: datetime
    cohort: str
    initial_tier: Tier
    tier: Tier
    state: OnboardingState
    health_band: str
    owner: str | None
    next_deadline: datetime | None
    decision_required: bool
    handoff_delay_days: float | None
    setup_days: float | None
    activation_days: float | None
    ttv_days: float | None
    finished_at: datetime | None
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


def _filtered(query: sa.Select, tier: Tier | None, cohort: str | None) -> sa.Select:
    if tier is not None:
        query = query.where(onboarding.c.tier == tier.value)
    if cohort is not None:
        query = query.where(onboarding.c.cohort == cohort)
    return query


def _child_query(table: sa.Table, columns: Sequence[str], ids: sa.Select) -> sa.Select:
    return (
        sa.select(table.c.account_id, *(table.c[c] for c in columns))
        .where(table.c.account_id.in_(ids))
        .order_by(table.c.account_id, table.c.position)
    )


def load_rows(
    store: RecordStore, *, tier: Tier | None = None, cohort: str | None = None
) -> list[Onboarding]:
    """Every onboarding in the store (only the current `tier`, only closed-won month
    `cohort` when given), ordered by account id. Raises ValueError for a bad cohort and
    SQLAlchemyError when the store cannot be read."""
    if cohort is not None and (problem := cohort_error(cohort)):
        raise ValueError(problem)
    ids = _filtered(sa.select(onboarding.c.account_id), tier, cohort)
    with store.engine.connect() as conn:
        main = conn.execute(
            _filtered(sa.select(*(onboarding.c[c] for c in _COLUMNS)), tier, cohort).order_by(
                onboarding.c.account_id
            )
        )
        rows: dict[str, Onboarding] = {}
        for r in main:
            values = r._asdict()
            values["initial_tier"] = Tier(values["initial_tier"])
            values["tier"] = Tier(values["tier"])
            values["state"] = OnboardingState(values["state"])
            rows[r.account_id] = Onboarding(**values)
        for key, *m in conn.execute(
            _child_query(milestone, ("milestone_id", "status", "due_at", "done_at"), ids)
        ):
            rows[key].milestones.append(MilestoneRow(*m))
        for key, *e in conn.execute(
            _child_query(escalation, ("at", "step_id", "trigger", "superseded", "repeats"), ids)
        ):
            rows[key].escalations.append(EscalationRow(*e))
        for key, at, from_tier, to_tier, kind in conn.execute(
            _child_query(tier_change, ("at", "from_tier", "to_tier", "kind"), ids)
        ):
            rows[key].tier_changes.append(TierChangeRow(at, Tier(from_tier), Tier(to_tier), kind))
        # Risk flags live only in the record's document: read it for the accounts at risk.
        attention = _filtered(
            sa.select(onboarding.c.account_id, onboarding.c.document), tier, cohort
        ).where(
            onboarding.c.state.in_([s.value for s in RUNNING]),
            sa.or_(
                onboarding.c.state == OnboardingState.AT_RISK.value,
                onboarding.c.decision_required,
            ),
        )
        for key, doc in conn.execute(attention):
            rows[key].risk_flags = list(doc.get("risk_flags", []))
    return list(rows.values())
