"""An onboarding whose workflow task is being retried (a worker killed holding it, or a
task that fails): Temporal refuses its updates and queries ("Workflow Task in failed
state") until a worker completes the task. The ingress answers 503 with Retry-After and
changes nothing; the CLI says so in one line.

Real parts: the session's dev server, the real app, the real console script, and a worker
whose `AccountOnboarding` fails every workflow task, on a task queue of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.support.ingress import (
    deal_body,
    dumps,
    runs,
    segment_headers,
    std_headers,
    track,
)
from tests.support.temporal import BIN

ONBOARDING = BIN / "onboarding"


@workflow.defn(name="AccountOnboarding")
class FailingOnboarding:
    """Stands in for an onboarding whose workflow task fails on every attempt."""

    @workflow.run
    async def run(self, _: Any) -> None:
        raise RuntimeError("this workflow task fails on every attempt")


@dataclass
class CatchingUp:
    account_id: str
    handle: WorkflowHandle[Any, Any]
    run_id: str


async def update_events(handle: WorkflowHandle[Any, Any]) -> list[Any]:
    """Updates admitted, accepted or completed in the history."""
    return [
        e
        async for e in handle.fetch_history_events()
        if e.HasField("workflow_execution_update_accepted_event_attributes")
        or e.HasField("workflow_execution_update_admitted_event_attributes")
        or e.HasField("workflow_execution_update_completed_event_attributes")
    ]


@pytest.fixture
async def catching_up(dev_env: WorkflowEnvironment) -> AsyncIterator[CatchingUp]:
    """A running `onboarding-<account>` whose task has failed twice and is being retried.

    With a 1 s task timeout the retries come quickly (the SDK lets a repeatedly failing
    task time out rather than fail it again); from the third attempt on, the server
    refuses updates and queries."""
    client: Client = dev_env.client
    account_id = f"acct-{uuid.uuid4().hex[:10]}"
    async with Worker(
        client,
        task_queue=f"failing-{uuid.uuid4().hex[:8]}",
        workflows=[FailingOnboarding],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ) as worker:
        handle = await client.start_workflow(
            "AccountOnboarding",
            {"account_id": account_id},
            id=f"onboarding-{account_id}",
            task_queue=worker.task_queue,
            task_timeout=timedelta(seconds=1),
        )
        for _ in range(150):
            pending = (await handle.describe()).raw_description.pending_workflow_task
            if pending.attempt >= 3:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"the workflow task never failed twice: {pending}")
        try:
            yield CatchingUp(account_id, handle, handle.result_run_id or "")
        finally:
            await handle.terminate("test over")


def assert_catching_up(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "10"
    body = response.json()
    assert (body["error"], body["field"]) == ("worker_catching_up", "temporal")
    assert "Workflow Task in failed state" in body["reason"]
    assert "retry in 10 s" in body["reason"]


async def test_the_ingress_answers_503_with_retry_after_and_changes_nothing(
    http: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    catching_up: CatchingUp,
) -> None:
    acct = catching_up.account_id

    # A deal redelivered to the running onboarding: the `provide_deal` update is refused.
    body = dumps(deal_body(acct))
    assert_catching_up(await http.post("/webhooks/deals", content=body, headers=std_headers(body)))
    # Its status query too.
    assert_catching_up(await http.get(f"/accounts/{acct}"))

    # Nothing started or changed: the same run, no update in its history, no deal counted.
    assert (await catching_up.handle.describe()).run_id == catching_up.run_id
    assert await runs(dev_env.client, acct) == 1
    assert await update_events(catching_up.handle) == []
    metrics = (await http.get("/metrics")).text
    assert "onboarding_ingress_deals_total{" not in metrics
    assert "onboarding_ingress_onboardings_started_total{" not in metrics
    refused = '{reason="worker_catching_up",route="/webhooks/deals"} 1.0'
    assert f"onboarding_ingress_rejections_total{refused}" in metrics

    # Product events are signals, which Temporal takes even now: kept in the history for
    # when a worker completes the task, not refused.
    events = dumps({"batch": [track(acct, "user_logged_in")]})
    answer = await http.post("/events", content=events, headers=segment_headers(events))
    assert answer.status_code == 200, answer.text
    assert [e["outcome"] for e in answer.json()["events"]] == ["accepted"]


async def test_the_cli_says_the_worker_is_catching_up_in_one_line(
    dev_env: WorkflowEnvironment, catching_up: CatchingUp, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ONBOARDING_"))}
    env |= {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "none.toml"),
    }
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps(deal_body(catching_up.account_id)))
    acct = catching_up.account_id
    for args in (
        ["pause", acct, "--by", "csm", "--reason", "customer re-org"],
        ["status", acct],
        ["start", "--file", str(deal)],
    ):
        proc = await asyncio.create_subprocess_exec(
            str(ONBOARDING),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1, (args, out, err)
        line = err.decode()
        assert line.startswith("error: the worker is catching up on this onboarding"), line
        assert "retry in a few seconds" in line
        assert line.count("\n") == 1 and out == b"", (args, line)
    assert await update_events(catching_up.handle) == []
