"""The records store: onboarding records in SQLite (embedded default) or PostgreSQL (one
URL setting), its schema kept by Alembic migrations.

    store = RecordStore.open("sqlite:///.data/records.db")   # migrates to the latest schema
    store.save(record)          # True if written; False if it had this revision or later
    store.save_all([r1, r2])    # [True, False]: several onboardings' records, one transaction
    store.get("001...")         # the account's latest onboarding: OnboardingRecord | None
    store.live_link("001...", now)    # the account's progress link id (issued if none)
    store.support_ticket_median(Tier.TECH_TOUCH, "001...")  # (2.0, 17): the skip net's peers
    store.store_playbook(sha, "2026.12.3", content, now)  # a pinned playbook, once
    store.playbook_content(sha)   # its content (Playbook JSON) | None
    with store.assigning(now) as a:  # one assignment at a time (rules §7)
        a.loads(["technical_setup"], "001...")  # {"ann@...": Load(high_touch=9)}
        a.claim(Seat("001...", 1, StaffRole.CSM), Tier.HIGH_TOUCH, "ann@...")

Synchronous (SQLAlchemy's engine and pool); activities and the ingress call it from a
thread: the activities through one `LazyStore` per worker process, the ingress through
`Ingress.records()`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import secrets
import statistics
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from activities.records.schema import (
    assignment,
    customer_link,
    escalation,
    milestone,
    onboarding,
    playbook_content,
    program,
    role_activation,
    tier_change,
)
from workflows.assignment import Load
from workflows.models.record import OnboardingRecord
from workflows.models.vocabulary import OnboardingState, StaffRole, Tier

MIGRATIONS = "activities.records:migrations"
# Any constant: concurrent processes (worker, ingress) migrating one PostgreSQL database
# take turns on this advisory lock.
_MIGRATION_LOCK = 7_204_811
# Alembic's `op` and `context` are module globals: two migrations at once in one process
# (the worker's and the ingress's stores under `onboarding up`) would swap them under
# each other, so the threads of a process take turns too.
_MIGRATING = threading.Lock()
# Another constant: assignments (rules §7) take turns on it, on PostgreSQL.
_ASSIGNMENT_LOCK = 7_204_812
# A claim whose onboarding has written no record yet counts this long (rules §7): the
# first record is written moments after the start; an onboarding ended before it (e.g.
# terminated) carries nothing after that.
UNRECORDED_CLAIM = timedelta(days=1)


# (records, sum of their revisions, latest as_of): moves with every write that adds a
# record or a revision (the workflow bumps the revision with every change it records).
WriteMark = tuple[int, int, datetime | None]


class RecordStoreError(Exception):
    """The store cannot be opened: a bad URL, an unreachable server, a failed migration."""


@dataclass(frozen=True)
class CustomerLink:
    """One row of `customer_link`: a progress link of `account_id`, refused once revoked."""

    link_id: str
    account_id: str
    issued_at: datetime
    revoked_at: datetime | None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (reports) never block the worker's writes; wait on a locked file.
    cur.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit, and never corrupts the
    # file; a power cut can lose the last writes, which `onboarding records backfill`
    # writes again from the onboardings themselves.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@contextmanager
def _foreign_keys_off(conn: Connection) -> Iterator[None]:
    """On SQLite, foreign keys unenforced while a migration runs: SQLite changes a table
    by building it afresh, and dropping the old one would cascade-delete its children's
    rows. The pragma only takes effect outside a transaction, so it is set before one."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


