"""The soak's supervision: the worker process it SIGKILLs and restarts mid-run (`Workers`,
`Chaos`), and the stack it does so on (`soak_stack`)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from common import BenchError, Stack, spawn, stack, stop, tail


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Workers:
    """`python worker.py`, one at a time: killed with SIGKILL and restarted on demand."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        # A team big enough for the fleet (40 CSMs: about 8 high-touch and 17 low-touch
        # accounts each): no one is full, so no over-capacity alert depends on the order
        # the worker took the starts in (rules §7 has its own tests).
        team = ",".join(f"csm-{i}@soak.test" for i in range(40))
        self.env, self.log_dir = env | {"ONBOARDING_CSM_ROSTER": team}, log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0
        self.kills = 0
        self.peaks_kb: list[int] = []  # of each process that has stopped

    def log(self) -> Path:
        return self.log_dir / f"worker-{self.started}.log"

    def start(self) -> None:
        self.started += 1
        self.process = spawn([sys.executable, "worker.py"], self.env, self.log())

    def alive(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            raise BenchError(f"the worker exited by itself (code {code}):\n{tail(self.log())}")
        return self.process

    def kill_and_restart(self) -> None:
        process = self.alive()
        self.peaks_kb.append(peak_rss_kb(process.pid))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills += 1
        self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.peaks_kb.append(peak_rss_kb(self.process.pid))
        stop(self.process)

    def __enter__(self) -> Workers:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Soak:
    stack: Stack
    workers: Workers
    sent_log: Path


@asynccontextmanager
async def soak_stack() -> AsyncIterator[Soak]:
    """Dev server, a killable `python worker.py` and a uvicorn ingress; the notifier
    writes its sent log."""
    async with stack("bench-soak-", Workers, sent_log=True) as (s, workers):
        assert s.sent_log is not None
        yield Soak(s, workers, s.sent_log)


class Chaos:
    """Kills the worker at evenly spaced points of the run's requests."""

    def __init__(self, workers: Workers, requests: int, kills: int) -> None:
        self.workers = workers
        self.requests = requests
        self.points = [requests * (k + 1) // (kills + 1) for k in range(kills)]
        self.done = 0

    def tick(self) -> None:
        self.done += 1
        self.workers.alive()
        while self.points and self.done >= self.points[0]:
            self.points.pop(0)
            self.workers.kill_and_restart()
            print(
                f"  worker killed (SIGKILL) after {self.done} of {self.requests} requests; "
                "restarted",
                flush=True,
            )

    def counted(self, call: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await call()
            self.tick()

        return run
