"""The `peer_support_tickets` activity: the skip net's peers (rules §6.4
(docs/rules.md)), the median support tickets of the other open onboardings of a tier, as
the records store has them.

A read, so retrying it is safe: each attempt answers what the store holds then. Errors
(the store cannot be opened or read) are raised for the activity's retry policy
(`contract.PEER_SUPPORT_TICKETS`); the workflow judges on usage alone once it gives up.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity

from activities.records.store import LazyStore
from workflows import contract
from workflows.models import PeerSupport, PeerSupportRequest

log = structlog.get_logger("records")


class PeerReader:
    """Reads the peers from the process's records store (opened once, migrated)."""

    def __init__(self, records: LazyStore) -> None:
        self._records = records

    @activity.defn(name=contract.PEER_SUPPORT_TICKETS.name)
    async def peer_support_tickets(self, request: PeerSupportRequest) -> PeerSupport:
        store = await self._records.get()
        median, peers = await asyncio.to_thread(
            store.support_ticket_median, request.tier, request.account_id
        )
        log.info(
            "peers' support tickets read",
            account_id=request.account_id,
            tier=request.tier.value,
            median=median,
            peers=peers,
        )
        return PeerSupport(tier=request.tier, median=median, peers=peers)
