"""`onboarding report`: the portfolio report (rules §8, docs/rules.md) from the records
store, as tables, CSV or JSON. Reads only the store (ONBOARDING_RECORDS_URL), so it works
while Temporal is down and after its retention."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from pydantic import ValidationError

from activities.records.store import RecordStore, RecordStoreError
from activities.settings import SharedSettings
from starter.cli.errors import fail, settings_error
from starter.cli.options import one_of
from starter.cli.portfolio_render import render_table
from starter.reports.flat import csv_text
from starter.reports.portfolio import portfolio_report
from starter.reports.rows import cohort_error
from workflows.models import Tier
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, load_playbook


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _cohort(value: str | None) -> str | None:
    if value is not None and (problem := cohort_error(value)):
        raise typer.BadParameter(problem)
    return value


def report(
    tier: Annotated[
        Tier | None,
        typer.Option(help="Only onboardings now in this tier", parser=one_of(Tier, "a tier")),
    ] = None,
    cohort: Annotated[
        str | None, typer.Option(help="Only this closed-won month, YYYY-MM", callback=_cohort)
    ] = None,
    format_: Annotated[
        Format,
        typer.Option(
            "--format",
            help="table; csv: the group figures, one row each",
            parser=one_of(Format, "a format"),
        ),
    ] = Format.TABLE,
    playbook: Annotated[
        Path, typer.Option(envvar="ONBOARDING_PLAYBOOK", help="Playbook TOML: the targets")
    ] = DEFAULT_PLAYBOOK,
) -> None:
    """The portfolio report from the records store: per tier, per cohort and per tier x
    cohort against the playbook's targets, drop-off, escalations, tier changes, the
    at-risk list, CSM load and headcount, the tier-boundary review."""
    try:
        url = SharedSettings().records_url
    except ValidationError as exc:
        fail(str(settings_error(exc)))
    try:
        targets = load_playbook(playbook)
        store = RecordStore.open(url, create=False)
    except (PlaybookError, RecordStoreError) as exc:
        fail(str(exc))
    try:
        result = portfolio_report(store, targets, datetime.now(UTC), tier=tier, cohort=cohort)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"records store {store.engine.url.render_as_string(hide_password=True)}: {exc}")
    finally:
        store.close()
    if format_ is Format.JSON:
        typer.echo(result.model_dump_json(indent=2))
    elif format_ is Format.CSV:
        typer.echo(csv_text(result), nl=False)
    else:
        typer.echo(render_table(result), nl=False)
