"""Activities against real local servers: aiosmtpd for email, http.server for Slack."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import Notifier, Settings, configure_logging
from starter.devserver import free_port
from tests.support.mail import Mailbox, email_settings
from workflows.models import (
    Audience,
    MessageTemplate,
    Notification,
    NotificationReceipt,
)

WELCOME = MessageTemplate(
    subject="Welcome aboard, $account_name",
    body="Your onboarding plan ($tier) has started. First up: $milestone, due $due.",
)


def notification(**changes: Any) -> Notification:
    base = Notification(
        idempotency_key="onboarding-acme:welcome",
        account_id="acme",
        workflow_id="onboarding-acme",
        audience=Audience.CUSTOMER,
        recipient="champion@acme.example",
        template_id="welcome",
        template=WELCOME,
        variables={
            "account_name": "Acme",
            "tier": "high_touch",
            "milestone": "Kickoff call",
            "due": "2031-01-15",  # template text only
        },
    )
    return base.model_copy(update=changes)


async def notify(notifier: Notifier, n: Notification) -> NotificationReceipt:
    return await ActivityEnvironment().run(notifier.notify, n)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ONBOARDING_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("ONBOARDING_"):
            monkeypatch.delenv(name)


# --------------------------------------------------------------------------- email


async def test_email_renders_and_is_sent_once(mailbox: Mailbox) -> None:
    notifier = Notifier(email_settings(mailbox))

    first = await notify(notifier, notification())
    again = await notify(notifier, notification())

    assert first.channels == ["email"]
    assert first.subject == "Welcome aboard, Acme"
    assert again.channels == []
    assert len(mailbox.messages) == 1
    msg = mailbox.messages[0]
    assert msg["Subject"] == "Welcome aboard, Acme"
    assert msg["To"] == "champion@acme.example"
    assert mailbox.envelope_to == [["champion@acme.example"]]
    assert msg["X-Idempotency-Key"] == "onboarding-acme:welcome"
    assert msg["Message-ID"].endswith("@localhost>")
    assert msg.get_content().strip() == (
        "Your onboarding plan (high_touch) has started. First up: Kickoff call, due 2031-01-15."
    )


async def test_message_id_is_stable_per_key(mailbox: Mailbox) -> None:
    # Two workers (no shared memory) sending the same key give mail systems one id.
    for _ in range(2):
        await notify(Notifier(email_settings(mailbox)), notification())
    await notify(Notifier(email_settings(mailbox)), notification(idempotency_key="other"))

    ids = [m["Message-ID"] for m in mailbox.messages]
    assert ids[0] == ids[1] != ids[2]


async def test_sent_log_survives_a_worker_restart(mailbox: Mailbox, tmp_path) -> None:
    sent_log = tmp_path / "data" / "sent.jsonl"
    await notify(Notifier(email_settings(mailbox, sent_log=sent_log)), notification())

    restarted = Notifier(email_settings(mailbox, sent_log=sent_log))
    receipt = await notify(restarted, notification())

    assert receipt.channels == []
    assert len(mailbox.messages) == 1
    [line] = sent_log.read_text().splitlines()
    entry = json.loads(line)
    assert entry["key"] == "onboarding-acme:welcome"
    assert entry["subject"] == "Welcome aboard, Acme"
    assert entry["at"]


async def test_cs_leadership_without_recipient_goes_to_leadership(mailbox: Mailbox) -> None:
    notifier = Notifier(
        email_settings(
            mailbox, cs_leadership_email="leaders@vendor.example", default_recipient="ops@v.example"
        )
    )

    await notify(
        notifier, notification(audience=Audience.CS_LEADERSHIP, recipient=None, idempotency_key="a")
    )
    await notify(notifier, notification(recipient=None, idempotency_key="b"))

    assert [m["To"] for m in mailbox.messages] == ["leaders@vendor.example", "ops@v.example"]


@pytest.mark.parametrize(("reply", "retryable"), [("550 No such user", False), ("450 Busy", True)])
async def test_refused_recipient(mailbox: Mailbox, reply: str, retryable: bool) -> None:
    mailbox.rcpt_reply = reply

    with pytest.raises(ApplicationError) as caught:
        await notify(Notifier(email_settings(mailbox)), notification())

    assert caught.value.non_retryable is not retryable
    assert reply.split()[0] in str(caught.value)
    assert mailbox.messages == []


async def test_smtp_server_down_is_retryable() -> None:
    settings = Settings(notify_channels=["email"], smtp_host="127.0.0.1", smtp_port=free_port())

    with pytest.raises(ApplicationError) as caught:
        await notify(Notifier(settings), notification())

    assert caught.value.type == "SmtpError"
    assert not caught.value.non_retryable


async def test_missing_variable_is_a_non_retryable_template_error(mailbox: Mailbox) -> None:
    n = notification(variables={"account_name": "Acme", "tier": "high_touch"})

    with pytest.raises(ApplicationError) as caught:
        await notify(Notifier(email_settings(mailbox)), n)

    assert caught.value.type == "TemplateError"
    assert caught.value.non_retryable
    assert "$milestone" in str(caught.value)
    assert "welcome" in str(caught.value)
    assert mailbox.messages == []


# --------------------------------------------------------------------------- slack


class Webhook:
    """A Slack-compatible incoming webhook that records requests and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.url = ""


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": self.headers,
                    "json": json.loads(body),
                }
            )
            self.send_response(hook.status)
            for name, value in hook.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/secret"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


