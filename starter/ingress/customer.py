"""The customer's progress page: the read-only link in the welcome email opens it.

GET /progress/{token}    a page (HTML) of the account's onboarding, from the records store

The token (`activities.records.links`) is checked before anything is read. A tampered,
expired, revoked or unknown link, and any link while links are off (no
ONBOARDING_LINK_SECRETS), gets one plain page answered 404: it tells nobody whether the
link ever existed or why it no longer opens. A valid link whose onboarding has no record
yet (the welcome can go out before the first write) gets 503 with Retry-After.

The page loads nothing but itself: its styles are inline and its Content-Security-Policy
forbids any other source; it is not cached and sends no Referer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from activities.records.links import PATH, LinkRefused
from activities.records.store import RecordStoreError
from starter.ingress.customer_view import customer_view
from starter.ingress.state import IngressDep

log = structlog.get_logger("ingress")

router = APIRouter()

_pages = Environment(
    loader=PackageLoader("starter.ingress", "templates"),
    autoescape=select_autoescape(default=True),
)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
REFUSED = {
    "heading": "This link does not open a page",
    "message": "It may have expired or been replaced. Ask your customer success manager "
    "for a new one.",
}
NOT_READY = {
    "heading": "Your plan is being prepared",
    "message": "Your onboarding has just started. Please try again in a minute.",
}
NOT_READY_RETRY_AFTER_S = 60


def _page(template: str, status: int, headers: dict[str, str], **data: Any) -> HTMLResponse:
    html = _pages.get_template(template).render(**data)
    return HTMLResponse(html, status_code=status, headers=HEADERS | headers)


def _refused(reason: str, link_id: str | None = None) -> HTMLResponse:
    # The reason goes to the log, never to the page; the token is a credential: not logged.
    log.info("progress link refused", reason=reason, link_id=link_id)
    return _page("notice.html", 404, {}, **REFUSED)


@router.get(PATH + "{token}", response_class=HTMLResponse, include_in_schema=False)
async def progress_page(token: str, ingress: IngressDep) -> HTMLResponse:
    if ingress.links is None:
        return _refused("links off")
    retry = {"Retry-After": str(NOT_READY_RETRY_AFTER_S)}
    try:
        store = await ingress.records.get()
    except RecordStoreError as exc:
        # Not there yet (the worker creates it with its first record) or unreachable.
        log.warning("records store unavailable", error=str(exc))
        return _page("notice.html", 503, retry, **NOT_READY)
    try:
        account_id = await asyncio.to_thread(ingress.links.verify, store, token, datetime.now(UTC))
    except LinkRefused as refused:
        return _refused(refused.reason, refused.link_id)
    record = await asyncio.to_thread(store.get, account_id)
    if record is None:
        return _page("notice.html", 503, retry, **NOT_READY)
    return _page("progress.html", 200, {}, view=customer_view(record))
