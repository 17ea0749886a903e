"""The `assign_owner` activity: the least-loaded eligible person of the roster (rules §7
(docs/rules.md)), the load read from the records store, never kept in worker memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.records.store import Assigning, LazyStore, RecordStore, Seat
from activities.roster import RosterError, load_roster, roster_source
from activities.settings import Settings
from workflows import assignment, contract
from workflows.models import Capacity, OwnerAssignment, OwnerRequest, StaffRole
from workflows.models.roster import Roster

log = structlog.get_logger("owners")


class OwnerRoster:
    """Assigns from the roster (`activities.roster.load_roster`, read on every call) by
    the loads in the records store, one assignment at a time (`RecordStore.assigning`):
    the person picked is claimed in the transaction that read the loads, so the next
    assignment counts them even before the onboarding's record says so.

    The same onboarding asking again gets the same person: the one holding the role
    (claimed, else recorded as the account's owner or specialist) keeps it while still on
    the roster in that role, unless the request says they leave."""

    def __init__(self, settings: Settings, records: LazyStore) -> None:
        self._settings = settings
        self._records = records

    @activity.defn(name=contract.ASSIGN_OWNER.name)
    async def assign_owner(self, request: OwnerRequest) -> OwnerAssignment:
        try:
            roster = await asyncio.to_thread(load_roster, self._settings)
        except RosterError as exc:
            # Not retried: the worker checked the roster when it started, so it was
            # broken since; the audit shows why at once (rules §7).
            raise ApplicationError(
                f"roster: {exc}", type=contract.BAD_ROSTER, non_retryable=True
            ) from exc
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
        where = roster_source(self._settings)
        if (
            role is StaffRole.IMPLEMENTATION_SPECIALIST
            and request.leaving is None
            and not any(p.role is role for p in roster.people)
        ):
            return OwnerAssignment(
                owner=None,
                reason=f"no implementation specialists on the roster ({where})",
                role=role,
            )
        seat = Seat(request.account_id, request.onboarding_number, role)
        with store.assigning(datetime.now(UTC)) as claims:
            kept = self._kept(claims, roster, seat, request.leaving)
            if kept is not None:
                claims.claim(seat, request.tier, kept)
                return OwnerAssignment(
                    owner=kept, reason=f"kept: already the account's {role.value}", role=role
                )
            capacity = request.capacity or Capacity()
            gates = capacity.specialist_gates if role is StaffRole.IMPLEMENTATION_SPECIALIST else []
            try:
                chosen = assignment.pick(
                    roster,
                    claims.loads(gates, request.account_id),
                    role=role,
                    tier=request.tier,
                    country=request.country,
                    time_zone=request.time_zone,
                    capacity=capacity,
                    leaving=request.leaving,
                )
            except assignment.NoOneEligible as exc:
                raise ApplicationError(
                    f"{exc} ({where})", type=contract.EMPTY_ROSTER, non_retryable=True
                ) from exc
            claims.claim(seat, request.tier, chosen.person)
        return OwnerAssignment(
            owner=chosen.person,
            reason=chosen.reason,
            role=role,
            over_capacity=chosen.over_capacity,
        )

    @staticmethod
    def _kept(claims: Assigning, roster: Roster, seat: Seat, leaving: str | None) -> str | None:
        """The seat's holder, if still on the roster in its role and not leaving."""
        held = claims.held(seat)
        if held is None or held.lower() == (leaving or "").lower():
            return None
        on_roster = any(p.id == held and p.role is seat.role for p in roster.people)
        return held if on_roster else None
