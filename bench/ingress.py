"""What the HTTP ingress costs and saves, against a real dev server, worker and uvicorn.

    .venv/bin/python bench/ingress.py            # or: make bench   (--quick: a smaller run)

1. Webhook -> onboarding started: signed `/webhooks/deals` posts to the ingress vs the
   bare SDK's `start_workflow`, same concurrency, same server. Goals: ingress throughput
   >= 0.9 x bare (`start_ratio`), ingress p99 <= 1.2 x bare (`p99_ratio`).
2. Product events: Segment batches of 100 calls to `/events` vs one `product_events`
   signal per event. Goal: ingress events/s >= 10 x naive (`event_ratio`).
3. History: one onboarding fed 10,000 raw events through the ingress. Goal: its history
   (latest run) holds <= 2,000 events (`history_events`).

Everything runs on its own free ports with a throwaway SQLite file and is stopped at the
end. The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import temporalio.client
from temporalio.common import WorkflowIDConflictPolicy

from activities.client import connect
from starter.devserver import DevServer, free_port, start_dev_server
from starter.signatures import SEGMENT_SIGNATURE, sign_segment, standard_webhook_headers
from workflows import contract
from workflows.contract import TASK_QUEUE, WORKFLOW_TYPE
from workflows.models import (
    ClosedWonDeal,
    OnboardingInput,
    Playbook,
    ProductEvent,
    ProductEventBatch,
    workflow_id_for,
)
from workflows.playbook import load_playbook

ROOT = Path(__file__).resolve().parents[1]
# Events the default playbook's milestones are completed by, and everyday noise.
RELEVANT = (
    "user_logged_in",
    "setup_completed",
    "data_import_validated",
    "core_workflow_completed",
    "user_invited",
)
NOISE = ("page_viewed", "feature_used", "button_clicked", "report_exported", "search_run")
SEGMENT_BATCH = 100
PATHS = ("bare", "ingress")


class BenchError(RuntimeError):
    """The stack did not come up, or a request was refused: the run is not valid."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    deals: int
    rounds: int
    concurrency: int
    events: int
    accounts: int
    history_events: int
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--deals", type=int, help="deals per round and path (300; quick 100)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per path (3; quick 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--events", type=int, help="product events per path (5000; quick 1000)")
    parser.add_argument("--accounts", type=int, help="accounts the events go to (10; quick 5)")
    parser.add_argument(
        "--history-events", type=int, help="raw events into one onboarding (10000; quick 2000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the event mix")
    args = parser.parse_args(argv)

    def pick(value: int | None, full: int, quick: int) -> int:
        return value if value is not None else (quick if args.quick else full)

    return Options(
        deals=pick(args.deals, 300, 100),
        rounds=pick(args.rounds, 3, 2),
        concurrency=args.concurrency,
        events=pick(args.events, 5000, 1000),
        accounts=pick(args.accounts, 10, 5),
        history_events=pick(args.history_events, 10_000, 2000),
        seed=args.seed,
    )


# --------------------------------------------------------------------------- the stack


class Sender:
    """A lean HTTP/1.1 keep-alive client, one connection per request in flight.

    httpx spends about 2.5 ms of CPU per request, as much as the ingress itself: on 2
    cores shared with the server, the worker and the ingress, that would be charged to
    the ingress, while a real sender (the CRM, Segment) runs on its own machines.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] = {}
    ) -> tuple[int, bytes]:
        """(status, body); answers have a Content-Length (uvicorn's JSON responses do)."""
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write("\r\n".join([*lines, "", ""]).encode() + body)
        status_line = await reader.readline()
        if not status_line:
            raise BenchError(f"{method} {path}: the ingress closed the connection unanswered")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return int(status_line.split()[1]), answer

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The JSON answer; anything but 2xx stops the run with the ingress's own words."""
        status, answer = await self.request(
            "POST", path, body, {"content-type": "application/json", **headers}
        )
        if not 200 <= status < 300:
            raise BenchError(f"POST {path} answered {status}: {answer.decode(errors='replace')}")
        result: dict[str, Any] = json.loads(answer)
        return result

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


@dataclass
class Stack:
    server: DevServer
    client: temporalio.client.Client
    http: Sender
    playbook: Playbook
    webhook_secret: str
    segment_secret: str


@contextmanager
def _running(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with its output in `log`, stopped (SIGTERM, then SIGKILL) at the end."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _tail(log: Path, lines: int = 10) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:])


async def _until_ready(
    http: Sender, process: subprocess.Popen[bytes], log: Path, within: float = 30
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the ingress exited with code {process.returncode}:\n{_tail(log)}")
        try:
            if (await http.request("GET", "/readyz"))[0] == 200:
                return
        except OSError:  # not listening yet
            pass
        await asyncio.sleep(0.2)
    raise BenchError(f"the ingress was not ready after {within:g} s:\n{_tail(log)}")


def _memory_dir() -> str | None:
    """tmpfs for the server's SQLite file: on disk its fsyncs make the server so slow
    (about a third of the starts/s here) that they would hide what the ingress costs."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


@asynccontextmanager
async def stack(options: Options) -> AsyncIterator[Stack]:
    """Dev server, `python worker.py` and a uvicorn ingress, each its own process.

    CPU headroom: on a 2-core machine the server, the worker, the ingress and this driver
    share two cores. The ingress is a separate process (its own interpreter and GIL, one
    event loop, as one production replica), so it never waits on the driver's GIL; but
    the ingress path costs an HTTP hop in both processes that the bare path does not, so
    on 2 cores `start_ratio` is a lower bound of what an ingress on its own host gets.
    """
    with tempfile.TemporaryDirectory(prefix="bench-ingress-", dir=_memory_dir()) as tmp_dir:
        tmp = Path(tmp_dir)
        server = await start_dev_server(
            port=free_port(), ui_port=free_port(), db_path=tmp / "temporal.db", headless=True
        )
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        segment_secret = secrets.token_hex(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")} | {
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": server.namespace,
            # Keep a developer's ~/.config/temporalio profile out of the run.
            "TEMPORAL_CONFIG_FILE": str(tmp / "no-such-temporal.toml"),
            "ONBOARDING_NOTIFY_CHANNELS": "log",
            "ONBOARDING_WEBHOOK_SECRETS": webhook_secret,
            "ONBOARDING_SEGMENT_SECRETS": segment_secret,
        }
        port = free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "starter.app:create_app"]
        uvicorn += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        # Connections stay open across the pauses while the worker catches up.
        uvicorn += ["--timeout-keep-alive", "600"]
        try:
            with (
                _running([sys.executable, "worker.py"], env, tmp / "worker.log"),
                _running(uvicorn, env, tmp / "ingress.log") as ingress,
            ):
                http = Sender(port)
                try:
                    await _until_ready(http, ingress, tmp / "ingress.log")
                    yield Stack(
                        server=server,
                        client=await connect(address=server.address),
                        http=http,
                        playbook=load_playbook(),
                        webhook_secret=webhook_secret,
                        segment_secret=segment_secret,
                    )
                finally:
                    http.close()
        finally:
            await server.stop()


# --------------------------------------------------------------------------- measuring


@dataclass
class Round:
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


async def timed(calls: Sequence[Callable[[], Awaitable[object]]], concurrency: int) -> Round:
    """Run `calls` with at most `concurrency` in flight; the wall time and each latency."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return Round(seconds=time.perf_counter() - started, latencies=latencies)


async def _idle(stack: Stack, account_id: str) -> bool:
    raw = (
        await stack.client.get_workflow_handle(workflow_id_for(account_id)).describe()
    ).raw_description
    return not raw.HasField("pending_workflow_task") and not raw.pending_activities


async def settle(stack: Stack, account_ids: Sequence[str], within: float = 120) -> None:
    """Until the worker has caught up with these onboardings (none has a task pending),
    so that the next measurement starts from rest. The worker takes them about in order,
    so the newest are checked first, a few at a time."""
    deadline = time.monotonic() + within
    waiting = list(account_ids)
    while waiting:
        if all(await asyncio.gather(*(_idle(stack, a) for a in waiting[-16:]))):
            del waiting[-16:]
        elif time.monotonic() > deadline:
            raise BenchError(f"the worker did not catch up within {within:g} s")
        else:
            await asyncio.sleep(0.3)


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
        calls.append(
            {
                "type": "track",
                "messageId": f"{tag}-{i}",
                "event": rng.choice(RELEVANT if rng.random() < 0.1 else NOISE),
                "groupId": account,
                "userId": f"{account}-user-{rng.randrange(25)}",
                "timestamp": now,
                "properties": {"path": "/app", "plan": "enterprise"},
            }
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
    body = json.dumps({"batch": list(calls), "sentAt": datetime.now(UTC).isoformat()}).encode()
    headers = {SEGMENT_SIGNATURE: sign_segment(stack.segment_secret, body)}

    async def post() -> None:
        answers.append(await stack.http.post("/events", body, headers))

    return post


async def post_events(
    stack: Stack, calls: Sequence[dict[str, Any]], concurrency: int
) -> tuple[Round, int]:
    """The calls to `/events` in batches of 100: the round and the signals sent."""
    answers: list[dict[str, Any]] = []
    posts = [
        _segment_batch(stack, calls[i : i + SEGMENT_BATCH], answers)
        for i in range(0, len(calls), SEGMENT_BATCH)
    ]
    sent = await timed(posts, concurrency)
    rejected = sum(a["rejected"] for a in answers)
    if rejected:
        raise BenchError(f"/events rejected {rejected} of the benchmark's events")
    return sent, sum(a["signals"] for a in answers)


@dataclass
class Events:
    naive: Round
    ingress: Round
    ingress_signals: int
    count: int

    def per_second(self, sent: Round) -> float:
        return self.count / sent.seconds


async def _running_accounts(stack: Stack, path: str, options: Options) -> list[str]:
    accounts = [f"events-{path}-{i}" for i in range(options.accounts)]
    await start_bare(stack, accounts)
    await settle(stack, accounts)
    return accounts


async def measure_events(stack: Stack, options: Options) -> Events:
    """The same event mix, each path to its own fresh running onboardings."""
    rng = random.Random(options.seed)
    accounts = await _running_accounts(stack, "naive", options)
    calls = segment_calls(rng, accounts, options.events, "naive-event")
    naive = await timed([_naive_signal(stack, c) for c in calls], options.concurrency)
    await settle(stack, accounts)

    accounts = await _running_accounts(stack, "ingress", options)
    calls = segment_calls(rng, accounts, options.events, "ingress-event")
    ingress, signals = await post_events(stack, calls, options.concurrency)
    await settle(stack, accounts)
    return Events(naive=naive, ingress=ingress, ingress_signals=signals, count=options.events)


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


# --------------------------------------------------------------------------- report


def figures(options: Options, starts: Starts, events: Events, history: History) -> dict[str, Any]:
    """The median round of each start figure, and the rest as measured."""
    bare_rate = statistics.median([r.per_second for r in starts["bare"]])
    ingress_rate = statistics.median([r.per_second for r in starts["ingress"]])
    bare_p99 = statistics.median([r.percentile_ms(99) for r in starts["bare"]])
    ingress_p99 = statistics.median([r.percentile_ms(99) for r in starts["ingress"]])
    p50_ms = {
        path: statistics.median([r.percentile_ms(50) for r in rounds])
        for path, rounds in starts.items()
    }
    naive_rate = events.per_second(events.naive)
    ingress_events_rate = events.per_second(events.ingress)
    return {
        "start_ratio": round(ingress_rate / bare_rate, 3),
        "p99_ratio": round(ingress_p99 / bare_p99, 3),
        "event_ratio": round(ingress_events_rate / naive_rate, 2),
        "history_events": history.latest_run,
        "bare_starts_per_s": round(bare_rate, 1),
        "ingress_starts_per_s": round(ingress_rate, 1),
        "bare_p50_ms": round(p50_ms["bare"], 1),
        "ingress_p50_ms": round(p50_ms["ingress"], 1),
        "bare_p99_ms": round(bare_p99, 1),
        "ingress_p99_ms": round(ingress_p99, 1),
        "naive_events_per_s": round(naive_rate, 1),
        "ingress_events_per_s": round(ingress_events_rate, 1),
        "naive_signals": events.count,
        "ingress_signals": events.ingress_signals,
        "history_raw_events": options.history_events,
        "history_signals": history.signals,
        "history_runs": history.runs,
        "history_events_all_runs": history.all_runs,
        "deals_per_round": options.deals,
        "rounds": options.rounds,
        "concurrency": options.concurrency,
        "events": options.events,
        "accounts": options.accounts,
    }


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(f: dict[str, Any]) -> str:
    runs = f["history_runs"]
    continued = f" (continued-as-new {runs - 1}x)" if runs > 1 else ""
    rows = [
        ("webhook -> started, bare SDK", f"{f['bare_starts_per_s']} starts/s", "", ""),
        ("webhook -> started, ingress", f"{f['ingress_starts_per_s']} starts/s", "", ""),
        ("start_ratio", f"{f['start_ratio']}", ">= 0.9", _mark(f["start_ratio"] >= 0.9)),
        ("start p50 bare / ingress", f"{f['bare_p50_ms']} / {f['ingress_p50_ms']} ms", "", ""),
        ("start p99 bare / ingress", f"{f['bare_p99_ms']} / {f['ingress_p99_ms']} ms", "", ""),
        ("p99_ratio", f"{f['p99_ratio']}", "<= 1.2", _mark(f["p99_ratio"] <= 1.2)),
        ("events, naive (1 signal each)", f"{f['naive_events_per_s']} events/s", "", ""),
        ("events, ingress (batches of 100)", f"{f['ingress_events_per_s']} events/s", "", ""),
        ("signals naive / ingress", f"{f['naive_signals']} / {f['ingress_signals']}", "", ""),
        ("event_ratio", f"{f['event_ratio']}", ">= 10", _mark(f["event_ratio"] >= 10)),
        (
            f"history_events (latest run{continued})",
            f"{f['history_events']}",
            "<= 2000",
            _mark(f["history_events"] <= 2000),
        ),
        (
            "  raw events / signals / all runs",
            f"{f['history_raw_events']} / {f['history_signals']} / {f['history_events_all_runs']}",
            "",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':<24}{'goal':<9}"]
    lines += [f"{name:<{width}}  {value:<24}{goal:<9}{mark}" for name, value, goal, mark in rows]
    return "\n".join(lines)


async def run(options: Options) -> dict[str, Any]:
    async with stack(options) as s:
        print(f"stack up: Temporal {s.server.address}, ingress 127.0.0.1:{s.http.port}", flush=True)
        starts = await measure_starts(s, options)
        print("starts measured", flush=True)
        events = await measure_events(s, options)
        print("events measured", flush=True)
        history = await measure_history(s, options)
    return figures(options, starts, events, history)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    print(
        f"ingress benchmark: {options.deals} deals x {options.rounds} rounds per path, "
        f"concurrency {options.concurrency}; {options.events} events to {options.accounts} "
        f"accounts; {options.history_events} events into one onboarding",
        flush=True,
    )
    result = asyncio.run(run(options))
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
