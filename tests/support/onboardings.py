"""The time-skipping driver of onboardings: start them on a private task queue, move the
clock, read what they sent and what their status says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from workflows.models import (
    ClosedWonDeal,
    OnboardingInput,
    OnboardingProgress,
    OnboardingStatus,
    Playbook,
    ProductEventBatch,
    Tier,
    TierDecision,
    workflow_id_for,
)
from workflows.onboarding import AccountOnboarding
from workflows.rules import build_plan

# The default playbook's plan, in days after closed-won, as rules §2 (docs/rules.md) sets it.
DUE_DAYS: dict[Tier, dict[str, float]] = {
    Tier.SELF_SERVE: {
        "first_login": 3,
        "technical_setup": 7,
        "first_value": 14,
        "team_adoption": 28,
        "handoff": 30,
    },
    Tier.TECH_TOUCH: {
        "first_login": 3,
        "kickoff_call": 7,
        "technical_setup": 14,
        "data_import": 21,
        "first_training": 28,
        "first_value": 30,
        "team_adoption": 49,
        "handoff": 56,
    },
    Tier.HIGH_TOUCH: {
        "first_login": 5,
        "kickoff_call": 14,
        "technical_setup": 35,
        "data_import": 42,
        "first_training": 49,
        "first_value": 56,
        "team_adoption": 84,
        "handoff": 98,
    },
}


def fresh_progress(
    playbook: Playbook, tier: Tier, closed_at: datetime, **fields: Any
) -> OnboardingProgress:
    """An onboarding of `tier` that closed at `closed_at` and where nothing has happened
    yet; `fields` set more of its progress."""
    progress = OnboardingProgress(
        tier=tier,
        tier_decision=TierDecision(tier=tier, clause="test", reason="test"),
        milestones=build_plan(playbook, tier, closed_at),
        started_at=closed_at,
        clock_start=closed_at,
        last_progress_at=closed_at,
    )
    return replace(progress, **fields)


@dataclass
class Onboardings:
    """Starts onboardings on a private task queue and reads what they sent."""

    env: WorkflowEnvironment
    task_queue: str
    sent_log: Path
    playbook: Playbook
    records_url: str
    started: list[WorkflowHandle[Any, Any]] = field(default_factory=list)

    async def start(
        self, deal: ClosedWonDeal, playbook: Playbook | None = None, **input: Any
    ) -> WorkflowHandle[Any, OnboardingStatus]:
        handle = await self.env.client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook or self.playbook, **input),
            id=deal.workflow_id,
            task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    def track(self, handle: WorkflowHandle[Any, Any]) -> WorkflowHandle[Any, Any]:
        """Record this workflow's history too (with RECORD_HISTORIES set)."""
        self.started.append(handle)
        return handle

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def days_later(self, days: float) -> None:
        await self.env.sleep(timedelta(days=days))

    def sent(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Notifications delivered, from the notifier's idempotency-key log."""
        if not self.sent_log.exists():
            return []
        rows = [json.loads(line) for line in self.sent_log.read_text().splitlines() if line]
        prefix = f"onboarding-{account_id}:" if account_id else ""
        return [r for r in rows if r["key"].startswith(prefix)]

    async def subjects_once(self, account_id: str, subject: str) -> list[str]:
        """Subjects sent so far, once `subject` is among them (activities run async)."""
        for _ in range(200):
            subjects = [r["subject"] for r in self.sent(account_id)]
            if subject in subjects:
                return subjects
            await asyncio.sleep(0.05)
        raise AssertionError(f"{subject!r} never sent; sent: {subjects}")


async def events_first(
    onboardings: Onboardings, account_id: str, first: ProductEventBatch, wait_days: int = 30
) -> WorkflowHandle[Any, Any]:
    """An onboarding started by product events before its deal (signal-with-start)."""
    handle = await onboardings.env.client.start_workflow(
        AccountOnboarding.run,
        OnboardingInput(
            account_id=account_id, playbook=onboardings.playbook, deal_wait_days=wait_days
        ),
        id=workflow_id_for(account_id),
        task_queue=onboardings.task_queue,
        start_signal="product_events",
        start_signal_args=[first],
    )
    return onboardings.track(handle)


async def status(handle: WorkflowHandle[Any, Any]) -> OnboardingStatus:
    return await handle.query(AccountOnboarding.status)


async def until(
    handle: WorkflowHandle[Any, Any], check: Callable[[OnboardingStatus], bool]
) -> OnboardingStatus:
    """The status once `check` holds: a signal is applied on the workflow's next task."""
    for _ in range(200):
        if check(st := await status(handle)):
            return st
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached; last status: {st}")
