"""Starting one onboarding per account, idempotently.

The workflow id is `onboarding-<account_id>`. A start for an account whose onboarding is
running attaches to it (`USE_EXISTING`); a start for an account whose onboarding has
completed or been cancelled is refused (`ALLOW_DUPLICATE_FAILED_ONLY`: only a run that
failed or was terminated may be started again), so a retried webhook or a repeated CLI
call never creates a second onboarding. The exceptions are an expansion deal the
account's finished onboardings never had, and such a paid deal after a finished trial
(its conversion): it starts the account's next onboarding as a new run of the same id
(`ALLOW_DUPLICATE`), the earlier run's history and result kept (rules §2
(docs/rules.md), *Tracks*); the finished run's result says which deals were onboarded,
so no worker is needed to decide.

Deals arrive by update-with-start (`provide_deal`), product events by signal-with-start
(`product_events`), so either may come first and both land on the one workflow.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import temporalio.client
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.temporal_errors import update_rejection
from workflows import contract
from workflows import search_attributes as sa
from workflows.contract import TASK_QUEUE, WORKFLOW_TYPE
from workflows.models import (
    ChampionChangeOutcome,
    ClosedWonDeal,
    ContactChange,
    DealAcceptance,
    DealDelivery,
    DealLost,
    DealLostOutcome,
    OnboardingInput,
    OnboardingState,
    OnboardingStatus,
    Playbook,
    ProductEventBatch,
    StartOptions,
    TierDecision,
    workflow_id_for,
)
from workflows.progress import expansion
from workflows.progress.champion import last_day
from workflows.rules import acv_text, decide_tier


class AlreadyOnboardedError(Exception):
    """The account's onboarding has already finished; a new one is not started."""

    def __init__(
        self, account_id: str, outcome: str, run_id: str | None = None, why: str | None = None
    ) -> None:
        self.account_id = account_id
        self.outcome = outcome
        self.run_id = run_id
        self.why = why  # why an expansion or a trial's paid deal did not (rules §2)
        super().__init__(f"account {account_id} was already onboarded ({outcome})")

    def reason(self) -> str:
        """How the onboarding ended, and why an expansion or a trial's paid deal did not
        start the next one (`completed: deal hubspot:9 was onboarded already`)."""
        return f"{self.outcome}: {self.why}" if self.why else self.outcome

    def acceptance(self) -> DealAcceptance:
        """The answer to a deal for an account whose onboarding has finished."""
        cancelled = self.outcome == OnboardingState.CANCELLED.value
        why = f": {self.why}" if self.why else ""
        return DealAcceptance(
            account_id=self.account_id,
            workflow_id=workflow_id_for(self.account_id),
            started=False,
            detail=f"already onboarded ({self.outcome}); not started again{why}",
            state=OnboardingState.CANCELLED if cancelled else OnboardingState.COMPLETED,
        )


def summary_line(deal: ClosedWonDeal, decision: TierDecision) -> str:
    """The one-line static summary in the UI's workflow list: account · tier · ACV."""
    return f"{deal.account_name} · {decision.tier.value} · ACV {acv_text(deal)}"


