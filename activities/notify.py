"""The `notify` activity: render a playbook template and deliver it once per channel.

A group program's invitation (`Notification.invite`) goes by email with its iCalendar
invitation (`activities.calendar`) as a `text/calendar; method=REQUEST` part; the other
channels send the text alone (it names the session and the join link).

A template that names `$progress_link` gets the customer's progress link there
(`activities.records.links`), issued at send time: the workflow signs nothing. Without
`ONBOARDING_LINK_SECRETS` (links off) the body's lines that name it are left out (a
subject naming it is then a template error, like any variable without a value).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import smtplib
import ssl
import string
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calendar import invitation
from activities.records.links import CustomerLinks
from activities.records.store import LazyStore
from activities.settings import Settings
from workflows import contract
from workflows.models import Audience, Notification, NotificationReceipt

log = structlog.get_logger(__name__)

# (idempotency key, channel) pairs kept in memory; the oldest are forgotten first.
MAX_REMEMBERED = 100_000
LINK_VARIABLE = "progress_link"


class Notifier:
    """Delivers each notification at most once per channel (per process, and across
    restarts when `sent_log` is set), so Temporal's retries never double-send."""

    def __init__(self, settings: Settings, records: LazyStore | None = None) -> None:
        self._settings = settings
        self._links = CustomerLinks.of(settings)
        self._records = records or LazyStore(settings.records_url)
        self._delivered: dict[tuple[str, str], None] = {}  # insertion order = age
        self._in_flight: set[str] = set()
        self._sent_log_read = False

    @activity.defn(name=contract.NOTIFY.name)
    async def notify(self, notification: Notification) -> NotificationReceipt:
        key = notification.idempotency_key
        with structlog.contextvars.bound_contextvars(
            account_id=notification.account_id, workflow_id=notification.workflow_id
        ):
            subject, body = _render(await self._with_link(notification))
            recipient = self._recipient(notification)
            if key in self._in_flight:
                # An attempt that timed out may still be sending here; let Temporal retry.
                raise ApplicationError(
                    f"notification {key} is already being sent",
                    type=contract.NOTIFICATION_IN_FLIGHT,
                )
            self._in_flight.add(key)
            try:
                await self._read_sent_log()
                sent: list[str] = []
                for channel in self._settings.notify_channels:
                    if (key, channel) in self._delivered:
                        continue
                    if channel == "email":
                        ics = None
                        if notification.invite is not None:
                            now = datetime.now(UTC)
                            ics = invitation(notification.invite, recipient, body, now)
                        await asyncio.to_thread(self._email, key, recipient, subject, body, ics)
                    elif channel == "slack":
                        await self._slack(key, subject, body)
                    else:
                        log.info(
                            "notification_sent",
                            audience=notification.audience.value,
                            recipient=recipient,
                            subject=subject,
                            idempotency_key=key,
                        )
                    await self._record(key, channel, subject)
                    sent.append(channel)
            finally:
                self._in_flight.discard(key)
            if not sent:
                log.info("notification_already_sent", idempotency_key=key)
            return NotificationReceipt(idempotency_key=key, subject=subject, channels=sent)

    async def _with_link(self, notification: Notification) -> Notification:
        """`notification` with `$progress_link` filled in with the account's progress link
        (its live one, signed now), or, with links off, without the lines naming it."""
        template = notification.template
        if not any(
            LINK_VARIABLE in string.Template(text).get_identifiers()
            for text in (template.subject, template.body)
        ):
            return notification
        if self._links is None:
            lines = template.body.splitlines()
            kept = [x for x in lines if LINK_VARIABLE not in string.Template(x).get_identifiers()]
            body = template.model_copy(update={"body": "\n".join(kept)})
            return notification.model_copy(update={"template": body})
        store = await self._records.get()
        url = await asyncio.to_thread(
            self._links.issue, store, notification.account_id, datetime.now(UTC)
        )
        variables = notification.variables | {LINK_VARIABLE: url}
        return notification.model_copy(update={"variables": variables})

    def _recipient(self, notification: Notification) -> str:
        if notification.recipient:
            return notification.recipient
        if notification.audience is Audience.CS_LEADERSHIP:
            return self._settings.cs_leadership_email
        return self._settings.default_recipient

    def _email(
        self, key: str, recipient: str, subject: str, body: str, ics: bytes | None = None
    ) -> None:
        """Blocking SMTP delivery; runs in a thread. `ics`: an iCalendar invitation,
        attached as `invite.ics` (`text/calendar; method=REQUEST`)."""
        s = self._settings
        msg = EmailMessage()
        msg["From"] = s.smtp_from
        msg["To"] = recipient
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        # The same key always gives the same Message-ID, so mail systems can drop a
        # duplicate that slips through (sent, then the worker died before recording it).
        domain = parseaddr(s.smtp_from)[1].rpartition("@")[2] or "localhost"
        msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
        msg["X-Idempotency-Key"] = key
        msg.set_content(body)
        if ics is not None:
            msg.add_attachment(
                ics,
                maintype="text",
                subtype="calendar",
                filename="invite.ics",
                params={"method": "REQUEST", "charset": "utf-8"},
            )
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                    smtp.login(s.smtp_username, password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _smtp_error(exc, permanent=min(codes) >= 500) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc, permanent=exc.smtp_code >= 500) from exc
        except OSError as exc:  # connection trouble; smtplib.SMTPException is an OSError too
            raise _smtp_error(exc, permanent=False) from exc

    async def _slack(self, key: str, subject: str, body: str) -> None:
        url = self._settings.slack_webhook_url
        assert url, "Settings requires slack_webhook_url with the slack channel"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(
                    url, json={"text": f"*{subject}*\n{body}"}, headers={"Idempotency-Key": key}
                )
        except httpx.HTTPError as exc:  # the message leaves out the URL: it is a secret
            raise ApplicationError(
                f"Slack webhook unreachable: {type(exc).__name__}: {exc}", type=contract.SLACK_ERROR
            ) from exc
        if response.is_success:
            return
        retryable = response.status_code == 429 or response.status_code >= 500
        retry_after = response.headers.get("Retry-After", "")
        raise ApplicationError(
            f"Slack webhook answered {response.status_code}: {response.text[:200]}",
            type=contract.SLACK_ERROR,
            non_retryable=not retryable,
            next_retry_delay=(
                timedelta(seconds=int(retry_after)) if retryable and retry_after.isdigit() else None
            ),
        )

    async def _read_sent_log(self) -> None:
        path = self._settings.sent_log
        if path is None or self._sent_log_read:
            return
        for pair in await asyncio.to_thread(_read_pairs, path):
            self._remember(pair)
        self._sent_log_read = True

    async def _record(self, key: str, channel: str, subject: str) -> None:
        self._remember((key, channel))
        path = self._settings.sent_log
        if path is not None:
            entry = {
                "key": key,
                "channel": channel,
                "at": datetime.now(UTC).isoformat(),
                "subject": subject,
            }
            await asyncio.to_thread(_append_line, path, json.dumps(entry))

    def _remember(self, pair: tuple[str, str]) -> None:
        self._delivered[pair] = None
        if len(self._delivered) > MAX_REMEMBERED:
            del self._delivered[next(iter(self._delivered))]


def _render(notification: Notification) -> tuple[str, str]:
    """Subject and body with the variables filled in; the subject on one line."""
    template, variables = notification.template, notification.variables
    try:
        subject = string.Template(template.subject).substitute(variables)
        body = string.Template(template.body).substitute(variables)
    except KeyError as exc:
        raise ApplicationError(
            f"template {notification.template_id!r}: no value for variable ${exc.args[0]}",
            type=contract.TEMPLATE_ERROR,
            non_retryable=True,
        ) from exc
    except ValueError as exc:  # a stray `$` that is not a placeholder
        raise ApplicationError(
            f"template {notification.template_id!r}: {exc}",
            type=contract.TEMPLATE_ERROR,
            non_retryable=True,
        ) from exc
    return " ".join(subject.split()), body


def _smtp_error(exc: OSError, *, permanent: bool) -> ApplicationError:
    return ApplicationError(f"SMTP: {exc}", type=contract.SMTP_ERROR, non_retryable=permanent)


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            pairs.append((entry["key"], entry["channel"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a crash mid-write
    return pairs


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
