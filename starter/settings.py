"""HTTP ingress configuration from `ONBOARDING_*` environment variables.

Secrets come only from the environment. Every secret setting is a comma-separated list
so a secret can be rotated without downtime: put the new one first, keep the old one
until every sender uses the new one, then drop it.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, field_validator

from activities.settings import CommaList, SecretList, SharedSettings, _split, closed_won_stages
from workflows.models import DealLostAction, StartOptions
from workflows.playbook import DEFAULT_PLAYBOOK


class IngressSettings(SharedSettings):
    """The ingress's settings; the HubSpot API ones (token, URL, closed-won stages), the
    exchange rates, the records store, the port and public URL and the progress links'
    secrets are shared with the worker (`SharedSettings`)."""

    host: str = "127.0.0.1"
    playbook: Path = DEFAULT_PLAYBOOK
    max_body_bytes: int = Field(default=1_000_000, ge=1)
    signature_tolerance_s: int = Field(default=300, ge=1)

    # CRM webhooks
    hubspot_secrets: SecretList = []
    salesforce_secrets: SecretList = []
    salesforce_outbound_tokens: SecretList = []
    salesforce_org_ids: CommaList = []
    # Used when a message carries no IsWon.
    salesforce_closed_won_stages: CommaList = closed_won_stages("SALESFORCE", "Closed Won")
    deal_lost: DealLostAction = Field(
        default="cancel",
        description="A deal lost after its onboarding started: `cancel` the onboarding, or "
        "`flag` it (a risk flag and a required decision)",
    )
    webhook_secrets: SecretList = Field(
        default=[], description="Standard Webhooks secrets (whsec_...) for /webhooks/deals"
    )
    # A new champion (rules §6.3): OpportunityContactRole.Role values that mean champion.
    salesforce_champion_roles: CommaList = Field(
        default=["Champion"],
        min_length=1,
        description="OpportunityContactRole roles that make the contact the account's "
        "champion, comma-separated",
    )
    # How long a HubSpot webhook waits for the deal to be fetched before answering 202.
    intake_wait_s: float = Field(default=4.0, ge=0)
    event_signal_spacing_ms: int = Field(
        default=100,
        ge=0,
        le=5000,
        description="Milliseconds at least between two product-events signals to one "
        "account: a busy account's events gather meanwhile (0: none)",
    )

    # Product events
    segment_secrets: SecretList = Field(
        default=[], description="Shared secrets of Segment's X-Signature (HMAC-SHA1)"
    )
    events_webhook_secrets: SecretList = Field(
        default=[], description="Standard Webhooks secrets (whsec_...) for /events"
    )
    event_account_paths: CommaList = Field(
        default=["groupId", "context.groupId"],
        description="Where an event names its account, tried in order (dotted paths)",
    )
    deal_wait_days: int = Field(
        default=30,
        ge=1,
        description="An onboarding started by product events ends if no deal comes by then",
    )

    max_history_events: int = Field(
        default=2_000,
        ge=100,
        description="An onboarding continues-as-new once its run's history is this long",
    )

    # Reads of customer data (GET /accounts/{id}, /codec/*)
    api_tokens: SecretList = Field(
        default=[],
        validation_alias=AliasChoices("ONBOARDING_API_TOKENS", "ONBOARDING_CODEC_AUTH_TOKENS"),
        description="Bearer tokens that may read customer data, comma-separated (rotation); "
        "the older ONBOARDING_CODEC_AUTH_TOKENS is read when this is unset",
    )

    def start_options(self) -> StartOptions:
        return StartOptions(
            deal_wait_days=self.deal_wait_days, max_history_events=self.max_history_events
        )

    _split_lists = field_validator(
        "hubspot_secrets",
        "salesforce_secrets",
        "salesforce_outbound_tokens",
        "salesforce_org_ids",
        "webhook_secrets",
        "segment_secrets",
        "events_webhook_secrets",
        "event_account_paths",
        "salesforce_closed_won_stages",
        "api_tokens",
        "salesforce_champion_roles",
        mode="before",
    )(_split)


def reveal(secrets: list[SecretStr]) -> list[str]:
    return [s.get_secret_value() for s in secrets]


# `onboarding up` on a developer's machine: secrets nobody set are generated once and kept
# beside the dev server's database, so webhooks and `onboarding send-event` work at once.
LOCAL_SECRETS_FILE = "ingress-secrets.env"


def _token() -> str:
    return secrets.token_urlsafe(32)


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


_LOCAL_SECRETS: dict[str, Callable[[], str]] = {
    "ONBOARDING_HUBSPOT_SECRETS": _token,
    "ONBOARDING_SALESFORCE_SECRETS": _token,
    "ONBOARDING_SALESFORCE_OUTBOUND_TOKENS": _token,
    "ONBOARDING_WEBHOOK_SECRETS": _whsec,
    "ONBOARDING_SEGMENT_SECRETS": _token,
    "ONBOARDING_EVENTS_WEBHOOK_SECRETS": _whsec,
    "ONBOARDING_API_TOKENS": _token,
    "ONBOARDING_LINK_SECRETS": _token,
}
# A secret set under its older name needs no local one.
_FORMERLY = {"ONBOARDING_API_TOKENS": "ONBOARDING_CODEC_AUTH_TOKENS"}


def local_secrets_path(data_dir: Path | None = None) -> Path:
    return (data_dir or Path.cwd() / ".data") / LOCAL_SECRETS_FILE


def ensure_local_secrets(path: Path) -> list[str]:
    """Export a secret for every secret setting the environment leaves unset, reusing the
    ones in `path` (created 0600 when missing). Returns the names taken from the file."""
    kept = dotenv_values(path) if path.exists() else {}
    taken = []
    for name, make in _LOCAL_SECRETS.items():
        if os.environ.get(name) or os.environ.get(_FORMERLY.get(name, "")):
            continue
        kept[name] = kept.get(name) or make()
        os.environ[name] = str(kept[name])
        taken.append(name)
    if taken:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in kept.items() if v))
    return taken
