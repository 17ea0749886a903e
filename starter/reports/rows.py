"""What the portfolio report reads from the records store, in six queries: one
`Onboarding` per onboarding (its columns, and what its milestones, escalations, tier
changes and group programs say, aggregated by the database) and the escalation ladder's
steps with what followed them. Milestone and escalation rows never come to Python one by
one: over 10,000 onboardings they are about 150,000. Times come as POSIX seconds the
database computes.

    rows = load_rows(store, playbook, now, tier=Tier.HIGH_TOUCH, cohort="2031-04")   # Rows

Reads only the store, so the report works while Temporal is down and after its retention.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from activities.records.schema import (
    escalation,
    milestone,
    onboarding,
    program,
    role_activation,
    tier_change,
)
from activities.records.store import RecordStore
from starter.reports.model import TierChangeKind
from workflows.models import (
    DealType,
    HealthBand,
    MilestoneStatus,
    OnboardingState,
    Owner,
    Playbook,
    Tier,
)

COHORT = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RUNNING = frozenset({OnboardingState.ACTIVE, OnboardingState.AT_RISK, OnboardingState.PAUSED})
ENDED = frozenset({OnboardingState.COMPLETED, OnboardingState.CANCELLED})
# A milestone is passed when done or skipped (the customer refused it, rules §6.4).
PASSED = (MilestoneStatus.DONE.value, MilestoneStatus.SKIPPED.value)
OPEN = (MilestoneStatus.NOT_STARTED.value, MilestoneStatus.IN_PROGRESS.value)

Seconds = float
DAY_S = 86_400.0

_TIER = {t.value: t for t in Tier}
_STATE = {s.value: s for s in OnboardingState}
_BAND = {b.value: b for b in HealthBand}
_KIND: dict[str, TierChangeKind] = {"automatic": "automatic", "override": "override"}


def seconds(at: datetime) -> Seconds:
    return at.timestamp()


def utc(at: Seconds) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def cohort_error(cohort: str) -> str | None:
    """Why `cohort` is not a closed-won month `YYYY-MM`, or None."""
    return None if COHORT.match(cohort) else f"{cohort!r} is not a month (YYYY-MM)"


class TierChangeRow(NamedTuple):
    at: Seconds
    from_tier: Tier
    to_tier: Tier
    kind: TierChangeKind


class Overdue(NamedTuple):
    milestone_id: str
    due_at: Seconds


@dataclass(slots=True)
class Onboarding:
    """One onboarding as the report sees it (an account's expansion after an earlier
    onboarding here is its next onboarding, `onboarding_number`, counted on its own).
    Times are `Seconds` (to the millisecond on SQLite); the TTV parts days (rules §3:
    handoff delay, setup, activation and their total; None until reached).

    From its milestones (skipped ones never count as due): `last_due_at` the latest due
    date (None: no plan); `milestones_due` those done or due by the report time,
    `milestones_on_time` those done by their due date; `specialist_gates` those the
    playbook gives an implementation specialist, `specialist_open` of them still open,
    `specialist_done_at` the last of them done. `planned`, `passed` (done or skipped) and
    `due_now` (due by the report time) are sets of the playbook's milestones as bits: bit
    i is `playbook.milestones[i]` (ids the playbook does not know are left out).
    `setup_judged`: its system-ready gate (rules §3) is done or past its due date (not
    skipped), `setup_done`: done. `team_invitations` (None: not counted), `first_active_on`
    and `came_back_on` (rules §8, first-week retention) as the record has them.
    `escalated`: a ladder step ran (not only superseded ones). Only for the accounts that
    need attention (the at-risk list): `risk_flags`, `next_deadline` and `overdue`, the open
    milestones past their due date, earliest first. `invited` and `attended`: the ids of
    the group programs it was invited to and those it attended (rules §1). `roles`: the
    roles whose activation it measures, each with when it was activated (None: not yet),
    and `first_value_by_roles_at` (rules §7). `trial`: a free or trial account's (deal
    type `trial`); `converted`: a trial whose customer converted to paid, ended by the
    conversion (`converted_to`) or followed by a paid onboarding of the account here
    (rules §2). `specialist`: its implementation specialist (None: none assigned)."""

    account_id: str
    onboarding_number: int
    account_name: str
    acv_usd: float
    closed_won_at: Seconds
    started_at: Seconds
    cohort: str
    initial_tier: Tier
    tier: Tier
    state: OnboardingState
    health_band: HealthBand
    owner: str | None
    decision_required: bool
    handoff_delay_days: float | None
    setup_days: float | None
    activation_days: float | None
    ttv_days: float | None
    finished_at: Seconds | None
    last_due_at: Seconds | None
    milestones_due: int
    milestones_on_time: int
    specialist_gates: int
    specialist_open: int
    specialist_done_at: Seconds | None
    planned: int
    passed: int
    due_now: int
    escalated: bool
    setup_judged: bool
    setup_done: bool
    team_invitations: int | None
    first_active_on: date | None
    came_back_on: date | None
    trial: bool
    converted: bool
    specialist: str | None
    tier_changes: list[TierChangeRow] = field(default_factory=list)
    risk_flags: list[str] = field(default_factory=list)
    next_deadline: datetime | None = None
    overdue: list[Overdue] = field(default_factory=list)
    invited: set[str] = field(default_factory=set)
    attended: set[str] = field(default_factory=set)
    roles: dict[str, Seconds | None] = field(default_factory=dict)
    first_value_by_roles_at: Seconds | None = None

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def needs_attention(self) -> bool:
        """Running and at risk, or waiting for a decision (rules §4: stall > 3 weeks)."""
        return self.running and (self.state is OnboardingState.AT_RISK or self.decision_required)


class LadderStep(NamedTuple):
    """One ladder step of one tier that ran (superseded ones did not): `fired` times
    (a recurring step's repeats counted), on `accounts` accounts; of its firings, `answered`
    were followed by a milestone done within the response window, `counted` were answered
    or their window has passed."""

    tier: Tier
    step_id: str
    trigger: str
    fired: int
    accounts: int
    answered: int
    counted: int


@dataclass
class Rows:
    """Everything the report reads: the onboardings (ordered by account id and onboarding
    number) and the ladder's steps."""

    onboardings: list[Onboarding]
    ladder: list[LadderStep]


class _Epoch(sa.sql.functions.FunctionElement[float]):
    """A time as POSIX seconds (float), computed by the database."""

    type = sa.Float()
    inherit_cache = True


@compiles(_Epoch, "sqlite")
def _epoch_sqlite(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # The store keeps naive UTC text on SQLite (`UtcDateTime`); julianday reads it, to the
    # millisecond (SQLite's date functions count milliseconds).
    return f"(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0"


@compiles(_Epoch, "postgresql")
def _epoch_postgresql(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS FLOAT8)"


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """How many rows of the group meet `condition` (0 for none)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


class _Query:
    """The report's selects, with the filters (tier now, closed-won month) applied; times
    compared with `now` (aware), which the store's time type binds for either database."""

    def __init__(self, playbook: Playbook, now: datetime, tier: Tier | None, cohort: str | None):
        self.playbook, self.now, self.tier, self.cohort = playbook, now, tier, cohort

    def filtered(self, query: sa.Select[Any]) -> sa.Select[Any]:
        if self.tier is not None:
            query = query.where(onboarding.c.tier == self.tier.value)
        if self.cohort is not None:
            query = query.where(onboarding.c.cohort == self.cohort)
        return query

    def of_filtered(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """A row of `table` (a child of `onboarding`) is of one of the filtered onboardings."""
        if self.tier is None and self.cohort is None:
            return sa.true()
        o = onboarding.c
        return _key(table).in_(self.filtered(sa.select(o.account_id, o.onboarding_number)))

    def milestone_facts(self) -> sa.Subquery:
        m = milestone.c
        specialist_ids = [s.id for s in self.playbook.milestones if s.owner is Owner.IMPLEMENTATION]
        setup_ids = [s.id for s in self.playbook.milestones if s.ttv == "system_ready"]
        counted = m.status != MilestoneStatus.SKIPPED.value
        specialist = m.milestone_id.in_(specialist_ids)
        setup = m.milestone_id.in_(setup_ids)
        due = counted & (m.done_at.is_not(None) | (m.due_at <= self.now))
        # Each milestone id appears once per account, so a sum of its bits is their union.
        bit = sa.case(
            {s.id: 1 << i for i, s in enumerate(self.playbook.milestones)},
            value=m.milestone_id,
            else_=0,
        )

        def bits(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
            # PostgreSQL sums bigints as numeric (a Decimal here): back to an integer.
            return sa.cast(sa.func.sum(sa.case((condition, bit), else_=0)), sa.BigInteger)

        return (
            sa.select(
                m.account_id,
                m.onboarding_number,
                bits(sa.true()).label("planned"),
                bits(m.status.in_(PASSED)).label("passed"),
                bits(m.due_at <= self.now).label("due_now"),
                sa.func.max(m.due_at).label("last_due_at"),
                _count(due).label("due"),
                _count(m.done_at <= m.due_at).label("on_time"),
                _count(specialist).label("specialist_gates"),
                _count(specialist & m.status.in_(OPEN)).label("specialist_open"),
                sa.func.max(sa.case((specialist, m.done_at))).label("specialist_done_at"),
                _count(setup & due).label("setup_judged"),
                _count(setup & (m.status == MilestoneStatus.DONE.value)).label("setup_done"),
            )
            .where(self.of_filtered(milestone))
            .group_by(m.account_id, m.onboarding_number)
            .subquery("facts")
        )

    def onboardings(self) -> sa.Select[Any]:
        o, facts = onboarding.c, self.milestone_facts()
        ran = sa.exists().where(_same(escalation.c, o), ~escalation.c.superseded)
        trial = o.deal_type == DealType.TRIAL.value
        later = onboarding.alias("later").c
        paid_later = sa.exists().where(
            later.account_id == o.account_id,
            later.onboarding_number > o.onboarding_number,
            later.deal_type.is_distinct_from(DealType.TRIAL.value),
        )
        converted = trial & (o.converted_to.is_not(None) | paid_later)
        query = sa.select(
            o.account_id,
            o.onboarding_number,
            o.account_name,
            o.acv_usd,
            _Epoch(o.closed_won_at),
            _Epoch(o.started_at),
            o.cohort,
            o.initial_tier,
            o.tier,
            o.state,
            o.health_band,
            o.owner,
            o.decision_required,
            o.handoff_delay_days,
            o.setup_days,
            o.activation_days,
            o.ttv_days,
            _Epoch(o.finished_at),
            _Epoch(facts.c.last_due_at),
            sa.func.coalesce(facts.c.due, 0),
            sa.func.coalesce(facts.c.on_time, 0),
            sa.func.coalesce(facts.c.specialist_gates, 0),
            sa.func.coalesce(facts.c.specialist_open, 0),
            _Epoch(facts.c.specialist_done_at),
            sa.func.coalesce(facts.c.planned, 0),
            sa.func.coalesce(facts.c.passed, 0),
            sa.func.coalesce(facts.c.due_now, 0),
            sa.type_coerce(ran, sa.Boolean),
            sa.func.coalesce(facts.c.setup_judged, 0) > 0,
            sa.func.coalesce(facts.c.setup_done, 0) > 0,
            o.team_invitations,
            o.first_active_on,
            o.came_back_on,
            sa.func.coalesce(trial, False),
            sa.func.coalesce(converted, False),
            o.specialist,
        ).select_from(onboarding.outerjoin(facts, _same(facts.c, o)))
        return self.filtered(query).order_by(o.account_id, o.onboarding_number)

    def tier_changes(self) -> sa.Select[Any]:
        c = tier_change.c
        return sa.select(
            c.account_id, c.onboarding_number, _Epoch(c.at), c.from_tier, c.to_tier, c.kind
        ).where(self.of_filtered(tier_change))

    def programs(self) -> sa.Select[Any]:
        c = program.c
        return sa.select(
            c.account_id,
            c.onboarding_number,
            c.program_id,
            c.invited_at.is_not(None),
            c.attended_at.is_not(None),
        ).where(self.of_filtered(program))

    def roles(self) -> sa.Select[Any]:
        c, o = role_activation.c, onboarding.c
        return (
            sa.select(
                c.account_id,
                c.onboarding_number,
                c.role,
                _Epoch(c.activated_at),
                _Epoch(o.first_value_by_roles_at),
            )
            .select_from(role_activation.join(onboarding, _same(c, o)))
            .where(self.of_filtered(role_activation))
        )

    def attention(self) -> sa.ColumnElement[bool]:
        """The onboarding needs attention (`Onboarding.needs_attention`)."""
        o = onboarding.c
        return o.state.in_([s.value for s in RUNNING]) & (
            (o.state == OnboardingState.AT_RISK.value) | o.decision_required
        )

    def at_risk(self) -> sa.Select[Any]:
        # Risk flags live only in the record's document.
        o = onboarding.c
        query = sa.select(
            o.account_id, o.onboarding_number, o.document["risk_flags"], o.next_deadline
        )
        return self.filtered(query).where(self.attention())

    def overdue(self) -> sa.Select[Any]:
        m = milestone.c
        query = (
            sa.select(m.account_id, m.onboarding_number, m.milestone_id, _Epoch(m.due_at))
            .select_from(milestone.join(onboarding, _same(m, onboarding.c)))
            .where(self.attention(), m.status.in_(OPEN), m.due_at <= self.now)
            .order_by(m.account_id, m.onboarding_number, m.due_at)
        )
        return self.filtered(query)

    def ladder(self) -> sa.Select[Any]:
        e, m = escalation.c, milestone.c
        window = self.playbook.targets.escalation_response_days * DAY_S
        next_done = (
            sa.select(sa.func.min(m.done_at)).where(_same(m, e), m.done_at > e.at).scalar_subquery()
        )
        last = (
            sa.select(m.account_id, m.onboarding_number, sa.func.max(m.done_at).label("done_at"))
            .group_by(m.account_id, m.onboarding_number)
            .subquery("last")
        )
        # The cheap test first: a firing after the account's last milestone done (the
        # repeats of a stall) was not answered, and needs no search for the next one.
        moved = (e.at < last.c.done_at) & (_Epoch(next_done) <= _Epoch(e.at) + window)
        closed = _Epoch(e.at) <= seconds(self.now) - window
        # `~closed & moved`: the search runs again only for the firings of the last days.
        return (
            sa.select(
                e.tier,
                e.step_id,
                e.trigger,
                sa.func.sum(e.repeats),
                sa.func.count(sa.distinct(e.account_id)),
                _count(moved),
                _count(closed) + _count(~closed & moved),
            )
            .select_from(escalation.outerjoin(last, _same(last.c, e)))
            .where(~e.superseded, self.of_filtered(escalation))
            .group_by(e.tier, e.step_id, e.trigger)
        )


def _key(table: sa.Table) -> sa.Tuple:
    """The key of `table`'s rows' onboarding: (account, onboarding number)."""
    return sa.tuple_(table.c.account_id, table.c.onboarding_number)


def _same(a: Any, b: Any) -> sa.ColumnElement[bool]:
    """Rows of the same onboarding, `a` and `b` column collections with its key."""
    return (a.account_id == b.account_id) & (a.onboarding_number == b.onboarding_number)


def _ladder(store: RecordStore, q: _Query) -> list[LadderStep]:
    with store.engine.connect() as conn:
        return [
            LadderStep(_TIER[t], step, trigger, int(fired), accounts, int(answered), int(counted))
            for t, step, trigger, fired, accounts, answered, counted in conn.execute(q.ladder())
        ]


def load_rows(
    store: RecordStore,
    playbook: Playbook,
    now: datetime,
    *,
    tier: Tier | None = None,
    cohort: str | None = None,
) -> Rows:
    """What the report needs of the store's onboardings now in `tier` and of closed-won
    month `cohort` (when given), as of `now` (aware); the playbook says which milestones
    are a specialist's, each tier's plan order and the escalation response window.
    Raises ValueError for a bad cohort, SQLAlchemyError when the store cannot be read.

    The ladder's aggregate, the costliest read, runs on a second connection alongside the
    others (both databases work on it while Python reads the rows): it may count a write
    the others did not see yet, as a report run a moment later would."""
    if cohort is not None and (problem := cohort_error(cohort)):
        raise ValueError(problem)
    q = _Query(playbook, now, tier, cohort)
    rows: dict[tuple[str, int], Onboarding] = {}
    with ThreadPoolExecutor(max_workers=1) as alongside, store.engine.connect() as conn:
        ladder = alongside.submit(_ladder, store, q)
        if conn.dialect.name == "postgresql":  # the four reads see one snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        for values in conn.execute(q.onboardings()).all():
            row = Onboarding(*values)
            row.initial_tier, row.tier = _TIER[row.initial_tier], _TIER[row.tier]
            row.state, row.health_band = _STATE[row.state], _BAND[row.health_band]
            rows[row.account_id, row.onboarding_number] = row
        # On SQLite each select reads as of its start: an account the worker writes after
        # the first one is left to the next report (`rows.get`), never half-read.
        for account, number, at, from_tier, to_tier, kind in conn.execute(q.tier_changes()):
            if (r := rows.get((account, number))) is not None:
                r.tier_changes.append(
                    TierChangeRow(at, _TIER[from_tier], _TIER[to_tier], _KIND[kind])
                )
        for account, number, flags, deadline in conn.execute(q.at_risk()).all():
            if (r := rows.get((account, number))) is not None:
                r.risk_flags, r.next_deadline = list(flags or []), deadline
        for account, number, milestone_id, due_at in conn.execute(q.overdue()).all():
            if (r := rows.get((account, number))) is not None:
                r.overdue.append(Overdue(milestone_id, due_at))
        for account, number, program_id, invited, attended in conn.execute(q.programs()):
            if (r := rows.get((account, number))) is not None:
                if invited:
                    r.invited.add(program_id)
                if attended:
                    r.attended.add(program_id)
        for account, number, role, activated_at, first_value_at in conn.execute(q.roles()):
            if (r := rows.get((account, number))) is not None:
                r.roles[role] = activated_at
                r.first_value_by_roles_at = first_value_at
        return Rows(list(rows.values()), ladder.result())
