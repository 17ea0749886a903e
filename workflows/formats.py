"""The one way each value is written for people (UI summaries, tier reasons, messages,
CLI tables): amounts, US dollars and days. Pure: usable in workflow code."""

from __future__ import annotations

from datetime import UTC, datetime


def amount_text(amount: float) -> str:
    """`48,000` or `49,999.99`: cents only when there are some, so $49,999.99 never reads
    as $50,000 (a tier reason would then contradict its threshold)."""
    return f"{amount:,.0f}" if amount == int(amount) else f"{amount:,.2f}"


def usd_text(amount: float) -> str:
    """An amount in US dollars: `$48,000`, `$49,999.99`."""
    return f"${amount_text(amount)}"


def day_text(at: datetime) -> str:
    """The UTC day of `at` as `YYYY-MM-DD` (a naive `at` is taken as UTC already: never
    the machine's zone, so workflow code gets the same text on every worker)."""
    return (at.astimezone(UTC) if at.tzinfo else at).date().isoformat()


def score_text(score: float | None) -> str:
    """A health score as people read it: `47.9`, `100`; `n/a` before any is due."""
    return f"{score:g}" if score is not None else "n/a"
