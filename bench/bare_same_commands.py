"""The bare SDK issuing the commands an onboarding's start recorded: the floor of what
`bench/worker_cost.py` measures (step 4).

`BareSameCommands` issues, task by task, the commands of a `Script` (read from an
onboarding's history by `worker_cost.script_of`): the same patch, memo and search
attributes, activities with inputs and results of the same sizes, run together as they
ran, and the same timer, then waits on a signal: what those commands cost the worker on
the bare SDK, whatever code decides them. A module of its own, so that the sandbox does
not load it with every `BareWaiting`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from bare_workflows import Waiting


@dataclass
class Command:
    """One command a workflow task of the onboarding recorded; `kind` says which:

    - `patch`: `workflow.patched(name)` (the SDK upserts `TemporalChangeVersion` itself)
    - `memo`: the memo fields `value` (field -> its JSON) upserted
    - `search_attributes`: `value` lists `[name, type, JSON value]` (type as the server
      names it: Keyword, Int, Double, Datetime, ...; None unsets it)
    - `activity`: an activity whose input is `size` bytes of JSON, answering `result`
      bytes
    - `timer`: a timer of `seconds`
    """

    kind: str
    name: str = ""
    value: Any = None
    size: int = 0
    result: int = 0
    seconds: float = 0.0


@dataclass
class Script:
    """An onboarding's start, one list of commands per workflow task, in order."""

    tasks: list[list[Command]] = field(default_factory=list)


@activity.defn
async def sized(result: int, payload: str) -> str:
    return "r" * result


_KEYS: dict[str, Callable[[str], SearchAttributeKey[Any]]] = {
    "Keyword": SearchAttributeKey.for_keyword,
    "Text": SearchAttributeKey.for_text,
    "KeywordList": SearchAttributeKey.for_keyword_list,
    "Int": SearchAttributeKey.for_int,
    "Double": SearchAttributeKey.for_float,
    "Bool": SearchAttributeKey.for_bool,
    "Datetime": SearchAttributeKey.for_datetime,
}


def _update(name: str, kind: str, value: Any) -> SearchAttributeUpdate[Any]:
    key = _KEYS[kind](name)
    if value is None:
        return key.value_unset()
    return key.value_set(datetime.fromisoformat(value) if kind == "Datetime" else value)


@workflow.defn
class BareSameCommands(Waiting):
    @workflow.run
    async def run(self, account_id: str, script: Script) -> str:
        timer: timedelta | None = None
        running: list[Any] = []
        for n, task in enumerate(script.tasks):
            running = []
            for c in task:
                if c.kind == "patch":
                    workflow.patched(c.name)
                elif c.kind == "memo":
                    workflow.upsert_memo(c.value)
                elif c.kind == "search_attributes":
                    workflow.upsert_search_attributes([_update(*v) for v in c.value])
                elif c.kind == "activity":
                    running.append(
                        workflow.start_activity(
                            sized,
                            args=[c.result, "x" * max(c.size - 2, 0)],  # 2: JSON's quotes
                            start_to_close_timeout=timedelta(seconds=30),
                        )
                    )
                elif c.kind == "timer":
                    timer = timedelta(seconds=c.seconds)
            if n < len(script.tasks) - 1:  # the next task's commands came once these ended
                await asyncio.gather(*running)
        await workflow.wait_condition(lambda: self.done, timeout=timer)
        return account_id
