"""`onboarding status` (one account, readable) and `onboarding list` (a report from the
search attributes)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Annotated

import temporalio.client
import typer

from activities.client import connect
from starter.cli.calls import query_status
from starter.cli.errors import CliError, run
from starter.cli.options import account_id_of, one_of
from starter.cli.render import date_text, render_status, table_lines
from starter.client import ui_url
from workflows import search_attributes as sa
from workflows.contract import WORKFLOW_TYPE
from workflows.formats import usd_text
from workflows.models import OnboardingInput, OnboardingState, Tier, account_id_for


async def _status(account: str, as_json: bool) -> None:
    account_id = account_id_of(account)
    client = await connect()
    status = await query_status(client, account_id)
    if as_json:
        typer.echo(status.model_dump_json(indent=2))
    else:
        typer.echo(render_status(status))
        typer.echo(f"\nUI: {ui_url(status.workflow_id, client.namespace)}")


def status(
    account: Annotated[str, typer.Argument(help="Account id")],
    as_json: Annotated[bool, typer.Option("--json", help="The status query as JSON")] = False,
) -> None:
    """Show one onboarding: tier and why, state, health, TTV, plan, escalations, audit."""
    run(_status(account, as_json))


def visibility_query(
    state: OnboardingState | None = None,
    tier: Tier | None = None,
    owner: str | None = None,
    running: bool = False,
) -> str:
    """The list filters as a Temporal visibility query over the search attributes."""
    parts = [f'WorkflowType = "{WORKFLOW_TYPE}"']
    if state is not None:
        parts.append(f'{sa.ONBOARDING_STATE.name} = "{state.value}"')
    if tier is not None:
        parts.append(f'{sa.ONBOARDING_TIER.name} = "{tier.value}"')
    if owner:
        parts.append(f"{sa.CSM_OWNER.name} = {json.dumps(owner)}")
    if running:
        parts.append('ExecutionStatus = "Running"')
    return " AND ".join(parts)


async def _run_number(
    client: temporalio.client.Client, run: temporalio.client.WorkflowExecution
) -> int:
    """Which of the account's onboardings `run` is (rules §2: an expansion is a later run
    of the same workflow id): the `onboarding_number` it started with, from its first
    history event."""
    handle = client.get_workflow_handle(run.id, run_id=run.run_id)
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [started] = await client.data_converter.decode(payloads, [OnboardingInput])
        return int(started.onboarding_number)
    raise CliError(f"{run.id}: run {run.run_id} has no history")


async def _numbers(
    client: temporalio.client.Client, runs: list[temporalio.client.WorkflowExecution]
) -> dict[str, int]:
    """The onboarding number (by run id) of each run of an account listed more than once."""
    counts = Counter(wf.id for wf in runs)
    repeated = [wf for wf in runs if counts[wf.id] > 1]
    found = await asyncio.gather(*(_run_number(client, wf) for wf in repeated))
    return {wf.run_id: n for wf, n in zip(repeated, found, strict=True)}


async def _list(query: str, limit: int) -> None:
    client = await connect()
    runs = [wf async for wf in client.list_workflows(query, limit=limit)]
    if not runs:
        typer.echo(f"no onboardings match: {query}", err=True)
        return
    numbers = await _numbers(client, runs)
    number_column = ["#"] if numbers else []
    rows = [
        [
            "ACCOUNT",
            *number_column,
            *("STATE", "TIER", "PHASE", "HEALTH", "ACV", "OWNER", "NEXT DEADLINE"),
        ]
    ]
    for wf in runs:
        attrs = wf.typed_search_attributes
        health = attrs.get(sa.ONBOARDING_HEALTH)
        acv = attrs.get(sa.ACV_USD)
        deadline = attrs.get(sa.NEXT_DEADLINE)
        state = attrs.get(sa.ONBOARDING_STATE) or "-"
        if wf.status is not None and wf.status.name not in ("RUNNING", "COMPLETED"):
            state = f"{state} ({wf.status.name.lower()})"
        number = [f"#{numbers[wf.run_id]}" if wf.run_id in numbers else ""] if numbers else []
        rows.append(
            [
                account_id_for(wf.id),
                *number,
                state,
                attrs.get(sa.ONBOARDING_TIER) or "-",
                attrs.get(sa.ONBOARDING_PHASE) or "-",
                "-" if health is None else str(health),
                "-" if acv is None else usd_text(acv),
                attrs.get(sa.CSM_OWNER) or "-",
                date_text(deadline),
            ]
        )
    for line in table_lines(rows, indent=""):
        typer.echo(line)


def list_(
    state: Annotated[
        OnboardingState | None,
        typer.Option(help="Only this state", parser=one_of(OnboardingState, "a state")),
    ] = None,
    tier: Annotated[
        Tier | None, typer.Option(help="Only this tier", parser=one_of(Tier, "a tier"))
    ] = None,
    owner: Annotated[str | None, typer.Option(help="Only this CSM")] = None,
    running: Annotated[bool, typer.Option("--running", help="Only running ones")] = False,
    query: Annotated[
        str | None, typer.Option(help="A raw visibility query instead of the filters")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 200,
) -> None:
    """List onboardings from the search attributes, one line each; an account listed
    more than once (an expansion after an earlier onboarding) has its onboardings
    numbered (#)."""
    run(_list(query or visibility_query(state, tier, owner, running), limit))
