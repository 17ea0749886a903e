"""Customers' progress links: one signed, expiring, revocable read-only URL per account,
opening the customer's page of their onboarding (`starter.ingress.customer`).

    links = CustomerLinks.of(settings)           # None: no ONBOARDING_LINK_SECRETS, no links
    url = links.issue(store, "001...", now)      # <public URL>/progress/<token>
    account_id = links.verify(store, token, now) # or LinkRefused(reason)
    store.revoke_links("001...", now)            # refused from then on; issue makes a new one

The token is itsdangerous' URL-safe timed signature (HMAC-SHA256) of the link's id: it
opens the page for `link_days` after it was signed, and while the link's row in the store
(`customer_link`) is not revoked. It carries nothing but the id. The secrets rotate like
every other secret here: the first signs, every one verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from activities.records.store import RecordStore
from activities.settings import SharedSettings

PATH = "/progress/"
# Signatures for anything else made with the same secrets never verify as a link.
_SALT = "onboarding.customer-progress-link"
# A token is about 80 characters; anything much longer is refused before it is decoded.
MAX_TOKEN_CHARS = 200

Refusal = Literal["tampered", "expired", "unknown", "revoked"]


class LinkRefused(Exception):
    """A token that opens nothing: `tampered` (not our signature, or not a token at all),
    `expired` (signed more than `link_days` ago, or after now), `unknown` (no such link in
    this store) or `revoked`."""

    def __init__(self, reason: Refusal, link_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason
        self.link_id = link_id


class _ClockSigner(TimestampSigner):
    """itsdangerous' timed signer on the caller's clock instead of the machine's."""

    def __init__(self, *args: Any, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now.timestamp())


@dataclass(frozen=True)
class CustomerLinks:
    """Signs and checks progress links; the store they live in is passed to each call."""

    secrets: Sequence[str]
    lifetime: timedelta
    base_url: str

    @classmethod
    def of(cls, settings: SharedSettings) -> CustomerLinks | None:
        """The links of these settings; None when no secret is set (links are off)."""
        if not settings.link_secrets:
            return None
        return cls(
            secrets=[s.get_secret_value() for s in settings.link_secrets],
            lifetime=timedelta(days=settings.link_days),
            base_url=settings.public_base(),
        )

    def _serializer(self, now: datetime) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            list(reversed(self.secrets)),  # itsdangerous signs with the last
            salt=_SALT,
            signer=_ClockSigner,
            signer_kwargs={"now": now, "digest_method": hashlib.sha256},
        )

    def sign(self, link_id: str, now: datetime) -> str:
        """The token of `link_id`, signed at `now`."""
        return str(self._serializer(now).dumps(link_id))

    def url(self, token: str) -> str:
        return f"{self.base_url}{PATH}{token}"

    def link_id(self, token: str, now: datetime) -> str:
        """The link id `token` signs, if it was signed with one of the secrets within
        `lifetime` before `now`; else LinkRefused (`tampered` or `expired`)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise LinkRefused("tampered")
        try:
            link_id = self._serializer(now).loads(token, max_age=int(self.lifetime.total_seconds()))
        except SignatureExpired:
            raise LinkRefused("expired") from None
        except BadData:
            raise LinkRefused("tampered") from None
        if not isinstance(link_id, str):  # signed by us, so never; but never trusted either
            raise LinkRefused("tampered")
        return link_id

    def issue(self, store: RecordStore, account_id: str, now: datetime) -> str:
        """The URL of the account's live link (issued now if it has none), signed now."""
        return self.url(self.sign(store.live_link(account_id, now), now))

    def verify(self, store: RecordStore, token: str, now: datetime) -> str:
        """The account whose page `token` opens at `now`; else LinkRefused."""
        link_id = self.link_id(token, now)
        link = store.link(link_id)
        if link is None:
            raise LinkRefused("unknown", link_id)
        if link.revoked_at is not None:
            raise LinkRefused("revoked", link_id)
        return link.account_id
