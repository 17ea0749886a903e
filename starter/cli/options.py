"""Arguments and options several commands share."""

from __future__ import annotations

import typer

from workflows.ids import canonical_account_id
from workflows.models import account_id_for

FX_RATES_OPTION = typer.Option(
    envvar="ONBOARDING_FX_RATES", help="Dated exchange rates (TOML) for deals not in USD"
)


def account_id_of(account: str) -> str:
    """Accept `acme` or `onboarding-acme`; a Salesforce id in any of its forms names one
    account (`workflows.ids`)."""
    return canonical_account_id(account_id_for(account.strip()))
