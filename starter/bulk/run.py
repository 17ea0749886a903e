"""The import run: `import_deals` hands each good row's deal to `deliver_deal`, a few at
a time, so one account's failure never stops the others and importing the same file
twice starts nothing twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import timedelta

import temporalio.client
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from activities.starting import AlreadyOnboardedError, deliver_deal
from activities.temporal_errors import update_rejection
from starter.bulk.report import ImportSummary, Outcome, ResultCallback, RowResult, parsed_result
from starter.bulk.rows import Row, RowError, Skipped
from workflows.models import ClosedWonDeal, Playbook

# How long one row waits for its onboarding to take the deal (a worker must be polling).
DELIVERY_TIMEOUT = timedelta(seconds=30)


async def import_deals(
    client: temporalio.client.Client,
    rows: Iterable[Row],
    playbook: Playbook,
    *,
    concurrency: int = 8,
    on_result: ResultCallback | None = None,
    answer_within: timedelta = DELIVERY_TIMEOUT,
) -> ImportSummary:
    """Deliver every good row's deal, at most `concurrency` at once.

    A rejected row starts nothing; a row Temporal refuses, or whose onboarding does not
    answer within `answer_within` (no worker polling), is rejected with the reason while
    the others go on. `on_result` hears about each row as it is settled.
    """
    import_id = str(uuid.uuid4())
    gate = asyncio.Semaphore(concurrency)
    results: list[RowResult] = []

    def settle(result: RowResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    async def deliver(line: int, deal: ClosedWonDeal) -> None:
        async with gate:
            settle(
                await _deliver(
                    client, line, deal, playbook, f"import:{import_id}:{line}", answer_within
                )
            )

    async with asyncio.TaskGroup() as group:
        for row in rows:
            if isinstance(row.deal, RowError | Skipped):
                settle(parsed_result(row, Outcome.REJECTED))
            else:
                group.create_task(deliver(row.line, row.deal))
    results.sort(key=lambda r: r.line)
    return ImportSummary(import_id=import_id, results=results)


async def _deliver(
    client: temporalio.client.Client,
    line: int,
    deal: ClosedWonDeal,
    playbook: Playbook,
    delivery_id: str,
    answer_within: timedelta,
) -> RowResult:
    result = RowResult(
        line=line,
        outcome=Outcome.REJECTED,
        account_id=deal.account_id,
        workflow_id=deal.workflow_id,
    )
    try:
        acceptance = await asyncio.wait_for(
            deliver_deal(client, deal, playbook, delivery_id), answer_within.total_seconds()
        )
    except AlreadyOnboardedError as exc:
        return result.model_copy(
            update={"outcome": Outcome.ALREADY_FINISHED, "reason": exc.reason()}
        )
    except TimeoutError:
        reason = (
            f"no answer within {answer_within.total_seconds():g} s: is a worker running "
            "(`onboarding up`)? The onboarding may have started; import again to see"
        )
    except WorkflowUpdateFailedError as exc:
        reason = update_rejection(exc)
    except RPCError as exc:
        reason = f"temporal: {exc.message}"
    except TemporalError as exc:
        reason = f"temporal: {exc}"
    else:
        outcome = (
            Outcome.STARTED
            if acceptance.started
            else Outcome.QUEUED
            if acceptance.queued
            else Outcome.ALREADY_RUNNING
        )
        return result.model_copy(update={"outcome": outcome, "workflow_id": acceptance.workflow_id})
    return result.model_copy(update={"reason": reason})
