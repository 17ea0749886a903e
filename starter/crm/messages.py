"""What a CRM message parser gives besides a closed-won deal: `Ignored` (acknowledged,
nothing to do, and why), `Lost` (a closed-lost deal, for the `deal_lost` rule),
`NewChampion` (a contact now the account's champion, for `change_contact`) and
`MalformedError` (a body that does not parse: HTTP 400, where a `PayloadError` is 422).
"""

from __future__ import annotations

from pydantic import BaseModel

from activities.crm_records import PayloadError
from workflows.models import Contact


class MalformedError(PayloadError):
    """The body cannot be parsed at all (HTTP 400, not 422)."""


class Ignored(BaseModel):
    """A message acknowledged and deliberately not acted on, and why."""

    ref: str
    reason: str


class Lost(BaseModel):
    """A deal the CRM says is closed-lost: for the `deal_lost` rule of its account's
    onboarding, if one runs."""

    account_id: str
    deal_id: str
    reason: str


class NewChampion(BaseModel):
    """A contact the CRM says is now the account's champion: for `change_contact` on its
    onboarding, if one runs (rules §6.3 (docs/rules.md)). `ref` names the CRM record
    (`OpportunityContactRole 00K...`) for the audit trail."""

    account_id: str
    contact: Contact
    ref: str
