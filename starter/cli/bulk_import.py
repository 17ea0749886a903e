"""`onboarding import`: many closed-won deals from a CSV (CRM exports as downloaded) or
JSONL file, with a summary."""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from activities.client import connect
from activities.money import DEFAULT_FX_RATES, load_fx_rates
from starter import bulk
from starter.cli.errors import CliError, run
from starter.cli.options import FX_RATES_OPTION, one_of
from starter.exports import WON_STAGES
from workflows.playbook import DEFAULT_PLAYBOOK, load_playbook


def _print_import(summary: bulk.ImportSummary) -> None:
    typer.echo(summary.headline())
    for result in summary.of(bulk.Outcome.ALREADY_FINISHED):
        typer.echo(
            f"  line {result.line}: {result.account_id}: already onboarded ({result.reason})"
        )
    for result in summary.of(bulk.Outcome.SKIPPED):
        typer.echo(f"  line {result.line}: skipped: {result.reason}")
    for result in summary.of(bulk.Outcome.REJECTED):
        typer.echo(f"  line {result.line}: {result.reason}")


def _column_mapping(given: list[str]) -> tuple[tuple[str, str], ...]:
    """`--column "Their Header=our_column"` (empty: leave the column out)."""
    pairs = []
    for item in given:
        theirs, sep, ours = item.rpartition("=")
        if not sep or not theirs.strip():
            raise CliError(
                f"--column {item!r}: expected 'Their Header=column' "
                "(or 'Their Header=' to leave it out)"
            )
        pairs.append((theirs.strip(), ours.strip()))
    return tuple(pairs)


async def _import(
    file: Path,
    playbook_path: Path,
    concurrency: int,
    dry_run: bool,
    options: bulk.CsvOptions,
    columns: list[str],
    fx_rates: Path,
) -> bulk.ImportSummary:
    options = dataclasses.replace(options, columns=_column_mapping(columns))
    playbook = load_playbook(playbook_path)
    rates = load_fx_rates(fx_rates)
    try:
        read = bulk.read_file(file, playbook, options=options, rates=rates)
    except bulk.ImportFileError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"reading {file.name} as {read.layout}", err=True)
    if dry_run:
        return bulk.validate_only(read.rows)
    client = await connect()
    with typer.progressbar(
        length=len(read.rows), label=f"importing {file.name}", file=sys.stderr
    ) as bar:
        return await bulk.import_deals(
            client, read.rows, playbook, concurrency=concurrency, on_result=lambda _: bar.update(1)
        )


class PresetName(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"


def import_(
    file: Annotated[Path, typer.Argument(help="Deals as .csv (one per row) or .jsonl")],
    playbook: Annotated[
        Path, typer.Option(help="Playbook TOML pinned into each onboarding")
    ] = DEFAULT_PLAYBOOK,
    concurrency: Annotated[
        int, typer.Option(min=1, max=100, help="Deals delivered at the same time")
    ] = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate only; start nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The summary as one JSON object")] = False,
    preset: Annotated[
        PresetName | None,
        typer.Option(
            help="The CRM export's columns (default: detected from the header)",
            parser=one_of(PresetName, "a preset"),
        ),
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(
            help="'Their Header=our_column' for a column of another name ('Their Header=' "
            "leaves it out); repeatable"
        ),
    ] = None,
    day_first: Annotated[
        bool, typer.Option("--day-first", help="Dates like 30/11/2026 (default: 11/30/2026)")
    ] = False,
    decimal_comma: Annotated[
        bool,
        typer.Option("--decimal-comma", help="Amounts like 50.000,00 (default: 50,000.00)"),
    ] = False,
    won_stage: Annotated[
        list[str] | None,
        typer.Option(
            help="A stage that means closed-won (default: Closed Won, closedwon); repeatable"
        ),
    ] = None,
    fx_rates: Annotated[Path, FX_RATES_OPTION] = DEFAULT_FX_RATES,
) -> None:
    """Start the onboardings of many closed-won deals (idempotent per account).

    CSV columns: account_id, account_name, acv_usd (or acv with currency), close_date
    and optionally seats, integrations and success_criteria (;-separated),
    needs_api_integration, custom_data_migration, stakeholder_count,
    configuration_hours, champion_name / champion_email, sponsor_name / sponsor_email,
    crm_source, crm_deal_id, stage / won (rows not closed-won are skipped), products
    (a multi-product deal: crm:40; analytics:25>crm); an empty cell takes the default.
    A HubSpot deals export or a Salesforce opportunity report is read as downloaded
    (--preset, detected by its id columns). JSONL: one ClosedWonDeal object
    per line. Exits 1 if any row was rejected.
    """
    options = bulk.CsvOptions(
        preset=preset.value if preset else None,
        day_first=day_first,
        decimal_comma=decimal_comma,
        won_stages=tuple(won_stage) if won_stage else WON_STAGES,
    )
    summary = run(_import(file, playbook, concurrency, dry_run, options, column or [], fx_rates))
    if as_json:
        typer.echo(summary.model_dump_json())
    else:
        _print_import(summary)
    if summary.has_rejected:
        raise typer.Exit(1)
