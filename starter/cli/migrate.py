"""`onboarding migrate-playbook`: move running onboardings to a new playbook version,
deliberately and visibly (docs/rules.md §2, *Migrating to a new playbook version*).

The onboardings are named, or found by a visibility query over the search attributes;
each gets the `migrate_playbook` update, a few at a time, with a progress bar and a
summary. `--dry-run` sends no update: it reads each onboarding (`snapshot` query), runs
the workflow's own migration rules on a copy (the plan diff) and the playbook simulator
from its current state on both versions (`starter.simulation.engine.simulate_from`).
"""

from __future__ import annotations

import asyncio
import copy
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import temporalio.client
import typer
from temporalio.service import RPCError

import workflows.progress as rule
from activities.client import connect
from starter.cli.calls import UpdateRejected, query, update
from starter.cli.errors import CliError, run
from starter.cli.options import account_id_of
from starter.cli.render import table_lines
from starter.simulation.compare import Result, result_of
from starter.simulation.engine import simulate_from
from starter.simulation.model import BehaviourModel
from workflows import contract
from workflows.contract import WORKFLOW_TYPE
from workflows.models import OnboardingSnapshot, PlaybookMigration, account_id_for
from workflows.playbook import load_playbook
from workflows.progress import checks, migration


class Outcome(StrEnum):
    MIGRATED = "migrated"
    ALREADY = "already on it"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass
class Simulated:
    """One onboarding simulated from now on its current and its new playbook."""

    current: Result
    new: Result


@dataclass
class Migrated:
    """What happened (or, in a dry run, would happen) to one onboarding."""

    account_id: str
    outcome: Outcome
    detail: str = ""
    tier: str = ""
    changes: list[str] = field(default_factory=list)
    simulated: Simulated | None = None


ALREADY_ON = "playbook: already on"  # the validator's words for "already on it"
UNCHANGED = "the plan is unchanged"


def mapping_of(items: list[str]) -> dict[str, str]:
    """Repeated `--map old=new` as {old milestone id: new milestone id}."""
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = (x.strip() for x in item.partition("="))
        if not sep or not old or not new:
            raise CliError(f"--map {item!r}: expected old_milestone=new_milestone")
        mapping[old] = new
    return mapping


def running_query(query: str) -> str:
    """The user's visibility query, restricted to running onboardings."""
    return f'WorkflowType = "{WORKFLOW_TYPE}" AND ExecutionStatus = "Running" AND ({query})'


async def _accounts(
    client: temporalio.client.Client, query: str | None, named: list[str]
) -> list[str]:
    if (query is None) == (not named):
        raise CliError("give ACCOUNT... or --query 'TemporalQuery' (not both)")
    if query is None:
        return [account_id_of(a) for a in named]
    try:
        found = [account_id_for(wf.id) async for wf in client.list_workflows(running_query(query))]
    except RPCError as exc:
        raise CliError(f"--query: {exc.message}") from None
    if not found:
        raise CliError(f"--query: no running onboarding matches {query}")
    return found


async def _migrate(
    client: temporalio.client.Client, account_id: str, req: PlaybookMigration
) -> Migrated:
    try:
        status = await update(client, account_id, contract.MIGRATE_PLAYBOOK, req)
    except UpdateRejected as exc:
        outcome = Outcome.ALREADY if exc.reason.startswith(ALREADY_ON) else Outcome.REFUSED
        return Migrated(account_id, outcome, exc.reason)
    except CliError as exc:
        return Migrated(account_id, Outcome.FAILED, str(exc))
    entry = next(a for a in reversed(status.audit) if a.kind == "playbook_migrated")
    tier = status.tier.value if status.tier else ""
    return Migrated(account_id, Outcome.MIGRATED, entry.detail, tier)