async def finished_outcome(client: temporalio.client.Client, workflow_id: str) -> str:
    """`completed` / `cancelled` from the state search attribute, else the run's status."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    state = desc.typed_search_attributes.get(sa.ONBOARDING_STATE)
    if state in (OnboardingState.COMPLETED.value, OnboardingState.CANCELLED.value):
        return str(state)
    return desc.status.name.lower() if desc.status is not None else "finished"


async def _why_missing(client: temporalio.client.Client, workflow_id: str) -> str | None:
    """Why an update found no running onboarding: `no onboarding: already <how it
    ended>`, or None when it never ran. Errors other than not-found are raised."""
    try:
        return f"no onboarding: already {await finished_outcome(client, workflow_id)}"
    except RPCError as gone:
        if gone.status is not RPCStatusCode.NOT_FOUND:
            raise
        return None


async def deliver_deal(
    client: temporalio.client.Client,
    deal: ClosedWonDeal,
    playbook: Playbook,
    delivery_id: str,
    *,
    options: StartOptions | None = None,
    rpc_timeout: timedelta | None = None,
) -> DealAcceptance:
    """Start the account's onboarding with its deal, or hand the deal to the running one.

    The usual case, a new account, costs one start call, as cheap as the bare SDK's
    `start_workflow`. Only when an onboarding already runs (`USE_EXISTING` attached to
    it: perhaps waiting for its deal because product events came first) does the
    `provide_deal` update give it the deal; one that has a deal keeps it, but queues an
    expansion deal of its own (`DealAcceptance.queued`), and a trial given a paid deal of
    its own ends as converted and continues as the paid deal's onboarding at once
    (`started`). `DealAcceptance.started` says whether this delivery began an onboarding
    (a redelivery with the same `delivery_id` gets the same answer). When the account's
    onboarding has finished, an expansion deal it never had, or such a paid deal after a
    trial, starts the account's next one (rules §2 (docs/rules.md), *Tracks*); any
    other deal raises `AlreadyOnboardedError`.

    Search attributes are left to the workflow's first task, which sets them all anyway:
    setting them at the start too would write them twice.
    """
    decision = decide_tier(deal, playbook)
    after: OnboardingStatus | None = None  # the finished onboarding this one follows
    while True:
        try:
            handle = await _start(
                client, deal, playbook, delivery_id, decision, after, options, rpc_timeout
            )
        except WorkflowAlreadyStartedError as exc:
            after = await _follows(client, deal, exc.run_id, rpc_timeout)
            continue
        if _was_started(handle):
            return DealAcceptance(
                account_id=deal.account_id,
                workflow_id=handle.id,
                started=True,
                detail=_started_text(decision, after),
                state=OnboardingState.ACTIVE,
            )
        try:
            return await handle.execute_update(
                contract.PROVIDE_DEAL,
                DealDelivery(deal=deal, playbook=playbook, delivery_id=delivery_id),
                result_type=DealAcceptance,
                rpc_timeout=rpc_timeout,
            )
        except RPCError as exc:  # it finished between the two calls
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            after = await _follows(client, deal, None, rpc_timeout)


async def _start(
    client: temporalio.client.Client,
    deal: ClosedWonDeal,
    playbook: Playbook,
    delivery_id: str,
    decision: TierDecision,
    after: OnboardingStatus | None,
    options: StartOptions | None,
    rpc_timeout: timedelta | None,
) -> temporalio.client.WorkflowHandle[Any, OnboardingStatus]:
    """The start call: the account's first onboarding (a finished one is refused), or,
    `after` a finished one, the next (raises `WorkflowAlreadyStartedError` when refused)."""
    number, earlier = (1, []) if after is None else expansion.next_number(after)
    return await client.start_workflow(
        WORKFLOW_TYPE,
        OnboardingInput(
            deal=deal,
            playbook=playbook,
            delivery_id=delivery_id,
            onboarding_number=number,
            earlier_deals=earlier,
            **(options or StartOptions()).model_dump(),
        ),
        id=deal.workflow_id,
        task_queue=TASK_QUEUE,
        result_type=OnboardingStatus,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=(
            WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
            if after is None
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE
        ),
        # The summary only: the deal's facts are in the current details the workflow
        # publishes (`presentation.deal_facts`), not in every start request.
        static_summary=summary_line(deal, decision),
        rpc_timeout=rpc_timeout,
    )


async def _follows(
    client: temporalio.client.Client,
    deal: ClosedWonDeal,
    run_id: str | None,
    rpc_timeout: timedelta | None,
) -> OnboardingStatus | None:
    """The account's finished onboarding that `deal` may follow: its result, when `deal`
    is an expansion it never had, or such a paid deal after a trial (`expansion.follows`,
    `expansion.why_not_again`); None when the last run did not complete (one started
    since, to attach to, or one that failed, to start again as any start may). Raises
    `AlreadyOnboardedError` otherwise."""
    if not await _completed(client, deal.workflow_id, rpc_timeout):
        return None
    handle = client.get_workflow_handle(deal.workflow_id, result_type=OnboardingStatus)
    finished = await handle.result(follow_runs=False, rpc_timeout=rpc_timeout)
    outcome = finished.state.value  # completed, or cancelled
    if not expansion.follows(deal, finished.deal_type):
        raise AlreadyOnboardedError(deal.account_id, outcome, run_id)
    why = expansion.why_not_again(deal, finished)
    if why is not None:
        raise AlreadyOnboardedError(deal.account_id, outcome, run_id, why)
    return finished


async def _completed(
    client: temporalio.client.Client, workflow_id: str, rpc_timeout: timedelta | None
) -> bool:
    """Whether the workflow's last run completed (as an onboarding ends, handed off or
    cancelled). Read raw: only the run's status is needed, not its search attributes."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        ),
        retry=True,
        timeout=rpc_timeout,
    )
    status = described.workflow_execution_info.status
    return bool(status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED)


