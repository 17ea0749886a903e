"""An onboarding's messages reach a real SMTP server (aiosmtpd), end to end."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import activities_for
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.mail import Mailbox, email_settings
from workflows.models import OnboardingInput, Playbook
from workflows.onboarding import AccountOnboarding


async def test_welcome_and_csm_assignment_arrive_by_email(
    env: WorkflowEnvironment,
    playbook: Playbook,
    mailbox: Mailbox,
) -> None:
    task_queue = f"email-{uuid.uuid4().hex[:8]}"
    deal = make_deal(close_date=await env.get_current_time(), **TIER_DEALS["tech_touch"])
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(email_settings(mailbox, csm_roster=["pat@vendor.test"])),
        workflow_failure_exception_types=[Exception],
    ):
        await env.client.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue=task_queue,
        )
        for _ in range(200):
            if len(mailbox.messages) >= 2:
                break
            await asyncio.sleep(0.05)

    by_to = {m["To"]: m for m in mailbox.messages}
    welcome = by_to["cara@acme.test"]  # the champion
    assert welcome["Subject"] == "Welcome aboard, Acme Corp"
    assert "First up: First login / account activation, due" in welcome.get_content()
    assert welcome["X-Idempotency-Key"] == f"{deal.workflow_id}:welcome:customer"
    assigned = by_to["pat@vendor.test"]  # the CSM the roster gave this account
    assert assigned["Subject"] == "New onboarding: Acme Corp (tech_touch)"
