"""Every side effect of an onboarding: notifications, CSM assignment, CRM reads, deals,
the onboarding records store."""

from collections.abc import Callable
from typing import Any

from activities.crm import HubSpotClient
from activities.delivery import (
    deliver_deal_activity,
    report_champion_change_activity,
    report_deal_lost_activity,
)
from activities.logging import configure_logging
from activities.notify import Notifier
from activities.owners import OwnerRoster
from activities.records.activity import RecordKeeper
from activities.records.peers import PeerReader
from activities.records.store import LazyStore
from activities.settings import Settings

__all__ = ["Notifier", "OwnerRoster", "Settings", "activities_for", "configure_logging"]


def activities_for(settings: Settings) -> list[Callable[..., Any]]:
    """The activities to pass to a Worker's `activities=`."""
    store = LazyStore(settings.records_url)  # records, and the links in welcome emails
    notifier = Notifier(settings, store)
    roster = OwnerRoster(settings, store)
    hubspot = HubSpotClient(settings)
    records = RecordKeeper(store)
    peers = PeerReader(store)
    return [
        notifier.notify,
        roster.assign_owner,
        hubspot.fetch_hubspot_deal,
        hubspot.fetch_hubspot_deal_stage,
        deliver_deal_activity,
        report_deal_lost_activity,
        records.save_record,
        peers.peer_support_tickets,
        hubspot.fetch_hubspot_champion,
        report_champion_change_activity,
    ]
