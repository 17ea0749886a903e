"""Starting one onboarding per account, idempotently.

The workflow id is `onboarding-<account_id>`. A start for an account whose onboarding is
running attaches to it (`USE_EXISTING`); a start for an account whose onboarding has
completed or been cancelled is refused (`ALLOW_DUPLICATE_FAILED_ONLY`: only a run that
failed or was terminated may be started again), so a retried webhook or a repeated CLI
call never creates a second onboarding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import temporalio.client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from starter.client import TASK_QUEUE, WORKFLOW_TYPE
from workflows import search_attributes as sa
from workflows.models import (
    ClosedWonDeal,
    OnboardingInput,
    OnboardingState,
    OnboardingStatus,
    Phase,
    Playbook,
    TierDecision,
)
from workflows.rules import assign_tier


class AlreadyOnboardedError(Exception):
    """The account's onboarding has already finished; a new one is not started."""

    def __init__(self, account_id: str, outcome: str, run_id: str | None = None) -> None:
        self.account_id = account_id
        self.outcome = outcome
        self.run_id = run_id
        super().__init__(f"account {account_id} was already onboarded ({outcome})")


def usd(amount: float) -> str:
    return f"${amount:,.0f}"


def summary_line(deal: ClosedWonDeal, decision: TierDecision) -> str:
    """The one-line static summary in the UI's workflow list: account · tier · ACV."""
    return f"{deal.account_name} · {decision.tier.value} · ACV {usd(deal.acv_usd)}"


def details_markdown(deal: ClosedWonDeal, playbook: Playbook, decision: TierDecision) -> str:
    """The static details (markdown) shown on the workflow's page in the UI."""
    crm = deal.crm
    crm_ids = ", ".join(
        f"{label} `{value}`"
        for label, value in (("deal", crm.deal_id), ("company", crm.company_id))
        if value
    )
    lines = [
        f"## {deal.account_name} (`{deal.account_id}`)",
        "",
        f"**Tier:** {decision.tier.value} (`{decision.clause}`): {decision.reason}",
        "",
        f"- ACV: {usd(deal.acv_usd)}, seats: {deal.seats}",
        f"- Closed-won: {deal.close_date.date().isoformat()}",
        f"- Playbook: {playbook.name}, version {playbook.version} "
        f"(sha256 `{playbook.content_hash or 'n/a'}`)",
        f"- CRM: {crm.source}" + (f", {crm_ids}" if crm_ids else ""),
    ]
    if deal.completed_milestones:
        done = ", ".join(
            f"{m.milestone_id} ({m.at.date().isoformat()})" for m in deal.completed_milestones
        )
        lines.append(f"- Migrated with completed milestones: {done}")
    return "\n".join(lines)


def initial_search_attributes(deal: ClosedWonDeal, decision: TierDecision) -> TypedSearchAttributes:
    """Set at start, so `list` and visibility queries find the onboarding at once."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ONBOARDING_TIER, decision.tier.value),
            SearchAttributePair(sa.ONBOARDING_STATE, OnboardingState.ACTIVE.value),
            SearchAttributePair(sa.ONBOARDING_PHASE, Phase.KICKOFF.value),
            SearchAttributePair(sa.ACV_USD, float(deal.acv_usd)),
        ]
    )


async def finished_outcome(client: temporalio.client.Client, workflow_id: str) -> str:
    """`completed` / `cancelled` from the state search attribute, else the run's status."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    state = desc.typed_search_attributes.get(sa.ONBOARDING_STATE)
    if state in (OnboardingState.COMPLETED.value, OnboardingState.CANCELLED.value):
        return str(state)
    return desc.status.name.lower() if desc.status is not None else "finished"


async def start_onboarding(
    client: temporalio.client.Client, deal: ClosedWonDeal, playbook: Playbook
) -> tuple[temporalio.client.WorkflowHandle[object, OnboardingStatus], bool]:
    """Start the account's onboarding, or attach to the running one.

    Returns the handle and True when this call started it (False: it was already
    running). Raises `AlreadyOnboardedError` when the account's onboarding has finished.
    """
    decision = assign_tier(deal, playbook.tier_rule)
    asked_at = datetime.now(UTC)
    try:
        handle: temporalio.client.WorkflowHandle[
            object, OnboardingStatus
        ] = await client.start_workflow(
            WORKFLOW_TYPE,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue=TASK_QUEUE,
            result_type=OnboardingStatus,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            static_summary=summary_line(deal, decision),
            static_details=details_markdown(deal, playbook, decision),
            search_attributes=initial_search_attributes(deal, decision),
        )
    except WorkflowAlreadyStartedError as exc:
        outcome = await finished_outcome(client, deal.workflow_id)
        raise AlreadyOnboardedError(deal.account_id, outcome, exc.run_id) from exc
    return handle, await _was_started(handle, asked_at)


async def _was_started(
    handle: temporalio.client.WorkflowHandle[object, OnboardingStatus], asked_at: datetime
) -> bool:
    """Whether the start call created the run (True) or attached to a running one.

    The server says so itself: `StartWorkflowExecutionResponse.started` is false when
    `USE_EXISTING` attached to a running workflow. The SDK (1.35) keeps that response on
    the handle but exposes no public property for it, and the public run ids cannot tell
    (`result_run_id` is the existing run's id in both cases, and `first_execution_run_id`
    equals it on servers >= 1.32). Comparing a pre-start `describe()` is racy, so use the
    response; only if it is ever missing fall back to the run's start time.
    """
    response = getattr(handle, "_start_workflow_response", None)
    if response is not None and hasattr(response, "started"):
        return bool(response.started)
    desc = await handle.describe()
    # Server and client clocks may differ a little; an attached run is normally much older.
    return desc.run_id == handle.result_run_id and desc.start_time >= asked_at - timedelta(
        seconds=5
    )
