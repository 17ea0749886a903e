"""The dashboard over HTTP, against the real app and a real SQLite records store, with
Temporal unreachable (the pages read only the store): sign-in (redirect, the form, a
wrong token, another site's form, where it sends the browser back to), the pages' answers
for an unknown account, a bad filter, an unreadable store, no token configured; what the
pages escape; the files they load; a new record showing at once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.records.store import RecordStore
from starter.app import create_app
from starter.auth import SESSION_COOKIE
from starter.ingress.dashboard_view import when_text
from tests.support.ingress import READ_TOKEN, settings
from tests.support.records import DAY, make_record, milestone_view
from tests.support.temporal import unreachable_client
from workflows.models import OnboardingState, RoleActivationView, SkipCheckView, Tier
from workflows.models.record import OnboardingRecord

BASE = "http://dashboard.test"
Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    s = RecordStore.open(f"sqlite:///{tmp_path / 'records.db'}")
    yield s
    s.close()


@pytest.fixture
async def client(store: RecordStore) -> AsyncIterator[Client]:
    """`await client(**settings)`: a client of the real app over `store` (or the settings'
    records_url), not signed in."""
    opened: list[httpx.AsyncClient] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        url = str(store.engine.url)
        app = create_app(settings(**({"records_url": url} | overrides)), await unreachable_client())
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        opened.append(http)
        return http

    yield make
    for http in opened:
        await http.aclose()


async def signed_in(client: Client, **overrides: Any) -> httpx.AsyncClient:
    http = await client(**overrides)
    answer = await http.post("/dashboard/login", data={"token": READ_TOKEN})
    assert answer.status_code == 303
    return http


def at_risk_record(
    account_id: str, name: str = "Initech", owner: str = "csm-1@example.com"
) -> OnboardingRecord:
    won = datetime.now(UTC) - 20.5 * DAY
    record = make_record(
        account_id,
        won,
        tier=Tier.HIGH_TOUCH,
        state=OnboardingState.AT_RISK,
        milestones=[
            milestone_view("first_login", won, 5, 4),
            milestone_view("kickoff_call", won, 14),
        ],
        owner=owner,
    )
    return record.model_copy(update={"account_name": name, "risk_flags": ["stalled"]})


# --------------------------------------------------------------------------- sign-in


@pytest.mark.parametrize(
    "path", ["/dashboard?tier=high_touch", "/dashboard/accounts/001A", "/dashboard"]
)
async def test_a_browser_without_a_session_is_sent_to_sign_in(client: Client, path: str) -> None:
    http = await client()
    answer = await http.get(path)
    assert answer.status_code == 303
    login = answer.headers["location"]
    assert login.startswith("/dashboard/login?next=")
    form = await http.get(login)
    assert form.status_code == 200
    assert re.search(r'name="next" value="([^"]*)"', form.text)[1] == path.replace("&", "&amp;")  # type: ignore[index]
    assert SESSION_COOKIE not in http.cookies


async def test_signing_in_sets_the_session_and_goes_back(client: Client) -> None:
    http = await client()
    answer = await http.post(
        "/dashboard/login", data={"token": READ_TOKEN, "next": "/dashboard?tier=self_serve"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard?tier=self_serve"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and READ_TOKEN not in cookie
    assert (await http.get("/dashboard")).status_code == 200
    # Signed in, the form sends the browser on.
    assert (await http.get("/dashboard/login?next=/dashboard/accounts/x")).headers[
        "location"
    ] == "/dashboard/accounts/x"
    # Signing out ends it.
    out = await http.post("/dashboard/logout")
    assert out.status_code == 303 and SESSION_COOKIE not in http.cookies
    assert (await http.get("/dashboard")).status_code == 303


async def test_a_wrong_token_gets_the_form_again(client: Client) -> None:
    http = await client()
    answer = await http.post("/dashboard/login", data={"token": "wrong", "next": "/dashboard"})
    assert answer.status_code == 401
    assert "Not a valid API token." in answer.text
    assert 'name="token"' in answer.text
    assert "set-cookie" not in answer.headers


async def test_a_sign_in_never_redirects_to_another_site(client: Client) -> None:
    http = await client()
    answer = await http.post(
        "/dashboard/login", data={"token": READ_TOKEN, "next": "//evil.example/dashboard"}
    )
    assert answer.headers["location"] == "/dashboard"


async def test_another_sites_form_cannot_sign_in(client: Client) -> None:
    http = await client(public_url="https://onboarding.example.com")
    refused = await http.post(
        "/dashboard/login",
        data={"token": READ_TOKEN},
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    for own in (BASE, "https://onboarding.example.com"):
        answer = await http.post(
            "/dashboard/login", data={"token": READ_TOKEN}, headers={"Origin": own}
        )
        assert answer.status_code == 303, own


async def test_a_forged_session_or_a_bearer_token(client: Client) -> None:
    http = await client()
    http.cookies.set(SESSION_COOKIE, "9999999999.forged", path="/")
    assert (await http.get("/dashboard")).status_code == 303
    bearer = {"Authorization": f"Bearer {READ_TOKEN}"}
    assert (await (await client()).get("/dashboard", headers=bearer)).status_code == 200


async def test_without_a_token_configured_nobody_signs_in(client: Client) -> None:
    http = await client(api_tokens="")
    for answer in (
        await http.get("/dashboard"),
        await http.get("/dashboard/login"),
        await http.post("/dashboard/login", data={"token": ""}),
    ):
        assert answer.status_code == 503
        assert "ONBOARDING_API_TOKENS" in answer.text


# --------------------------------------------------------------------------- the pages


async def test_pages_forbid_other_sources_and_caching(client: Client, store: RecordStore) -> None:
    store.save(at_risk_record("001A"))
    http = await signed_in(client)
    for path in ("/dashboard", "/dashboard/accounts/001A", "/dashboard/accounts/nope"):
        answer = await http.get(path)
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp, path
        assert answer.headers["cache-control"] == "no-store"
        # Every script, stylesheet and icon is this server's (links may go elsewhere).
        sources = re.findall(r'<(?:script src|link rel="\w+" href)="([^"]+)"', answer.text)
        assert len(sources) >= 2 and all(s.startswith(("/", "data:")) for s in sources), path


async def test_an_unknown_account_is_a_404_page(client: Client) -> None:
    http = await signed_in(client)
    answer = await http.get("/dashboard/accounts/<b>nope")
    assert answer.status_code == 404
    assert "No such account" in answer.text
    assert "&lt;b&gt;nope" in answer.text and "<b>nope" not in answer.text


@pytest.mark.parametrize(
    ("query", "says"), [("tier=gold", "No such tier"), ("cohort=2025-13", "No such cohort")]
)
async def test_a_bad_filter_is_a_400_page(client: Client, query: str, says: str) -> None:
    answer = await (await signed_in(client)).get(f"/dashboard?{query}")
    assert answer.status_code == 400 and says in answer.text


async def test_an_unreadable_store_is_a_503_page(client: Client, tmp_path: Path) -> None:
    # PostgreSQL on a port nothing listens on; the password is never shown.
    http = await signed_in(client, records_url="postgresql+psycopg://u:secret@127.0.0.1:9/x")
    answer = await http.get("/dashboard")
    assert answer.status_code == 503
    assert "The records store cannot be read" in answer.text and "secret" not in answer.text
    # A SQLite file that is not there (a wrong URL, or before the worker's first record)
    # is named, not made up empty.
    missing = tmp_path / "elsewhere" / "records.db"
    http = await signed_in(client, records_url=f"sqlite:///{missing}")
    answer = await http.get("/dashboard/accounts/001A")
    assert answer.status_code == 503 and f"no records store at {missing}" in answer.text
    assert not missing.exists()


async def test_what_the_store_holds_is_escaped(client: Client, store: RecordStore) -> None:
    store.save(at_risk_record("001E", name="<script>alert(1)</script>", owner="</script><i>"))
    http = await signed_in(client)
    for path in ("/dashboard", "/dashboard/accounts/001E"):
        page = (await http.get(path)).text
        assert "<script>alert(1)" not in page and "</script><i>" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


async def test_a_new_record_shows_at_once(client: Client, store: RecordStore) -> None:
    store.save(at_risk_record("001A"))
    http = await signed_in(client)

    def onboardings(page: str) -> str:
        return re.search(r'data-figure="onboardings">.*?class="value">(\d+)<', page)[1]  # type: ignore[index]

    assert onboardings((await http.get("/dashboard")).text) == "1"
    assert 'data-account="001B"' not in (await http.get("/dashboard")).text
    store.save(at_risk_record("001B"))
    page = (await http.get("/dashboard")).text
    assert onboardings(page) == "2" and 'data-account="001B"' in page


async def test_the_files_the_pages_load(client: Client, store: RecordStore) -> None:
    store.save(at_risk_record("001A"))
    http = await signed_in(client)
    page = (await http.get("/dashboard")).text
    # The charts are in the page, as SVG (one drop-off funnel: the one tier's there); the
    # only script is the filters' own.
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') == 5
    assert len(re.findall(r"<script", page)) == 1
    (script_url,) = re.findall(r'<script src="([^"]+)" defer>', page)
    account = (await http.get("/dashboard/accounts/001A")).text
    assert "<script" not in account and account.count("<svg ") == 1
    shipped = (resources.files("starter.ingress") / "static" / "dashboard.js").read_bytes()
    plain = await http.get(script_url, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and plain.content == shipped
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "immutable" in plain.headers["cache-control"]
    zipped = await http.get(script_url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == shipped  # httpx decodes it
    # Files need no sign-in, and a name that is not one is a 404.
    assert (await (await client()).get(script_url)).status_code == 200
    assert (await http.get("/dashboard/static/dashboard-000000000000.js")).status_code == 404


async def test_the_account_page_shows_the_pending_skip_checks(
    client: Client, store: RecordStore
) -> None:
    record = at_risk_record("001A")
    won = record.closed_won_at
    checks = [
        SkipCheckView(
            milestone_id="first_training",
            title="First training session completed",
            skipped_at=won + 2 * DAY,
            due_at=won + 18 * DAY,
            planned_at=won + 14 * DAY,
        ),
        SkipCheckView(
            milestone_id="data_import",
            title="Data import",
            skipped_at=won + 20 * DAY,
            due_at=won + 27 * DAY,
            planned_at=won + 27 * DAY,
        ),
    ]
    store.save(record.model_copy(update={"skip_checks": checks}))
    http = await signed_in(client)
    page = (await http.get("/dashboard/accounts/001A")).text
    assert "Skip net checks (2)" in page
    rows = re.findall(r'<tr data-skip-check="(\w+)">(.*?)</tr>', page, re.S)
    assert [r[0] for r in rows] == ["first_training", "data_import"]
    moved, unmoved = rows[0][1], rows[1][1]
    assert when_text(won + 18 * DAY) in moved
    assert f"moved from {when_text(won + 14 * DAY)} by a pause" in moved
    assert when_text(won + 27 * DAY) in unmoved and "moved" not in unmoved
    store.save(record.model_copy(update={"revision": 2}))  # the checks have run
    assert "Skip net checks" not in (await http.get("/dashboard/accounts/001A")).text


async def test_the_account_page_shows_deadlines_on_the_accounts_clock(
    client: Client, store: RecordStore
) -> None:
    """rules §4: a deadline in the account's zone, saying when it counts business days."""
    record = at_risk_record("001T")
    kickoff = record.milestones[1].model_copy(
        update={
            "due_unit": "business_days",
            "due_local": "end of 2026-11-30 America/New_York, in business days",
        }
    )
    record = record.model_copy(
        update={
            "milestones": [record.milestones[0], kickoff],
            "time_zone": "America/New_York",
            "next_deadline": datetime(2026, 12, 1, 5, tzinfo=UTC),
        }
    )
    store.save(record)
    http = await signed_in(client)
    page = (await http.get("/dashboard/accounts/001T")).text
    assert "<dt>Next deadline</dt><dd>2026-12-01 00:00 America/New_York</dd>" in page
    assert "<td data-due>end of 2026-11-30 America/New_York, in business days</td>" in page


