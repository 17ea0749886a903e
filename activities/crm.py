"""The `fetch_hubspot_deal` activity: read the deal a HubSpot webhook named by id.

HubSpot webhooks carry only ids, so the deal, its company and its contacts are read from
the CRM v3 API with a private app token. Transient trouble (no connection, 429, 5xx)
raises a retryable error and Temporal's retry policy tries again; anything a retry
cannot fix raises a non-retryable `HubSpotDealError`.
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.settings import Settings
from starter.crm import (
    HUBSPOT_FIELDS,
    PayloadError,
    hubspot_company_id,
    hubspot_contact_ids,
    hubspot_deal,
)
from starter.money import load_fx_rates
from workflows.models import ClosedWonDeal, HubSpotDealRef

log = structlog.get_logger(__name__)

MAX_CONTACTS = 10
# Every property the mapping in starter.crm reads, plus the stage to check it.
DEAL_PROPERTIES = ",".join(
    ["dealname", "dealstage", *(key for _, _, keys in HUBSPOT_FIELDS for key in keys)]
)
ERROR_TYPE = "HubSpotDealError"


class HubSpotClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._rates = load_fx_rates(settings.fx_rates)  # a bad file stops the worker at once

    @activity.defn(name="fetch_hubspot_deal")
    async def fetch_hubspot_deal(self, ref: HubSpotDealRef) -> ClosedWonDeal:
        token = self._settings.hubspot_token
        if token is None or not token.get_secret_value():
            raise _permanent(
                "no HubSpot token: set ONBOARDING_HUBSPOT_TOKEN to a private app token "
                "with the crm.objects.deals.read, companies.read and contacts.read scopes"
            )
        with structlog.contextvars.bound_contextvars(deal_id=ref.deal_id):
            async with httpx.AsyncClient(
                base_url=self._settings.hubspot_api_url,
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
                timeout=10,
            ) as client:
                deal = await _get(
                    client,
                    f"/crm/v3/objects/deals/{ref.deal_id}",
                    {"properties": DEAL_PROPERTIES, "associations": "companies,contacts"},
                    missing=f"deal {ref.deal_id} not found in portal {ref.portal_id}",
                )
                try:
                    company_id = hubspot_company_id(deal)
                except PayloadError as exc:
                    raise _permanent(f"deal {ref.deal_id}: {exc}") from None
                company = await _get(
                    client,
                    f"/crm/v3/objects/companies/{company_id}",
                    {"properties": "name,domain"},
                    missing=f"company {company_id} of deal {ref.deal_id} not found",
                )
                contacts = []
                for contact_id in hubspot_contact_ids(deal)[:MAX_CONTACTS]:
                    contact = await _get(
                        client,
                        f"/crm/v3/objects/contacts/{contact_id}",
                        {"properties": "email,firstname,lastname,jobtitle"},
                        missing=None,  # deleted since: onboard without them
                    )
                    if contact:
                        contacts.append(contact)
            try:
                result = hubspot_deal(deal, company, contacts, rates=self._rates)
            except PayloadError as exc:
                raise _permanent(f"deal {ref.deal_id}: {exc}") from None
            stage = (deal.get("properties") or {}).get("dealstage")
            closed_won = self._settings.hubspot_closed_won_stage
            if stage != closed_won:
                # The webhook said it closed; the onboarding still starts, and says why.
                log.warning(
                    "hubspot_deal_no_longer_closed_won",
                    account_id=result.account_id,
                    dealstage=stage,
                    closed_won_stage=closed_won,
                )
            log.info(
                "hubspot_deal_fetched",
                account_id=result.account_id,
                contacts=len(result.contacts),
                acv_usd=result.acv_usd,
            )
            return result


async def _get(
    client: httpx.AsyncClient, path: str, params: dict[str, str], *, missing: str | None
) -> dict[str, Any]:
    """One GET; `{}` on 404 when `missing` is None, else 404 is permanent with that text."""
    # Connection errors and timeouts propagate as they are: retryable.
    response = await client.get(path, params=params)
    status = response.status_code
    if status in (401, 403):
        raise _permanent(
            f"HubSpot rejected the token (HTTP {status} on {path}): set "
            "ONBOARDING_HUBSPOT_TOKEN to a private app token with read access to deals, "
            "companies and contacts"
        )
    if status == 404:
        if missing is None:
            log.info("hubspot_object_missing", path=path)
            return {}
        raise _permanent(missing)
    if status == 429 or status >= 500:
        raise ApplicationError(
            f"HubSpot answered {status} on {path}; retrying", type="HubSpotUnavailable"
        )
    if not response.is_success:
        raise _permanent(f"HubSpot answered {status} on {path}: {response.text[:200]}")
    try:
        body = response.json()
    except ValueError:
        raise _permanent(f"HubSpot answered {path} with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise _permanent(f"HubSpot answered {path} with JSON that is not an object")
    return body


def _permanent(message: str) -> ApplicationError:
    return ApplicationError(message, type=ERROR_TYPE, non_retryable=True)
