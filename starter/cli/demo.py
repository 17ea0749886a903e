"""`onboarding demo`: sample accounts across the tiers, backdated so escalations show at
once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from activities.client import connect
from activities.starting import AlreadyOnboardedError, start_onboarding
from starter.cli.calls import update
from starter.cli.errors import CliError, run
from starter.client import ui_base_url
from workflows import contract
from workflows.models import ClosedWonDeal, PauseRequest
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook


def demo_deals(now: datetime) -> list[tuple[ClosedWonDeal, str]]:
    """Sample accounts (default playbook numbers) and what each shows within a minute."""
    day = timedelta(days=1)

    def contacts(domain: str) -> list[dict[str, str]]:
        return [
            {"name": "Casey Champion", "email": f"casey@{domain}", "role": "champion"},
            {"name": "Sam Sponsor", "email": f"sam@{domain}", "role": "executive_sponsor"},
        ]

    specs: list[tuple[dict[str, Any], str]] = [
        (
            {
                "account_id": "demo-acme",
                "account_name": "Acme Corp",
                "acv_usd": 60000,
                "seats": 120,
                "stakeholder_count": 4,
                "configuration_hours": 6,
                "close_date": now - 6 * day,
                "contacts": contacts("acme.example"),
                "crm": {"source": "hubspot", "deal_id": "D-1001", "company_id": "C-1001"},
            },
            "high_touch, closed 6 days ago, no login: the day-5 CSM check-in fires at once",
        ),
        (
            {
                "account_id": "demo-globex",
                "account_name": "Globex",
                "acv_usd": 85000,
                "seats": 300,
                "needs_api_integration": True,
                "close_date": now - 31 * day,
                "contacts": contacts("globex.example"),
                "success_criteria": ["Nightly sync live for all regions"],
                "completed_milestones": [
                    {"milestone_id": "first_login", "at": now - 29 * day},
                    {"milestone_id": "kickoff_call", "at": now - 24 * day},
                ],
                "crm": {"source": "salesforce", "deal_id": "006-GLX", "company_id": "001-GLX"},
            },
            "high_touch, 31 days in without first value: activation missed, stall escalations",
        ),
        (
            {
                "account_id": "demo-initech",
                "account_name": "Initech",
                "acv_usd": 3000,
                "seats": 5,
                "close_date": now - 14 * day + timedelta(seconds=40),
                "contacts": contacts("initech.example")[:1],
            },
            "self_serve, 14 days without progress in ~40 s: upgrades itself to tech_touch",
        ),
        (
            {
                "account_id": "demo-umbrella",
                "account_name": "Umbrella Health",
                "acv_usd": 24000,
                "seats": 40,
                "configuration_hours": 1,
                "close_date": now - 5 * day,
                "contacts": contacts("umbrella.example"),
                "completed_milestones": [
                    {"milestone_id": "first_login", "at": now - 4 * day},
                    {"milestone_id": "kickoff_call", "at": now - 3 * day},
                ],
            },
            "tech_touch, migrated mid-flight with 2 milestones done, then paused by the demo",
        ),
        (
            {
                "account_id": "demo-hooli",
                "account_name": "Hooli",
                "acv_usd": 12000,
                "seats": 25,
                "configuration_hours": 0.5,
                "close_date": now,
                "contacts": contacts("hooli.example"),
            },
            "tech_touch, closed just now: a fresh plan with every deadline ahead",
        ),
    ]
    return [(ClosedWonDeal.model_validate(spec), note) for spec, note in specs]


async def _demo(playbook_path: Path) -> None:
    playbook = load_playbook(playbook_path)
    client = await connect()
    for deal, note in demo_deals(datetime.now(UTC)):
        try:
            handle, accepted = await start_onboarding(client, deal, playbook)
            new = accepted.started
        except AlreadyOnboardedError as exc:
            typer.echo(f"{deal.workflow_id}: {exc}")
            continue
        if new:
            typer.echo(f"started {handle.id}: {note}")
        else:
            typer.echo(f"already running {handle.id}")
        if deal.account_id == "demo-umbrella" and new:
            try:
                await update(
                    client,
                    deal.account_id,
                    contract.PAUSE,
                    PauseRequest(
                        by="demo",
                        reason="customer froze the project during a re-org",
                        resume_on=datetime.now(UTC) + timedelta(days=21),
                    ),
                )
                typer.echo(f"  paused {handle.id} until in 21 days")
            except CliError as exc:
                typer.echo(f"  could not pause {handle.id}: {exc}", err=True)
    base = f"{ui_base_url()}/namespaces/{client.namespace}/workflows"
    typer.echo(f"\nUI: {base}")
    typer.echo("Watch: onboarding list; onboarding status demo-initech (tier change in ~40 s)")


def demo(
    playbook: Annotated[Path, typer.Option(help="Playbook TOML")] = DEFAULT_PLAYBOOK,
) -> None:
    """Start sample accounts across the tiers, backdated so escalations show at once."""
    run(_demo(playbook))