async def test_the_account_page_shows_activation_by_role(
    client: Client, store: RecordStore
) -> None:
    record = at_risk_record("001A")
    won = record.closed_won_at
    roles = [
        RoleActivationView(role="admin", title="admin", users=1, needed=1, activated_at=won + DAY),
        RoleActivationView(role="end_user", title="end user", users=2, needed=3, activated_at=None),
    ]
    store.save(record.model_copy(update={"roles": roles}))
    http = await signed_in(client)
    page = (await http.get("/dashboard/accounts/001A")).text
    rows = dict(re.findall(r'<tr data-role="(\w+)">(.*?)</tr>', page, re.S))
    assert "1/1 ✓" in rows["admin"] and when_text(won + DAY) in rows["admin"]
    assert "2/3" in rows["end_user"] and "✓" not in rows["end_user"]
    assert "First value by roles: not yet" in page
    reached = record.model_copy(
        update={"revision": 2, "roles": roles, "first_value_by_roles_at": won + 9 * DAY}
    )
    store.save(reached)
    page = (await http.get("/dashboard/accounts/001A")).text
    assert f"First value by roles: {when_text(won + 9 * DAY)}" in page
    store.save(record.model_copy(update={"revision": 3}))  # a playbook without [activation]
    assert "Activation by role" not in (await http.get("/dashboard/accounts/001A")).text
