"""The customer's progress page in a real browser (headless Chromium), served by the real
app on real uvicorn from a real records store: what it shows is what the store holds and
nothing internal; a tampered, expired, revoked or unknown link gets one plain refusal;
and the link in a welcome email, sent by the workflow to a real SMTP server, opens it.

Each test keeps screenshots in its own output folder and in tests/support/browser.py's
SCREENSHOTS (test-output/screenshots/).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import activities_for
from activities.records.links import CustomerLinks
from activities.records.store import RecordStore
from starter.devserver import free_port
from starter.ingress.customer_view import customer_view
from tests.support.browser import keep_screenshot, visit
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.ingress import served
from tests.support.ingress import settings as ingress_settings
from tests.support.mail import Mailbox, email_settings
from tests.support.records import DAY, escalation, make_record, milestone_view
from workflows.models import (
    AuditEntry,
    HealthBand,
    MilestoneStatus,
    OnboardingInput,
    OnboardingState,
    Owner,
    Phase,
    Playbook,
    Tier,
)
from workflows.models.record import OnboardingRecord
from workflows.onboarding import AccountOnboarding

SECRET = "page-test-link-secret"
REFUSAL = "This link does not open a page"


@dataclass
class Site:
    """The ingress on a free port, its records store, and links signed as it checks them."""

    url: str
    records_url: str
    store: RecordStore
    links: CustomerLinks


@pytest.fixture(scope="module")
async def site(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    records_url = f"sqlite:///{tmp_path_factory.mktemp('site') / 'records.db'}"
    settings = ingress_settings(
        port=port, records_url=records_url, link_secrets=SECRET, public_url=url
    )
    links = CustomerLinks.of(settings)
    assert links is not None
    async with served(dev_env.client, settings):
        store = await asyncio.to_thread(RecordStore.open, records_url)
        yield Site(url=url, records_url=records_url, store=store, links=links)
    store.close()


async def texts(page: Page, selector: str) -> list[str]:
    return [" ".join(t.split()) for t in await page.locator(selector).all_inner_texts()]


def day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- the page


def initech(won: datetime) -> OnboardingRecord:
    """An at-risk high-touch onboarding in its pilot, with every internal fact set to a
    value the page must never show."""
    kickoff, login, data, integration, go_live = (
        milestone_view("kickoff_call", won, 5, 3),
        milestone_view("first_login", won, 7, 6),
        milestone_view("data_import", won, 20),
        milestone_view("integration_live", won, 30),
        milestone_view("go_live", won, 60),
    )
    milestones = [
        kickoff,
        login.model_copy(update={"owner": Owner.CUSTOMER}),
        data.model_copy(
            update={
                "phase": Phase.PILOT,
                "owner": Owner.IMPLEMENTATION,
                "status": MilestoneStatus.IN_PROGRESS,
            }
        ),
        integration.model_copy(update={"phase": Phase.PILOT, "owner": Owner.CUSTOMER}),
        go_live.model_copy(update={"phase": Phase.GO_LIVE, "owner": Owner.PRODUCT}),
    ]
    record = make_record(
        f"001{uuid.uuid4().hex[:12]}",
        won,
        tier=Tier.HIGH_TOUCH,
        state=OnboardingState.AT_RISK,
        milestones=milestones,
        escalations=[escalation("exec_sponsor_call", won, 8, Tier.HIGH_TOUCH)],
        acv_usd=123_456,
        owner="dana@vendor.example",
    )
    return record.model_copy(
        update={
            "account_name": "Initech <Labs> & Co",
            "phase": Phase.PILOT,
            "health_score": 47.9,
            "health_band": HealthBand.AT_RISK,
            "completion_pct": 40.0,
            "risk_flags": ["refused_step:data_import"],
            "decision_required": True,
            "audit": [AuditEntry(at=won + DAY, kind="note", detail="CFO unhappy with pricing")],
        }
    )


async def test_the_page_shows_the_stored_plan_and_nothing_internal(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    won = datetime.now(UTC).replace(microsecond=0) - 10 * DAY
    saved = initech(won)
    await asyncio.to_thread(site.store.save, saved)
    record = site.store.get(saved.account_id) or pytest.fail("not stored")
    url = site.links.issue(site.store, record.account_id, datetime.now(UTC))

    async with visit(browser, url) as seen:
        page = seen.page
        keep_screenshot(await page.screenshot(full_page=True), tmp_path, "customer-progress")
        assert seen.status == 200
        assert seen.requests == [url]  # the page loads nothing else: no CDN, no font
        assert await page.title() == f"{record.account_name}: your onboarding"
        assert await texts(page, "[data-test=account]") == [record.account_name]
        assert await texts(page, "[data-test=standing]") == ["In progress"]
        assert await texts(page, "[data-test=completion]") == ["40% complete"]
        stages = [s.split(" ")[:2] for s in await texts(page, "[data-test=stage]")]
        assert stages == [["Kickoff", "done"], ["Pilot", "current"], ["Go-live", "upcoming"]]
        m = {v.id: v for v in record.milestones}
        assert await texts(page, "[data-test=step]") == [
            f"Kickoff Call Your CSM Done {day(m['kickoff_call'].done_at or won)}",
            f"First Login You Done {day(m['first_login'].done_at or won)}",
            f"Data Import Our implementation team In progress, due {day(m['data_import'].due_at)}",
            f"Integration Live You Due {day(m['integration_live'].due_at)}",
            f"Go Live Our product team Due {day(m['go_live'].due_at)}",
        ]
        assert await texts(page, "[data-test=next]") == [
            "What's next Data Import Our implementation team · "
            f"In progress, due {day(m['data_import'].due_at)}"
        ]
        csm = page.locator("[data-test=csm]")
        assert await csm.get_attribute("href") == "mailto:dana@vendor.example"
        html = await page.content()

    for internal in (
        "123,456",
        "123456",
        "47.9",
        "at_risk",
        "at risk",
        "high_touch",
        "exec_sponsor_call",
        "CFO unhappy",
        "refused_step",
        "health",
        "escalat",
        "decision",
        record.workflow_id,
    ):
        assert internal.lower() not in html.lower(), internal


async def test_the_page_is_private_and_waits_for_the_first_record(site: Site) -> None:
    account_id = f"001{uuid.uuid4().hex[:12]}"
    url = site.links.issue(site.store, account_id, datetime.now(UTC))
    async with httpx.AsyncClient() as http:
        waiting = await http.get(url)
        assert waiting.status_code == 503
        assert waiting.headers["Retry-After"] == "60"
        assert "Your plan is being prepared" in waiting.text

        record = make_record(account_id, datetime.now(UTC) - 2 * DAY)
        await asyncio.to_thread(site.store.save, record)
        ready = await http.get(url)
        assert ready.status_code == 200
        assert record.account_name in ready.text
    assert ready.headers["content-type"] == "text/html; charset=utf-8"
    assert ready.headers["cache-control"] == "no-store"
    assert ready.headers["referrer-policy"] == "no-referrer"
    assert ready.headers["content-security-policy"].startswith("default-src 'none';")
    async with httpx.AsyncClient(base_url=site.url) as http:
        assert "/progress/" not in (await http.get("/openapi.json")).text  # not an API


async def test_a_tampered_expired_revoked_or_unknown_link_gets_one_plain_refusal(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    record = make_record(f"001{uuid.uuid4().hex[:12]}", now - 30 * DAY)
    await asyncio.to_thread(site.store.save, record)
    link_id = site.store.live_link(record.account_id, now - 200 * DAY)
    good = site.links.sign(link_id, now)
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    expired = site.links.sign(link_id, now - 151 * DAY)  # signed 151 days ago: past 150
    unknown = site.links.sign("never-issued", now)
    other = f"001{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(site.store.save, make_record(other, now - 30 * DAY))
    revoked = site.links.sign(site.store.live_link(other, now), now)
    site.store.revoke_links(other, now)

    async with visit(browser, site.links.url(good)) as seen:
        assert seen.status == 200  # the same link, signed now and not revoked, opens
    pages = []
    for name, token in [
        ("tampered", tampered),
        ("expired", expired),
        ("unknown", unknown),
        ("revoked", revoked),
        ("not-a-token", "hello"),
    ]:
        async with visit(browser, site.links.url(token)) as seen:
            keep_screenshot(await seen.page.screenshot(), tmp_path, f"customer-refused-{name}")
            assert seen.status == 404, name
            assert await texts(seen.page, "h1") == [REFUSAL], name
            pages.append(await seen.page.content())
    assert len(set(pages)) == 1  # the same page whatever the reason: it reveals nothing
    assert record.account_name not in pages[0]


@pytest.mark.parametrize(
    ("state", "standing", "has_next"),
    [
        (OnboardingState.ACTIVE, "In progress", True),
        (OnboardingState.AT_RISK, "In progress", True),
        (OnboardingState.PAUSED, "Paused", True),
        (OnboardingState.COMPLETED, "Completed on 2027-01-31", False),
        (OnboardingState.CANCELLED, "Ended", False),
    ],
)
def test_the_customer_reads_where_the_onboarding_stands(
    state: OnboardingState, standing: str, has_next: bool
) -> None:
    won = datetime(2027, 1, 1, tzinfo=UTC)
    record = make_record(
        "001V",
        won,
        state=state,
        owner=None,
        milestones=[milestone_view("kickoff_call", won, 5, 3), milestone_view("go_live", won, 20)],
        finished_at=won + 30 * DAY if state is OnboardingState.COMPLETED else None,
    )
    view = customer_view(record)
    assert view.standing == standing
    assert (view.next_step is not None) == has_next
    assert view.csm_email is None
    assert [s.state for s in view.stages] == ["current"]  # one phase, kickoff, still open


# --------------------------------------------------------------------------- from the email


async def test_the_link_in_the_welcome_email_opens_the_customers_page(
    env: WorkflowEnvironment,
    playbook: Playbook,
    mailbox: Mailbox,
    site: Site,
    browser: Browser,
    tmp_path: Path,
) -> None:
    task_queue = f"customer-page-{uuid.uuid4().hex[:8]}"
    deal = make_deal(close_date=await env.get_current_time(), **TIER_DEALS["tech_touch"])
    settings = email_settings(
        mailbox,
        csm_roster=["pat@vendor.test"],
        records_url=site.records_url,
        link_secrets=SECRET,
        public_url=site.url,
    )

    def stored() -> OnboardingRecord | None:
        record = site.store.get(deal.account_id)
        return record if record is not None and record.owner else None

    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(settings),
        workflow_failure_exception_types=[Exception],
    ):
        await env.client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue=task_queue,
        )
        for _ in range(200):
            if any(m["To"] == "cara@acme.test" for m in mailbox.messages) and stored():
                break
            await asyncio.sleep(0.05)

    [welcome] = [m for m in mailbox.messages if m["To"] == "cara@acme.test"]
    assert welcome["Subject"] == "Welcome aboard, Acme Corp"
    found = re.search(rf"{re.escape(site.url)}/progress/\S+", welcome.get_content())
    assert found, welcome.get_content()
    record = await asyncio.to_thread(stored) or pytest.fail("no record with its CSM")

    async with visit(browser, found[0]) as seen:
        page = seen.page
        keep_screenshot(await page.screenshot(full_page=True), tmp_path, "customer-welcome-link")
        assert seen.status == 200
        assert await texts(page, "[data-test=account]") == ["Acme Corp"]
        steps = await texts(page, "[data-test=step]")
        assert len(steps) == len(record.milestones)
        for m in record.milestones:
            assert any(s.startswith(m.title) and s.endswith(day(m.due_at)) for s in steps), m
        first = min(record.milestones, key=lambda m: m.due_at)
        assert (await texts(page, "[data-test=next]"))[0].endswith(f"Due {day(first.due_at)}")
        assert first.title in (await texts(page, "[data-test=next]"))[0]
        csm = page.locator("[data-test=csm]")
        assert await csm.get_attribute("href") == "mailto:pat@vendor.test"
        assert "20,000" not in await page.content()
