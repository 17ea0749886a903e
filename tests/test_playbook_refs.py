"""The pinned playbook travels by reference (README *Where the pinned playbook lives*):
Temporal keeps `{"playbook_ref": {"version", "sha256"}}` instead of the whole playbook, the
records store keeps the content once, and every process resolves it from there; the pin
holds, and people still read whole playbooks."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Replayer, Worker

from activities import Settings, activities_for
from activities.client import data_converter
from activities.converter import CONVERTER, ReferencingPayloadConverter
from activities.pinning import PlaybookContentMissing
from activities.records.store import RecordStore
from starter.client import worker_catching_up
from starter.devserver import free_port
from tests.support.deals import TIER_DEALS, make_deal
from tests.support.histories import run_histories
from tests.support.ingress import WHSEC, deal_body, dumps, std_headers, until_healthy
from tests.support.onboardings import Onboardings, status, until
from tests.support.temporal import BIN, dev_server, process_env, time_skipping
from tests.test_migration import NEXT, move
from worker import build_worker
from workflows.contract import TASK_QUEUE, WORKFLOW_TYPE
from workflows.models import (
    OnboardingInput,
    Playbook,
    ProductEvent,
    ProductEventBatch,
    workflow_id_for,
)
from workflows.models.playbook import held_playbook, playbook_ref
from workflows.onboarding import AccountOnboarding
from workflows.playbook import DEFAULT_PLAYBOOK, parse_playbook


def reference_in(data: bytes) -> dict[str, Any]:
    """The `playbook` a start or message payload carries, as Temporal keeps it."""
    playbook: dict[str, Any] = json.loads(data)["playbook"]
    return playbook


def unheld(text: str) -> tuple[str, str, str]:
    """(version, sha256, content) of the playbook `text` parses to, which this process
    then no longer holds (as in a process that never loaded it)."""
    playbook = parse_playbook(text)
    ref = playbook_ref(playbook)
    content = playbook.model_dump_json()
    del playbook
    gc.collect()
    assert held_playbook(ref.sha256) is None
    return ref.version, ref.sha256, content


# --------------------------------------------------------------------------- the form


def test_temporal_gets_a_reference_and_people_the_playbook(playbook: Playbook) -> None:
    start = OnboardingInput(deal=make_deal("acme", close_date=datetime.now(UTC)), playbook=playbook)
    [sent] = ReferencingPayloadConverter().to_payloads([start])
    ref = playbook_ref(playbook)
    assert reference_in(sent.data) == {
        "playbook_ref": {"version": playbook.version, "sha256": ref.sha256}
    }
    assert ref.sha256 == hashlib.sha256(playbook.model_dump_json().encode()).hexdigest()
    [whole] = CONVERTER.payload_converter.to_payloads([start])
    assert len(whole.data) - len(sent.data) > 25_000
    # The worker reads it back as the process's one copy of that playbook.
    [read] = ReferencingPayloadConverter().from_payloads([sent], [OnboardingInput])
    assert read.playbook is start.playbook
    # What people read (CLI output, HTTP answers) is the playbook itself.
    assert json.loads(start.model_dump_json())["playbook"]["milestones"]
    assert start.model_dump()["playbook"]["version"] == playbook.version


def test_a_reference_this_process_cannot_resolve_names_the_playbook() -> None:
    version, sha256, _ = unheld(DEFAULT_PLAYBOOK.read_text() + "\n# never loaded here\n")
    start = {
        "account_id": "acme",
        "playbook": {"playbook_ref": {"version": version, "sha256": sha256}},
    }
    with pytest.raises(ValidationError) as caught:
        OnboardingInput.model_validate(start)
    [error] = caught.value.errors()
    assert error["loc"] == ("playbook",)
    assert f"playbook {version} (sha256 {sha256}) is pinned by reference" in error["msg"]
    assert "ONBOARDING_RECORDS_URL" in error["msg"]


def test_the_store_keeps_each_playbook_once_by_its_hash(store: RecordStore) -> None:
    version, sha256, content = unheld(DEFAULT_PLAYBOOK.read_text() + "\n# stored\n")
    assert store.playbook_content(sha256) is None
    now = datetime.now(UTC)
    assert store.store_playbook(sha256, version, content, now)
    assert not store.store_playbook(sha256, version, content, now)  # another process did
    assert store.playbook_content(sha256) == content


# --------------------------------------------------------------------------- a real stack


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Client, Path]]:
    """A dev server of its own and the service's worker (production settings: a failed
    workflow task is retried), both reaching Temporal through `data_converter()`, with
    the records store at `folder / records.db` (where `process_env` puts a subprocess's)."""
    folder = tmp_path_factory.mktemp("by-reference")
    url = f"sqlite:///{folder / 'records.db'}"
    env = await dev_server(data_converter(records_url=url))
    settings = Settings(notify_channels=["log"], records_url=url)
    async with build_worker(env.client, settings):
        yield env.client, folder
    await env.shutdown()


async def test_a_webhook_through_the_ingress_starts_an_onboarding_holding_a_reference(
    stack: tuple[Client, Path],
) -> None:
    """The ingress runs in its own process, on a playbook file this process never loaded:
    the worker here resolves it from the records store the ingress stored it in."""
    client, folder = stack
    text = DEFAULT_PLAYBOOK.read_text().replace('name = "', 'name = "Pinned by reference: ', 1)
    file = folder / "playbook.toml"
    file.write_text(text)
    port = free_port()
    env = process_env(
        folder,
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        ONBOARDING_PORT=str(port),
        ONBOARDING_WEBHOOK_SECRETS=WHSEC,
        ONBOARDING_PLAYBOOK=str(file),
    )
    log = (folder / "ingress.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "onboarding"), "serve", env=env, stdout=log, stderr=log
    )
    account_id = f"acct-{uuid.uuid4().hex[:8]}"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await until_healthy(http, within=30)
            body = dumps(deal_body(account_id))
            answer = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
            assert answer.status_code == 201, answer.text
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.wait()
        log.close()

    handle = client.get_workflow_handle(workflow_id_for(account_id))
    st = await until(handle, lambda st: st.owner is not None)
    assert st.playbook_hash == hashlib.sha256(text.encode()).hexdigest()[:16]
    started = (await handle.fetch_history()).events[0]
    [payload] = started.workflow_execution_started_event_attributes.input.payloads
    ref = reference_in(payload.data)["playbook_ref"]
    assert ref["version"] == st.playbook_version
    assert len(payload.data) < 3_000
    assert b"Pinned by reference" not in payload.data
    # The worker here loaded it from the store: this process now holds that playbook.
    held = held_playbook(ref["sha256"])
    assert held is not None and held.name.startswith("Pinned by reference: ")
    # Its history, references and all, replays as a restarted worker would replay it.
    replayer = Replayer(workflows=[AccountOnboarding], data_converter=client.data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def test_a_reference_to_content_not_stored_waits_until_it_is(
    stack: tuple[Client, Path],
) -> None:
    """A start naming a playbook the store lacks: the sender is refused, naming it; sent
    anyway (a converter without the codec), the workflow task fails naming it and is
    retried; once the content is stored, the onboarding goes on."""
    client, folder = stack
    version, sha256, content = unheld(DEFAULT_PLAYBOOK.read_text() + "\n# stored late\n")
    deal = make_deal(close_date=datetime.now(UTC))
    start = {
        "deal": deal.model_dump(mode="json"),
        "playbook": {"playbook_ref": {"version": version, "sha256": sha256}},
    }
    with pytest.raises(PlaybookContentMissing, match=f"playbook {version} \\(sha256 {sha256}\\)"):
        await client.start_workflow(
            WORKFLOW_TYPE, start, id=deal.workflow_id, task_queue=TASK_QUEUE
        )

    plain = await Client.connect(client.service_client.config.target_host, data_converter=CONVERTER)
    handle: WorkflowHandle[Any, Any] = await plain.start_workflow(
        WORKFLOW_TYPE, start, id=deal.workflow_id, task_queue=TASK_QUEUE
    )
    failure = await task_failure(client.get_workflow_handle(handle.id))
    assert f"playbook {version} (sha256 {sha256}) is not in the records store" in failure
    assert "ONBOARDING_RECORDS_URL" in failure

    store = RecordStore.open(f"sqlite:///{folder / 'records.db'}")
    store.store_playbook(sha256, version, content, datetime.now(UTC))
    store.close()
    st = await until_answered(client.get_workflow_handle(handle.id))
    assert st.account_id == deal.account_id
    assert st.playbook_version == version


async def task_failure(handle: WorkflowHandle[Any, Any]) -> str:
    """The message of the workflow's first failed workflow task (with its causes)."""
    for _ in range(300):
        for event in (await handle.fetch_history()).events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failure = event.workflow_task_failed_event_attributes.failure
                messages = []
                while failure.message:
                    messages.append(failure.message)
                    failure = failure.cause
                return " / ".join(messages)
        await asyncio.sleep(0.1)
    raise AssertionError("no workflow task failed")


async def until_answered(handle: WorkflowHandle[Any, Any], within_s: float = 60) -> Any:
    """The status once the workflow's task is done (until then a query is refused)."""
    for _ in range(int(within_s / 0.5)):
        try:
            return await handle.query(AccountOnboarding.status)
        except RPCError as exc:
            if not worker_catching_up(exc):
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("the onboarding never went on")


# --------------------------------------------------------------------------- time-skipped


@pytest.fixture
async def by_reference(playbook: Playbook, tmp_path: Path) -> AsyncIterator[Onboardings]:
    """`Onboardings` on a time-skipping server reached through `data_converter()`."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    env = await time_skipping(data_converter(records_url=url))
    task_queue = f"by-reference-{uuid.uuid4().hex[:8]}"
    settings = Settings(notify_channels=["log"], sent_log=tmp_path / "sent.jsonl", records_url=url)
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[AccountOnboarding],
        activities=activities_for(settings),
        workflow_failure_exception_types=[Exception],
    ):
        yield Onboardings(env, task_queue, tmp_path / "sent.jsonl", playbook, url)
    await env.shutdown()


async def test_a_migration_sent_by_reference_moves_the_onboarding(
    by_reference: Onboardings,
) -> None:
    handle = await by_reference.start(
        make_deal(close_date=await by_reference.now(), **TIER_DEALS["tech_touch"])
    )
    st = await handle.execute_update(
        AccountOnboarding.migrate_playbook, move({"first_training": "training_101"})
    )
    assert (st.playbook_version, st.playbook_hash) == ("2027.1", NEXT.content_hash)
    assert "training_101" in {m.id for m in st.milestones}
    events = (await handle.fetch_history()).events
    [update] = [
        e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    [payload] = (
        update.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads
    )
    assert reference_in(payload.data) == {
        "playbook_ref": {"version": "2027.1", "sha256": playbook_ref(NEXT).sha256}
    }
    store = RecordStore.open(by_reference.records_url)
    assert store.playbook_content(playbook_ref(NEXT).sha256) == NEXT.model_dump_json()
    store.close()


async def test_a_continued_run_starts_from_a_reference_and_keeps_its_progress(
    by_reference: Onboardings, playbook: Playbook
) -> None:
    deal = make_deal(close_date=await by_reference.now(), **TIER_DEALS["tech_touch"])
    handle = await by_reference.start(deal, max_history_events=100)
    latest = by_reference.env.client.get_workflow_handle(deal.workflow_id)
    # Each signal adds at least one event: these take the run past its limit.
    sent = 110
    for i in range(sent):
        event = ProductEvent(event_id=f"ev-{i}", name="user_invited")
        await latest.signal(AccountOnboarding.product_events, ProductEventBatch(events=[event]))
    for _ in range(200):
        if (await latest.describe()).run_id != handle.first_execution_run_id:
            break
        await asyncio.sleep(0.05)
    st = await until(latest, lambda st: st.event_counts.get("user_invited") == sent)
    assert st.playbook_version == playbook.version
    runs = await run_histories(by_reference.env.client, handle)
    assert len(runs) >= 2
    for run in runs:
        [payload] = run.events[0].workflow_execution_started_event_attributes.input.payloads
        assert reference_in(payload.data) == {
            "playbook_ref": {"version": playbook.version, "sha256": playbook_ref(playbook).sha256}
        }
    assert (await status(latest)).playbook_hash == playbook.content_hash
