"""`onboarding records backfill` fills the records store from Temporal: a running
onboarding writes its record itself when asked, a finished one is written from its final
status, and a second backfill changes nothing (a private dev server and the service's
worker; the session's SQLite records store)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from click.testing import Result
from temporalio.client import Client
from typer.testing import CliRunner

from activities.records.schema import onboarding
from activities.records.store import RecordStore
from starter.cli import app
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.temporal import dev_server, log_worker
from workflows.contract import TASK_QUEUE
from workflows.models import CancelRequest, OnboardingInput, OnboardingState, Playbook
from workflows.models.record import OnboardingRecord
from workflows.onboarding import AccountOnboarding


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[Client]:
    """A private dev server (so the backfill sees only this module's onboardings) and the
    service's worker on `onboarding`."""
    env = await dev_server()
    try:
        async with log_worker(env.client):
            yield env.client
    finally:
        await env.shutdown()


async def stored(store: RecordStore, account_id: str) -> OnboardingRecord:
    for _ in range(100):
        if (record := store.get(account_id)) is not None:
            return record
        await asyncio.sleep(0.1)
    raise AssertionError(f"{account_id}: no record")


async def test_backfill_writes_running_and_finished_onboardings_once(
    temporal: Client, playbook: Playbook, records_store: str
) -> None:
    store = RecordStore.open(records_store)
    run = uuid.uuid4().hex[:6]
    now = datetime.now(UTC)  # the dev server runs on this machine's clock
    running = make_deal(f"bf-{run}-running", close_date=now, **TIER_DEALS["tech_touch"])
    ended = make_deal(f"bf-{run}-ended", close_date=now, **TIER_DEALS["high_touch"])
    handles = {}
    for deal in (running, ended):
        handles[deal.account_id] = await temporal.start_workflow(
            AccountOnboarding.run,
            OnboardingInput(deal=deal, playbook=playbook),
            id=deal.workflow_id,
            task_queue=TASK_QUEUE,
        )
        await stored(store, deal.account_id)
    await handles[ended.account_id].execute_update(
        AccountOnboarding.cancel, CancelRequest(reason="budget frozen", by="cs-lead")
    )
    await handles[ended.account_id].result()
    # As for onboardings that began before records existed: the store has nothing of them.
    with store.engine.begin() as conn:
        conn.execute(sa.delete(onboarding).where(onboarding.c.account_id.in_(handles)))

    def backfill() -> Result:
        env = {
            "TEMPORAL_ADDRESS": temporal.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": temporal.namespace,
        }
        return CliRunner().invoke(app, ["records", "backfill", "--wait", "20"], env=env)

    # In a thread: the command runs its own event loop while this one keeps the worker going.
    first = await asyncio.to_thread(backfill)

    assert first.exit_code == 0, first.output
    assert "running: 1 asked to write their record, 1 written" in first.stdout
    assert "finished: 1 written, 0 already in the store" in first.stdout
    live = await stored(store, running.account_id)
    assert (live.state, live.tier.value) == (OnboardingState.ACTIVE, "tech_touch")
    assert live.revision >= 1  # written by the onboarding itself
    final = await stored(store, ended.account_id)
    assert (final.state, final.cancel_reason) == (OnboardingState.CANCELLED, "budget frozen")
    assert final.revision == 0  # from the final status, never over the workflow's own

    again = await asyncio.to_thread(backfill)

    assert again.exit_code == 0, again.output
    assert "finished: 0 written, 1 already in the store" in again.stdout
    assert store.get(ended.account_id) == final
