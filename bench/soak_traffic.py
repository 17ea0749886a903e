"""The soak's load: what it sends the stack, in which waves (`run_fleet`), retried as
real senders would, and each message mirrored in the account's `Replay` as it is sent.

1. The fleet's deals as signed `/webhooks/deals` posts; then the worker catches up.
2. A storm: Segment batches to `/events` while the paused, resumed and overridden accounts
   get their SDK updates and 3% of the deals are delivered again; then more batches and
   `milestone_reached` signals that complete some onboardings.
3. A wait until the timer accounts' steps have come due, and the worker has run them.

Every request counts towards `Chaos`'s kill points.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from common import BenchError, answered, segment_batch, settle, timed
from soak_fleet import OVERRIDES, Account, Options, event_batches
from soak_oracle import DAY
from soak_workers import Chaos, Soak

from starter.client import worker_catching_up
from starter.signatures import standard_webhook_headers
from workflows.models import (
    MilestoneReport,
    PauseRequest,
    Playbook,
    ResumeRequest,
    Tier,
    TierOverride,
    workflow_id_for,
)

T = TypeVar("T")


@dataclass
class Traffic:
    """What the run sent, and what the ingress answered."""

    retries: int = 0  # 503s answered while Temporal was busy; the sender retried
    catching_up: int = 0  # updates, signals, queries refused while a worker caught up
    webhooks: int = 0
    events: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    signals: int = 0
    updates: int = 0
    start_seconds: float = 0
    caught_up_seconds: float = 0
    event_seconds: float = 0


async def post(
    soak: Soak, traffic: Traffic, path: str, body: bytes, headers: Callable[[], dict[str, str]]
) -> Any:
    """POST, retried on 503 (Temporal did not answer in time) as a CRM or Segment would;
    any other refusal stops the run."""
    for _ in range(120):
        status, answer = await soak.stack.http.post_json(path, body, headers())
        if status != 503:
            break
        traffic.retries += 1
        await asyncio.sleep(1)
    return answered(path, status, answer)


async def patiently(traffic: Traffic, call: Callable[[], Awaitable[T]]) -> T:
    """`call()` (an update, signal or query), retried while the onboarding's worker catches
    up: right after a kill its workflow task is being retried, and Temporal refuses
    updates and queries meanwhile, recording nothing. Backoff 0.5 s doubling to 5 s, for
    at most 3 minutes; then the run is not valid."""
    delay, deadline = 0.5, time.monotonic() + 180
    while True:
        try:
            return await call()
        except Exception as exc:
            if not worker_catching_up(exc):
                raise
            if time.monotonic() > deadline:
                raise BenchError(f"the worker did not catch up within 3 minutes: {exc}") from exc
        traffic.catching_up += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


def webhook(soak: Soak, traffic: Traffic, account: Account) -> Callable[[], Awaitable[object]]:
    """The deal, signed at each attempt (a retry is signed afresh, same webhook id)."""
    stack = soak.stack
    body = account.deal.model_dump_json().encode()

    async def send() -> None:
        headers = lambda: standard_webhook_headers(  # noqa: E731
            stack.webhook_secret, body, f"msg_{account.id}"
        )
        await post(soak, traffic, "/webhooks/deals", body, headers)
        traffic.webhooks += 1

    return send


def events_post(
    soak: Soak, traffic: Traffic, calls: list[dict[str, Any]]
) -> Callable[[], Awaitable[object]]:
    stack = soak.stack

    async def send() -> None:
        body, headers = segment_batch(stack.segment_secret, calls)
        answer = await post(soak, traffic, "/events", body, lambda: headers)
        traffic.events += len(calls)
        traffic.outcomes.update({k: answer[k] for k in ("accepted", "duplicate", "ignored")})
        if answer["rejected"]:
            raise BenchError(f"/events rejected {answer['rejected']} calls: {answer['events']}")

    return send


def expect_events(by_id: dict[str, Account], batches: list[list[dict[str, Any]]]) -> None:
    """The rules' side of a wave of events: the same calls in the same order, worked out
    before the wave, off the clock (when exactly does not matter: see `Replay`)."""
    now = datetime.now(UTC)
    for batch in batches:
        for c in batch:
            by_id[c["groupId"]].expected.product_event(c["event"], c["messageId"], now)


def updates(soak: Soak, traffic: Traffic, account: Account) -> Callable[[], Awaitable[object]]:
    """Pause (and resume) or override the tier, as a CSM or manager would."""
    handle = soak.stack.client.get_workflow_handle(workflow_id_for(account.id))
    expected = account.expected

    async def update(
        name: str,
        request: PauseRequest | ResumeRequest | TierOverride,
        mirror: Callable[[datetime], None],
    ) -> None:
        """The update, then the same in the account's `Replay`, once it was taken. Its id
        is fixed, so a retry after a timed-out call (the update may have been taken while
        the worker caught up) gets that update's answer instead of asking again."""
        update_id = f"soak-{account.id}-{name}"
        await patiently(traffic, partial(handle.execute_update, name, request, id=update_id))
        mirror(datetime.now(UTC))
        traffic.updates += 1

    async def send() -> None:
        if account.group in ("pause", "pause_resume"):
            pause = PauseRequest(by="csm@soak.example", reason="customer reorganising")
            await update("pause", pause, expected.pause)
        if account.group == "pause_resume":
            resume = ResumeRequest(by="csm@soak.example", reason="back on track")
            await update("resume", resume, expected.resume)
        if account.group == "override":
            tier = OVERRIDES[expected.progress.tier]
            override = TierOverride(tier=tier, approver="vp-cs@soak.example", reason="soak")
            await update("override_tier", override, partial(expected.override, tier))

    return send