async def _preview(
    client: temporalio.client.Client,
    account_id: str,
    req: PlaybookMigration,
    model: BehaviourModel,
    seed: int,
    days: float,
) -> Migrated:
    """What the update would do, computed here by the workflow's own rules."""
    try:
        snap = await query(client, account_id, contract.SNAPSHOT, OnboardingSnapshot)
    except CliError as exc:
        return Migrated(account_id, Outcome.FAILED, str(exc))
    o = rule.Onboarding(snap.deal, snap.playbook, snap.progress)
    tier = o.progress.tier.value
    try:
        checks.running(o.progress)
        checks.playbook_migration(o, req)
    except ValueError as exc:
        outcome = Outcome.ALREADY if str(exc).startswith(ALREADY_ON) else Outcome.REFUSED
        return Migrated(account_id, outcome, str(exc), tier)
    now = snap.as_of
    current = result_of(simulate_from(o, now, model, seed, days), o.playbook)
    trial = rule.Onboarding(o.deal, o.playbook, copy.deepcopy(o.progress))
    before = [replace(m) for m in trial.progress.milestones]
    moved, _ = migration.migrate(trial, req, now, lambda: True)
    renamed = migration.renamed_ids(o, req)
    planned = migration.planned_ids(moved, req.playbook)
    diff = migration.plan_diff(before, moved.progress.milestones, renamed, planned)
    new = result_of(simulate_from(moved, now, model, seed, days), req.playbook)
    return Migrated(
        account_id,
        Outcome.MIGRATED,
        tier=tier,
        changes=diff.lines() or [UNCHANGED],
        simulated=Simulated(current, new),
    )


def _completed(r: Result) -> str:
    return "-" if r.completed_days is None else f"day {r.completed_days:.0f}"


def _simulation_line(s: Simulated) -> str:
    c, n = s.current, s.new
    return (
        f"escalations {len(c.escalations)} -> {len(n.escalations)}, automatic tier changes "
        f"{len(c.tier_changes)} -> {len(n.tier_changes)}, completed {_completed(c)} -> "
        f"{_completed(n)}"
    )


def _print_one(m: Migrated, dry_run: bool) -> None:
    if m.outcome is Outcome.MIGRATED and dry_run:
        typer.echo(f"would migrate {m.account_id} ({m.tier}): {'; '.join(m.changes)}")
        if m.simulated is not None:
            typer.echo(f"  simulated: {_simulation_line(m.simulated)}")
    elif m.outcome is Outcome.MIGRATED:
        typer.echo(f"migrated {m.account_id} ({m.tier}): {m.detail}")


def _summary(results: list[Migrated], dry_run: bool, days: float) -> None:
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    first = "would migrate" if dry_run else "migrated"
    typer.echo(
        f"{first} {counts[Outcome.MIGRATED]} · already on it {counts[Outcome.ALREADY]} · "
        f"refused {counts[Outcome.REFUSED]} · failed {counts[Outcome.FAILED]}"
    )
    for r in results:
        if r.outcome in (Outcome.REFUSED, Outcome.FAILED):
            typer.echo(f"  {r.outcome.value} {r.account_id}: {r.detail}")
    simulated = [(r, r.simulated) for r in results if r.simulated is not None]
    if not simulated:
        return
    typer.echo(f"\nsimulated {days:g} days from now, current -> new playbook:")
    rows = [["ACCOUNT", "TIER", "PLAN CHANGES", "ESCALATIONS", "TIER CHANGES", "COMPLETED"]]
    for r, s in simulated:
        rows.append(
            [
                r.account_id,
                r.tier,
                str(_plan_changes(r)),
                f"{len(s.current.escalations)} -> {len(s.new.escalations)}",
                f"{len(s.current.tier_changes)} -> {len(s.new.tier_changes)}",
                f"{_completed(s.current)} -> {_completed(s.new)}",
            ]
        )

    def total(count: Callable[[Result], int]) -> str:
        return f"{sum(count(s.current) for _, s in simulated)} -> " + str(
            sum(count(s.new) for _, s in simulated)
        )

    rows.append(
        [
            f"all {len(simulated)}",
            "",
            str(sum(_plan_changes(r) for r, _ in simulated)),
            total(lambda x: len(x.escalations)),
            total(lambda x: len(x.tier_changes)),
            total(lambda x: x.completed_days is not None) + " completed",
        ]
    )
    for line in table_lines(rows):
        typer.echo(line)


