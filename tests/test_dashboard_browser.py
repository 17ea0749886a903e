"""The dashboard in a real browser (headless Chromium): the real app on real uvicorn over a
real SQLite records store, with Temporal unreachable (the dashboard reads only the store).
A person signs in through the form, reads the portfolio (the figures are those
`portfolio_report()` computes from the same store, and so are the charts' labels), filters
it by tier, opens an account at risk, and sees its plan against actual. Nothing is loaded
from another origin and no page logs an error (a script the CSP refused would).

Screenshots stay in each test's output folder and test-output/screenshots/; with
UPDATE_SCREENSHOTS=1 the portfolio's also becomes docs/dashboard.png (the README's).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

from activities.records.store import RecordStore
from starter.client import ui_url
from starter.devserver import free_port
from starter.ingress.dashboard_view import pct_text, share_text, timeline_rows, when_text
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio_report
from tests.support.browser import keep_screenshot
from tests.support.ingress import READ_TOKEN, served
from tests.support.ingress import settings as ingress_settings
from tests.support.records import sample_portfolio
from tests.support.temporal import unreachable_client
from workflows.models import OnboardingState, Playbook, Tier

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
UPDATE_SCREENSHOTS = "UPDATE_SCREENSHOTS"
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}


@dataclass
class Site:
    """The ingress on a free port and the records store it reads."""

    url: str
    store: RecordStore


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory, playbook: Playbook) -> AsyncIterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    records_url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'records.db'}"
    store = await asyncio.to_thread(RecordStore.open, records_url)
    for record in sample_portfolio(datetime.now(UTC), playbook):
        await asyncio.to_thread(store.save, record)
    settings = ingress_settings(port=port, records_url=records_url)
    async with served(await unreachable_client(), settings):
        yield Site(url=url, store=store)
    store.close()


@dataclass
class Session:
    """A browser context signed in through the form, and what its pages did."""

    context: BrowserContext
    page: Page
    requests: list[str]
    errors: list[str]


@pytest.fixture
async def signed_in(site: Site, browser: Browser) -> AsyncIterator[Session]:
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    session = Session(context, page, [], [])
    page.on("request", lambda request: session.requests.append(request.url))
    page.on("pageerror", lambda error: session.errors.append(str(error)))
    page.on(
        "console",
        lambda message: session.errors.append(message.text) if message.type == "error" else None,
    )
    await page.goto(f"{site.url}/dashboard")
    assert urlsplit(page.url).path == "/dashboard/login"  # sent to sign in first
    await page.fill("input[name=token]", READ_TOKEN)
    await page.click("button:has-text('Sign in')")
    await page.wait_for_load_state("networkidle")
    assert urlsplit(page.url).path == "/dashboard"  # and back
    yield session
    await context.close()


def report_of(site: Site, playbook: Playbook, tier: Tier | None = None) -> PortfolioReport:
    return portfolio_report(site.store, playbook, datetime.now(UTC), tier=tier)


async def text(page: Page, selector: str) -> str:
    return " ".join((await page.locator(selector).inner_text()).split())


async def chart_texts(page: Page, expected: int) -> dict[str, list[str]]:
    """Each chart's texts (title, labels, legend) by its element id, once there is an SVG
    chart (the server's) in each of the `expected` chart elements, and only those."""
    plots = page.locator(".drawing")
    assert await plots.count() == expected
    assert await page.locator(".drawing > svg.pygal-chart").count() == expected
    texts: dict[str, list[str]] = await plots.evaluate_all(
        "plots => Object.fromEntries(plots.map(p =>"
        " [p.id, [...p.querySelectorAll('text')].map(t => t.textContent)]))"
    )
    return texts


def assert_same_origin(site: Site, session: Session) -> None:
    origins = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in session.requests}
    assert origins == {site.url}, origins
    assert session.errors == []


