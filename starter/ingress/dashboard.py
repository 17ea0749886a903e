"""The dashboard: the portfolio and each account, as pages for people, from the records
store only (so it answers while Temporal is down and after its retention).

    GET  /dashboard?tier=&cohort=        the portfolio (rules §8, docs/rules.md): headline
                                         counts, figures per tier against the targets,
                                         charts, the accounts that need attention
    GET  /dashboard/accounts/{id}        one account: plan against actual, milestones,
                                         escalations, tier changes, audit trail, its
                                         workflow in the Temporal UI
    GET  /dashboard/login, POST          the sign-in form (an API token)
    POST /dashboard/logout
    GET  /dashboard/static/{name}        the stylesheet and the filters' script (versioned)

Who may read is `starter.auth`'s one scheme: a browser without a valid session cookie is
sent to the sign-in form, which sets the same cookie as `/codec/login`. Pages load
nothing from another site: their Content-Security-Policy allows only this server's
scripts, and the charts are SVG drawn here (`dashboard_charts`), inline in the page.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from activities.records.store import RecordStoreError
from starter.auth import TOKENS_SETTING, sign_out
from starter.ingress import dashboard_charts as charts
from starter.ingress.dashboard_view import (
    NONE_TEXT,
    PORTFOLIO_PATH,
    at_risk_shown,
    days_text,
    local_when_text,
    pct_text,
    range_text,
    safe_next,
    share_text,
    timeline_rows,
    when_text,
)
from starter.ingress.state import Ingress, IngressDep
from starter.limits import BodyTooLarge, read_capped
from starter.reports.rows import cohort_error
from workflows.formats import score_text, usd_text
from workflows.ids import canonical_account_id
from workflows.models import Tier

log = structlog.get_logger("dashboard")

router = APIRouter(prefix=PORTFOLIO_PATH, include_in_schema=False)

HEADERS = {
    # Scripts only from this server; each chart's SVG carries its own <style> block and
    # colours some points with a style attribute.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",  # customer data: never kept by a browser or a proxy
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


# --------------------------------------------------------------------------- static files


@dataclass(frozen=True)
class Asset:
    """A file the pages load, kept in memory, gzipped once."""

    url: str
    body: bytes
    gzipped: bytes
    media_type: str


def _asset(name: str, body: bytes, media_type: str) -> Asset:
    # The content's hash in the name: a browser may keep it for a year, since a changed
    # file has a new URL.
    stem, _, suffix = name.partition(".")
    digest = hashlib.sha256(body).hexdigest()[:12]
    url = f"{PORTFOLIO_PATH}/static/{stem}-{digest}.{suffix}"
    return Asset(url, body, gzip.compress(body, 6), media_type)


@functools.cache
def assets() -> dict[str, Asset]:
    """The stylesheet and the filters' script, by file name; read on first use."""
    static = resources.files("starter.ingress") / "static"
    return {
        "dashboard.css": _asset(
            "dashboard.css", (static / "dashboard.css").read_bytes(), "text/css"
        ),
        "dashboard.js": _asset(
            "dashboard.js", (static / "dashboard.js").read_bytes(), "text/javascript"
        ),
    }


# --------------------------------------------------------------------------- pages

_pages = Environment(
    loader=PackageLoader("starter.ingress", "templates/dashboard"),
    autoescape=select_autoescape(default=True),
)
_pages.globals["asset"] = lambda name: assets()[name].url
_pages.filters |= {
    "pct": pct_text,
    "share": share_text,
    "days": days_text,
    "range": range_text,
    "when": when_text,
    "local": local_when_text,
    "score": score_text,
    "usd": usd_text,
}


def _page(template: str, status: int = 200, *, signed_in: bool = True, **data: Any) -> HTMLResponse:
    html = _pages.get_template(template).render(signed_in=signed_in, blank=NONE_TEXT, **data)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _notice(status: int, heading: str, message: str, *, signed_in: bool = True) -> HTMLResponse:
    return _page("notice.html", status, signed_in=signed_in, heading=heading, message=message)


def _not_configured() -> HTMLResponse:
    return _notice(
        503,
        "Sign-in is not configured",
        f"Nobody can sign in until {TOKENS_SETTING} sets an API token.",
        signed_in=False,
    )


def _refused(request: Request, ingress: Ingress) -> Response | None:
    """None for a signed-in browser (or a valid bearer token); else the way to the
    sign-in form, which comes back to this page, or a 503 page when no token is set."""
    if not ingress.auth.configured:
        return _not_configured()
    if ingress.auth.refusal(request) is None:
        return None
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{PORTFOLIO_PATH}/login?next={quote(here, safe='')}", 303)