def _started_text(decision: TierDecision, after: OnboardingStatus | None) -> str:
    tier = f"{decision.tier.value}: {decision.reason}"
    if after is None:
        return f"onboarding started ({tier})"
    number, _ = expansion.next_number(after)
    return expansion.started_text(after.deal_type, number, after.state.value, tier)


def _was_started(handle: temporalio.client.WorkflowHandle[Any, OnboardingStatus]) -> bool:
    """Whether the start call created the run (True) or attached to a running one.

    The server says so itself: `StartWorkflowExecutionResponse.started` is false when
    `USE_EXISTING` attached to a running workflow. The SDK (1.35) keeps that response on
    the handle but exposes no public property for it, and the public run ids cannot tell
    (`first_execution_run_id` equals the run id on servers >= 1.32). Re-check on upgrade.
    """
    response = handle._start_workflow_response
    return bool(response is not None and getattr(response, "started", True))


async def start_onboarding(
    client: temporalio.client.Client, deal: ClosedWonDeal, playbook: Playbook
) -> tuple[temporalio.client.WorkflowHandle[object, OnboardingStatus], DealAcceptance]:
    """Start the account's onboarding by hand (the CLI): the handle, and the answer
    (`started` False: it was already running; `queued`: an expansion deal waiting for it)."""
    accepted = await deliver_deal(client, deal, playbook, f"manual:{uuid.uuid4()}")
    handle = client.get_workflow_handle(accepted.workflow_id, result_type=OnboardingStatus)
    return handle, accepted


async def report_deal_lost(
    client: temporalio.client.Client,
    account_id: str,
    lost: DealLost,
    delivery_id: str,
    *,
    rpc_timeout: timedelta | None = None,
) -> DealLostOutcome:
    """Apply the `deal_lost` rule to the account's running onboarding; `delivery_id` is
    the update's id, so a redelivery is applied once (Temporal keeps the first answer).

    With no running onboarding (none, one waiting for its deal, or one already finished)
    nothing changes and the outcome says "no onboarding" and why: the lost deal is
    acknowledged, there is nothing to stop. Transport errors (RPCError) propagate, so the
    caller answers 503 or its activity retries.
    """
    workflow_id = workflow_id_for(account_id)
    outcome = DealLostOutcome(
        account_id=account_id,
        workflow_id=workflow_id,
        deal_id=lost.deal_id,
        applied=False,
        detail="no onboarding",
    )
    try:
        status = await client.get_workflow_handle(workflow_id).execute_update(
            contract.DEAL_LOST,
            lost,
            id=f"deal-lost:{delivery_id}",
            result_type=OnboardingStatus,
            rpc_timeout=rpc_timeout,
        )
    except WorkflowUpdateFailedError as exc:  # its validator: not running
        return outcome.model_copy(update={"detail": f"no onboarding: {update_rejection(exc)}"})
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
        detail = await _why_missing(client, workflow_id)
        return outcome if detail is None else outcome.model_copy(update={"detail": detail})
    done = "cancelled" if lost.action == "cancel" else "flagged: a decision is required"
    return outcome.model_copy(
        update={
            "applied": True,
            "action": lost.action,
            "state": status.state,
            "detail": f"deal lost ({lost.reason}): onboarding {done}",
        }
    )


