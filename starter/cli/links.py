"""`onboarding link issue|revoke ACCOUNT`: the customer's progress link
(`activities.records.links`), kept in the records store; Temporal is not asked.

    onboarding link issue 001...     # print the link (the live one, signed now)
    onboarding link revoke 001...    # it opens nothing from now on; `issue` makes a new one
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from activities.records.links import CustomerLinks
from activities.records.store import RecordStore, RecordStoreError
from starter.cli.errors import fail, settings_error
from starter.cli.options import account_id_of
from starter.settings import IngressSettings, local_secrets_path

app = typer.Typer(
    help="The customer's progress page link: issue it, revoke it.", no_args_is_help=True
)

Account = Annotated[str, typer.Argument(help="Account id")]


def _settings() -> IngressSettings:
    try:
        # Unset secrets come from the ones `onboarding up` generated for the local stack.
        return IngressSettings(_env_file=local_secrets_path())
    except ValidationError as exc:
        fail(str(settings_error(exc)))


def _store(settings: IngressSettings) -> RecordStore:
    try:
        return RecordStore.open(settings.records_url)
    except RecordStoreError as exc:
        fail(str(exc))


@app.command()
def issue(account: Account) -> None:
    """Print the account's progress link: its live one, signed now (a new one after a
    revoke), valid for ONBOARDING_LINK_DAYS."""
    account_id = account_id_of(account)
    settings = _settings()
    links = CustomerLinks.of(settings)
    if links is None:
        fail(
            "customer links are off: set ONBOARDING_LINK_SECRETS (the worker and the "
            "ingress need the same)"
        )
    store = _store(settings)
    if store.get(account_id) is None:
        fail(f"no onboarding record for account {account_id} in the records store")
    typer.echo(links.issue(store, account_id, datetime.now(UTC)))


@app.command()
def revoke(account: Account) -> None:
    """Revoke the account's progress link: every copy of it opens nothing from now on."""
    account_id = account_id_of(account)
    revoked = _store(_settings()).revoke_links(account_id, datetime.now(UTC))
    typer.echo(
        f"revoked the progress link of {account_id}"
        if revoked
        else f"{account_id} has no live progress link"
    )
