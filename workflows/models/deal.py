"""The closed-won deal that starts one onboarding, as every CRM's payload becomes it."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from workflows.business_days import known_country, known_time_zone
from workflows.models.limits import (
    MAX_COMPLETED_MILESTONES,
    MAX_CONTACTS,
    MAX_INTEGRATIONS,
    MAX_SUCCESS_CRITERIA,
    Name,
    PlanDatetime,
    Text,
)
from workflows.models.vocabulary import (
    ACCOUNT_ID,
    ContactRole,
    DealType,
    UtcDatetime,
    _to_utc_datetime,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Contact(BaseModel):
    name: Name
    email: str = Field(max_length=254)
    role: ContactRole

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError(f"{value!r} is not an email address")
        return value.lower()


class CrmRef(BaseModel):
    source: Literal["hubspot", "salesforce", "generic", "manual"] = "manual"
    deal_id: str | None = Field(default=None, max_length=64)
    company_id: str | None = Field(default=None, max_length=64)


class FxRate(BaseModel):
    """The exchange rate a deal's ACV was converted to US dollars with: the rate in force
    on its close date, from the operator's rates file (`ONBOARDING_FX_RATES`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    per_usd: float = Field(gt=0, description="Units of the deal's currency per US dollar")
    effective: date = Field(description="The day this rate took effect")


class CompletedMilestone(BaseModel):
    """A milestone an account reached before this service tracked it (migration)."""

    milestone_id: str = Field(max_length=64)
    at: UtcDatetime


class ClosedWonDeal(BaseModel):
    """The closed-won deal that starts one onboarding; `account_id` is the CRM's id."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    account_id: str = Field(pattern=ACCOUNT_ID.pattern)
    account_name: Name
    acv_usd: float = Field(ge=0, description="Annual contract value in US dollars")
    currency: str = Field(
        default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code the deal was sold in"
    )
    acv: float | None = Field(
        default=None, ge=0, description="The ACV in `currency` when that is not USD"
    )
    fx_rate: FxRate | None = Field(default=None, description="How `acv` became `acv_usd`")
    seats: int = Field(default=0, ge=0)
    integrations: list[Name] = Field(
        default_factory=list,
        max_length=MAX_INTEGRATIONS,
        description="Off-the-shelf integrations the customer will connect",
    )
    needs_api_integration: bool = False
    custom_data_migration: bool = False
    stakeholder_count: int = Field(default=1, ge=0)
    configuration_hours: float = Field(
        default=0, ge=0, description="Estimated hours of customer-side configuration"
    )
    contacts: list[Contact] = Field(default_factory=list, max_length=MAX_CONTACTS)
    close_date: PlanDatetime
    success_criteria: list[Text] = Field(default_factory=list, max_length=MAX_SUCCESS_CRITERIA)
    crm: CrmRef = Field(default_factory=CrmRef)
    completed_milestones: list[CompletedMilestone] = Field(
        default_factory=list, max_length=MAX_COMPLETED_MILESTONES
    )
    time_zone: Annotated[str, AfterValidator(known_time_zone)] | None = Field(
        default=None,
        description="The account's IANA time zone (e.g. Europe/Berlin); by default the "
        "playbook's `[business_calendar].time_zone`",
    )
    country: Annotated[str, AfterValidator(known_country)] | None = Field(
        default=None,
        description="The account's ISO 3166 alpha-2 country, whose public holidays are "
        "not business days; by default the playbook's `[business_calendar].country`",
    )
    deal_type: DealType = Field(
        default=DealType.NEW_BUSINESS,
        description="What was sold; picks the onboarding's track (playbook `[tracks]`)",
    )
    churn_reason: Text | None = Field(
        default=None, description="Why a win-back customer left: the recovery track's first step"
    )

    _coerce_close_date = field_validator("close_date", mode="before")(_to_utc_datetime)

    def contact(self, role: ContactRole) -> Contact | None:
        return next((c for c in self.contacts if c.role == role), None)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.account_id)


WORKFLOW_ID_PREFIX = "onboarding-"


def workflow_id_for(account_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{account_id}"


def account_id_for(workflow_id: str) -> str:
    """The account id an onboarding's workflow id names (the inverse of workflow_id_for)."""
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
