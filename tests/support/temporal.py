"""The Temporal servers the tests run: where their binaries are, the service's search
attributes registered on a server that does not take them at start (time-skipping), and
the service's worker for a test's own dev server, and a client of no server (Temporal
down) for what must work without one."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities import Settings
from starter.devserver import free_port
from worker import build_worker
from workflows.search_attributes import CLI_TYPES

# The venv's bin: `temporal` (dev server) and `temporal-test-server` (time-skipping).
BIN = Path(sys.executable).parent
_INDEXED = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: _INDEXED[kind] for name, kind in CLI_TYPES.items()},
        )
    )


def log_worker(client: Client) -> Worker:
    """The service's worker on the `onboarding` task queue, notifying through the `log`
    channel; a workflow bug fails the test at once, and it stops within 2 s."""
    return build_worker(
        client,
        Settings(notify_channels=["log"]),
        workflow_failure_exception_types=[Exception],
        graceful_shutdown_timeout=timedelta(seconds=2),
    )


async def unreachable_client() -> Client:
    """A client of a port nothing listens on (lazy: it connects on its first call, which
    fails): an app given it starts, and any request that asks Temporal fails."""
    return await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter
    )
