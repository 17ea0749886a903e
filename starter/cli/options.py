"""Arguments and options several commands share."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

import typer

from workflows.ids import canonical_account_id
from workflows.models import account_id_for

FX_RATES_OPTION = typer.Option(
    envvar="ONBOARDING_FX_RATES", help="Dated exchange rates (TOML) for deals not in USD"
)

E = TypeVar("E", bound=StrEnum)


def account_id_of(account: str) -> str:
    """Accept `acme` or `onboarding-acme`; a Salesforce id in any of its forms names one
    account (`workflows.ids`)."""
    return canonical_account_id(account_id_for(account.strip()))


def one_of(kind: type[E], noun: str) -> Callable[[str | E], E]:
    """The parser (`typer.Option(parser=...)`) of a value that is one of `kind`'s: any
    other is refused, usage error (exit 2), as `Invalid value for '--tier': 'gold' is
    not a tier (high_touch, tech_touch, self_serve)`; `noun` is `a tier`."""
    choices = ", ".join(member.value for member in kind)

    def parse(value: str | E) -> E:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except ValueError:
            raise typer.BadParameter(f"{value!r} is not {noun} ({choices})") from None

    return parse
