"""`onboarding up`'s banner says where the notifications go: with the default log channel
a first-time user otherwise looks for an email that was never sent."""

from __future__ import annotations

import pytest

from activities.settings import Settings
from starter.cli.stack import where_messages_go


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {},
            "the worker's log (subjects only); to send email set "
            "ONBOARDING_NOTIFY_CHANNELS=log,email and ONBOARDING_SMTP_*",
        ),
        (
            {"ONBOARDING_NOTIFY_CHANNELS": "log,email", "ONBOARDING_SMTP_HOST": "mail.test"},
            "the worker's log (subjects only), email via mail.test:25",
        ),
        (
            {
                "ONBOARDING_NOTIFY_CHANNELS": "slack",
                "ONBOARDING_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/hook",
            },
            "Slack (ONBOARDING_SLACK_WEBHOOK_URL)",
        ),
    ],
)
def test_the_banner_says_where_messages_go(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    for key in ("ONBOARDING_NOTIFY_CHANNELS", "ONBOARDING_SMTP_HOST"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert where_messages_go(Settings()) == line
