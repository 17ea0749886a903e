"""CRM webhook bodies -> domain models, one parser per sender. Pure functions: no I/O,
no clock.

A body that cannot be used raises `PayloadError` naming the field in the sender's own
words (`[3].propertyValue`, `Opportunity.Amount`), which the app answers with 422 (400
when the body does not parse at all). A closed-lost deal comes back as `Lost` (for the
`deal_lost` rule). A message that is valid but not for us (another event type, a stage
neither closed-won nor closed-lost) comes back as `Ignored`, so the answer can say why it
was acknowledged and nothing started. The deal fields each CRM maps (HubSpot properties,
Salesforce fields) are in `activities.crm_records`, which the HubSpot deal fetch uses too.

A contact the CRM says is now the account's champion comes back as `NewChampion` (HubSpot
sends only the contact's id: `HubSpotContactRef`, read by `activities.crm`).

The parts: `messages` (`Ignored`, `Lost`, `NewChampion`, `MalformedError`), `hubspot`
(deal and contact webhooks), `salesforce` (Opportunity stages and mapping, the JSON
callouts of Opportunities and OpportunityContactRoles), `salesforce_outbound`
(Outbound Messages), `generic` (a ClosedWonDeal as JSON). This module re-exports their
public names.
"""

from starter.crm.generic import generic_deal
from starter.crm.hubspot import (
    HUBSPOT_DEAL_OBJECT_TYPE,
    MAX_HUBSPOT_EVENTS,
    hubspot_champion_changes,
    hubspot_stage_changes,
    sort_stage_changes,
)
from starter.crm.messages import Ignored, Lost, MalformedError, NewChampion
from starter.crm.salesforce import (
    CONTACT_ROLE,
    SALESFORCE_CLOSED_LOST,
    SALESFORCE_ROLES,
    salesforce_contact_role,
    salesforce_opportunity,
    salesforce_stage,
)
from starter.crm.salesforce_outbound import (
    OUTBOUND_NS,
    SOBJECT_NS,
    salesforce_ack,
    salesforce_outbound,
)

__all__ = [
    "CONTACT_ROLE",
    "HUBSPOT_DEAL_OBJECT_TYPE",
    "MAX_HUBSPOT_EVENTS",
    "OUTBOUND_NS",
    "SALESFORCE_CLOSED_LOST",
    "SALESFORCE_ROLES",
    "SOBJECT_NS",
    "Ignored",
    "Lost",
    "MalformedError",
    "NewChampion",
    "generic_deal",
    "hubspot_champion_changes",
    "hubspot_stage_changes",
    "salesforce_ack",
    "salesforce_contact_role",
    "salesforce_opportunity",
    "salesforce_outbound",
    "salesforce_stage",
    "sort_stage_changes",
]
