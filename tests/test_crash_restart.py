"""Crashes on the REAL dev server: a worker killed with SIGKILL, and the server itself
restarted on its SQLite file, in the middle of a run of onboardings.

Each onboarding is a self-serve deal closed almost 3 days ago, so its first-login
deadline (and the `no_login` step of the ladder, day 3) falls a few seconds into the
test: real timers are armed when the crash comes, some come due while nothing runs, some
after. Afterwards every onboarding must be where the rules put it: each reported
milestone reached, each escalation fired exactly once (and none that should not), each
notification delivered exactly once per channel, and every history must replay against
the workflow code (else the onboarding is stuck on the next worker restart).

The worker is `python worker.py`, as deployed, with two channels: `log` (recorded in
the notifier's sent log) and `slack`, posting to a local webhook that records the
`Idempotency-Key` of every post. The webhook can hold one post unanswered, so the worker
dies *after* delivering to `log` and *before* the activity completes: Temporal retries
it when its 30 s start-to-close timeout ends, and the retry must not send it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import temporalio.client
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.worker import Replayer

from activities.client import connect
from activities.records.store import RecordStore
from activities.starting import deliver_deal
from starter.devserver import DevServer, free_port, start_dev_server
from tests.support.deals import make_deal
from tests.support.temporal import process_env
from workflows.intake import HubSpotDealIntake
from workflows.models import (
    ClosedWonDeal,
    MilestoneReport,
    MilestoneStatus,
    OnboardingStatus,
    Playbook,
    ProductEvent,
    ProductEventBatch,
)
from workflows.onboarding import AccountOnboarding
from workflows.playbook import load_playbook

ROOT = Path(__file__).resolve().parents[1]
DAY = timedelta(days=1)
LOGIN_DAYS = 3  # self-serve: first_login due on day 3, `no_login_email` on day 3
# Both fire when the login deadline passes without a login (playbooks/default.toml).
LOGIN_STEPS = ["no_login_email", "overdue_nudge"]
LOGIN_TRIGGERS = {"self_serve.no_login_email", "self_serve.overdue_nudge:first_login#r0"}
# The timeline, in seconds after the onboardings are delivered: their welcomes sent (so
# their timers are armed) and the crash done before CRASH_BEFORE, even on a busy machine;
# the `duedown` deadlines pass while nothing runs; the `later` ones once all runs again.
CRASH_BEFORE = 9.0
DOWN_UNTIL = CRASH_BEFORE + 3.0
LATER = DOWN_UNTIL + 4.0
# A notify attempt that dies with its worker is retried after its 30 s start-to-close
# timeout and a 2 s backoff; everything else settles well within that.
SETTLE_WITHIN = 60.0


# --------------------------------------------------------------------------- the sinks


class SlackWebhook:
    """A local Slack incoming webhook recording the `Idempotency-Key` of every post.

    The first post with `hold_key` is never answered: `held` is set when it arrives, so
    the test knows the worker is in the middle of that delivery."""

    def __init__(self) -> None:
        self.posts: list[str] = []
        self.hold_key: str | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                hook.posts.append(key)
                if key == hook.hold_key and not hook.held.is_set():
                    hook.held.set()
                    hook.release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the held post's client was killed: nothing to answer

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def sent_log(path: Path) -> list[tuple[str, str]]:
    """(idempotency key, channel) of every delivery the notifier recorded."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(entry["key"], entry["channel"]) for entry in map(json.loads, lines)]


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A dev server on its own SQLite file, a client, and `python worker.py` subprocesses."""

    server: DevServer
    client: temporalio.client.Client
    tmp: Path
    slack: SlackWebhook
    workers: list[asyncio.subprocess.Process] = field(default_factory=list)
    stale_clock_queries: int = 0  # queries refused by StaleClockError (see `look`)

    @property
    def sent_log(self) -> Path:
        return self.tmp / "sent.jsonl"

    @property
    def worker_log(self) -> Path:
        return self.tmp / "worker.log"

    def worker_env(self) -> dict[str, str]:
        return process_env(
            self.tmp,
            TEMPORAL_ADDRESS=self.server.address,
            TEMPORAL_NAMESPACE="default",
            ONBOARDING_NOTIFY_CHANNELS="log,slack",
            ONBOARDING_SLACK_WEBHOOK_URL=self.slack.url,
            ONBOARDING_SENT_LOG=str(self.sent_log),
        )

    async def start_worker(self) -> asyncio.subprocess.Process:
        with self.worker_log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "worker.py"),
                cwd=ROOT,
                env=self.worker_env(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        self.workers.append(process)
        return process

    async def kill_workers(self) -> None:
        for process in self.workers:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
                await process.wait()

    async def start_polling_worker(self) -> asyncio.subprocess.Process:
        """Start a worker and wait for its "worker started" log line."""
        process = await self.start_worker()

        def started() -> int:
            text = self.worker_log.read_text(errors="replace") if self.worker_log.exists() else ""
            return text.count('"event": "worker started"')

        before = started()
        await wait_for(self, lambda: started() > before, "the worker did not start")
        return process

    def worker_log_tail(self, lines: int = 20) -> str:
        text = self.worker_log.read_text(errors="replace") if self.worker_log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    server = await start_dev_server(
        port=free_port(), ui_port=free_port(), db_path=tmp_path / "temporal.db", headless=True
    )
    slack = SlackWebhook()
    try:
        # The workers' records store (`process_env`): the pinned playbook's content is there.
        records = f"sqlite:///{tmp_path / 'records.db'}"
        client = await connect(address=server.address, namespace="default", records_url=records)
        stack = Stack(server=server, client=client, tmp=tmp_path, slack=slack)
        try:
            yield stack
        finally:
            await stack.kill_workers()
            await stack.server.stop()  # the restarted one, when the test restarted it
    finally:
        await server.stop()
        slack.close()


# --------------------------------------------------------------------------- onboardings


@dataclass
class Onboarding:
    """One account and what the rules say must have happened to it by the end."""

    name: str
    deadline: datetime  # when first_login is due and `no_login` comes due
    logs_in: bool = False  # a login is reported before the deadline
    reaches_value: bool = False  # `core_workflow_completed` arrives (first_value)
    account_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.account_id = f"{self.name}-{uuid.uuid4().hex[:6]}"

    @property
    def workflow_id(self) -> str:
        return f"onboarding-{self.account_id}"

    def deal(self) -> ClosedWonDeal:
        # Self-serve (ACV below $5,000, no setup): closed 3 days before the deadline.
        return make_deal(
            self.account_id, acv_usd=2_000, close_date=self.deadline - LOGIN_DAYS * DAY
        )

    @property
    def milestones_done(self) -> set[str]:
        return {
            m
            for m, yes in (("first_login", self.logs_in), ("first_value", self.reaches_value))
            if yes
        }

    @property
    def escalations(self) -> list[str]:
        return [] if self.logs_in else LOGIN_STEPS

    @property
    def notifications(self) -> set[str]:
        """Idempotency keys: `<workflow id>:<trigger>:<audience>`."""
        triggers = {"welcome"}
        if not self.logs_in:
            triggers |= LOGIN_TRIGGERS
        if self.reaches_value:
            triggers.add("reached-first_value")  # the playbook's on_done email (all_set)
        return {f"{self.workflow_id}:{t}:customer" for t in triggers}


def many(name: str, count: int, deadline: datetime, **kwargs: bool) -> list[Onboarding]:
    # Deadlines 0.4 s apart, so timers keep coming due over a couple of seconds.
    return [
        Onboarding(f"{name}{i}", deadline + timedelta(seconds=0.4 * i), **kwargs)
        for i in range(count)
    ]


async def deliver(stack: Stack, playbook: Playbook, onboardings: list[Onboarding]) -> None:
    await asyncio.gather(
        *(deliver_deal(stack.client, o.deal(), playbook, f"it:{o.account_id}") for o in onboardings)
    )


async def report_login(stack: Stack, o: Onboarding) -> None:
    """By hand (`milestone_reached`) for even-numbered accounts, else a product event."""
    handle = stack.client.get_workflow_handle(o.workflow_id)
    if o.name[-1] in "02468":
        report = MilestoneReport(
            milestone_id="first_login", event_id=f"login-{o.account_id}", reported_by="it"
        )
        await handle.signal("milestone_reached", report)
    else:
        event = ProductEvent(event_id=f"login-{o.account_id}", name="user_logged_in")
        await handle.signal("product_events", ProductEventBatch(events=[event]))


async def report_value(stack: Stack, o: Onboarding) -> None:
    event = ProductEvent(event_id=f"value-{o.account_id}", name="core_workflow_completed")
    handle = stack.client.get_workflow_handle(o.workflow_id)
    await handle.signal("product_events", ProductEventBatch(events=[event]))


def timeline() -> tuple[datetime, datetime, datetime]:
    """The `duedown` deadlines, when the crashed part comes back, the `later` deadlines."""
    now = datetime.now(UTC)
    return (
        now + timedelta(seconds=CRASH_BEFORE),
        now + timedelta(seconds=DOWN_UNTIL),
        now + timedelta(seconds=LATER),
    )


async def sleep_until(at: datetime) -> None:
    await asyncio.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))


async def wait_for(stack: Stack, condition: Any, what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {within:g} s\n{stack.worker_log_tail()}")
        await asyncio.sleep(0.1)


def delivered_slack(stack: Stack, keys: set[str]) -> bool:
    return keys <= {key for key, channel in sent_log(stack.sent_log) if channel == "slack"}


# --------------------------------------------------------------------------- settling


async def look(stack: Stack, o: Onboarding) -> tuple[OnboardingStatus, int] | None:
    """The status query and the count of pending activities; None while unanswerable."""
    handle = stack.client.get_workflow_handle(o.workflow_id, result_type=OnboardingStatus)
    try:
        status = await handle.query("status", result_type=OnboardingStatus)
        desc = await handle.describe()
    except RPCError:
        return None  # no worker polling yet, or the server is coming back
    except WorkflowQueryFailedError as exc:
        # Right after the restart a query can meet a task whose clock is stale; the
        # workflow refuses to act on it (StaleClockError) and replays it from history.
        assert "retrying the task" in str(exc), exc
        stack.stale_clock_queries += 1
        return None
    return status, len(desc.raw_description.pending_activities)


def steps(status: OnboardingStatus) -> list[str]:
    return sorted(e.step_id for e in status.escalations)


def done(status: OnboardingStatus) -> set[str]:
    return {m.id for m in status.milestones if m.status is MilestoneStatus.DONE}


async def settle(stack: Stack, onboardings: list[Onboarding]) -> dict[str, OnboardingStatus]:
    """Poll until every onboarding has at least what it should and nothing is pending."""
    deadline = time.monotonic() + SETTLE_WITHIN
    waiting: list[str] = []
    while True:
        looks = await asyncio.gather(*(look(stack, o) for o in onboardings))
        pairs = set(sent_log(stack.sent_log))
        # Delivered means on every channel: a retried activity may still be posting.
        sent = {key for key, _ in pairs if {(key, "log"), (key, "slack")} <= pairs}
        waiting = []
        for o, seen in zip(onboardings, looks, strict=True):
            if seen is None:
                waiting.append(f"{o.name}: no answer")
                continue
            status, pending = seen
            if not (
                set(o.escalations) <= set(steps(status))
                and o.milestones_done <= done(status)
                and o.notifications <= sent
                and pending == 0
            ):
                waiting.append(f"{o.name}: steps {steps(status)}, done {done(status)}, {pending=}")
        if not waiting:
            return {o.name: s[0] for o, s in zip(onboardings, looks, strict=True) if s}
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not settled after {SETTLE_WITHIN:g} s: {waiting}\n{stack.worker_log_tail()}"
            )
        await asyncio.sleep(0.5)


def assert_exactly_as_the_rules_say(
    stack: Stack, onboardings: list[Onboarding], statuses: dict[str, OnboardingStatus]
) -> None:
    for o in onboardings:
        status = statuses[o.name]
        assert steps(status) == sorted(o.escalations), f"{o.name}: {status.escalations}"
        assert not any(e.superseded for e in status.escalations), o.name
        assert done(status) == o.milestones_done, o.name
    expected = set().union(*(o.notifications for o in onboardings))
    deliveries = Counter(sent_log(stack.sent_log))
    twice = [pair for pair, n in deliveries.items() if n > 1]
    assert not twice, f"delivered more than once: {twice}"
    assert set(deliveries) == {(key, ch) for key in expected for ch in ("log", "slack")}
    assert set(stack.slack.posts) == expected


async def assert_records_kept(
    stack: Stack, onboardings: list[Onboarding], statuses: dict[str, OnboardingStatus]
) -> None:
    """Each onboarding's record in the records store shows what its status shows: writes
    lost or retried across the crash never left one behind or moved one backwards."""
    store = RecordStore.open(f"sqlite:///{stack.tmp / 'records.db'}")
    behind: dict[str, str] = {}
    for _ in range(50):
        behind = {}
        for o in onboardings:
            status, record = statuses[o.name], store.get(o.account_id)
            if record is None:
                behind[o.name] = "no record"
            elif (record.state, record.milestones, record.escalations) != (
                status.state,
                status.milestones,
                status.escalations,
            ):
                behind[o.name] = f"record revision {record.revision} shows {record.state}"
        if not behind:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"records behind their onboardings: {behind}")


async def assert_replayable(stack: Stack, onboardings: list[Onboarding]) -> None:
    """Each history replays against the code that wrote it: a worker that restarts (or
    evicts the run from its cache) can carry on with every onboarding."""
    replayer = Replayer(
        workflows=[AccountOnboarding, HubSpotDealIntake], data_converter=stack.client.data_converter
    )
    failures = {}
    for o in onboardings:
        history = await stack.client.get_workflow_handle(o.workflow_id).fetch_history()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            kept = stack.tmp / f"{o.workflow_id}.history.json"  # to replay it again by hand
            kept.write_text(history.to_json())
            failures[o.name] = f"{str(result.replay_failure)[:300]} (history: {kept})"
    assert not failures, f"histories that no longer replay: {failures}"


# --------------------------------------------------------------------------- the tests


async def test_worker_killed_mid_run_loses_and_repeats_nothing(stack: Stack) -> None:
    playbook = load_playbook()
    worker = await stack.start_worker()
    # The first onboarding's welcome is held at Slack, already delivered to `log`.
    held = Onboarding("held", datetime.now(UTC) + timedelta(seconds=CRASH_BEFORE))
    held_key = f"{held.workflow_id}:welcome:customer"
    stack.slack.hold_key = held_key
    await deliver(stack, playbook, [held])
    await wait_for(stack, stack.slack.held.is_set, "worker 1 never sent the first welcome")

    soon, down_until, later = timeline()
    logged_in = many("login", 6, later, logs_in=True)  # reported while worker 1 runs
    login_while_down = many("downlogin", 4, later, logs_in=True)
    due_while_down = many("duedown", 5, soon)
    due_after = many("dueafter", 4, later)
    value_while_down = many("value", 3, later, reaches_value=True)
    rest = logged_in + login_while_down + due_while_down + due_after + value_while_down
    await deliver(stack, playbook, rest)
    await asyncio.gather(*(report_login(stack, o) for o in logged_in))
    # Every other welcome done: their deadline timers are armed when the worker dies.
    welcomes = {f"{o.workflow_id}:welcome:customer" for o in rest}
    await wait_for(stack, lambda: delivered_slack(stack, welcomes), "welcomes not all sent")

    worker.send_signal(signal.SIGKILL)
    assert await worker.wait() == -signal.SIGKILL
    stack.slack.release.set()
    assert datetime.now(UTC) < soon, "worker 1 was too slow: the timers came due before it died"
    await asyncio.gather(
        *(report_login(stack, o) for o in login_while_down),
        *(report_value(stack, o) for o in value_while_down),
    )
    await sleep_until(down_until)  # the `duedown` deadlines pass with no worker
    await stack.start_worker()

    everyone = [held, *rest]
    statuses = await settle(stack, everyone)
    assert_exactly_as_the_rules_say(stack, everyone, statuses)
    await assert_records_kept(stack, everyone, statuses)
    await assert_replayable(stack, everyone)
    # The held welcome: delivered to `log` once, posted to Slack again only by the retry.
    assert Counter(stack.slack.posts)[held_key] == 2
    assert all(n == 1 for key, n in Counter(stack.slack.posts).items() if key != held_key)


async def test_dev_server_restarted_on_its_sqlite_file_keeps_every_onboarding(
    stack: Stack,
) -> None:
    playbook = load_playbook()
    worker = await stack.start_polling_worker()
    soon, down_until, later = timeline()
    logged_in = many("login", 5, later, logs_in=True)  # reported before the restart
    login_after = many("afterlogin", 4, later, logs_in=True)
    due_while_down = many("duedown", 5, soon)
    due_after = many("dueafter", 4, later)
    value_after = many("value", 3, later, reaches_value=True)
    everyone = logged_in + login_after + due_while_down + due_after + value_after
    await deliver(stack, playbook, everyone)
    await asyncio.gather(*(report_login(stack, o) for o in logged_in))
    welcomes = {f"{o.workflow_id}:welcome:customer" for o in everyone}
    await wait_for(stack, lambda: delivered_slack(stack, welcomes), "welcomes not all sent")
    runs = {
        o.name: (await stack.client.get_workflow_handle(o.workflow_id).describe()).run_id
        for o in everyone
    }

    old = stack.server
    await old.stop()
    assert datetime.now(UTC) < soon, "the server stopped after the timers came due"
    await sleep_until(down_until)  # the `duedown` deadlines pass with no server
    stack.server = await start_dev_server(
        port=old.port, ui_port=old.ui_port, db_path=old.db_path, headless=True
    )
    if worker.returncode is not None:
        # A worker whose server went away may give up; a supervisor would start it again.
        await stack.start_worker()
    await asyncio.gather(
        *(report_login(stack, o) for o in login_after),
        *(report_value(stack, o) for o in value_after),
    )
    statuses = await settle(stack, everyone)
    assert_exactly_as_the_rules_say(stack, everyone, statuses)
    await assert_replayable(stack, everyone)
    assert all(n == 1 for n in Counter(stack.slack.posts).values())
    for o in everyone:  # the same runs, picked up from the SQLite file
        assert (await stack.client.get_workflow_handle(o.workflow_id).describe()).run_id == runs[
            o.name
        ]
