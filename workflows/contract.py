"""The names on the wire, in one place: task queue, workflow types and ids, message names,
activities (name, timeouts, retries) and the error types that cross a process boundary.

Both sides import these: the workflows and the worker, the activities'
`@activity.defn(name=...)`, the starter (CLI, ingress). Every value is part of the
outside contract (README) and of recorded histories: renaming one strands running
onboardings, so a value never changes here; only new names are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.models import HubSpotContactRef, HubSpotDealRef

TASK_QUEUE = "onboarding"

# ---------------------------------------------------------------- workflow types and ids

# An onboarding's id is `workflows.models.workflow_id_for(account_id)` (one per account).
WORKFLOW_TYPE = "AccountOnboarding"
HUBSPOT_INTAKE = "HubSpotDealIntake"
HUBSPOT_LOST_INTAKE = "HubSpotDealLostIntake"


def intake_workflow_id(ref: HubSpotDealRef) -> str:
    """`hubspot-deal-<portal>-<deal>`: a redelivered webhook finds the same intake."""
    return f"hubspot-deal-{ref.portal_id}-{ref.deal_id}"


def lost_intake_workflow_id(ref: HubSpotDealRef) -> str:
    """Per event: a deal lost, won again and lost again is acted on twice."""
    return f"hubspot-deal-lost-{ref.portal_id}-{ref.deal_id}-{ref.event_id}"


HUBSPOT_CHAMPION_INTAKE = "HubSpotChampionIntake"  # rules §6.3: a contact became champion


def champion_intake_workflow_id(ref: HubSpotContactRef) -> str:
    """Per event: a contact who becomes champion, leaves the role and comes back is a
    change each time; a redelivered event finds the same intake."""
    return f"hubspot-champion-{ref.portal_id}-{ref.contact_id}-{ref.event_id}"


# ---------------------------------------------------------------- AccountOnboarding messages

# Signals
MILESTONE_REACHED = "milestone_reached"
PRODUCT_EVENTS = "product_events"
REFRESH_RECORD = "refresh_record"  # write the record to the records store now
# Updates
PROVIDE_DEAL = "provide_deal"
PAUSE = "pause"
RESUME = "resume"
OVERRIDE_TIER = "override_tier"
SKIP_MILESTONE = "skip_milestone"
SET_SUCCESS_CRITERIA = "set_success_criteria"
CHANGE_CONTACT = "change_contact"
CANCEL = "cancel"
DEAL_LOST = "deal_lost"
REALIGNMENT_GATE_DONE = "realignment_gate_done"  # rules §6.3: a champion change's gate
CONFIRM_SUCCESS_PLAN = "confirm_success_plan"
REASSIGN_OWNER = "reassign_owner"  # rules §7: a person leaves the onboarding
MIGRATE_PLAYBOOK = "migrate_playbook"  # rules §2: move to another playbook version
# Query
STATUS = "status"
SNAPSHOT = "snapshot"  # deal, pinned playbook and progress (a migration's dry run)

# ---------------------------------------------------------------- error types

NO_CLOSED_WON_DEAL = "NoClosedWonDeal"  # AccountOnboarding: no deal within deal_wait_days
DEAL_NOT_CLOSED_WON = "DealNotClosedWon"  # fetch_hubspot_deal: the deal is not closed-won
HUBSPOT_DEAL_ERROR = "HubSpotDealError"  # fetch_hubspot_deal(_stage): permanent
HUBSPOT_UNAVAILABLE = "HubSpotUnavailable"  # fetch_hubspot_deal(_stage): retried
DEAL_REJECTED = "DealRejected"  # deliver_deal: the onboarding's validator refused it
TEMPLATE_ERROR = "TemplateError"  # notify: the template cannot be rendered
NOTIFICATION_IN_FLIGHT = "NotificationInFlight"  # notify: retried
SLACK_ERROR = "SlackError"  # notify
SMTP_ERROR = "SmtpError"  # notify
EMPTY_ROSTER = "EmptyRoster"  # assign_owner: no CSM for the tier
BAD_ROSTER = "BadRoster"  # assign_owner: the roster file broken since the worker started


# ---------------------------------------------------------------- activities


T = TypeVar("T")


@dataclass(frozen=True)
class ActivityContract:
    """An activity's registered name and the options every caller schedules it with."""

    name: str
    start_to_close: timedelta
    schedule_to_close: timedelta
    retry: RetryPolicy

    async def execute(self, arg: Any, result_type: type[T], summary: str) -> T:
        """Run it from workflow code with these options; `summary` is what the UI shows.
        Raises `ActivityError` once its retries are spent."""
        return await workflow.execute_activity(
            self.name,
            arg,
            result_type=result_type,
            start_to_close_timeout=self.start_to_close,
            schedule_to_close_timeout=self.schedule_to_close,
            retry_policy=self.retry,
            summary=summary,
        )


NOTIFY = ActivityContract(
    name="notify",
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(hours=1),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_interval=timedelta(minutes=5),
        non_retryable_error_types=[TEMPLATE_ERROR],
    ),
)
ASSIGN_OWNER = ActivityContract(
    name="assign_owner",
    start_to_close=timedelta(seconds=30),
    schedule_to_close=timedelta(minutes=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_interval=timedelta(minutes=1),
        non_retryable_error_types=[EMPTY_ROSTER],
    ),
)
_FETCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[HUBSPOT_DEAL_ERROR],
)
FETCH_HUBSPOT_DEAL = ActivityContract(
    name="fetch_hubspot_deal",
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(days=3),
    retry=_FETCH_RETRY,
)
FETCH_HUBSPOT_DEAL_STAGE = ActivityContract(
    name="fetch_hubspot_deal_stage",
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(days=3),
    retry=_FETCH_RETRY,
)
_DELIVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[DEAL_REJECTED],
)
DELIVER_DEAL = ActivityContract(
    name="deliver_deal",
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(days=1),
    retry=_DELIVER_RETRY,
)
REPORT_DEAL_LOST = ActivityContract(
    name="report_deal_lost",
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(days=1),
    retry=_DELIVER_RETRY,
)
SAVE_RECORD = ActivityContract(
    name="save_record",
    start_to_close=timedelta(seconds=30),
    # The store may be down for a while: keep trying for a day; the next change of the
    # onboarding writes the whole record again anyway.
    schedule_to_close=timedelta(days=1),
    retry=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)),
    # Not a local activity: a local one holds the workflow task open while it writes, so
    # a slow or busy store would delay every update's answer (seen in `make soak`).
)
PEER_SUPPORT_TICKETS = ActivityContract(
    name="peer_support_tickets",
    start_to_close=timedelta(seconds=30),
    # A read: retried while the store is down, but for an hour at most; after that the
    # skip net judges on usage alone (rules §6.4 (docs/rules.md)) rather than hold up
    # the onboarding's loop (its ladder) behind the store.
    schedule_to_close=timedelta(hours=1),
    retry=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5)),
)
FETCH_HUBSPOT_CHAMPION = ActivityContract(
    name="fetch_hubspot_champion",
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(days=3),
    retry=_FETCH_RETRY,
)
REPORT_CHAMPION_CHANGE = ActivityContract(
    name="report_champion_change",
    start_to_close=timedelta(seconds=60),
    schedule_to_close=timedelta(days=1),
    retry=_DELIVER_RETRY,
)
