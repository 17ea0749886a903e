"""The onboarding worker: runs `AccountOnboarding` (and the HubSpot intake) workflows
and their activities.

    python worker.py            # config from TEMPORAL_* and ONBOARDING_* variables

`onboarding up` runs the same worker in-process next to a local dev server.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

import structlog
import temporalio.client
from pydantic import ValidationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities import Settings, activities_for, configure_logging
from activities.client import ConnectError, connect
from activities.money import FxRatesError
from activities.records.store import RecordStore, RecordStoreError
from activities.roster import RosterError, load_roster, roster_summary
from activities.settings import settings_problems
from workflows.contract import TASK_QUEUE
from workflows.intake import HubSpotChampionIntake, HubSpotDealIntake, HubSpotDealLostIntake
from workflows.onboarding import AccountOnboarding

log = structlog.get_logger("worker")

# In-flight activities (an email being sent) get this long to finish on shutdown.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)
WORKFLOWS = (AccountOnboarding, HubSpotDealIntake, HubSpotDealLostIntake, HubSpotChampionIntake)


def compile_workflow_modules() -> None:
    """Write the bytecode of the workflow classes' modules where it is missing or stale.

    The sandbox loads a workflow's module afresh for every workflow it creates (a new
    onboarding, or one coming back into the cache after a restart). With no bytecode on
    disk (PYTHONDONTWRITEBYTECODE=1, as many container images set) every load compiles the
    source again: about half of the 11 ms of worker CPU a new onboarding's sandbox costs.
    A read-only install still works, only slower (logged).
    """
    for path in sorted({sys.modules[w.__module__].__file__ or "" for w in WORKFLOWS}):
        if path and not compileall.compile_file(path, quiet=2):
            log.warning("workflow module not compiled; each new workflow compiles it", path=path)


def workflow_runner(sandboxed: bool) -> WorkflowRunner:
    """The SDK's sandbox when `sandboxed` (`ONBOARDING_WORKFLOW_SANDBOX`), else none.

    The sandbox guards determinism at run time: it imports the workflow's modules afresh
    for every onboarding it loads and refuses I/O, the clock and randomness there. That
    copy is most of what a cached onboarding costs the worker (memory) and what a new
    one costs (CPU): about 2x each (README, *Worker cost*). The guard stays where code
    changes: the test suite runs every workflow sandboxed (tests/conftest.py), and the
    replay tests replay every recorded history sandboxed; `lint-imports` keeps I/O
    modules out of `workflows`.
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    compile_workflow_modules()
    return SandboxedWorkflowRunner()


def build_worker(
    client: temporalio.client.Client,
    settings: Settings,
    *,
    task_queue: str = TASK_QUEUE,
    workflow_failure_exception_types: Sequence[type[BaseException]] = (),
    graceful_shutdown_timeout: timedelta = GRACEFUL_SHUTDOWN,
) -> Worker:
    """The worker for the `onboarding` task queue, sandboxed as `settings` says.

    In production a bug in workflow code fails only the workflow *task*, which retries
    until a fixed worker is deployed. Tests pass `workflow_failure_exception_types=
    [Exception]` so such a bug fails the workflow at once instead of hanging the test.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(settings),
        workflow_runner=workflow_runner(settings.workflow_sandbox),
        workflow_failure_exception_types=list(workflow_failure_exception_types),
        graceful_shutdown_timeout=graceful_shutdown_timeout,
    )


def stop_on_signals(stop: asyncio.Event) -> None:
    """Set `stop` on SIGINT / SIGTERM (where the event loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_worker(
    client: temporalio.client.Client | None = None,
    settings: Settings | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Poll until `stop` is set (default: SIGINT / SIGTERM), then shut down cleanly."""
    settings = settings or Settings()
    # The roster (rules §7) before anything starts: a broken file stops the worker,
    # naming the person and the field, instead of failing each onboarding's assignment.
    roster = await asyncio.to_thread(load_roster, settings)
    client = client or await connect()
    if stop is None:
        stop = asyncio.Event()
        stop_on_signals(stop)
    # Open (and migrate) the records store now: a wrong ONBOARDING_RECORDS_URL stops the
    # worker at start instead of failing every onboarding's first write.
    store = await asyncio.to_thread(RecordStore.open, settings.records_url)
    store.close()
    worker = build_worker(client, settings)
    async with worker:
        log.info(
            "worker started",
            task_queue=TASK_QUEUE,
            namespace=client.namespace,
            channels=settings.notify_channels,
            records=store.where,
            roster=roster_summary(roster, settings),
            sandbox=settings.workflow_sandbox,
        )
        await stop.wait()
        log.info("worker stopping", graceful_timeout_s=GRACEFUL_SHUTDOWN.total_seconds())
    log.info("worker stopped")


def main() -> None:
    configure_logging()
    code = 0
    try:
        asyncio.run(run_worker())
    except (ConnectError, FxRatesError, RecordStoreError, RosterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except ValidationError as exc:
        print(f"error: {settings_problems(exc)}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the SDK's Rust runtime can abort it with
    # "PyGILState_Release ... finalizing" (temporalio/sdk-python#300) after a clean stop.
    os._exit(code)


if __name__ == "__main__":
    main()
