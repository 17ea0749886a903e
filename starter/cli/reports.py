"""`onboarding status` (one account, readable) and `onboarding list` (a report from the
search attributes)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from activities.client import connect
from starter.cli.calls import query_status
from starter.cli.errors import run
from starter.cli.options import account_id_of
from starter.cli.render import date_text, render_status, table_lines
from starter.client import ui_url
from workflows import search_attributes as sa
from workflows.contract import WORKFLOW_TYPE
from workflows.formats import usd_text
from workflows.models import OnboardingState, Tier, account_id_for


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


async def _list(query: str, limit: int) -> None:
    client = await connect()
    rows = [["ACCOUNT", "STATE", "TIER", "PHASE", "HEALTH", "ACV", "OWNER", "NEXT DEADLINE"]]
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        health = attrs.get(sa.ONBOARDING_HEALTH)
        acv = attrs.get(sa.ACV_USD)
        deadline = attrs.get(sa.NEXT_DEADLINE)
        state = attrs.get(sa.ONBOARDING_STATE) or "-"
        if wf.status is not None and wf.status.name not in ("RUNNING", "COMPLETED"):
            state = f"{state} ({wf.status.name.lower()})"
        rows.append(
            [
                account_id_for(wf.id),
                state,
                attrs.get(sa.ONBOARDING_TIER) or "-",
                attrs.get(sa.ONBOARDING_PHASE) or "-",
                "-" if health is None else str(health),
                "-" if acv is None else usd_text(acv),
                attrs.get(sa.CSM_OWNER) or "-",
                date_text(deadline),
            ]
        )
    if len(rows) == 1:
        typer.echo(f"no onboardings match: {query}", err=True)
        return
    for line in table_lines(rows, indent=""):
        typer.echo(line)


def list_(
    state: Annotated[OnboardingState | None, typer.Option(help="Only this state")] = None,
    tier: Annotated[Tier | None, typer.Option(help="Only this tier")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this CSM")] = None,
    running: Annotated[bool, typer.Option("--running", help="Only running ones")] = False,
    query: Annotated[
        str | None, typer.Option(help="A raw visibility query instead of the filters")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 200,
) -> None:
    """List onboardings from the search attributes, one line each."""
    run(_list(query or visibility_query(state, tier, owner, running), limit))
