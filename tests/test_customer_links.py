"""Customers' progress links: signed, expiring (on the caller's clock), revocable in the
records store (SQLite and a real PostgreSQL server), issued by the notify activity into a
real SMTP server's mail at send time, and by `onboarding link issue|revoke`."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from activities import Notifier
from activities.records.links import CustomerLinks, LinkRefused
from activities.records.schema import customer_link, metadata
from activities.records.store import LazyStore, RecordStore
from activities.settings import SharedSettings
from starter.cli import app
from tests.support.mail import Mailbox, email_settings
from tests.support.records import make_record
from workflows.models import Audience, MessageTemplate, Notification

NOW = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
DAYS = timedelta(days=150)
LINKS = CustomerLinks(secrets=["new-secret", "old-secret"], lifetime=DAYS, base_url="https://x")


# --------------------------------------------------------------------------- the token


def test_a_token_opens_until_its_lifetime_is_over_on_the_callers_clock() -> None:
    token = LINKS.sign("link-1", NOW)

    assert LINKS.link_id(token, NOW) == "link-1"
    assert LINKS.link_id(token, NOW + DAYS) == "link-1"
    with pytest.raises(LinkRefused) as late:
        LINKS.link_id(token, NOW + DAYS + timedelta(seconds=1))
    assert late.value.reason == "expired"
    with pytest.raises(LinkRefused) as early:  # signed "later" than now: not trusted either
        LINKS.link_id(token, NOW - timedelta(seconds=1))
    assert early.value.reason == "expired"


def test_a_token_carries_the_link_id_and_nothing_else() -> None:
    token = LINKS.sign("link-1", NOW)
    assert LINKS.url(token) == f"https://x/progress/{token}"
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # safe in a URL as it is
    assert "link-1" not in token  # encoded, though not secret: the signature is


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature
        lambda t: "Imxpbmst" + t[t.index(".") :],  # another payload, same signature
        lambda t: t + t,
        lambda t: "x" * 5000,
        lambda t: "",
    ],
)
def test_a_changed_token_is_tampered(change) -> None:
    with pytest.raises(LinkRefused) as refused:
        LINKS.link_id(change(LINKS.sign("link-1", NOW)), NOW)
    assert refused.value.reason == "tampered"


def test_secrets_rotate_the_first_signs_and_every_one_verifies() -> None:
    before = CustomerLinks(secrets=["old-secret"], lifetime=DAYS, base_url="https://x")
    after = CustomerLinks(secrets=["new-secret"], lifetime=DAYS, base_url="https://x")

    assert LINKS.link_id(before.sign("link-1", NOW), NOW) == "link-1"
    assert after.link_id(LINKS.sign("link-1", NOW), NOW) == "link-1"
    with pytest.raises(LinkRefused):
        before.link_id(after.sign("link-1", NOW), NOW)  # the old secret dropped


def test_links_come_from_the_settings_and_are_off_without_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ONBOARDING_PUBLIC_URL", raising=False)
    monkeypatch.setenv("ONBOARDING_LINK_SECRETS", "s1, s2")
    monkeypatch.setenv("ONBOARDING_LINK_DAYS", "30")
    monkeypatch.setenv("ONBOARDING_PORT", "8123")
    links = CustomerLinks.of(SharedSettings())
    assert links == CustomerLinks(["s1", "s2"], timedelta(days=30), "http://localhost:8123")

    monkeypatch.setenv("ONBOARDING_PUBLIC_URL", "https://onboarding.example.com/")
    assert SharedSettings().public_base() == "https://onboarding.example.com"
    assert CustomerLinks.of(SharedSettings(link_secrets=[])) is None


# --------------------------------------------------------------------------- in the store


def test_an_account_keeps_one_live_link_until_it_is_revoked(store: RecordStore) -> None:
    first = store.live_link("001A", NOW)
    assert store.live_link("001A", NOW + timedelta(days=3)) == first
    assert store.live_link("001B", NOW) != first

    assert store.revoke_links("001A", NOW + timedelta(days=5)) == 1
    assert store.revoke_links("001A", NOW + timedelta(days=6)) == 0
    revoked = store.link(first)
    assert revoked is not None and revoked.revoked_at == NOW + timedelta(days=5)
    assert revoked.issued_at == NOW

    second = store.live_link("001A", NOW + timedelta(days=7))
    assert second != first


def test_verify_names_the_account_of_a_live_link_and_refuses_the_rest(
    store: RecordStore,
) -> None:
    token = LINKS.sign(store.live_link("001A", NOW), NOW)
    assert LINKS.verify(store, token, NOW + timedelta(days=1)) == "001A"

    store.revoke_links("001A", NOW + timedelta(days=2))
    with pytest.raises(LinkRefused) as revoked:
        LINKS.verify(store, token, NOW + timedelta(days=3))
    assert revoked.value.reason == "revoked"

    with pytest.raises(LinkRefused) as unknown:  # signed by us, never issued by this store
        LINKS.verify(store, LINKS.sign("never-issued", NOW), NOW)
    assert unknown.value.reason == "unknown"


def test_the_store_keeps_one_live_link_per_account_even_when_asked_to_keep_two(
    store: RecordStore,
) -> None:
    store.live_link("001A", NOW)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(sa.insert(customer_link).values(link_id="b", account_id="001A", issued_at=NOW))


def test_the_migrations_build_the_schema_the_code_declares(store: RecordStore) -> None:
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


# --------------------------------------------------------------------------- in a message

WELCOME = MessageTemplate(
    subject="Welcome aboard, $account_name",
    body="Your plan has started.\nFollow it at any time: $progress_link\nSee you soon.",
)


def welcome() -> Notification:
    return Notification(
        idempotency_key="onboarding-001A:welcome:customer",
        account_id="001A",
        workflow_id="onboarding-001A",
        audience=Audience.CUSTOMER,
        recipient="champion@acme.example",
        template_id="welcome",
        template=WELCOME,
        variables={"account_name": "Acme"},
    )


async def test_the_welcome_email_carries_the_accounts_link_issued_at_send_time(
    mailbox: Mailbox, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    settings = email_settings(
        mailbox, records_url=url, link_secrets="s1", public_url="https://onboarding.example"
    )
    sent_at = datetime.now(UTC)
    await ActivityEnvironment().run(Notifier(settings, LazyStore(url)).notify, welcome())

    [message] = mailbox.messages
    lines = message.get_content().strip().splitlines()
    assert lines[0] == "Your plan has started."
    assert lines[2] == "See you soon."
    found = re.fullmatch(
        r"Follow it at any time: https://onboarding\.example/progress/(\S+)", lines[1]
    )
    assert found, lines[1]
    links = CustomerLinks.of(settings)
    assert links is not None
    store = RecordStore.open(url)
    assert links.verify(store, found[1], sent_at + timedelta(days=150)) == "001A"
    with pytest.raises(LinkRefused):
        links.verify(store, found[1], sent_at + timedelta(days=151))


async def test_without_a_link_secret_the_lines_naming_the_link_are_left_out(
    mailbox: Mailbox, tmp_path: Path
) -> None:
    db = tmp_path / "records.db"
    settings = email_settings(mailbox, records_url=f"sqlite:///{db}", link_secrets="")
    await ActivityEnvironment().run(Notifier(settings).notify, welcome())

    [message] = mailbox.messages
    assert message.get_content().strip().splitlines() == ["Your plan has started.", "See you soon."]
    assert not await asyncio.to_thread(db.exists)  # the store was never opened


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str | None]:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    RecordStore.open(url).save(make_record("001A", NOW - timedelta(days=10)))
    return {
        "ONBOARDING_RECORDS_URL": url,
        "ONBOARDING_LINK_SECRETS": "cli-secret",
        "ONBOARDING_PUBLIC_URL": "https://onboarding.example",
    }


def test_link_issue_prints_the_live_link_and_revoke_ends_it(
    cli_env: dict[str, str | None],
) -> None:
    runner = CliRunner()
    store = RecordStore.open(str(cli_env["ONBOARDING_RECORDS_URL"]))
    links = CustomerLinks(["cli-secret"], DAYS, "")

    issued = runner.invoke(app, ["link", "issue", "001A"], env=cli_env)
    assert issued.exit_code == 0, issued.output
    url = issued.output.strip()
    assert url.startswith("https://onboarding.example/progress/")
    token = url.rsplit("/", 1)[1]
    assert links.verify(store, token, datetime.now(UTC)) == "001A"

    revoked = runner.invoke(app, ["link", "revoke", "onboarding-001A"], env=cli_env)
    assert (revoked.exit_code, revoked.output) == (0, "revoked the progress link of 001A\n")
    with pytest.raises(LinkRefused):
        links.verify(store, token, datetime.now(UTC))
    again = runner.invoke(app, ["link", "revoke", "001A"], env=cli_env)
    assert again.output == "001A has no live progress link\n"

    reissued = runner.invoke(app, ["link", "issue", "001A"], env=cli_env).output.strip()
    assert links.verify(store, reissued.rsplit("/", 1)[1], datetime.now(UTC)) == "001A"


@pytest.mark.parametrize(
    ("account", "env", "error"),
    [
        ("001Z", {}, "no onboarding record for account 001Z in the records store"),
        ("001A", {"ONBOARDING_LINK_SECRETS": ""}, "customer links are off: set "),
    ],
)
def test_link_issue_refuses_an_unknown_account_or_links_off(
    cli_env: dict[str, str | None], account: str, env: dict[str, str], error: str
) -> None:
    result = CliRunner().invoke(app, ["link", "issue", account], env=cli_env | env)
    assert result.exit_code == 1
    assert error in result.output
