"""Deal values in other currencies, in US dollars by the operator's dated rates.

The tier rule, the `AcvUsd` search attribute and every report count ACV in US dollars. A
deal sold in another currency is converted by `to_usd` (a pure function: no I/O, no
clock) with the rate in force on its close date, from a TOML file of dated rates
(`ONBOARDING_FX_RATES`, default `playbooks/fx-rates.toml`):

    [rates]
    JPY = [{ effective = 2026-01-01, per_usd = 150.0 }, { effective = 2026-07-01, per_usd = 148.5 }]

`per_usd` is how many units of the currency one US dollar buys; the rate in force on a
day is the one with the latest `effective` date on or before it. A deal in a currency
the file does not list, or closed before its first rate, is refused rather than guessed.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflows.models import FxRate
from workflows.playbook import PLAYBOOK_DIR
from workflows.validation import dotted, message

USD = "USD"
DEFAULT_FX_RATES = PLAYBOOK_DIR / "fx-rates.toml"
# ISO 4217's current codes, from the iso-codes data pycountry ships.
ISO_4217: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies)


class CurrencyError(ValueError):
    """A value that cannot be counted in US dollars; the message says why."""


class FxRatesError(ValueError):
    """A rates file that cannot be used, with every problem named by its key."""


def currency_code(value: str) -> str:
    """An ISO 4217 code, upper-cased (`jpy` -> `JPY`); raises CurrencyError otherwise."""
    code = value.strip().upper()
    if code not in ISO_4217:
        raise CurrencyError(f"{value!r} is not an ISO 4217 currency code (like USD, EUR, JPY)")
    return code


class FxRates(BaseModel):
    """Dated rates per currency: `rates[code]` sorted by `effective`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rates: dict[str, list[FxRate]] = Field(default_factory=dict)

    @field_validator("rates")
    @classmethod
    def _known_and_dated(cls, value: dict[str, list[FxRate]]) -> dict[str, list[FxRate]]:
        for code, dated in value.items():
            if code != currency_code(code):
                raise ValueError(f"{code}: write the code in upper case ({code.upper()})")
            if code == USD:
                raise ValueError("USD: needs no rate (ACV is counted in US dollars)")
            if not dated:
                raise ValueError(f"{code}: give at least one rate")
            days = [r.effective for r in dated]
            if len(set(days)) != len(days):
                raise ValueError(f"{code}: two rates take effect on the same day")
        return {code: sorted(dated, key=lambda r: r.effective) for code, dated in value.items()}

    def in_force(self, currency: str, on: date) -> FxRate | None:
        """The rate of `currency` in force on `on`: the latest to take effect by then."""
        due = [r for r in self.rates.get(currency, []) if r.effective <= on]
        return due[-1] if due else None


NO_RATES = FxRates()  # only US dollars are accepted


def to_usd(amount: float, currency: str, on: date, rates: FxRates) -> tuple[float, FxRate | None]:
    """`amount` of `currency` (an ISO 4217 code) in US dollars, rounded to the cent, with
    the rate used (None for USD). Raises CurrencyError for a code that is not ISO 4217 or
    a currency with no rate in force on `on`."""
    code = currency_code(currency)
    if code == USD:
        return amount, None
    rate = rates.in_force(code, on)
    if rate is None:
        listed = rates.rates.get(code)
        if listed:
            reason = f"its first configured rate takes effect on {listed[0].effective}"
        else:
            known = ", ".join(sorted(rates.rates)) or "none"
            reason = f"no rate is configured for it (currencies with rates: {known})"
        raise CurrencyError(f"cannot count {code} in US dollars on {on}: {reason}")
    return round(amount / rate.per_usd, 2), rate


def parse_fx_rates(text: str, source: str = "<rates>") -> FxRates:
    try:
        raw = tomllib.loads(text)
        return FxRates.model_validate(raw)
    except tomllib.TOMLDecodeError as exc:
        raise FxRatesError(f"{source}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{dotted(e['loc']) or '(top level)'}: {message(e)}" for e in exc.errors()
        )
        raise FxRatesError(f"{source}: {problems}") from None


def load_fx_rates(path: str | Path = DEFAULT_FX_RATES) -> FxRates:
    """The rates file at `path`; raises FxRatesError naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FxRatesError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FxRatesError(f"{path}: not UTF-8 text") from None
    return parse_fx_rates(text, str(path))
