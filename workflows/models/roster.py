"""The roster: the CSMs and implementation specialists onboardings are assigned to (rules
§7 (docs/rules.md)), with the tiers and regions they cover and their own capacity."""

from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from workflows.business_days import known_country, known_time_zone
from workflows.models.limits import Name
from workflows.models.playbook import MAX_CAPACITY
from workflows.models.vocabulary import StaffRole, Tier

# More than any CS team; bounds what one activity reads and compares.
MAX_PEOPLE = 500


def known_region(value: str) -> str:
    """A region is an ISO 3166 alpha-2 country (`DE`), an IANA time zone
    (`America/New_York`) or a time zone area (`Europe`, every zone under `Europe/`).

    Raises ValueError naming what it is not."""
    if len(value) == 2 and value.isalpha():
        return known_country(value)
    if value in _areas():
        return value
    try:
        return known_time_zone(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a country (ISO 3166 alpha-2, e.g. DE), a time zone "
            "(e.g. Europe/Berlin) or a time zone area (e.g. Europe)"
        ) from None


@cache
def _areas() -> frozenset[str]:
    return frozenset(z.split("/", 1)[0] for z in available_timezones() if "/" in z)


Region = Annotated[str, AfterValidator(known_region)]


class PersonCapacity(BaseModel):
    """A person's own capacity, where it differs from the playbook's `[capacity]`."""

    model_config = ConfigDict(extra="forbid")

    csm_high_touch_accounts: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    csm_low_touch_accounts: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    specialist_implementations: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)


class Person(BaseModel):
    """One person on the roster: `id` (their email: assignments and messages use it),
    `role`, the `tiers` they cover (default: every tier), the `regions` they cover
    (none: every account), and their own `capacity` (unset: the playbook's)."""

    model_config = ConfigDict(extra="forbid")

    id: Name
    name: Name
    role: StaffRole
    tiers: list[Tier] = Field(default_factory=lambda: list(Tier), min_length=1)
    regions: list[Region] = Field(default_factory=list, max_length=300)
    capacity: PersonCapacity = Field(default_factory=PersonCapacity)

    @model_validator(mode="after")
    def _own_role(self) -> Person:
        c = self.capacity
        if self.role is StaffRole.CSM and c.specialist_implementations is not None:
            raise ValueError(
                "capacity.specialist_implementations: a csm carries accounts, not "
                "implementations (csm_high_touch_accounts, csm_low_touch_accounts)"
            )
        if self.role is StaffRole.IMPLEMENTATION_SPECIALIST and (
            c.csm_high_touch_accounts is not None or c.csm_low_touch_accounts is not None
        ):
            raise ValueError(
                "capacity: an implementation_specialist carries implementations "
                "(specialist_implementations), not a CSM's accounts"
            )
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError("tiers: a tier is listed twice")
        return self


class Roster(BaseModel):
    """Everyone assignments choose from (`[[people]]` of the roster file)."""

    model_config = ConfigDict(extra="forbid")

    people: list[Person] = Field(min_length=1, max_length=MAX_PEOPLE)

    @model_validator(mode="after")
    def _distinct(self) -> Roster:
        ids = [p.id.lower() for p in self.people]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"people: {', '.join(twice)} listed twice")
        return self