async def test_slack_posts_text_with_idempotency_key(webhook: Webhook) -> None:
    notifier = Notifier(Settings(notify_channels=["slack"], slack_webhook_url=webhook.url))

    receipt = await notify(notifier, notification())
    await notify(notifier, notification())

    assert receipt.channels == ["slack"]
    [request] = webhook.requests
    assert request["method"] == "POST"
    assert request["path"] == "/services/T0/B0/secret"
    assert request["json"] == {
        "text": "*Welcome aboard, Acme*\nYour onboarding plan (high_touch) has started. "
        "First up: Kickoff call, due 2031-01-15."
    }
    assert request["headers"]["Idempotency-Key"] == "onboarding-acme:welcome"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (404, False), (503, True)])
async def test_slack_error_answers(webhook: Webhook, status: int, retryable: bool) -> None:
    webhook.status = status
    notifier = Notifier(Settings(notify_channels=["slack"], slack_webhook_url=webhook.url))

    with pytest.raises(ApplicationError) as caught:
        await notify(notifier, notification())

    assert caught.value.type == "SlackError"
    assert caught.value.non_retryable is not retryable
    assert str(status) in str(caught.value)
    assert "secret" not in str(caught.value)


async def test_slack_rate_limit_retries_after_the_advertised_delay(webhook: Webhook) -> None:
    webhook.status, webhook.headers = 429, {"Retry-After": "7"}
    notifier = Notifier(Settings(notify_channels=["slack"], slack_webhook_url=webhook.url))

    with pytest.raises(ApplicationError) as caught:
        await notify(notifier, notification())

    assert not caught.value.non_retryable
    assert caught.value.next_retry_delay == timedelta(seconds=7)


async def test_slack_unreachable_is_retryable() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    notifier = Notifier(Settings(notify_channels=["slack"], slack_webhook_url=url))

    with pytest.raises(ApplicationError) as caught:
        await notify(notifier, notification())

    assert caught.value.type == "SlackError"
    assert not caught.value.non_retryable


async def test_retry_after_partial_failure_sends_only_the_missing_channel(
    mailbox: Mailbox, webhook: Webhook
) -> None:
    settings = email_settings(mailbox, slack_webhook_url=webhook.url)
    notifier = Notifier(settings.model_copy(update={"notify_channels": ["email", "slack"]}))
    webhook.status = 503

    with pytest.raises(ApplicationError):
        await notify(notifier, notification())
    webhook.status = 200
    receipt = await notify(notifier, notification())

    assert receipt.channels == ["slack"]
    assert len(mailbox.messages) == 1
    assert len(webhook.requests) == 2


# --------------------------------------------------------------------------- log channel


async def test_log_line_carries_the_account(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        configure_logging(json=True)
        configure_logging(json=True)  # twice is harmless
        notifier = Notifier(Settings())

        receipt = await notify(notifier, notification())
        await notify(notifier, notification())
        structlog.get_logger().info("after_the_activity")
    finally:
        structlog.reset_defaults()

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert receipt.channels == ["log"]
    assert [line["event"] for line in lines] == [
        "notification_sent",
        "notification_already_sent",
        "after_the_activity",
    ]
    sent, again, after = lines
    assert {k: sent[k] for k in ("account_id", "workflow_id", "audience", "recipient")} == {
        "account_id": "acme",
        "workflow_id": "onboarding-acme",
        "audience": "customer",
        "recipient": "champion@acme.example",
    }
    assert sent["subject"] == "Welcome aboard, Acme"
    assert sent["idempotency_key"] == "onboarding-acme:welcome"
    assert again["account_id"] == "acme"
    assert "account_id" not in after


# --------------------------------------------------------------------------- settings


def test_settings_parse_comma_separated_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ONBOARDING_NOTIFY_CHANNELS", "log, email")
    monkeypatch.setenv("ONBOARDING_CSM_ROSTER", "ann@v.example,bob@v.example")
    monkeypatch.setenv("ONBOARDING_SENT_LOG", str(tmp_path / "sent.jsonl"))
    monkeypatch.setenv("ONBOARDING_SMTP_PORT", "2525")

    settings = Settings()

    assert settings.notify_channels == ["log", "email"]
    assert settings.csm_roster == ["ann@v.example", "bob@v.example"]
    assert settings.sent_log == tmp_path / "sent.jsonl"
    assert settings.smtp_port == 2525


def test_settings_defaults() -> None:
    settings = Settings()

    assert settings.notify_channels == ["log"]
    assert settings.csm_roster == ["csm-1@localhost", "csm-2@localhost"]
    assert settings.sent_log is None


def test_unknown_channel_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONBOARDING_NOTIFY_CHANNELS", "log,sms")

    with pytest.raises(ValidationError) as caught:
        Settings()

    assert "notify_channels" in str(caught.value)
    assert "'sms'" in str(caught.value)


def test_slack_without_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONBOARDING_NOTIFY_CHANNELS", "slack")

    with pytest.raises(ValidationError, match="ONBOARDING_SLACK_WEBHOOK_URL"):
        Settings()
