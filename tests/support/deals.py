"""Closed-won deals as the workflow tests make them, one per tier."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from workflows.models import ClosedWonDeal


def make_deal(
    account_id: str | None = None, *, close_date: datetime, **overrides: Any
) -> ClosedWonDeal:
    """A deal closed at `close_date`: read it from the clock of the server under test
    (`await env.get_current_time()` on the time-skipping server, whose clock is not this
    machine's), so no test depends on the day it runs."""
    fields: dict[str, Any] = {
        "account_id": account_id or f"acct-{uuid.uuid4().hex[:8]}",
        "account_name": "Acme Corp",
        "acv_usd": 20_000,
        "close_date": close_date,
        "contacts": [
            {"name": "Cara Champion", "email": "cara@acme.test", "role": "champion"},
            {"name": "Sam Sponsor", "email": "sam@acme.test", "role": "executive_sponsor"},
        ],
        "success_criteria": ["10 invoices processed weekly"],
    }
    return ClosedWonDeal.model_validate(fields | overrides)


# Deal facts that land each tier with the default playbook (`make_deal(..., **TIER_DEALS[t])`).
TIER_DEALS: dict[str, dict[str, Any]] = {
    "high_touch": {"acv_usd": 80_000, "stakeholder_count": 4},
    "tech_touch": {"acv_usd": 20_000},
    "self_serve": {"acv_usd": 2_000},
}
