"""HubSpot's CRM API: the `fetch_hubspot_deal` and `fetch_hubspot_deal_stage` activities
(read the deal a HubSpot webhook named by id, with its line items when
`ONBOARDING_CRM_PRODUCTS` names products), `fetch_hubspot_champion` (read a contact
whose buying role became champion, rules §6.3), and `HubSpotStages` (what a deal stage id
means, from HubSpot's deal pipelines), which the ingress uses too.

HubSpot webhooks carry only ids, so the deal, its company and its contacts are read from
the CRM v3 API with a private app token. Transient trouble (no connection, 429, 5xx)
raises a retryable error and Temporal's retry policy tries again; anything a retry
cannot fix raises a non-retryable `HubSpotDealError`. A deal that is no longer closed-won
when it is read raises a non-retryable `DealNotClosedWon`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.crm_records import HUBSPOT_FIELDS, PayloadError, StageMeaning
from activities.hubspot_records import (
    LINE_ITEM_PROPERTIES,
    hubspot_champion,
    hubspot_company_id,
    hubspot_contact_ids,
    hubspot_deal,
    hubspot_line_item_ids,
    hubspot_pipeline_stages,
    hubspot_products,
)
from activities.money import load_fx_rates
from activities.settings import Settings, SharedSettings
from workflows import contract
from workflows.models import (
    ClosedWonDeal,
    DealStage,
    HubSpotChampion,
    HubSpotContactRef,
    HubSpotDealRef,
    HubSpotDealStage,
)

log = structlog.get_logger(__name__)

MAX_CONTACTS = 10
MAX_LINE_ITEMS = 100  # one batch read; a deal with more has its first 100 read
# Every property the mapping in activities.hubspot_records reads, plus the stage to check it.
DEAL_PROPERTIES = ",".join(
    ["dealname", "dealstage", *(key for _, _, keys in HUBSPOT_FIELDS for key in keys)]
)
ERROR_TYPE = contract.HUBSPOT_DEAL_ERROR
NOT_CLOSED_WON = contract.DEAL_NOT_CLOSED_WON
PIPELINES_PATH = "/crm/v3/pipelines/deals"
LINE_ITEMS_READ_PATH = "/crm/v3/objects/line_items/batch/read"
PIPELINES_TTL_S = 300.0


def _api(settings: SharedSettings) -> httpx.AsyncClient:
    token = settings.hubspot_token
    if token is None or not token.get_secret_value():
        raise _permanent(
            "no HubSpot token: set ONBOARDING_HUBSPOT_TOKEN to a private app token "
            "with the crm.objects.deals.read, companies.read and contacts.read scopes "
            "(and line_items.read when ONBOARDING_CRM_PRODUCTS is set)"
        )
    return httpx.AsyncClient(
        base_url=settings.hubspot_api_url,
        headers={"Authorization": f"Bearer {token.get_secret_value()}"},
        timeout=10,
    )


class HubSpotStages:
    """What each HubSpot deal stage id means: closed-won, closed-lost or open.

    A portal has several deal pipelines, each with its own closed-won stage, usually a
    numeric id. Stages in `ONBOARDING_HUBSPOT_CLOSED_WON_STAGES` are closed-won without
    asking; any other is looked up in HubSpot's deal pipelines (`GET
    /crm/v3/pipelines/deals`: closed-won is `isClosed` at probability 1.0), which are
    kept `PIPELINES_TTL_S` and read again at once for a stage they do not name (a
    pipeline added since).

    Why the ingress asks before it acknowledges, rather than starting an intake for
    every stage change and letting the fetch decide: the webhook carries only the stage
    id and HubSpot never retries a 2xx, so the one safe 2xx for a stage change is one
    that knows what the stage means. Deals pass through many stages; an intake per
    change would cost a workflow and several API reads each, where this costs one cached
    read. When the pipelines cannot be read (HubSpot down, no token) and the stage is
    not listed, `meanings` raises and the ingress answers 503, so HubSpot retries. The
    intake's fetch asks again for the deal as it is when read.
    """

    def __init__(
        self, settings: SharedSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._known: dict[str, StageMeaning] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def meanings(self, stages: Iterable[str]) -> dict[str, StageMeaning]:
        """Each stage id's meaning. A stage in no pipeline even after a fresh read is
        open. Raises ApplicationError (retryable `HubSpotUnavailable`, or permanent
        `HubSpotDealError`) when the pipelines are needed and cannot be read."""
        listed, stages = self._settings.hubspot_closed_won_stages, set(stages)
        out = {
            s: StageMeaning(DealStage.CLOSED_WON, f"{s} (in ONBOARDING_HUBSPOT_CLOSED_WON_STAGES)")
            for s in stages
            if s in listed
        }
        rest = {s for s in stages if s not in out}
        if rest:
            await self._refresh_unless_known(rest)
        for s in rest:
            out[s] = self._known.get(s) or StageMeaning(
                DealStage.OPEN, f"{s} (in none of the portal's deal pipelines)"
            )
        return out

    async def _refresh_unless_known(self, stages: set[str]) -> None:
        async with self._lock:  # one read for every request waiting on it
            fresh = self._read_at is not None and (self._clock() - self._read_at < PIPELINES_TTL_S)
            if fresh and stages <= self._known.keys():
                return
            try:
                async with _api(self._settings) as client:
                    body = await _get(client, PIPELINES_PATH, {}, missing="no deal pipelines")
            except (ApplicationError, httpx.HTTPError) as exc:
                if self._read_at is not None and stages <= self._known.keys():
                    log.warning("hubspot_pipelines_stale", error=str(exc))
                    return  # stages rarely change meaning: the last read will do
                if isinstance(exc, ApplicationError):
                    raise
                raise ApplicationError(
                    f"HubSpot's pipelines could not be read: {exc!r}; retrying",
                    type=contract.HUBSPOT_UNAVAILABLE,
                ) from exc
            self._known, self._read_at = hubspot_pipeline_stages(body), self._clock()
            log.info("hubspot_pipelines_read", stages=len(self._known))


class HubSpotClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._rates = load_fx_rates(settings.fx_rates)  # a bad file stops the worker at once
        self._stages = HubSpotStages(settings)

    async def _read_deal(
        self, client: httpx.AsyncClient, ref: HubSpotDealRef, properties: str, associations: str
    ) -> tuple[dict[str, Any], str, StageMeaning]:
        """The deal, its company id and what its stage means now."""
        deal = await _get(
            client,
            f"/crm/v3/objects/deals/{ref.deal_id}",
            {"properties": properties, "associations": associations},
            missing=f"deal {ref.deal_id} not found in portal {ref.portal_id}",
        )
        try:
            company_id = hubspot_company_id(deal)
        except PayloadError as exc:
            raise _permanent(f"deal {ref.deal_id}: {exc}") from None
        stage = str((deal.get("properties") or {}).get("dealstage") or "")
        if not stage:
            return deal, company_id, StageMeaning(DealStage.OPEN, "(none)")
        return deal, company_id, (await self._stages.meanings([stage]))[stage]

    @activity.defn(name=contract.FETCH_HUBSPOT_DEAL_STAGE.name)
    async def fetch_hubspot_deal_stage(self, ref: HubSpotDealRef) -> HubSpotDealStage:
        """Where the deal stands now, and its account: for a closed-lost webhook."""
        with structlog.contextvars.bound_contextvars(deal_id=ref.deal_id):
            async with _api(self._settings) as client:
                deal, company_id, (meaning, label) = await self._read_deal(
                    client, ref, "dealstage,pipeline", "companies"
                )
        stage = str((deal.get("properties") or {}).get("dealstage") or "")
        log.info("hubspot_deal_stage", account_id=company_id, dealstage=stage, meaning=meaning)
        return HubSpotDealStage(
            deal_id=ref.deal_id,
            account_id=company_id,
            stage=stage,
            meaning=meaning,
            label=f"dealstage {label}",
        )

    @activity.defn(name=contract.FETCH_HUBSPOT_DEAL.name)
    async def fetch_hubspot_deal(self, ref: HubSpotDealRef) -> ClosedWonDeal:
        """The deal, its company and contacts, and, when `ONBOARDING_CRM_PRODUCTS` names
        products, its line items (the deal's products, rules §6.2); raises
        `DealNotClosedWon` (non-retryable) when the deal is no longer closed-won as it is
        read."""
        onboarded = self._settings.crm_products
        associations = "companies,contacts,line_items" if onboarded else "companies,contacts"
        with structlog.contextvars.bound_contextvars(deal_id=ref.deal_id):
            async with _api(self._settings) as client:
                deal, company_id, (meaning, label) = await self._read_deal(
                    client, ref, DEAL_PROPERTIES, associations
                )
                if meaning is not DealStage.CLOSED_WON:
                    log.warning(
                        "hubspot_deal_no_longer_closed_won", account_id=company_id, dealstage=label
                    )
                    raise ApplicationError(
                        f"deal {ref.deal_id} is no longer closed-won: dealstage {label}; "
                        "nothing started",
                        type=NOT_CLOSED_WON,
                        non_retryable=True,
                    )
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
                ids = hubspot_line_item_ids(deal) if onboarded else []
                line_items = await self._line_items(client, ids)
            try:
                products = hubspot_products(
                    line_items, self._settings.hubspot_product_property, onboarded
                )
                result = hubspot_deal(deal, company, contacts, rates=self._rates, products=products)
            except PayloadError as exc:
                raise _permanent(f"deal {ref.deal_id}: {exc}") from None
            log.info(
                "hubspot_deal_fetched",
                account_id=result.account_id,
                contacts=len(result.contacts),
                acv_usd=result.acv_usd,
                line_items=len(line_items),
                products=[p.id for p in result.products],
            )
            return result

    async def _line_items(self, client: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
        """The line items by id (one batch read of the first `MAX_LINE_ITEMS`), in the
        order of `ids`; one deleted since is left out."""
        if not ids:
            return []
        properties = [self._settings.hubspot_product_property, *LINE_ITEM_PROPERTIES]
        body = await _post(
            client,
            LINE_ITEMS_READ_PATH,
            {"properties": properties, "inputs": [{"id": i} for i in ids[:MAX_LINE_ITEMS]]},
        )
        found = {str(r.get("id")): r for r in body.get("results") or [] if isinstance(r, dict)}
        return [found[i] for i in ids if i in found]

    @activity.defn(name=contract.FETCH_HUBSPOT_CHAMPION.name)
    async def fetch_hubspot_champion(self, ref: HubSpotContactRef) -> HubSpotChampion:
        """The contact as it is now, and its company: whether it is still a champion
        (`ONBOARDING_HUBSPOT_CHAMPION_PROPERTY` holds one of
        `..._CHAMPION_VALUES`). A deleted contact is not one; an email that is not an
        address raises `HubSpotDealError` (permanent)."""
        settings = self._settings
        role = settings.hubspot_champion_property
        with structlog.contextvars.bound_contextvars(contact_id=ref.contact_id):
            async with _api(settings) as client:
                contact = await _get(
                    client,
                    f"/crm/v3/objects/contacts/{ref.contact_id}",
                    {"properties": f"email,firstname,lastname,{role}", "associations": "companies"},
                    missing=None,  # deleted since: nobody to re-align with
                )
            try:
                read = hubspot_champion(
                    contact, ref.contact_id, role, settings.hubspot_champion_values
                )
            except PayloadError as exc:
                raise _permanent(f"contact {ref.contact_id}: {exc}") from None
            log.info(
                "hubspot_champion_fetched",
                account_id=read.account_id,
                champion=read.contact is not None,
                detail=read.detail,
            )
            return read


async def _get(
    client: httpx.AsyncClient, path: str, params: dict[str, str], *, missing: str | None
) -> dict[str, Any]:
    """One GET; `{}` on 404 when `missing` is None, else 404 is permanent with that text."""
    # Connection errors and timeouts propagate as they are: retryable.
    return _answer(await client.get(path, params=params), path, missing)


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One POST of a batch read (HubSpot answers 207 when some ids were not found)."""
    return _answer(await client.post(path, json=body), path, f"{path} not found")


def _answer(response: httpx.Response, path: str, missing: str | None) -> dict[str, Any]:
    status = response.status_code
    if status in (401, 403):
        raise _permanent(
            f"HubSpot rejected the token (HTTP {status} on {path}): set "
            "ONBOARDING_HUBSPOT_TOKEN to a private app token with read access to deals, "
            "companies and contacts (and line items when ONBOARDING_CRM_PRODUCTS is set)"
        )
    if status == 404:
        if missing is None:
            log.info("hubspot_object_missing", path=path)
            return {}
        raise _permanent(missing)
    if status == 429 or status >= 500:
        raise ApplicationError(
            f"HubSpot answered {status} on {path}; retrying", type=contract.HUBSPOT_UNAVAILABLE
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