def _unreadable(ingress: Ingress, exc: Exception) -> HTMLResponse:
    url = sa.make_url(ingress.settings.records_url).render_as_string(hide_password=True)
    log.warning("records store unreadable", url=url, error=str(exc))
    # RecordStoreError says what is wrong (no file there, server down), password hidden; a
    # failed query's text may hold SQL and values: only its kind is shown.
    why = str(exc) if isinstance(exc, RecordStoreError) else f"{url}: {exc.__class__.__name__}"
    return _notice(503, "The records store cannot be read", why)


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    found = next((a for a in assets().values() if a.url.endswith(f"/static/{name}")), None)
    if found is None:
        return Response(status_code=404)
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=found.media_type, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


@router.get("")
async def portfolio_page(
    request: Request, ingress: IngressDep, tier: str = "", cohort: str = ""
) -> Response:
    if (refused := _refused(request, ingress)) is not None:
        return refused
    if tier and tier not in {t.value for t in Tier}:
        return _notice(400, "No such tier", f"{tier!r} is not one of {', '.join(Tier)}.")
    if cohort and (problem := cohort_error(cohort)):
        return _notice(400, "No such cohort", f"{problem}.")
    try:
        store = await ingress.records.get()
        view = await ingress.portfolio_views.view(
            store, ingress.playbook, Tier(tier) if tier else None, cohort or None
        )
    except (RecordStoreError, sa.exc.SQLAlchemyError) as exc:
        return _unreadable(ingress, exc)
    shown, left_out = at_risk_shown(view.report.at_risk)
    return _page(
        "portfolio.html",
        report=view.report,
        cohorts=view.cohorts,
        tiers=list(Tier),
        charts=view.charts,
        at_risk=shown,
        left_out=left_out,
    )


@router.get("/accounts/{account_id}")
async def account_page(account_id: str, request: Request, ingress: IngressDep) -> Response:
    if (refused := _refused(request, ingress)) is not None:
        return refused
    account_id = canonical_account_id(account_id)
    try:
        store = await ingress.records.get()
        record = await asyncio.to_thread(store.get, account_id)
    except (RecordStoreError, sa.exc.SQLAlchemyError) as exc:
        return _unreadable(ingress, exc)
    if record is None:
        return _notice(
            404, "No such account", f"The records store has no onboarding for {account_id!r}."
        )
    now = datetime.now(UTC)
    rows = timeline_rows(record, now)
    return _page(
        "account.html",
        record=record,
        milestones=list(zip(record.milestones, rows, strict=True)),
        chart=charts.Chart.of("timeline", charts.timeline(rows, now)),
        temporal_url=ingress.link(record.workflow_id),
    )


def _same_site(request: Request, ingress: Ingress) -> bool:
    """Whether a form post comes from this server's own pages: its Origin (which
    browsers send with every POST) is this server or ONBOARDING_PUBLIC_URL. A post with
    no Origin comes from no browser page, so no other site's."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    if ingress.settings.public_url:
        public = urlsplit(ingress.settings.public_url)
        own.add(f"{public.scheme}://{public.netloc}")
    return origin in own


@router.get("/login")
async def login_page(request: Request, ingress: IngressDep, next: str = "") -> Response:
    target = safe_next(next)
    if not ingress.auth.configured:
        return _not_configured()
    if ingress.auth.refusal(request) is None:
        return RedirectResponse(target, 303)
    return _page("login.html", signed_in=False, next=target, error=None)


@router.post("/login")
async def login(request: Request, ingress: IngressDep) -> Response:
    if not ingress.auth.configured:
        return _not_configured()
    if not _same_site(request, ingress):
        return _notice(
            403, "Sign in from this site", "The form came from another site.", signed_in=False
        )
    try:
        body = await read_capped(request, ingress.settings.max_body_bytes)
    except BodyTooLarge as exc:
        return _notice(413, "Too large", str(exc), signed_in=False)
    form = parse_qs(body.decode(errors="replace"))
    presented = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    if not ingress.auth.valid_token(presented):
        log.info("dashboard sign-in refused")
        return _page(
            "login.html", 401, signed_in=False, next=target, error="Not a valid API token."
        )
    response = RedirectResponse(target, 303)
    ingress.auth.sign_in(response, presented, secure=request.url.scheme == "https")
    log.info("dashboard sign-in")
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse(f"{PORTFOLIO_PATH}/login", 303)
    sign_out(response)
    return response
