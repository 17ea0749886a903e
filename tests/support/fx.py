"""The operator's dated exchange rates as the tests give them: built from the test's own
clock (rates in force from 90 days ago), never a literal date near today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from activities.money import FxRates, parse_fx_rates

TODAY = datetime.now(UTC).date()


def rates(**per_currency: list[tuple[date, float]]) -> FxRates:
    """Rates per ISO 4217 code: `rates(EUR=[(effective, per_usd), ...])`."""
    lines = ["[rates]"]
    for code, dated in per_currency.items():
        entries = ", ".join(f"{{ effective = {d.isoformat()}, per_usd = {r} }}" for d, r in dated)
        lines.append(f"{code} = [{entries}]")
    return parse_fx_rates("\n".join(lines))


# 150 yen and 0.9 euro to the dollar, in force since 90 days ago.
YEN = rates(JPY=[(TODAY - timedelta(days=90), 150.0)], EUR=[(TODAY - timedelta(days=90), 0.9)])
