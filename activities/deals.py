"""The one door every closed-won deal comes in by.

The webhooks (`starter.crm`), the HubSpot deal fetch (`activities.crm`), `onboarding
import` and `onboarding start` all build their `ClosedWonDeal` with `inbound_deal`, so
each of them:

1. names the account by its canonical id (`workflows.ids`): a Salesforce Account's 15- and
   18-character ids, in any letter case, with or without surrounding space, are one
   customer and one onboarding;
2. counts the ACV in US dollars (`activities.money`): a deal in another currency gives
   `acv` and `currency`, and gets `acv_usd` and the `fx_rate` it was converted with.

Problems raise pydantic's `ValidationError` located at the deal's field (`currency`,
`acv`, ...), so each caller names the field in its sender's terms as it does for any
other (`Opportunity.CurrencyIsoCode`, the CSV column `Amount Currency`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from activities.money import USD, CurrencyError, FxRates, currency_code, to_usd
from workflows.ids import canonical_account_id, salesforce_id18
from workflows.models import ClosedWonDeal, CrmRef, Playbook
from workflows.rules import product_gate_id

# A deal closed-won longer ago than this has no onboarding left to run: every deadline of
# a plan (at most a few months) has passed, and catching up years of weekly steps costs
# the workflow's first task seconds of CPU.
MAX_CLOSED_WON_AGE = timedelta(days=365)


def inbound_deal(
    fields: Mapping[str, Any], rates: FxRates, now: datetime | None = None
) -> ClosedWonDeal:
    """A deal from a sender's fields (a ClosedWonDeal's, as JSON values or models).

    The ACV is `acv_usd`, or `acv` in `currency` (an ISO 4217 code, default USD), which
    is converted with the rate in `rates` in force on the close date; `fx_rate` is the
    service's to set. A close date more than `MAX_CLOSED_WON_AGE` before `now` (default
    the clock) is refused. Raises ValidationError, e.g. at `currency` when no rate is
    known.
    """
    deal = _inbound_deal(fields, rates)
    now = now or datetime.now(UTC)
    if deal.close_date < now - MAX_CLOSED_WON_AGE:
        raise _error(
            "close_date",
            fields.get("close_date"),
            f"closed-won {(now - deal.close_date).days} days ago, more than "
            f"{MAX_CLOSED_WON_AGE.days}: its whole plan has passed; start it from when its "
            "onboarding really began and report what is done (completed_milestones)",
        )
    return deal


def _inbound_deal(fields: Mapping[str, Any], rates: FxRates) -> ClosedWonDeal:
    data = dict(fields)
    if isinstance(data.get("account_id"), str):
        data["account_id"] = canonical_account_id(data["account_id"])
    crm = data.get("crm")
    if isinstance(crm, CrmRef):
        crm = crm.model_dump(exclude_unset=True)
    if isinstance(crm, dict):
        data["crm"] = _canonical_crm_ids(crm)

    if data.pop("fx_rate", None) is not None:  # null: a deal exported by this service
        raise _error("fx_rate", fields["fx_rate"], "is set by the service from its rates file")
    given = data.pop("currency", None)
    if given is None or given == "":
        given = USD
    if not isinstance(given, str):
        raise _error("currency", given, "must be an ISO 4217 code (like USD, EUR, JPY)")
    try:
        currency = currency_code(given)
    except CurrencyError as exc:
        raise _error("currency", given, str(exc)) from None
    acv = data.pop("acv", None)
    if acv is None:
        if currency != USD:
            raise _error("acv", None, f"missing: the deal's ACV in {currency}")
        return ClosedWonDeal.model_validate(data)
    if data.get("acv_usd") is not None:
        raise _error(
            "acv_usd",
            data["acv_usd"],
            "give the ACV once: as acv (in the deal's currency) or as acv_usd, not both",
        )
    # Validated with `acv` where it is (so a bad amount is named as the sender gave it)
    # and a stand-in `acv_usd`, replaced below.
    deal = ClosedWonDeal.model_validate(data | {"acv": acv, "acv_usd": 0, "currency": currency})
    assert deal.acv is not None
    try:
        usd, rate = to_usd(deal.acv, currency, deal.close_date.date(), rates)
    except CurrencyError as exc:
        raise _error("currency", given, str(exc)) from None
    # Validated again: a huge amount at a small rate may not be a finite number of dollars.
    if rate is None:  # US dollars: nothing was converted
        return ClosedWonDeal.model_validate(deal.model_dump() | {"acv_usd": deal.acv, "acv": None})
    return ClosedWonDeal.model_validate(deal.model_dump() | {"acv_usd": usd, "fx_rate": rate})


def unknown_migrated_milestone(deal: ClosedWonDeal, playbook: Playbook) -> tuple[str, str] | None:
    """The first of a deal's `completed_milestones` that is not a milestone of `playbook`,
    as (field, reason): (`completed_milestones[1].milestone_id`, `'kickof' is not a
    milestone of playbook 3 (known: ...)`); None when every one is. A multi-product deal's
    own gates (`technical_setup:crm`, rules §6.2) are known too. `onboarding start` and
    `onboarding import` refuse such a deal before anything starts."""
    ids = [m.id for m in playbook.milestones]
    ids += [product_gate_id(i, x.id) for i in playbook.products.per_product for x in deal.products]
    for i, done in enumerate(deal.completed_milestones):
        if done.milestone_id not in ids:
            known = ", ".join(ids)
            return (
                f"completed_milestones[{i}].milestone_id",
                f"{done.milestone_id!r} is not a milestone of playbook {playbook.version} "
                f"(known: {known})",
            )
    return None


def _canonical_crm_ids(crm: dict[str, Any]) -> dict[str, Any]:
    crm = dict(crm)
    if isinstance(crm.get("company_id"), str):
        crm["company_id"] = canonical_account_id(crm["company_id"])
    deal_id = crm.get("deal_id")
    if crm.get("source") == "salesforce" and isinstance(deal_id, str):
        crm["deal_id"] = salesforce_id18(deal_id.strip()) or deal_id.strip()
    return crm


def _error(field: str, value: object, reason: str) -> ValidationError:
    return ValidationError.from_exception_data(
        ClosedWonDeal.__name__,
        [
            InitErrorDetails(
                type=PydanticCustomError("deal_value", "{reason}", {"reason": reason}),
                loc=(field,),
                input=value,
            )
        ],
    )