async def test_portfolio_shows_the_stores_figures(
    site: Site, signed_in: Session, playbook: Playbook, tmp_path: Path
) -> None:
    page = signed_in.page
    report = report_of(site, playbook)
    overall = report.overall
    assert overall.at_risk > 0 and overall.completed > 0 and overall.cancelled > 0
    assert overall.paused > 0
    for figure, shown in [
        ("onboardings", str(overall.onboardings)),
        ("running", str(overall.running)),
        ("at_risk", str(overall.at_risk)),
        ("paused", str(overall.paused)),
        ("completed", str(overall.completed)),
        ("cancelled", str(overall.cancelled)),
        ("completion", pct_text(overall.completion.pct)),
        ("activation", pct_text(overall.activation.pct)),
        ("setup_completion", pct_text(overall.setup_completion.pct)),
        ("team_invited", pct_text(overall.team_invited.pct)),
        ("first_week_retention", pct_text(overall.first_week_retention.pct)),
        ("trials_converted", pct_text(overall.trials_converted.pct)),
    ]:
        assert await text(page, f".headline [data-figure={figure}] .value") == shown, figure
    for group in report.by_tier:
        assert group.tier is not None
        row = f"tr[data-tier={group.tier.value}]"
        assert await text(page, f"{row} [data-figure=onboardings]") == str(group.onboardings)
        assert await text(page, f"{row} [data-figure=completion]") == share_text(group.completion)
    # The at-risk list names every account that needs attention, with a link to its page.
    listed = await page.locator("table.at-risk tr[data-account]").evaluate_all(
        "rows => rows.map(r => r.dataset.account)"
    )
    assert listed == [a.account_id for a in report.at_risk]
    # Trends, health, a drop-off funnel per tier, escalations, CSM load; each shows the
    # report's figures.
    charts = await chart_texts(page, 4 + len(report.by_tier))
    assert {g.cohort for g in report.by_cohort} <= set(charts["cohort-trends"])
    assert "Trends by closed-won month" in charts["cohort-trends"]
    assert {g.tier.value for g in report.by_tier if g.tier} <= set(charts["health-bands"])
    for group in report.by_tier:
        assert group.tier is not None
        steps = {
            f"{d.milestone_id}  {share_text(d.lost)}"
            for d in report.drop_off
            if d.tier is group.tier
        }
        assert steps <= set(charts[f"drop-off-{group.tier.value}"]), group.tier
    for e in report.escalations:
        label = f"{e.tier.value} {e.step_id} ({e.trigger})  {e.fired} · "
        assert any(t.startswith(label) for t in charts["escalations"]), label
    assert {f"{c.owner}  {pct_text(c.load_pct)}" for c in report.csm_load} <= set(
        charts["csm-load"]
    )
    # Flagged steps are red.
    flagged = page.locator(f"#drop-off-{Tier.TECH_TOUCH.value} g.bar[style*='#c62828']")
    assert await flagged.count() == sum(
        d.flagged for d in report.drop_off if d.tier is Tier.TECH_TOUCH
    )
    kept = keep_screenshot(await page.screenshot(full_page=True), tmp_path, "dashboard-portfolio")
    if os.environ.get(UPDATE_SCREENSHOTS):
        shutil.copyfile(kept, DOCS_SCREENSHOT)
    assert_same_origin(site, signed_in)


async def test_filtering_by_tier(
    site: Site, signed_in: Session, playbook: Playbook, tmp_path: Path
) -> None:
    page = signed_in.page
    async with page.expect_navigation():
        await page.select_option("select[name=tier]", Tier.HIGH_TOUCH.value)  # submits itself
    await page.wait_for_load_state("networkidle")
    assert "tier=high_touch" in page.url
    report = report_of(site, playbook, Tier.HIGH_TOUCH)
    assert 0 < report.overall.onboardings < report_of(site, playbook).overall.onboardings
    assert await text(page, ".headline [data-figure=onboardings] .value") == str(
        report.overall.onboardings
    )
    assert await text(page, "h1") == "Portfolio · high_touch"
    charts = await chart_texts(page, 5)  # one drop-off funnel: this tier's
    assert "Drop-off, high_touch" in " ".join(charts["drop-off-high_touch"])
    keep_screenshot(
        await page.screenshot(full_page=True), tmp_path, "dashboard-portfolio-high-touch"
    )
    assert_same_origin(site, signed_in)


async def test_an_account_at_risk(
    site: Site, signed_in: Session, playbook: Playbook, tmp_path: Path
) -> None:
    page = signed_in.page
    at_risk = report_of(site, playbook).at_risk[0]
    async with page.expect_navigation():
        await page.click(f"tr[data-account='{at_risk.account_id}'] a")
    await page.wait_for_load_state("networkidle")
    assert urlsplit(page.url).path == f"/dashboard/accounts/{at_risk.account_id}"
    record = site.store.get(at_risk.account_id)
    assert record is not None and record.state is OnboardingState.AT_RISK
    assert await text(page, "h1") == f"{record.account_name} {record.account_id}"
    assert await text(page, ".headline [data-figure=state] .value") == "at_risk"
    rows = page.locator("table.milestones tr[data-milestone]")
    assert await rows.count() == len(record.milestones)
    outcomes = {r.milestone_id: r.outcome for r in timeline_rows(record, datetime.now(UTC))}
    assert "overdue" in outcomes.values()
    for i, m in enumerate(record.milestones):
        row = rows.nth(i)
        assert await row.get_attribute("data-milestone") == m.id
        assert await text(page, f"tr[data-milestone={m.id}] [data-due]") == when_text(m.due_at)
        assert await text(page, f"tr[data-milestone={m.id}] [data-done]") == when_text(m.done_at)
        assert await text(page, f"tr[data-milestone={m.id}] .outcome") == outcomes[m.id].replace(
            "_", " "
        )
    assert await page.locator("table.audit tbody tr").count() == len(record.audit) > 1
    # The timeline: a label, a plan window and, once started, an actual one per milestone.
    charts = await chart_texts(page, 1)
    assert {m.title for m in record.milestones} <= set(charts["timeline"])
    windows = await page.locator("#timeline path.line.reactive").count()
    started = sum(r.actual is not None for r in timeline_rows(record, datetime.now(UTC)))
    assert windows == len(record.milestones) + started
    assert await page.locator("table.escalations tbody tr").count() == len(record.escalations)
    link = page.locator("a:has-text('the workflow in the Temporal UI')")
    assert await link.get_attribute("href") == ui_url(record.workflow_id, "default")
    keep_screenshot(await page.screenshot(full_page=True), tmp_path, "dashboard-account")
    assert_same_origin(site, signed_in)
