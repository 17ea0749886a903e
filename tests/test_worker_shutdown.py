"""`python worker.py` stops cleanly on SIGTERM (a deploy, a scale-down): it lets in-flight
work finish, says so in its structured log, and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.support.temporal import process_env

ROOT = Path(__file__).resolve().parents[1]


async def test_sigterm_stops_the_worker_cleanly(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = process_env(
        tmp_path,
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        ONBOARDING_NOTIFY_CHANNELS="log",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "worker.py"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[dict[str, object]] = []
    try:
        while not any(line.get("event") == "worker started" for line in lines):
            raw = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert raw, "the worker exited before it started"
            if raw.startswith(b"{"):
                lines.append(json.loads(raw))
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0
    events = [json.loads(raw)["event"] for raw in out.splitlines() if raw.startswith(b"{")]
    assert events[-2:] == ["worker stopping", "worker stopped"]