def _row(record: OnboardingRecord) -> dict[str, Any]:
    ttv = record.ttv
    return {
        "account_id": record.account_id,
        "onboarding_number": record.onboarding_number,
        "workflow_id": record.workflow_id,
        "revision": record.revision,
        "as_of": record.as_of,
        "account_name": record.account_name,
        "acv_usd": record.acv_usd,
        "currency": record.currency,
        "closed_won_at": record.closed_won_at,
        "cohort": record.cohort,
        "playbook_version": record.playbook_version,
        "started_at": record.started_at,
        "initial_tier": record.initial_tier.value,
        "tier": record.tier.value,
        "tier_clause": record.tier_clause,
        "overridden": any(c.kind == "override" for c in record.tier_changes),
        "state": record.state.value,
        "phase": record.phase.value if record.phase else None,
        "health_score": record.health_score,
        "health_band": record.health_band.value,
        "owner": record.owner,
        "next_deadline": record.next_deadline,
        "completion_pct": record.completion_pct,
        "handoff_delay_days": ttv.handoff_delay_days,
        "setup_days": ttv.setup_days,
        "activation_days": ttv.activation_days,
        "ttv_days": ttv.total_days,
        "finished_at": record.finished_at,
        "cancel_reason": record.cancel_reason,
        "paused_days_total": record.paused_days_total,
        "decision_required": record.decision_required,
        "document": record.model_dump(mode="json"),
        "support_tickets": record.support_tickets,
        "team_invitations": record.team_invitations,
        "first_active_on": record.first_active_on,
        "came_back_on": record.came_back_on,
        "specialist": record.specialist,
        "first_value_by_roles_at": record.first_value_by_roles_at,
        "deal_type": record.deal_type.value if record.deal_type else None,
        "converted_to": record.converted_to,
    }


def _children(record: OnboardingRecord) -> Iterator[tuple[sa.Table, list[dict[str, Any]]]]:
    key = {"account_id": record.account_id, "onboarding_number": record.onboarding_number}
    yield (
        milestone,
        [
            key
            | {
                "milestone_id": m.id,
                "position": i,
                "title": m.title,
                "phase": m.phase.value,
                "owner": m.owner.value,
                "weight": m.weight,
                "status": m.status.value,
                "due_at": m.due_at,
                "done_at": m.done_at,
                "credit": m.credit,
            }
            for i, m in enumerate(record.milestones)
        ],
    )
    yield (
        escalation,
        [
            key
            | {
                "position": i,
                "at": e.at,
                "due_at": e.due_at,
                "tier": e.tier.value,
                "step_id": e.step_id,
                "trigger": e.trigger.value,
                "milestone_id": e.milestone_id,
                "superseded": e.superseded,
                "repeats": e.repeats,
            }
            for i, e in enumerate(record.escalations)
        ],
    )
    yield (
        tier_change,
        [
            key
            | {
                "position": i,
                "at": c.at,
                "from_tier": c.from_tier.value,
                "to_tier": c.to_tier.value,
                "kind": c.kind,
                "by": c.by,
                "reason": c.reason,
            }
            for i, c in enumerate(record.tier_changes)
        ],
    )
    yield (
        program,
        [
            key
            | {
                "program_id": x.program,
                "invited_at": x.invited_at,
                "session_at": x.session_at,
                "attended_at": x.attended_at,
                "attendances": x.attendances,
            }
            for x in record.programs
        ],
    )
    yield (
        role_activation,
        [
            {
                **key,
                "role": x.role,
                "users": x.users,
                "needed": x.needed,
                "activated_at": x.activated_at,
            }
            for x in record.roles
        ],
    )


