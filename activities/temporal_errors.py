"""What Temporal's failures mean to a caller of an onboarding workflow."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError


def update_rejection(exc: WorkflowUpdateFailedError) -> str:
    """The message of a failed update: its validator's or handler's `ApplicationError`
    message (the reason the workflow gave), else the cause as text."""
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)
