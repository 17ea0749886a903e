"""What both benchmarks stand on: the stack they run against, and how they send and time.

`stack` brings up a throwaway dev server (SQLite on /dev/shm), a worker and a uvicorn
ingress, each its own process, and stops them at the end; `Sender` is the lean HTTP
client that talks to the ingress; `timed` runs requests with a bound on those in flight
and `settle` waits for the worker to catch up. Used by `bench/ingress.py` and
`bench/soak.py` (run as scripts, which puts bench/ first on sys.path).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import temporalio.client

from activities.client import connect
from starter.devserver import DevServer, free_port, start_dev_server
from starter.signatures import SEGMENT_SIGNATURE, sign_segment
from workflows.models import ClosedWonDeal, Playbook, workflow_id_for
from workflows.playbook import load_playbook

ROOT = Path(__file__).resolve().parents[1]
# Everyday product events no milestone waits for.
NOISE = ("page_viewed", "feature_used", "button_clicked", "report_exported", "search_run")
SEGMENT_BATCH = 100
W = TypeVar("W")


class BenchError(RuntimeError):
    """The stack did not come up, or a request was refused: the run is not valid."""


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

    async def post_json(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """(status, body) of a POST of a JSON body."""
        return await self.request(
            "POST", path, body, {"content-type": "application/json", **headers}
        )

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The JSON answer; anything but 2xx stops the run (see `answered`)."""
        result: dict[str, Any] = answered(path, *await self.post_json(path, body, headers))
        return result

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def answered(path: str, status: int, answer: bytes) -> Any:
    """The JSON answer of a POST; anything but 2xx stops the run with the ingress's own words."""
    if not 200 <= status < 300:
        raise BenchError(f"POST {path} answered {status}: {answer.decode(errors='replace')}")
    return json.loads(answer)


def track_call(
    message_id: str, event: str, account: str, user: int, timestamp: str, **properties: str
) -> dict[str, Any]:
    """A Segment track call of `account`'s user number `user`."""
    return {
        "type": "track",
        "messageId": message_id,
        "event": event,
        "groupId": account,
        "userId": f"{account}-user-{user}",
        "timestamp": timestamp,
        "properties": properties,
    }