def _digest(rows: list[dict[str, Any]]) -> str:
    """A list's child rows, told apart from any other rows (`RecordStore.save`)."""
    text = json.dumps(rows, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# Built once (building a statement costs more CPU than running it).
_DELETE_CHILDREN = {
    t.name: sa.delete(t).where(
        t.c.account_id == sa.bindparam("account"), t.c.onboarding_number == sa.bindparam("number")
    )
    for t in (milestone, escalation, tier_change, program, role_activation)
}


class RecordStore:
    """One database of onboarding records; thread-safe (one connection per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, create: bool = True) -> RecordStore:
        """Connect to `url` (SQLAlchemy URL: `sqlite:///path` or
        `postgresql+psycopg://user:pass@host/db`) and bring its schema to the latest
        migration. A SQLite file (and its folder) is created, unless `create` is False:
        readers (reports, the ingress's pages) pass that, because an empty store made up
        on the spot (the default URL is relative to the current folder) would say "no
        onboardings" instead of "wrong place".

        Raises RecordStoreError naming the URL (password hidden) and the reason.
        """
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise RecordStoreError(f"ONBOARDING_RECORDS_URL: not a database URL ({exc})") from exc
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise RecordStoreError(
                f"ONBOARDING_RECORDS_URL: {parsed.get_backend_name()!r} is not supported; "
                "use sqlite:///path or postgresql+psycopg://..."
            )
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            if not create and not Path(parsed.database).is_file():
                raise RecordStoreError(
                    f"ONBOARDING_RECORDS_URL: no records store at {parsed.database} (the "
                    "worker creates it when it starts); is the URL right?"
                )
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A server may drop an idle connection, so it is pinged before use; an SQLite
        # file never does, and the ping would be one more statement in every write.
        engine = sa.create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    @property
    def where(self) -> str:
        """The store's URL with its password hidden, for logs and errors."""
        return self.engine.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Upgrade the schema to the latest Alembic revision (a no-op when it is there)."""
        self._migrate(command.upgrade, "head")

    def downgrade(self, revision: str) -> None:
        """Take the schema back to Alembic `revision` (e.g. "0007"), every row kept that
        the older schema can hold. Raises RecordStoreError."""
        self._migrate(command.downgrade, revision)

    def _migrate(self, step: Any, revision: str) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", MIGRATIONS)
        try:
            with (
                _MIGRATING,
                self.engine.connect() as conn,
                _foreign_keys_off(conn),
                conn.begin(),
            ):
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                cfg.attributes["connection"] = conn
                step(cfg, revision)
        except sa.exc.SQLAlchemyError as exc:
            raise RecordStoreError(
                f"records store {self.where}: {exc.__class__.__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        self.engine.dispose()

    def save(self, record: OnboardingRecord) -> bool:
        """Write `record` unless the store has it or a later one, by `(as_of, revision)`
        (then False): a retried or reordered write never moves a record backwards. Atomic."""
        return self.save_all([record])[0]

    def save_all(self, records: Sequence[OnboardingRecord]) -> list[bool]:
        """`save` for each of `records`, in order, all in one transaction: each answer as
        `save`'s (a record of an onboarding met earlier in `records` is compared with what
        that one wrote); all written or, on an error, none.

        A list whose rows are those already stored (its digest in `children`, which the
        upsert returns as it was) is left as it is: most writes change the milestones
        alone, and rewriting all five lists was most of a write's statements."""
        answers: list[bool] = []
        with self.engine.begin() as conn:
            for record in records:
                answers.append(self._write(conn, record))
        return answers

    def _write(self, conn: Connection, record: OnboardingRecord) -> bool:
        children = [(table, rows, _digest(rows)) for table, rows in _children(record)]
        digests = {table.name: digest for table, _, digest in children}
        row = _row(record) | {"children": digests, "children_revision": record.revision}
        written = conn.execute(self._upsert_statement, row).first()
        if written is None:
            return False
        stored = written.children_before or {}
        for table, rows, digest in children:
            if stored.get(table.name) == digest:
                continue
            conn.execute(
                _DELETE_CHILDREN[table.name],
                {"account": record.account_id, "number": record.onboarding_number},
            )
            if rows:
                conn.execute(sa.insert(table), rows)
        return True

    @functools.cached_property
    def _upsert_statement(self) -> sa.Insert:
        """Insert, or update when the stored record is older, returning the digests of
        the child rows stored before (`children_before`): null for a new record, and for
        one whose last write did not write its digests with it (older code, migration
        0013). Built once, because building it costs more CPU than running it."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        insert = dialect.insert(onboarding)
        new = {c.name: insert.excluded[c.name] for c in onboarding.c if not c.primary_key}
        current = onboarding.c.children_revision == onboarding.c.revision
        return insert.on_conflict_do_update(
            index_elements=[onboarding.c.account_id, onboarding.c.onboarding_number],
            set_=new | {"children_before": sa.case((current, onboarding.c.children))},
            where=sa.tuple_(onboarding.c.as_of, onboarding.c.revision)
            < sa.tuple_(insert.excluded.as_of, insert.excluded.revision),
        ).returning(onboarding.c.children_before)

    def get(self, account_id: str, number: int | None = None) -> OnboardingRecord | None:
        """The account's onboarding `number`, by default its latest (an expansion after an
        earlier onboarding is the account's next, rules §2 (docs/rules.md))."""
        with self.engine.connect() as conn:
            doc = conn.execute(
                self._of(account_id, number, onboarding.c.document)
            ).scalar_one_or_none()
        return None if doc is None else OnboardingRecord.model_validate(doc)

    def revision(self, account_id: str, number: int | None = None) -> int | None:
        """The revision stored for the account's onboarding `number` (by default its
        latest), or None."""
        with self.engine.connect() as conn:
            return conn.execute(
                self._of(account_id, number, onboarding.c.revision)
            ).scalar_one_or_none()

    @staticmethod
    def _of(account_id: str, number: int | None, column: sa.Column[Any]) -> sa.Select[Any]:
        query = sa.select(column).where(onboarding.c.account_id == account_id)
        if number is not None:
            return query.where(onboarding.c.onboarding_number == number)
        return query.order_by(onboarding.c.onboarding_number.desc()).limit(1)

    def count(self, state: OnboardingState | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(onboarding)
        if state is not None:
            query = query.where(onboarding.c.state == state.value)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def write_mark(self) -> WriteMark:
        """What changes when a record is written (`WriteMark`), for caches of what is
        computed from the store: one aggregate query (a few ms over 10,000 records)."""
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(onboarding.c.revision), 0),
            sa.func.max(onboarding.c.as_of),
        )
        with self.engine.connect() as conn:
            count, revisions, latest = conn.execute(query).one()
        return int(count), int(revisions), latest

    def cohorts(self) -> list[str]:
        """Every closed-won month (`YYYY-MM`) with an onboarding, in order."""
        query = sa.select(onboarding.c.cohort).distinct().order_by(onboarding.c.cohort)
        with self.engine.connect() as conn:
            return list(conn.scalars(query))

    def support_ticket_median(self, tier: Tier, account_id: str) -> tuple[float | None, int]:
        """The median of the support tickets of the open onboardings (neither completed
        nor cancelled) of `tier` of the accounts other than `account_id` (an account has
        one open at most, rules §2), and how many there are (None, 0 without any): the
        skip net's peers (rules §6.4 (docs/rules.md)). The median is taken here, not in
        SQL: SQLite has no percentile function."""
        ended = (OnboardingState.COMPLETED.value, OnboardingState.CANCELLED.value)
        query = sa.select(onboarding.c.support_tickets).where(
            onboarding.c.tier == tier.value,
            onboarding.c.state.not_in(ended),
            onboarding.c.account_id != account_id,
        )
        with self.engine.connect() as conn:
            tickets = [int(n) for n in conn.scalars(query)]
        return (statistics.median(tickets) if tickets else None), len(tickets)

    @contextmanager
    def assigning(self, now: datetime) -> Iterator[Assigning]:
        """One assignment's transaction (rules §7 (docs/rules.md)): the loads read and the
        pick claimed (`Assigning`) while no other assignment, of any process, runs: on
        SQLite the write lock taken at its start (BEGIN IMMEDIATE, waiting up to the busy
        timeout), on PostgreSQL a transaction-scoped advisory lock. Committed when the
        block ends; an error inside it claims nothing. `now` dates the claim."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ASSIGNMENT_LOCK)))
            yield Assigning(conn, now)
            conn.commit()

    # ------------------------------------------------------------------ pinned playbooks

    def store_playbook(self, sha256: str, version: str, content: str, now: datetime) -> bool:
        """Keep a pinned playbook's `content` (its `Playbook.model_dump_json()`) under its
        `sha256`, stored `now`; False when the store has it already (written once, never
        changed: the key is the content's hash). Safe from several processes at once."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        row = {"sha256": sha256, "version": version, "content": content, "stored_at": now}
        insert = (
            dialect.insert(playbook_content)
            .values(row)
            .on_conflict_do_nothing()
            .returning(playbook_content.c.sha256)
        )
        with self.engine.begin() as conn:
            return conn.execute(insert).first() is not None

    def playbook_content(self, sha256: str) -> str | None:
        """The content stored under `sha256` (`store_playbook`), or None."""
        query = sa.select(playbook_content.c.content).where(playbook_content.c.sha256 == sha256)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    # ------------------------------------------------------------------ progress links

    def live_link(self, account_id: str, now: datetime) -> str:
        """The id of the account's live progress link; a new one, issued `now`, when it
        has none (never had one, or all revoked). Two processes asking at once get one id:
        the store keeps one live link per account (a unique index)."""
        live = sa.select(customer_link.c.link_id).where(
            customer_link.c.account_id == account_id, customer_link.c.revoked_at.is_(None)
        )
        # 16 URL-safe characters, 96 random bits: the signature, not this, is the secret.
        link_id = secrets.token_urlsafe(12)
        try:
            with self.engine.begin() as conn:
                found = conn.execute(live).scalar_one_or_none()
                if found is not None:
                    return str(found)
                conn.execute(
                    sa.insert(customer_link).values(
                        link_id=link_id, account_id=account_id, issued_at=now
                    )
                )
                return link_id
        except sa.exc.IntegrityError:  # issued by another process since our read
            with self.engine.connect() as conn:
                return str(conn.execute(live).scalar_one())

    def link(self, link_id: str) -> CustomerLink | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(customer_link).where(customer_link.c.link_id == link_id)
            ).one_or_none()
        return None if row is None else CustomerLink(**row._mapping)

    def revoke_links(self, account_id: str, now: datetime) -> int:
        """Revoke the account's live link (as of `now`); how many were live (0 or 1)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(customer_link)
                .where(
                    customer_link.c.account_id == account_id,
                    customer_link.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        return int(result.rowcount)


@dataclass(frozen=True)
class Seat:
    """One role of one onboarding: the key of its assignment claim."""

    account_id: str
    onboarding_number: int
    role: StaffRole


class Assigning:
    """Inside `RecordStore.assigning`: who holds a seat, what each person carries, and the
    claim of the person picked.

    A claim (table `assignment`) is written when a person is picked, before the
    onboarding's record says so. The holder of a seat is its claim's person, else (an
    onboarding assigned before claims) its record's owner or specialist. Loads count an
    onboarding whose record is open (neither completed nor cancelled) for its holder,
    and one whose record is not written yet for its claim's person while the claim is
    younger than `UNRECORDED_CLAIM` (an onboarding ended before its first record, e.g.
    terminated, stops counting then)."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn, self._now = conn, now

    def held(self, seat: Seat) -> str | None:
        """Who holds `seat`: its claim's person; without a claim, the person of the role
        in the account's latest record (an expansion after an earlier onboarding here
        keeps its people while its own record is not written yet, rules §2)."""
        a = assignment.c
        claimed = self._conn.execute(sa.select(a.person).where(*_seat(seat))).scalar_one_or_none()
        if claimed is not None:
            return str(claimed)
        column = (
            onboarding.c.specialist
            if seat.role is StaffRole.IMPLEMENTATION_SPECIALIST
            else onboarding.c.owner
        )
        recorded = self._conn.execute(
            RecordStore._of(seat.account_id, None, column)
        ).scalar_one_or_none()
        return None if recorded is None else str(recorded)

    def claim(self, seat: Seat, tier: Tier, person: str) -> None:
        """`person` holds `seat` from now on (the claim replaced, if any)."""
        dialect = postgresql if self._conn.dialect.name == "postgresql" else sqlite
        row = {
            "account_id": seat.account_id,
            "onboarding_number": seat.onboarding_number,
            "role": seat.role.value,
            "person": person,
            "tier": tier.value,
            "claimed_at": self._now,
        }
        insert = dialect.insert(assignment).values(row)
        self._conn.execute(
            insert.on_conflict_do_update(
                index_elements=list(assignment.primary_key.columns),
                set_={k: insert.excluded[k] for k in ("person", "tier", "claimed_at")},
            )
        )

    def loads(self, gates: list[str], account_id: str) -> dict[str, Load]:
        """What each person carries, by id, from the onboardings of the accounts other
        than `account_id`: as CSM, the open ones they hold per tier band; as implementation
        specialist, the open ones they hold with one of `gates` still open in that
        onboarding (a per-product copy `<gate>:<product>` counts; one not recorded yet
        counts: it was given a specialist for an open gate); an account's earlier,
        finished onboardings (rules §2) carry nothing. The loads of capacity-aware
        assignment (rules §7 (docs/rules.md))."""
        o, a = onboarding.c, assignment.c
        ended = (OnboardingState.COMPLETED.value, OnboardingState.CANCELLED.value)
        since = self._now - UNRECORDED_CLAIM

        def claimed(role: StaffRole) -> sa.FromClause:
            return onboarding.outerjoin(
                assignment,
                sa.and_(
                    a.account_id == o.account_id,
                    a.onboarding_number == o.onboarding_number,
                    a.role == role.value,
                ),
            )

        def unrecorded(role: StaffRole) -> tuple[sa.ColumnElement[bool], ...]:
            recorded = sa.exists().where(
                o.account_id == a.account_id, o.onboarding_number == a.onboarding_number
            )
            return (
                a.role == role.value,
                a.account_id != account_id,
                a.claimed_at > since,
                ~recorded,
            )

        live = (o.state.not_in(ended), o.account_id != account_id)
        owner = sa.func.coalesce(a.person, o.owner)
        owned = sa.union_all(
            sa.select(owner, o.tier, sa.func.count())
            .select_from(claimed(StaffRole.CSM))
            .where(owner.is_not(None), *live)
            .group_by(owner, o.tier),
            sa.select(a.person, a.tier, sa.func.count())
            .where(*unrecorded(StaffRole.CSM))
            .group_by(a.person, a.tier),
        )
        open_gate = sa.or_(
            milestone.c.milestone_id.in_(gates),
            *(milestone.c.milestone_id.startswith(f"{g}:", autoescape=True) for g in gates),
        )
        # The gate open in the onboarding itself: an earlier onboarding of the account
        # (rules §2) left with gates open (cancelled) is no load.
        gate_open = sa.exists().where(
            milestone.c.account_id == o.account_id,
            milestone.c.onboarding_number == o.onboarding_number,
            milestone.c.status.in_(("not_started", "in_progress")),
            open_gate,
        )
        specialist = sa.func.coalesce(a.person, o.specialist)
        specialist_role = StaffRole.IMPLEMENTATION_SPECIALIST
        implementing = sa.union_all(
            sa.select(specialist, sa.func.count())
            .select_from(claimed(specialist_role))
            .where(specialist.is_not(None), *live, gate_open)
            .group_by(specialist),
            sa.select(a.person, sa.func.count())
            .where(*unrecorded(specialist_role))
            .group_by(a.person),
        )
        loads: dict[str, Load] = {}
        for person, tier, count in self._conn.execute(owned):
            loads[person] = loads.get(person, Load()).plus(Tier(tier), int(count))
        if gates:
            for person, count in self._conn.execute(implementing):
                before = loads.get(person, Load())
                loads[person] = before.model_copy(
                    update={"implementations": before.implementations + int(count)}
                )
        return loads


def _seat(seat: Seat) -> tuple[sa.ColumnElement[bool], ...]:
    a = assignment.c
    return (
        a.account_id == seat.account_id,
        a.onboarding_number == seat.onboarding_number,
        a.role == seat.role.value,
    )


class LazyStore:
    """A worker process's one records store, opened (and migrated) in a thread on first
    use by its activities; `RecordStore.open`'s errors come out of `get`."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self._url, self._create = url, create
        self._store: RecordStore | None = None
        self._opening = asyncio.Lock()

    async def get(self) -> RecordStore:
        async with self._opening:
            if self._store is None:
                self._store = await asyncio.to_thread(
                    RecordStore.open, self._url, create=self._create
                )
            return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
