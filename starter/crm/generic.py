"""The generic deal webhook: the body is a ClosedWonDeal as JSON (for a CRM without its
own parser, or a script). Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from activities.crm_records import PayloadError, build_deal
from activities.money import NO_RATES, FxRates
from workflows.models import ClosedWonDeal


def generic_deal(payload: object, *, rates: FxRates = NO_RATES) -> ClosedWonDeal:
    """The generic webhook body is a ClosedWonDeal as JSON; `crm.source` defaults to
    "generic". A deal in another currency gives `acv` and `currency` instead of `acv_usd`.
    Validation errors become PayloadError naming the field (`contacts[0].email`).
    """
    if not isinstance(payload, dict):
        raise PayloadError("body", "must be a JSON object (a ClosedWonDeal)")
    crm = payload.get("crm")
    if crm is None:
        payload = payload | {"crm": {"source": "generic"}}
    elif isinstance(crm, dict) and "source" not in crm:
        payload = payload | {"crm": crm | {"source": "generic"}}
    return build_deal(payload, {}, rates)