async def send_product_events(
    client: temporalio.client.Client,
    account_id: str,
    batch: ProductEventBatch,
    playbook: Playbook,
    *,
    running: bool,
    options: StartOptions | None = None,
    rpc_timeout: timedelta | None = None,
) -> None:
    """One signal with the account's events. With no running onboarding (`running`
    False) the signal starts one that keeps the events until the closed-won deal comes
    (signal-with-start). Raises `AlreadyOnboardedError` when the onboarding finished."""
    workflow_id = workflow_id_for(account_id)
    if running:
        handle = client.get_workflow_handle(workflow_id)
        try:
            await handle.signal(contract.PRODUCT_EVENTS, batch, rpc_timeout=rpc_timeout)
            return
        except RPCError as exc:  # finished since we looked: start afresh if allowed
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
    try:
        await client.start_workflow(
            WORKFLOW_TYPE,
            OnboardingInput(
                account_id=account_id,
                playbook=playbook,
                **(options or StartOptions()).model_dump(),
            ),
            id=workflow_id,
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            start_signal=contract.PRODUCT_EVENTS,
            start_signal_args=[batch],
            static_summary=f"{account_id} · product events before the closed-won deal",
            rpc_timeout=rpc_timeout,
        )
    except WorkflowAlreadyStartedError as exc:
        outcome = await finished_outcome(client, workflow_id)
        raise AlreadyOnboardedError(account_id, outcome, exc.run_id) from exc


async def report_champion_change(
    client: temporalio.client.Client,
    account_id: str,
    change: ContactChange,
    delivery_id: str | None,
    *,
    rpc_timeout: timedelta | None = None,
) -> ChampionChangeOutcome:
    """A CRM's new champion, as `change_contact` on the account's running onboarding
    (rules §6.3 (docs/rules.md)). The onboarding refuses a champion it already has, so a
    redelivery changes nothing; `delivery_id`, for a delivery that never recurs (a
    HubSpot event), is also the update's id, so a retry gets the first answer.

    Not applied, with the reason in `detail`: the onboarding refused it (this contact
    is already the champion, or it is waiting for its deal, or finished), or there is
    none ("no onboarding", and why if one finished). Transport errors (RPCError)
    propagate, so the caller answers 503 or its activity retries.
    """
    workflow_id = workflow_id_for(account_id)
    outcome = ChampionChangeOutcome(
        account_id=account_id,
        workflow_id=workflow_id,
        champion=change.contact.email,
        applied=False,
        detail="no onboarding",
    )
    try:
        status = await client.get_workflow_handle(workflow_id).execute_update(
            contract.CHANGE_CONTACT,
            change,
            id=f"champion:{delivery_id}" if delivery_id else None,
            result_type=OnboardingStatus,
            rpc_timeout=rpc_timeout,
        )
    except WorkflowUpdateFailedError as exc:  # its validator
        return outcome.model_copy(update={"detail": update_rejection(exc)})
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
        detail = await _why_missing(client, workflow_id)
        return outcome if detail is None else outcome.model_copy(update={"detail": detail})
    window = status.champion_windows[-1] if status.champion_windows else None
    opened = (
        window is not None
        and window.outcome == "open"
        and window.champion == change.contact.email
        and window.opened_at == status.as_of
    )
    detail = (
        f"champion is now {change.contact.email}: a re-alignment window is open to the "
        f"end of {last_day(window)}"
        if opened and window is not None
        else f"champion is now {change.contact.email}; no re-alignment window (the same "
        "person's details corrected, no champion before, or no [champion_change] playbook)"
    )
    return outcome.model_copy(
        update={"applied": True, "window_opened": opened, "state": status.state, "detail": detail}
    )
