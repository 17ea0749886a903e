"""What the ways in (CLI, ingress) add to `activities.client`: links to the Temporal Web UI,
and whether a refused call means a worker is catching up."""

from __future__ import annotations

import os
from urllib.parse import quote

from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.service import RPCError, RPCStatusCode

from activities.client import namespace

DEFAULT_UI_URL = "http://localhost:8233"


def worker_catching_up(exc: BaseException) -> bool:
    """Whether Temporal refused an update or a query because the workflow's task is being
    retried ("Workflow Task in failed state"): its last task timed out or failed, as when
    a worker was killed holding it, and no worker has completed it since. Transient: the
    same request succeeds once a worker catches up; nothing was recorded.

    temporalio 1.35 raises it as a plain `RPCError`: FAILED_PRECONDITION with a
    `WorkflowNotReadyFailure` detail (an update waiting for a task that then fails
    instead raises `WorkflowUpdateRPCTimeoutOrCancelledError` at its RPC timeout)."""
    return (
        isinstance(exc, RPCError)
        and exc.status == RPCStatusCode.FAILED_PRECONDITION
        and any(d.Is(WorkflowNotReadyFailure.DESCRIPTOR) for d in exc.grpc_status.details)
    )


def ui_base_url() -> str:
    return os.environ.get("ONBOARDING_UI_URL", "").strip().rstrip("/") or DEFAULT_UI_URL


def ui_url(workflow_id: str, namespace_name: str | None = None) -> str:
    """Link to the workflow in the Temporal Web UI (its latest run)."""
    ns = namespace_name or namespace()
    path = f"namespaces/{quote(ns, safe='')}/workflows/{quote(workflow_id, safe='')}"
    return f"{ui_base_url()}/{path}"
