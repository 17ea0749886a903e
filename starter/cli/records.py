"""`onboarding records backfill`: fill the records store from Temporal, for onboardings
that began before records existed or whose record was lost.

A running onboarding is asked (signal `refresh_record`) to write its record itself, so
the record stays the workflow's own from then on: a run that began before records
continues as new into one that records. A finished onboarding still within the
namespace's retention is written from its final status (its workflow result), at
revision 0, which never overwrites what the workflow wrote itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

import temporalio.client
import typer
from temporalio.client import WorkflowExecutionStatus

from activities.client import connect
from activities.records.store import RecordStore
from activities.settings import SharedSettings
from starter.cli.errors import run, settings_of
from workflows import search_attributes as sa
from workflows.contract import WORKFLOW_TYPE
from workflows.models import OnboardingState, OnboardingStatus, account_id_for
from workflows.onboarding import AccountOnboarding
from workflows.records import record_of

app = typer.Typer(help="The onboarding records store (what reports read).", no_args_is_help=True)


@dataclass
class Backfill:
    """What a backfill did; `skipped` counts by reason."""

    asked: dict[str, int | None] = field(default_factory=dict)  # account -> revision before
    written: int = 0
    up_to_date: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def lines(self, recorded: int) -> list[str]:
        out = [
            f"running: {len(self.asked)} asked to write their record, {recorded} written",
            f"finished: {self.written} written, {self.up_to_date} already in the store",
        ]
        out += [f"skipped {n}: {reason}" for reason, n in sorted(self.skipped.items())]
        return out


async def _finished(
    client: temporalio.client.Client,
    store: RecordStore,
    wf: temporalio.client.WorkflowExecution,
    done: Backfill,
) -> None:
    if wf.status is not WorkflowExecutionStatus.COMPLETED:
        name = wf.status.name.lower() if wf.status else "unknown"
        done.skipped[f"{name}, so no final status to record"] += 1
        return
    handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=OnboardingStatus)
    status = await handle.result(follow_runs=False)
    try:
        record = record_of(status, revision=0)
    except ValueError:
        done.skipped["ended before its closed-won deal arrived"] += 1
        return
    if await asyncio.to_thread(store.save, record):
        done.written += 1
    else:
        done.up_to_date += 1


async def _backfill(wait_s: float) -> None:
    store = await asyncio.to_thread(RecordStore.open, settings_of(SharedSettings).records_url)
    client = await connect()
    done = Backfill()
    # Runs closed by continue-as-new are left out: their onboarding goes on in a later run.
    query = f'WorkflowType = "{WORKFLOW_TYPE}" AND ExecutionStatus != "ContinuedAsNew"'
    async for wf in client.list_workflows(query):
        if wf.typed_search_attributes.get(sa.ONBOARDING_STATE) == OnboardingState.AWAITING_DEAL:
            done.skipped["waiting for its closed-won deal (writes its record when it comes)"] += 1
        elif wf.status is WorkflowExecutionStatus.RUNNING:
            account_id = account_id_for(wf.id)
            done.asked[account_id] = store.revision(account_id)
            await client.get_workflow_handle(wf.id).signal(AccountOnboarding.refresh_record)
        else:
            await _finished(client, store, wf, done)
    recorded = await _recorded(store, done.asked, wait_s)
    for line in done.lines(recorded):
        typer.echo(line)
    store.close()
    if recorded < len(done.asked):
        typer.echo(
            f"{len(done.asked) - recorded} running onboardings have not written their record "
            f"within {wait_s:g} s: is the worker running? (they write it when it is; "
            "or see its log)",
            err=True,
        )


async def _recorded(store: RecordStore, asked: dict[str, int | None], wait_s: float) -> int:
    """How many of the `asked` onboardings have written a newer record, waiting up to
    `wait_s` seconds for all of them."""
    deadline = time.monotonic() + wait_s
    while True:
        newer = sum(
            (now := store.revision(account)) is not None and (before is None or now > before)
            for account, before in asked.items()
        )
        if newer == len(asked) or time.monotonic() >= deadline:
            return newer
        await asyncio.sleep(0.5)


@app.command()
def backfill(
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for running onboardings to write theirs")
    ] = 30,
) -> None:
    """Fill the records store from Temporal: running onboardings write their record,
    finished ones within the namespace's retention are written from their final status."""
    run(_backfill(wait))
