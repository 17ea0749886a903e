"""The Temporal servers the tests run: where their binaries are, the service's worker for
a test's own dev server, and a client of no server (Temporal down) for what must work
without one."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import Settings
from activities.converter import CONVERTER
from starter.devserver import TEST_SERVER_STARTUP, free_port, register_search_attributes
from worker import build_worker
from workflows import search_attributes as sa

# The venv's bin: `temporal` (dev server) and `temporal-test-server` (time-skipping).
BIN = Path(sys.executable).parent
# "<weekday> <HH:MM>" (UTC), e.g. "fri 17:30": each time-skipping test server's clock is
# first moved on to the next such moment, so that a workflow test can be run as if on
# that day and hour (a test must pass on any day it runs; business hours and weekends
# move deadlines).
TEST_START = "ONBOARDING_TEST_START"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


async def time_skipping(converter: DataConverter) -> WorkflowEnvironment:
    """A time-skipping test server of the venv's (never downloaded), reached through
    `converter`, with the service's search attributes registered."""
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
        test_server_startup_timeout=TEST_SERVER_STARTUP,
    )
    await register_search_attributes(environment.client)
    return environment


async def dev_server(converter: DataConverter = CONVERTER) -> WorkflowEnvironment:
    """A real dev server of the venv's (never downloaded), in memory, on a free port,
    reached through `converter`, with the service's search attributes. Given as long to
    start as the test server: the SDK's default of 5 s was too short on 2 busy cores."""
    return await WorkflowEnvironment.start_local(
        data_converter=converter,
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_startup_timeout=TEST_SERVER_STARTUP,
        search_attributes=list(sa.ALL),
        dev_server_log_level="error",
        port=free_port(),
    )


def start_moment(now: datetime, when: str) -> datetime:
    """The first moment after `now` that is `when` ("<weekday> <HH:MM>", UTC).

    Raises ValueError naming the expected form for anything else."""
    day, _, clock = when.strip().lower().partition(" ")
    try:
        weekday = WEEKDAYS.index(day[:3])
        hour, minute = (int(x) for x in clock.split(":"))
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise ValueError(
            f"{TEST_START}={when!r}: expected '<weekday> <HH:MM>', e.g. 'fri 17:30'"
        ) from None
    at += timedelta(days=(weekday - now.weekday()) % 7)
    return at if at > now else at + timedelta(days=7)


def log_worker(client: Client) -> Worker:
    """The service's worker on the `onboarding` task queue, notifying through the `log`
    channel; a workflow bug fails the test at once, and it stops within 2 s."""
    return build_worker(
        client,
        Settings(notify_channels=["log"]),
        workflow_failure_exception_types=[Exception],
        graceful_shutdown_timeout=timedelta(seconds=2),
    )


def process_env(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a service process a test starts: this one's, without its
    TEMPORAL_* and ONBOARDING_* settings (so no developer's profile or variable leaks in),
    with a Temporal config file that does not exist, a records store in `folder` (never the
    checkout's .data), and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "ONBOARDING_"))}
    return env | {
        "TEMPORAL_CONFIG_FILE": str(folder / "no-such-temporal.toml"),
        "ONBOARDING_RECORDS_URL": f"sqlite:///{folder / 'records.db'}",
        **settings,
    }


async def unreachable_client() -> Client:
    """A client of a port nothing listens on (lazy: it connects on its first call, which
    fails): an app given it starts, and any request that asks Temporal fails."""
    return await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=CONVERTER)
