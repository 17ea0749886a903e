"""Activity configuration from `ONBOARDING_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from activities.money import DEFAULT_FX_RATES
from workflows.models import PRODUCT_ID, PRODUCT_ID_FORM
from workflows.validation import dotted, message

CHANNELS = ("log", "email", "slack")
PREFIX = "ONBOARDING_"


def settings_problems(exc: ValidationError) -> str:
    """Bad `ONBOARDING_*` settings (of any process), each named by its variable:
    `bad settings: ONBOARDING_SMTP_PORT: <reason>; ...`."""
    problems = []
    for e in exc.errors():
        name = dotted(e["loc"]).upper()
        name = name if name.startswith(PREFIX) else f"{PREFIX}{name or 'SETTINGS'}"
        problems.append(f"{name}: {message(e)}")
    return "bad settings: " + "; ".join(problems)


def _split(value: object) -> object:
    """`a, b` from the environment becomes `["a", "b"]`; lists pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# NoDecode: take the raw env string instead of pydantic-settings' JSON decoding of lists.
CommaList = Annotated[list[str], NoDecode]
SecretList = Annotated[list[SecretStr], NoDecode]


def closed_won_stages(crm: str, default: str) -> Any:
    """`ONBOARDING_<CRM>_CLOSED_WON_STAGES`, a comma list; the older singular
    `ONBOARDING_<CRM>_CLOSED_WON_STAGE` is still read when the list is unset."""
    name = f"ONBOARDING_{crm}_CLOSED_WON_STAGES"
    return Field(
        default=[default],
        validation_alias=AliasChoices(name, name.removesuffix("S")),
        description="Stages that mean closed-won, comma-separated",
    )


class StoreSettings(BaseSettings):
    """Where the onboarding records store is: every process that talks to Temporal reads
    it too, since the pinned playbooks' content lives there (`activities.pinning`)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, populate_by_name=True)

    records_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / '.data' / 'records.db'}",
        description="The onboarding records store: sqlite:///path or postgresql://...",
    )


class SharedSettings(StoreSettings):
    """What the worker and the ingress both read: HubSpot's CRM API (the deal fetch, and
    the deal pipelines: which stage ids are closed-won or closed-lost) and the exchange
    rates every inbound deal is counted with, the onboarding records store (written by
    the worker, read by reports and the dashboard), and the customers' progress links
    (signed by the worker into welcome emails, opened at the ingress's public URL)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, populate_by_name=True)

    hubspot_api_url: str = "https://api.hubapi.com"
    hubspot_token: SecretStr | None = Field(
        default=None, description="Private app token (deals, companies, contacts read)"
    )
    # Closed-won without asking HubSpot; every other stage is looked up in the pipelines.
    hubspot_closed_won_stages: CommaList = closed_won_stages("HUBSPOT", "closedwon")
    # A contact whose buying role gains one of these values is the account's new champion
    # (rules §6.3): HubSpot's standard multi-select "Buying role" and its "Champion".
    hubspot_champion_property: str = Field(
        default="hs_buying_role",
        min_length=1,
        description="The contact property that holds a contact's buying role",
    )
    hubspot_champion_values: CommaList = Field(
        default=["CHAMPION"],
        min_length=1,
        description="Its internal values that make the contact the champion, comma-separated",
    )

    # A CRM deal's products (rules §6.2): which lines of a deal are products, and the
    # HubSpot line item property that holds a line's product code.
    crm_products: CommaList = Field(
        default=[],
        description="The product ids (those product events carry) that a CRM deal's line "
        "items onboard as products, comma-separated; unset: every CRM deal is one product",
    )
    hubspot_product_property: str = Field(
        default="hs_sku",
        min_length=1,
        description="The HubSpot line item property holding its product code",
    )

    fx_rates: Path = Field(
        default=DEFAULT_FX_RATES, description="Dated exchange rates for deals not in USD"
    )
    workflow_sandbox: bool = Field(
        default=False,
        description="Run workflow code in the SDK's sandbox, which imports the workflow's "
        "modules afresh for every onboarding it loads: about 2x the worker's memory and "
        "CPU per onboarding. The test suite and the replay tests always run it sandboxed",
    )

    port: int = Field(default=8000, description="The HTTP ingress's port")
    public_url: str | None = Field(
        default=None,
        description="The URL senders use to reach this service (behind a proxy); HubSpot "
        "signs the full URI, so it must match what HubSpot called. Customers' progress "
        "links begin with it (default http://localhost:<port>)",
    )
    link_secrets: SecretList = Field(
        default=[],
        description="Secrets that sign customers' progress links, comma-separated: the "
        "first signs, every one verifies (rotation). Unset: no links are issued or opened",
    )
    link_days: int = Field(
        default=150,
        ge=1,
        description="How long a customer's progress link opens its page after it was "
        "signed: the default playbook's longest plan (98 days) with room for pauses",
    )

    def public_base(self) -> str:
        """The service's public URL without a trailing slash."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    _split_shared = field_validator(
        "hubspot_closed_won_stages",
        "link_secrets",
        "hubspot_champion_values",
        "crm_products",
        mode="before",
    )(_split)

    @field_validator("crm_products")
    @classmethod
    def _product_ids(cls, value: list[str]) -> list[str]:
        for pid in value:
            if not PRODUCT_ID.match(pid):
                raise ValueError(
                    f"{pid!r} is not a product id ({PRODUCT_ID_FORM}: the id product "
                    "events carry in `product`)"
                )
        return list(dict.fromkeys(value))


class Settings(SharedSettings):
    notify_channels: CommaList = Field(default=["log"], min_length=1)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "onboarding@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    slack_webhook_url: str | None = None
    cs_leadership_email: str = "cs-leadership@localhost"
    default_recipient: str = "cs-ops@localhost"
    # Who onboardings are assigned to (rules §7): the roster file; without one, these
    # CSMs, covering every tier and region at the playbook's capacity.
    roster_file: Path | None = Field(
        default=None,
        description="The roster (TOML): CSMs and implementation specialists with their "
        "role, tiers, regions and capacity; unset: ONBOARDING_CSM_ROSTER",
    )
    csm_roster: CommaList = ["csm-1@localhost", "csm-2@localhost"]
    sent_log: Path | None = None

    _split_lists = field_validator("notify_channels", "csm_roster", mode="before")(_split)

    @field_validator("notify_channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CHANNELS]
        if unknown:
            raise ValueError(
                f"unknown channel(s) {', '.join(map(repr, unknown))}; use {', '.join(CHANNELS)}"
            )
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _slack_needs_url(self) -> Settings:
        if "slack" in self.notify_channels and not self.slack_webhook_url:
            raise ValueError("ONBOARDING_SLACK_WEBHOOK_URL must be set when slack is a channel")
        return self
