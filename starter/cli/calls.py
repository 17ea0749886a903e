"""Queries, updates and signals to an account's onboarding, each failure as a `CliError`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TypeVar

import temporalio.client
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.starting import finished_outcome
from activities.temporal_errors import update_rejection
from starter.cli.errors import CliError
from workflows import contract
from workflows.models import OnboardingStatus, workflow_id_for

# How long a command waits for the workflow (i.e. a worker) to answer a query or update.
ANSWER_TIMEOUT = timedelta(seconds=20)
Q = TypeVar("Q", bound=BaseModel)


async def finished_or_missing(client: temporalio.client.Client, account_id: str) -> CliError:
    """The error for an account whose workflow cannot take messages."""
    try:
        outcome = await finished_outcome(client, workflow_id_for(account_id))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return CliError(f"no onboarding for account {account_id}")
        raise
    return CliError(f"the onboarding of account {account_id} has ended ({outcome})")


async def query_status(
    client: temporalio.client.Client, account_id: str, wait: timedelta = ANSWER_TIMEOUT
) -> OnboardingStatus:
    """The onboarding's `status` query."""
    return await query(client, account_id, contract.STATUS, OnboardingStatus, wait)


async def query(
    client: temporalio.client.Client,
    account_id: str,
    name: str,
    result_type: type[Q],
    wait: timedelta = ANSWER_TIMEOUT,
) -> Q:
    """One of the onboarding's queries (`status`, `snapshot`)."""
    handle = client.get_workflow_handle(workflow_id_for(account_id))
    try:
        return await handle.query(name, result_type=result_type, rpc_timeout=wait)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await finished_or_missing(client, account_id) from None
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CliError(
                f"no answer to the {name} query of account {account_id} within "
                f"{wait.seconds} s: is a worker running (`onboarding up`)?"
            ) from None
        raise
    except temporalio.client.WorkflowQueryFailedError as exc:
        raise CliError(f"{name} query of account {account_id} failed: {exc.message}") from None
    except temporalio.client.WorkflowQueryRejectedError as exc:
        raise CliError(f"{name} query of account {account_id} rejected: {exc}") from None


class UpdateRejected(CliError):
    """The onboarding's validator refused an update; `reason` is its own message."""

    def __init__(self, name: str, account_id: str, reason: str) -> None:
        super().__init__(f"{name} rejected for account {account_id}: {reason}")
        self.reason = reason


async def update(
    client: temporalio.client.Client, account_id: str, name: str, arg: BaseModel
) -> OnboardingStatus:
    """Send an update; a validator's rejection is an `UpdateRejected` with its message."""
    handle = client.get_workflow_handle(workflow_id_for(account_id))
    try:
        return await asyncio.wait_for(
            handle.execute_update(name, arg, result_type=OnboardingStatus),
            ANSWER_TIMEOUT.total_seconds(),
        )
    except WorkflowUpdateFailedError as exc:
        raise UpdateRejected(name, account_id, update_rejection(exc)) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await finished_or_missing(client, account_id) from None
        raise
    except TimeoutError:
        raise CliError(
            f"no answer to {name} from account {account_id} within "
            f"{ANSWER_TIMEOUT.seconds} s: is a worker running (`onboarding up`)?"
        ) from None


async def signal(
    client: temporalio.client.Client, account_id: str, name: str, arg: BaseModel
) -> None:
    """Send a signal to a running onboarding."""
    handle = client.get_workflow_handle(workflow_id_for(account_id))
    try:
        await handle.signal(name, arg)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise await finished_or_missing(client, account_id) from None
        raise