def reports(soak: Soak, traffic: Traffic, account: Account) -> Callable[[], Awaitable[object]]:
    """`milestone_reached` for each manual milestone, the first one sent twice."""
    handle = soak.stack.client.get_workflow_handle(workflow_id_for(account.id))
    expected = account.expected

    async def send() -> None:
        manual = expected.manual_milestones()
        sends = [(m, f"{account.id}-report-{m}") for m in manual]
        if len(sends) > 1:  # resent while more are to come: the workflow is still running
            sends.insert(1, sends[0])
        for milestone_id, event_id in sends:
            report = MilestoneReport(
                milestone_id=milestone_id, event_id=event_id, reported_by="csm@soak.example"
            )
            await patiently(traffic, partial(handle.signal, "milestone_reached", report))
            expected.milestone_reached(milestone_id, event_id, datetime.now(UTC))
            traffic.signals += 1

    return send


async def run_fleet(soak: Soak, options: Options, fleet: list[Account], t0: datetime) -> Traffic:
    stack, rng = soak.stack, random.Random(options.seed + 1)
    by_id = {a.id: a for a in fleet}
    traffic = Traffic()
    # A resent deal waits for the worker (the `provide_deal` update): during the starts
    # it would hold a sender's slot while the worker catches up, so it comes later.
    resent = rng.sample(fleet, len(fleet) * 3 // 100)
    touched = [a for a in fleet if a.group != "plain"]
    plain = [a for a in fleet if a.group == "plain" and not a.timer]
    first_wave = event_batches(rng, plain[: len(plain) // 2])
    second_wave = event_batches(rng, plain[len(plain) // 2 :] + touched)
    completing = [a for a in fleet if a.level == "complete"]
    chaos = Chaos(
        soak.workers,
        len(fleet)
        + len(first_wave)
        + len(touched)
        + len(resent)
        + len(second_wave)
        + len(completing),
        options.kills,
    )

    print(f"starting {len(fleet)} onboardings", flush=True)
    started = time.perf_counter()
    starts = await timed(
        [chaos.counted(webhook(soak, traffic, a)) for a in fleet], options.concurrency
    )
    traffic.start_seconds = starts.seconds
    await settle(stack, [a.id for a in fleet], within=600)
    traffic.caught_up_seconds = time.perf_counter() - started
    print(f"  worker caught up after {traffic.caught_up_seconds:.0f} s", flush=True)

    print(
        f"storm: {len(first_wave)} event batches, {len(touched)} pauses/overrides, "
        f"{len(resent)} deals resent",
        flush=True,
    )
    expect_events(by_id, first_wave)
    events_1, *_ = await asyncio.gather(
        timed([chaos.counted(events_post(soak, traffic, b)) for b in first_wave], 8),
        timed([chaos.counted(updates(soak, traffic, a)) for a in touched], options.concurrency),
        timed([chaos.counted(webhook(soak, traffic, a)) for a in resent], options.concurrency),
    )
    # The workflows publish their new awaited events (memo) after an update: let them.
    await settle(stack, [a.id for a in touched], within=600)
    print(f"storm: {len(second_wave)} event batches, {len(completing)} completions", flush=True)
    expect_events(by_id, second_wave)
    events_2, _ = await asyncio.gather(
        timed([chaos.counted(events_post(soak, traffic, b)) for b in second_wave], 8),
        timed([chaos.counted(reports(soak, traffic, a)) for a in completing], options.concurrency),
    )
    traffic.event_seconds = events_1.seconds + events_2.seconds
    # The timer accounts' login deadline (and no-login step) come due at t0 + an offset;
    # wait past the last one, then for the worker to run what came due.
    last_due = max(
        a.deal.close_date + login_due_days(stack.playbook, a.expected.progress.tier_decision.tier)
        for a in fleet
        if a.timer
    )
    await asyncio.sleep(max(0.0, (last_due - datetime.now(UTC)).total_seconds() + 5))
    await settle(stack, [a.id for a in fleet], within=600)
    return traffic


def login_due_days(playbook: Playbook, tier: Tier) -> timedelta:
    login = playbook.milestone(playbook.login_milestone)
    assert login is not None
    return login.due_days[tier] * DAY
