"""A real SMTP server's mailbox (aiosmtpd handler) and the notifier settings that send to
it; the `mailbox` fixture (a running server) is in `tests/conftest.py`."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from activities import Settings


class Mailbox:
    """aiosmtpd handler that keeps what it receives; `rcpt_reply` can refuse recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelope_to: list[list[str]] = []
        self.rcpt_reply = "250 OK"
        self.port = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelope_to.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def email_settings(box: Mailbox, **changes: Any) -> Settings:
    return Settings(notify_channels=["email"], smtp_host="127.0.0.1", smtp_port=box.port, **changes)