def _plan_changes(m: Migrated) -> int:
    return 0 if m.changes == [UNCHANGED] else len(m.changes)


async def _each(
    accounts: list[str],
    concurrency: int,
    label: str,
    one: Callable[[str], Awaitable[Migrated]],
    dry_run: bool,
) -> list[Migrated]:
    """`one` for every account, at most `concurrency` at once, with a progress bar on
    stderr; each migrated (or would-be migrated) onboarding printed as it is settled."""
    gate = asyncio.Semaphore(concurrency)
    results: dict[str, Migrated] = {}
    with typer.progressbar(length=len(accounts), label=label, file=sys.stderr) as bar:

        async def settle(account_id: str) -> None:
            async with gate:
                results[account_id] = result = await one(account_id)
            _print_one(result, dry_run)
            bar.update(1)

        async with asyncio.TaskGroup() as group:
            for account_id in accounts:
                group.create_task(settle(account_id))
    return [results[a] for a in accounts]


async def _migrate_all(
    playbook_path: Path,
    query_text: str | None,
    named: list[str],
    map_: list[str],
    by: str,
    reason: str,
    dry_run: bool,
    concurrency: int,
    days: float,
    seed: int,
) -> list[Migrated]:
    playbook = load_playbook(playbook_path)
    mapping = mapping_of(map_)
    req = PlaybookMigration(playbook=playbook, mapping=mapping, by=by, reason=reason)
    client = await connect()
    accounts = await _accounts(client, query_text, named)
    model = BehaviourModel()
    label = f"{'dry run: ' if dry_run else ''}migrating to {playbook.version}"

    async def one(account_id: str) -> Migrated:
        if dry_run:
            return await _preview(client, account_id, req, model, seed, days)
        return await _migrate(client, account_id, req)

    results = await _each(list(dict.fromkeys(accounts)), concurrency, label, one, dry_run)
    _summary(results, dry_run, days)
    return results


def migrate_playbook(
    playbook: Annotated[Path, typer.Option(help="The new playbook version (TOML)")],
    by: Annotated[str, typer.Option(help="Who decided")],
    reason: Annotated[str, typer.Option(help="Why (recorded in each audit trail)")],
    accounts: Annotated[
        list[str] | None, typer.Argument(metavar="[ACCOUNT]...", help="Account ids")
    ] = None,
    query_text: Annotated[
        str | None,
        typer.Option(
            "--query",
            help="Or: a visibility query over the search attributes, e.g. "
            "'OnboardingTier = \"tech_touch\"' (running onboardings only)",
        ),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="old_milestone=new_milestone for a renamed one (repeatable)"),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Send nothing: the plan diff and the simulated difference"),
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, max=100, help="Onboardings migrated at the same time")
    ] = 8,
    days: Annotated[
        int, typer.Option(min=1, max=730, help="Dry run: days simulated from now")
    ] = 120,
    seed: Annotated[int, typer.Option(help="Dry run: the simulated customers' seed")] = 1,
) -> None:
    """Move running onboardings to a new playbook version (rules §2): each plan is
    rebuilt on it with earned credit kept and renamed milestones carried over (--map),
    audited playbook_migrated. Ends with a summary: migrated, already on it, refused
    (with the reason), failed; exits 1 if any was refused or failed."""
    results = run(
        _migrate_all(
            playbook, query_text, accounts or [], map_ or [], by, reason, dry_run, concurrency,
            days, seed,
        )
    )  # fmt: skip
    if any(r.outcome in (Outcome.REFUSED, Outcome.FAILED) for r in results):
        raise typer.Exit(1)
