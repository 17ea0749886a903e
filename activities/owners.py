"""The `assign_owner` activity: the least-loaded eligible person of the roster (rules §7
(docs/rules.md)), the load read from the records store, never kept in worker memory."""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.records.store import LazyStore, RecordStore
from activities.roster import RosterError, load_roster
from activities.settings import Settings
from workflows import assignment, contract
from workflows.models import Capacity, OwnerAssignment, OwnerRequest, StaffRole
from workflows.models.roster import Roster

log = structlog.get_logger("owners")


class OwnerRoster:
    """Assigns from the roster (`activities.roster.load_roster`, read on every call) by
    the loads in the records store.

    The same account asking again gets the same person: one the store already records as
    the account's owner (or specialist) keeps it while still on the roster in that role,
    unless the request says they leave."""

    def __init__(self, settings: Settings, records: LazyStore) -> None:
        self._settings = settings
        self._records = records

    @activity.defn(name=contract.ASSIGN_OWNER.name)
    async def assign_owner(self, request: OwnerRequest) -> OwnerAssignment:
        try:
            roster = await asyncio.to_thread(load_roster, self._settings)
        except RosterError as exc:
            # Retried: a fixed file is read by the next attempt.
            raise ApplicationError(f"roster: {exc}") from exc
        store = await self._records.get()
        answer = await asyncio.to_thread(self._assign, store, roster, request)
        log.info(
            "owner_assigned",
            account_id=request.account_id,
            role=answer.role.value,
            owner=answer.owner,
            over_capacity=answer.over_capacity,
            reason=answer.reason,
        )
        return answer

    def _assign(self, store: RecordStore, roster: Roster, request: OwnerRequest) -> OwnerAssignment:
        role = request.role
        kept = self._recorded(store, roster, request)
        if kept is not None:
            return OwnerAssignment(
                owner=kept, reason=f"kept: already the account's {role.value}", role=role
            )
        capacity = request.capacity or Capacity()
        gates = capacity.specialist_gates if role is StaffRole.IMPLEMENTATION_SPECIALIST else []
        loads = store.staff_loads(gates, request.account_id)
        try:
            chosen = assignment.pick(
                roster,
                loads,
                role=role,
                tier=request.tier,
                country=request.country,
                time_zone=request.time_zone,
                capacity=capacity,
                leaving=request.leaving,
            )
        except assignment.NoOneEligible as exc:
            where = (
                "ONBOARDING_ROSTER_FILE" if self._settings.roster_file else "ONBOARDING_CSM_ROSTER"
            )
            raise ApplicationError(
                f"{exc} ({where})", type=contract.EMPTY_ROSTER, non_retryable=True
            ) from exc
        return OwnerAssignment(
            owner=chosen.person,
            reason=chosen.reason,
            role=role,
            over_capacity=chosen.over_capacity,
        )

    @staticmethod
    def _recorded(store: RecordStore, roster: Roster, request: OwnerRequest) -> str | None:
        """The account's recorded person of the role, if still on the roster in it: its
        latest onboarding's (an expansion after an earlier one here keeps its people while
        its own record is not written yet, rules §2 (docs/rules.md))."""
        record = store.get(request.account_id)
        if record is None:
            return None
        held = (
            record.specialist
            if request.role is StaffRole.IMPLEMENTATION_SPECIALIST
            else record.owner
        )
        if held is None or held.lower() == (request.leaving or "").lower():
            return None
        on_roster = any(p.id == held and p.role is request.role for p in roster.people)
        return held if on_roster else None
