"""The `assign_owner` activity: round-robin over the CSM roster."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.settings import Settings
from workflows import contract
from workflows.models import OwnerAssignment, OwnerRequest


class OwnerRoster:
    """Hands out CSMs in turn; an account asking again (a retry) keeps its CSM.

    The memory is per process: the workflow records the answer in its history, so it
    only needs to survive retries of one attempt, not worker restarts.
    """

    def __init__(self, settings: Settings) -> None:
        self._roster = list(settings.csm_roster)
        self._next = 0
        self._assigned: dict[str, OwnerAssignment] = {}

    @activity.defn(name=contract.ASSIGN_OWNER.name)
    async def assign_owner(self, request: OwnerRequest) -> OwnerAssignment:
        if not self._roster:
            raise ApplicationError(
                "no CSMs to assign: ONBOARDING_CSM_ROSTER is empty",
                type=contract.EMPTY_ROSTER,
                non_retryable=True,
            )
        if request.account_id not in self._assigned:
            owner = self._roster[self._next % len(self._roster)]
            self._next += 1
            count = len(self._roster)
            self._assigned[request.account_id] = OwnerAssignment(
                owner=owner,
                reason=f"round-robin over {count} CSM{'s' if count != 1 else ''} ({owner} next)",
            )
        return self._assigned[request.account_id]
