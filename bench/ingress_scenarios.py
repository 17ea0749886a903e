"""The ingress benchmark's three scenarios, each measured on a running stack.

1. `measure_starts`: signed `/webhooks/deals` posts vs the bare SDK's `start_workflow`,
   in alternating rounds at the same concurrency.
2. `measure_events`: Segment batches to `/events` vs one `product_events` signal per event,
   in rounds of both.
3. `measure_history`: one onboarding fed raw events through the ingress, and the length
   of its history.

`Options` says how large each is (`bench/ingress.py` parses them).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import temporalio.client
from common import (
    NOISE,
    SEGMENT_BATCH,
    BenchError,
    Round,
    Stack,
    segment_batch,
    settle,
    timed,
    track_call,
)
from temporalio.common import WorkflowIDConflictPolicy

from starter.signatures import standard_webhook_headers
from workflows import contract
from workflows.contract import TASK_QUEUE, WORKFLOW_TYPE
from workflows.models import (
    ClosedWonDeal,
    OnboardingInput,
    ProductEvent,
    ProductEventBatch,
    workflow_id_for,
)

# Events the default playbook's milestones are completed by.
RELEVANT = (
    "user_logged_in",
    "setup_completed",
    "data_import_validated",
    "core_workflow_completed",
    "user_invited",
)
PATHS = ("bare", "ingress")


@dataclass(frozen=True)
class Options:
    deals: int
    rounds: int
    concurrency: int
    events: int
    ingress_events: int
    accounts: int
    history_events: int
    seed: int


def closed_won(account_id: str) -> ClosedWonDeal:
    return ClosedWonDeal.model_validate(
        {
            "account_id": account_id,
            "account_name": f"Bench {account_id}",
            "acv_usd": 60_000,
            "seats": 80,
            "close_date": datetime.now(UTC) - timedelta(days=1),
            "contacts": [{"name": "Casey", "email": "casey@bench.example", "role": "champion"}],
            "crm": {"source": "generic", "deal_id": f"D-{account_id}"},
        }
    )


async def start_bare(stack: Stack, account_ids: Sequence[str]) -> None:
    """Onboardings started with the SDK directly (also the setup of parts 2 and 3)."""
    await asyncio.gather(*(_bare_start(stack, closed_won(a))() for a in account_ids))


def _bare_start(stack: Stack, deal: ClosedWonDeal) -> Callable[[], Awaitable[object]]:
    return lambda: stack.client.start_workflow(
        WORKFLOW_TYPE,
        OnboardingInput(deal=deal, playbook=stack.playbook),
        id=workflow_id_for(deal.account_id),
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def _webhook(stack: Stack, deal: ClosedWonDeal) -> Callable[[], Awaitable[object]]:
    """Signed before the clock runs: signing is the sender's cost, not the ingress's."""
    body = deal.model_dump_json().encode()
    headers = standard_webhook_headers(stack.webhook_secret, body, f"msg_{deal.account_id}")
    return lambda: stack.http.post("/webhooks/deals", body, headers)


async def _start_round(
    stack: Stack, path: str, account_ids: Sequence[str], concurrency: int
) -> Round:
    make = _bare_start if path == "bare" else _webhook
    return await timed([make(stack, closed_won(a)) for a in account_ids], concurrency)


Starts = dict[str, list[Round]]  # the rounds of each path


async def measure_starts(stack: Stack, options: Options) -> Starts:
    """Warm both paths up, then alternate rounds (bare, ingress, bare, ingress, ...), each
    once the worker has caught up with the one before."""
    warmup = max(options.concurrency * 2, 20)
    rounds = [(path, "warmup", warmup) for path in PATHS]
    rounds += [(path, str(n), options.deals) for n in range(options.rounds) for path in PATHS]
    starts: Starts = {path: [] for path in PATHS}
    previous: list[str] = []
    for path, label, deals in rounds:
        await settle(stack, previous)
        previous = [f"{path}-{label}-{i}" for i in range(deals)]
        measured = await _start_round(stack, path, previous, options.concurrency)
        if label != "warmup":
            starts[path].append(measured)
    await settle(stack, previous)
    return starts


def segment_calls(
    rng: random.Random, accounts: Sequence[str], count: int, tag: str, duplicates: float = 0.0
) -> list[dict[str, Any]]:
    """Segment track calls: about one in ten completes a milestone, the rest is noise;
    `duplicates` of them are retries that resend an earlier messageId."""
    now = datetime.now(UTC).isoformat()
    calls: list[dict[str, Any]] = []
    for i in range(count):
        if calls and rng.random() < duplicates:
            calls.append(rng.choice(calls[-2 * SEGMENT_BATCH :]))
            continue
        account = rng.choice(accounts)
        event = rng.choice(RELEVANT if rng.random() < 0.1 else NOISE)
        user = rng.randrange(25)
        calls.append(
            track_call(f"{tag}-{i}", event, account, user, now, path="/app", plan="enterprise")
        )
    return calls


def _product_event(call: dict[str, Any]) -> ProductEvent:
    return ProductEvent(
        event_id=call["messageId"],
        name=call["event"],
        at=datetime.fromisoformat(call["timestamp"]),
        user_id=call["userId"],
    )


def _naive_signal(stack: Stack, call: dict[str, Any]) -> Callable[[], Awaitable[object]]:
    handle = stack.client.get_workflow_handle(workflow_id_for(call["groupId"]))
    batch = ProductEventBatch(events=[_product_event(call)])
    return lambda: handle.signal(contract.PRODUCT_EVENTS, batch)


def _segment_batch(
    stack: Stack, calls: Sequence[dict[str, Any]], answers: list[dict[str, Any]]
) -> Callable[[], Awaitable[object]]:
    body, headers = segment_batch(stack.segment_secret, calls)

    async def post() -> None:
        answers.append(await stack.http.post("/events", body, headers))

    return post


async def signals_sent(stack: Stack) -> int:
    """The ingress's count of `product_events` signals sent (`/metrics`): requests for an
    account that arrive together share one, which each of their answers counts."""
    status, text = await stack.http.request("GET", "/metrics")
    if status != 200:
        raise BenchError(f"GET /metrics answered {status}")
    for line in text.decode().splitlines():
        if line.startswith("onboarding_ingress_signals_total "):
            return int(float(line.split()[1]))
    raise BenchError("GET /metrics has no onboarding_ingress_signals_total")


async def post_events(
    stack: Stack, calls: Sequence[dict[str, Any]], concurrency: int
) -> tuple[Round, int]:
    """The calls to `/events` in batches of 100: the round and the signals sent."""
    answers: list[dict[str, Any]] = []
    posts = [
        _segment_batch(stack, calls[i : i + SEGMENT_BATCH], answers)
        for i in range(0, len(calls), SEGMENT_BATCH)
    ]
    before = await signals_sent(stack)
    sent = await timed(posts, concurrency)
    rejected = sum(a["rejected"] for a in answers)
    if rejected:
        raise BenchError(f"/events rejected {rejected} of the benchmark's events")
    return sent, await signals_sent(stack) - before


@dataclass
class Events:
    """One round of each path: the same event mix, `naive` events one signal each and
    `ingress` events through `/events` (in `signals` signals)."""

    naive: Round
    ingress: Round
    signals: int
    naive_count: int
    ingress_count: int

    @property
    def naive_per_second(self) -> float:
        return self.naive_count / self.naive.seconds

    @property
    def ingress_per_second(self) -> float:
        return self.ingress_count / self.ingress.seconds


async def _running_accounts(stack: Stack, path: str, options: Options) -> list[str]:
    accounts = [f"events-{path}-{i}" for i in range(options.accounts)]
    await start_bare(stack, accounts)
    await settle(stack, accounts)
    return accounts


async def measure_events(stack: Stack, options: Options) -> list[Events]:
    """`options.rounds` rounds of both paths, each path to its own fresh running
    onboardings. The ingress path posts more events (`ingress_events`) so that its round
    lasts long enough to measure its pace: 5,000 events took it under a second, much of
    it the first signal of every account and the last requests' wait."""
    rng = random.Random(options.seed)
    rounds: list[Events] = []
    for n in range(options.rounds):
        accounts = await _running_accounts(stack, f"naive{n}", options)
        calls = segment_calls(rng, accounts, options.events, f"naive{n}-event")
        naive = await timed([_naive_signal(stack, c) for c in calls], options.concurrency)
        await settle(stack, accounts)

        accounts = await _running_accounts(stack, f"ingress{n}", options)
        calls = segment_calls(rng, accounts, options.ingress_events, f"ingress{n}-event")
        ingress, signals = await post_events(stack, calls, options.concurrency)
        await settle(stack, accounts)
        rounds.append(Events(naive, ingress, signals, options.events, options.ingress_events))
    return rounds


@dataclass
class History:
    latest_run: int
    all_runs: int
    runs: int
    signals: int


async def _history_lengths(stack: Stack, workflow_id: str, first_run_id: str) -> list[int]:
    """Events per run, following continue-as-new from the first run."""
    lengths: list[int] = []
    run_id: str | None = first_run_id
    while run_id:
        history = await stack.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return lengths


async def measure_history(stack: Stack, options: Options) -> History:
    """One onboarding fed raw events (5% resent) through the ingress, then its history."""
    account = "history-0"
    handle = await _bare_start(stack, closed_won(account))()
    assert isinstance(handle, temporalio.client.WorkflowHandle)
    await settle(stack, [account])
    rng = random.Random(options.seed + 1)
    calls = segment_calls(rng, [account], options.history_events, "history", duplicates=0.05)
    _, signals = await post_events(stack, calls, options.concurrency)
    await settle(stack, [account])  # the worker has taken every signal
    assert handle.first_execution_run_id is not None
    lengths = await _history_lengths(stack, handle.id, handle.first_execution_run_id)
    return History(
        latest_run=lengths[-1], all_runs=sum(lengths), runs=len(lengths), signals=signals
    )