def segment_batch(secret: str, calls: Sequence[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """A Segment batch body sent now, and its signature header."""
    body = json.dumps({"batch": list(calls), "sentAt": datetime.now(UTC).isoformat()}).encode()
    return body, {SEGMENT_SIGNATURE: sign_segment(secret, body)}


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    server: DevServer
    client: temporalio.client.Client
    http: Sender
    playbook: Playbook
    webhook_secret: str
    segment_secret: str
    sent_log: Path | None  # the notifier's sent log (ONBOARDING_SENT_LOG), when asked for
    records_url: str  # the worker's records store (ONBOARDING_RECORDS_URL)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child process run from the repository root, its output in `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )


@contextmanager
def running(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with its output in `log`, stopped (SIGTERM, then SIGKILL) at the end."""
    process = spawn(cmd, env, log)
    try:
        yield process
    finally:
        stop(process)


def worker(env: dict[str, str], log_dir: Path) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """`python worker.py`, running until the end."""
    return running([sys.executable, "worker.py"], env, log_dir / "worker.log")


def tail(log: Path, lines: int = 10) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.strip().splitlines()[-lines:])


async def until_ready(
    http: Sender, process: subprocess.Popen[bytes], log: Path, within: float = 30
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the ingress exited with code {process.returncode}:\n{tail(log)}")
        try:
            if (await http.request("GET", "/readyz"))[0] == 200:
                return
        except OSError:  # not listening yet
            pass
        await asyncio.sleep(0.2)
    raise BenchError(f"the ingress was not ready after {within:g} s:\n{tail(log)}")


def memory_dir() -> str | None:
    """tmpfs for the server's SQLite file: on disk its fsyncs make the server so slow
    (about a third of the starts/s here) that they would hide what the ingress costs."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


@asynccontextmanager
async def stack(
    prefix: str,
    workers: Callable[[dict[str, str], Path], AbstractContextManager[W]],
    sent_log: bool = False,
) -> AsyncIterator[tuple[Stack, W]]:
    """Dev server, the worker(s) `workers(env, log_dir)` runs, and a uvicorn ingress, each
    its own process, in a temporary folder named `prefix...`; the stack and what
    `workers` gave.

    CPU headroom: on a 2-core machine the server, the worker, the ingress and this driver
    share two cores. The ingress is a separate process (its own interpreter and GIL, one
    event loop, as one production replica), so it never waits on the driver's GIL; but
    the ingress path costs an HTTP hop in both processes that the bare path does not, so
    on 2 cores `start_ratio` is a lower bound of what an ingress on its own host gets.
    """
    with tempfile.TemporaryDirectory(prefix=prefix, dir=memory_dir()) as tmp_dir:
        tmp = Path(tmp_dir)
        server = await start_dev_server(
            port=free_port(), ui_port=free_port(), db_path=tmp / "temporal.db", headless=True
        )
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        segment_secret = secrets.token_hex(16)
        sent_log_path = tmp / "sent.jsonl" if sent_log else None
        records_url = f"sqlite:///{tmp / 'records.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")} | {
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": server.namespace,
            # Keep a developer's ~/.config/temporalio profile out of the run.
            "TEMPORAL_CONFIG_FILE": str(tmp / "no-such-temporal.toml"),
            "ONBOARDING_NOTIFY_CHANNELS": "log",
            "ONBOARDING_WEBHOOK_SECRETS": webhook_secret,
            "ONBOARDING_SEGMENT_SECRETS": segment_secret,
            # Its own records store, beside the server's database (not `make run`'s).
            "ONBOARDING_RECORDS_URL": records_url,
        }
        if sent_log_path is not None:
            env["ONBOARDING_SENT_LOG"] = str(sent_log_path)
        port = free_port()
        uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "starter.app:create_app"]
        uvicorn += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        # Connections stay open across the pauses while the worker catches up.
        uvicorn += ["--timeout-keep-alive", "600"]
        try:
            with (
                workers(env, tmp) as started,
                running(uvicorn, env, tmp / "ingress.log") as ingress,
            ):
                http = Sender(port)
                try:
                    await until_ready(http, ingress, tmp / "ingress.log")
                    yield (
                        Stack(
                            server=server,
                            client=await connect(address=server.address, records_url=records_url),
                            http=http,
                            playbook=load_playbook(),
                            webhook_secret=webhook_secret,
                            segment_secret=segment_secret,
                            sent_log=sent_log_path,
                            records_url=records_url,
                        ),
                        started,
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


async def _idle(client: temporalio.client.Client, workflow_id: str) -> bool:
    raw = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    return not raw.HasField("pending_workflow_task") and not raw.pending_activities


async def settle(stack: Stack, account_ids: Sequence[str], within: float = 120) -> None:
    """Until the worker has caught up with these onboardings (none has a task pending),
    so that the next measurement starts from rest."""
    await settle_workflows(stack.client, [workflow_id_for(a) for a in account_ids], within)


async def settle_workflows(
    client: temporalio.client.Client, workflow_ids: Sequence[str], within: float = 120
) -> None:
    """Until no workflow of `workflow_ids` has a workflow task or an activity pending. The
    worker takes them about in order, so the newest are checked first, a few at a time."""
    deadline = time.monotonic() + within
    waiting = list(workflow_ids)
    while waiting:
        if all(await asyncio.gather(*(_idle(client, w) for w in waiting[-16:]))):
            del waiting[-16:]
        elif time.monotonic() > deadline:
            raise BenchError(f"the worker did not catch up within {within:g} s")
        else:
            await asyncio.sleep(0.3)


# A third of each tier: high-touch, tech-touch, self-serve (the default playbook's rule).
TIERS = ({"acv_usd": 80_000, "stakeholder_count": 4}, {"acv_usd": 20_000}, {"acv_usd": 2_000})


def deal(index: int, closed: Any) -> ClosedWonDeal:
    return ClosedWonDeal.model_validate(
        {
            "account_id": f"bench-{index:04d}",
            "account_name": f"Bench {index}",
            "close_date": closed,
            "contacts": [
                {"name": "Cara Champion", "email": "cara@bench.test", "role": "champion"},
                {"name": "Sam Sponsor", "email": "sam@bench.test", "role": "executive_sponsor"},
            ],
            "success_criteria": ["10 invoices processed weekly"],
        }
        | TIERS[index % 3]
    )
