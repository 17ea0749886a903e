"""The closed-won deal that starts one onboarding, as every CRM's payload becomes it."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.business_days import known_country, known_time_zone
from workflows.models.limits import (
    MAX_COMPLETED_MILESTONES,
    MAX_CONTACTS,
    MAX_INTEGRATIONS,
    MAX_PRODUCT_SEATS,
    MAX_PRODUCTS,
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


PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
PRODUCT_ID_FORM = "1-32 of a-z, 0-9, _ and -, starting with a letter or digit"
ProductId = Annotated[str, Field(pattern=PRODUCT_ID.pattern)]


class DealProduct(BaseModel):
    """One product of a multi-product deal (rules §6.2 (docs/rules.md)): its id (the
    `product` property its product events carry), name, licensed seats, and the products
    whose adoption it waits for; `depends_on` unset: the product listed before it."""

    model_config = ConfigDict(extra="forbid")

    id: ProductId
    name: Name
    licensed_seats: int = Field(gt=0, le=MAX_PRODUCT_SEATS)
    depends_on: list[ProductId] | None = Field(
        default=None,
        max_length=MAX_PRODUCTS,
        description="Product ids it waits for; unset: the one before it in the deal's list",
    )


def product_dependencies(products: list[DealProduct]) -> dict[str, list[str]]:
    """Product id -> the ids it depends on: its `depends_on`, else the product before it
    (the first product depends on none)."""
    return {
        p.id: p.depends_on if p.depends_on is not None else [products[i - 1].id] if i else []
        for i, p in enumerate(products)
    }


def products_problem(products: list[DealProduct]) -> tuple[int, str, str] | None:
    """The first inconsistency of a deal's products as (index, field, reason): an id
    listed twice (`id`), a dependency that is the product itself or not a listed product,
    or a cycle (`depends_on`): `(1, "depends_on", "'erp' is not a listed product")`;
    None when there is none. Each sender names the field in its own words with it."""
    ids = [p.id for p in products]
    for i, p in enumerate(products):
        if p.id in ids[:i]:
            return i, "id", f"{p.id!r} is listed twice"
    deps = product_dependencies(products)
    for i, p in enumerate(products):
        for d in deps[p.id]:
            if d == p.id:
                return i, "depends_on", f"{d!r} is the product itself"
            if d not in ids:
                return i, "depends_on", f"{d!r} is not a listed product"
    # Depth-first search; `path` is the chain being followed, so a repeat is a cycle.
    done: set[str] = set()

    def cycle(pid: str, path: list[str]) -> tuple[int, str, str] | None:
        if pid in path:
            chain = " -> ".join([*path[path.index(pid) :], pid])
            return ids.index(pid), "depends_on", f"cycle {chain}"
        if pid not in done:
            for d in deps[pid]:
                if (found := cycle(d, [*path, pid])) is not None:
                    return found
            done.add(pid)
        return None

    return next((found for pid in ids if (found := cycle(pid, [])) is not None), None)


def _products_consistent(products: list[DealProduct]) -> None:
    """Raises ValueError naming the field: `products[2].depends_on: ...`
    (`products_problem`)."""
    if (problem := products_problem(products)) is not None:
        i, field, reason = problem
        raise ValueError(f"products[{i}].{field}: {reason}")


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
    products: list[DealProduct] = Field(
        default_factory=list,
        max_length=MAX_PRODUCTS,
        description="A multi-product deal's products, in rollout order (rules §6.2); "
        "none: one product, as every deal before",
    )

    _coerce_close_date = field_validator("close_date", mode="before")(_to_utc_datetime)

    @model_validator(mode="after")
    def _products(self) -> ClosedWonDeal:
        _products_consistent(self.products)
        return self

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
