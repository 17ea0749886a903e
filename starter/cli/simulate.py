"""`onboarding simulate`: what a playbook change would do, on a cohort of deals, before
it is deployed (docs/rules.md, *Simulating a playbook change*). Runs here, without
Temporal: the workflow's own rules as a discrete-event simulation (`starter.simulation`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from starter.cli.errors import fail
from starter.simulation import chart
from starter.simulation.cohort import CohortError, read_cohort, sample_cohort
from starter.simulation.compare import compare, table
from starter.simulation.model import BehaviourError, BehaviourModel, load_model
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, load_playbook


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def simulate(
    playbook: Annotated[Path, typer.Option(help="The new playbook TOML to try")],
    against: Annotated[
        Path, typer.Option(help="The current playbook TOML to compare with")
    ] = DEFAULT_PLAYBOOK,
    cohort: Annotated[
        Path | None,
        typer.Option(help="Deals as .csv or .jsonl, read as `onboarding import` reads them"),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(min=1, max=100_000, help="Or: this many sample deals made from the seed"),
    ] = None,
    behaviour: Annotated[
        Path | None, typer.Option(help="Customer-behaviour model TOML (default: the built-in)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same customers")] = 1,
    days: Annotated[
        int, typer.Option(min=1, max=730, help="Days simulated after each closed-won")
    ] = 120,
    start: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"], help="The sample's first closed-won day (default: today, UTC)"
        ),
    ] = None,
    format_: Annotated[Format, typer.Option("--format", help="table or json")] = Format.TABLE,
    chart_path: Annotated[
        Path | None,
        typer.Option("--chart", help="Also write the charts: .html (a page) or .svg"),
    ] = None,
) -> None:
    """Run the same cohort through the current and the new playbook with a seeded
    customer-behaviour model, and print side by side: escalations by trigger and
    audience, automatic tier changes, completion and activation rates, TTV median and
    p75, and the CSM's notifications per week."""
    if (cohort is None) == (sample is None):
        fail("give one of --cohort FILE or --sample N")
    if chart_path is not None and chart_path.suffix.lower() not in (".html", ".svg"):
        fail(f"--chart {chart_path}: expected a .html or .svg file")
    try:
        new, current = load_playbook(playbook), load_playbook(against)
        model = load_model(behaviour) if behaviour else BehaviourModel()
        if cohort is not None:
            deals = read_cohort(cohort, current)
        else:
            assert sample is not None
            first = (start or datetime.now(UTC)).replace(
                hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC
            )
            deals = sample_cohort(sample, seed, first, current)
    except (PlaybookError, BehaviourError, CohortError) as exc:
        fail(str(exc))
    result = compare(deals, new, current, model, seed, days)
    text = table(result)
    if format_ is Format.JSON:
        typer.echo(result.model_dump_json(indent=2))
    else:
        typer.echo(text)
    if chart_path is not None:
        is_html = chart_path.suffix.lower() == ".html"
        chart_path.write_text(chart.page(result, text) if is_html else chart.svg(result))
        typer.echo(f"chart written to {chart_path}", err=True)
