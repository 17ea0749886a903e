"""The soak's check: every onboarding's status and the notifier's sent log read back
after the run, and compared with its `Replay`, effect by effect (`check`); and every
onboarding's record in the records store compared with its status."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from soak_fleet import Account
from soak_oracle import Escalated
from soak_traffic import Traffic, patiently
from soak_workers import Soak
from temporalio.client import WorkflowExecutionStatus

from activities.records.store import RecordStore
from workflows.models import (
    HEALTH_BANDS,
    MilestoneStatus,
    OnboardingState,
    OnboardingStatus,
    Trigger,
    workflow_id_for,
)
from workflows.models.record import OnboardingRecord
from workflows.models.status import MilestoneView

# A record is written after the change it shows: how long the check waits for the last.
RECORDS_CATCH_UP_S = 60


@dataclass
class Tally:
    """Expected vs actual of one kind of effect, and each mismatch named."""

    expected: int = 0
    actual: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    cases: list[str] = field(default_factory=list)

    def miss(self, kind: Literal["lost", "duplicated", "unexpected"], n: int, case: str) -> None:
        if n > 0:
            setattr(self, kind, getattr(self, kind) + n)
            self.cases.append(f"{kind} x{n}: {case}")

    def compare(self, where: str, want: Counter[Any], got: Counter[Any]) -> None:
        self.expected += sum(want.values())
        self.actual += sum(got.values())
        for item in sorted(want.keys() | got.keys(), key=str):
            self.miss("lost", want[item] - got[item], f"{where} {item}")
            kind: Literal["duplicated", "unexpected"] = "duplicated" if want[item] else "unexpected"
            self.miss(kind, got[item] - want[item], f"{where} {item}")


async def statuses(
    soak: Soak, traffic: Traffic, fleet: Sequence[Account]
) -> dict[str, OnboardingStatus | None]:
    """Each onboarding's status: a finished one's result, a running one's `status` query."""
    client, gate = soak.stack.client, asyncio.Semaphore(32)

    async def one(account: Account) -> tuple[str, OnboardingStatus | None]:
        handle = client.get_workflow_handle(
            workflow_id_for(account.id), result_type=OnboardingStatus
        )
        async with gate:
            desc = await handle.describe()
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                return account.id, await handle.result()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                query = partial(handle.query, "status", result_type=OnboardingStatus)
                return account.id, await patiently(traffic, query)
            return account.id, None  # failed or terminated: its effects count as lost

    return dict(await asyncio.gather(*(one(a) for a in fleet)))


def read_sent_log(path: Path) -> tuple[Counter[str], int]:
    """Lines per idempotency key, and lines torn by a kill mid-write."""
    keys: Counter[str] = Counter()
    torn = 0
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for line in text.splitlines():
        try:
            keys[json.loads(line)["key"]] += 1
        except (ValueError, KeyError, TypeError):
            torn += 1
    return keys, torn


def unsent(status: OnboardingStatus, sent: Counter[str]) -> list[str]:
    """The notify actions of the status's fired escalations with no line in the sent log
    (read from the statuses alone, without the replay)."""
    missing = []
    for e in status.escalations:
        key = f"{status.workflow_id}:{e.tier.value}.{e.step_id}"
        for action in e.actions:  # none when superseded
            if not action.startswith("notify "):
                continue
            audience = action.split()[1]
            if e.trigger is Trigger.MILESTONE_OVERDUE:  # + revision
                found = _any_key(sent, f"{key}:{e.milestone_id}#r", f":{audience}")
            elif e.trigger is Trigger.NO_PROGRESS:  # + progress epoch and repeat
                found = _any_key(sent, f"{key}:e", f":{audience}")
            elif e.trigger in HEALTH_BANDS:  # + the entry into the band
                found = _any_key(sent, f"{key}:h", f":{audience}")
            else:
                found = f"{key}:{audience}" in sent
            if not found:
                missing.append(f"{key} ({e.milestone_id or e.trigger.value}) -> {audience}")
    return missing


def _any_key(sent: Counter[str], prefix: str, suffix: str) -> bool:
    return any(k.startswith(prefix) and k.endswith(suffix) for k in sent)


@dataclass
class Check:
    onboardings: Tally
    milestones: Tally
    escalations: Tally
    notifications: Tally
    completed: Tally
    records: Tally
    unsent: list[str]
    torn_lines: int

    def tallies(self) -> dict[str, Tally]:
        return {
            "onboardings": self.onboardings,
            "milestones done": self.milestones,
            "escalations": self.escalations,
            "notifications": self.notifications,
            "onboardings completed": self.completed,
            "records caught up": self.records,
        }

    def total(self, kind: Literal["lost", "duplicated", "unexpected"]) -> int:
        return sum(getattr(t, kind) for t in self.tallies().values())


async def check(soak: Soak, traffic: Traffic, fleet: list[Account]) -> Check:
    now = datetime.now(UTC)
    for account in fleet:
        account.expected.check(now)
    found = await statuses(soak, traffic, fleet)
    sent, torn = read_sent_log(soak.sent_log)
    runs = (await soak.stack.client.count_workflows("WorkflowType = 'AccountOnboarding'")).count
    result = Check(Tally(), Tally(), Tally(), Tally(), Tally(), Tally(), [], torn)
    result.onboardings.expected, result.onboardings.actual = len(fleet), runs
    result.onboardings.miss("duplicated", runs - len(fleet), "onboarding runs beyond one each")
    expected_keys: set[str] = set()
    for account in fleet:
        want = account.expected
        expected_keys |= want.notifications
        status = found[account.id]
        if status is None:
            result.onboardings.miss("lost", 1, f"{account.id}: no running or completed run")
            continue
        done = {m.id for m in status.milestones if m.status is MilestoneStatus.DONE}
        result.milestones.compare(account.id, Counter(want.done), Counter(done))
        got: Counter[Escalated] = Counter()
        for e in status.escalations:  # a catch-up records the repeats it passed over as one
            got[(e.tier.value, e.step_id, e.milestone_id, e.superseded)] += e.repeats
        result.escalations.compare(account.id, want.escalations, got)
        finished = want.progress.finished_at is not None
        completed = status.state is OnboardingState.COMPLETED
        result.completed.compare(
            account.id,
            Counter({"completed": int(finished)}),
            Counter({"completed": int(completed)}),
        )
        result.unsent += unsent(status, sent)
    result.notifications.compare("sent log", Counter(expected_keys), sent)
    await records_caught_up(result.records, soak.stack.records_url, found)
    return result


def _done(milestones: list[MilestoneView]) -> list[str]:
    return sorted(m.id for m in milestones if m.status is MilestoneStatus.DONE)


def behind(record: OnboardingRecord | None, status: OnboardingStatus) -> str | None:
    """How the record differs from what the onboarding's status shows (None: it does not)."""
    if record is None:
        return "no record"
    for name, mine, theirs in [
        ("state", record.state, status.state),
        ("tier", record.tier, status.tier),
        ("phase", record.phase, status.phase),
        ("milestones done", _done(record.milestones), _done(status.milestones)),
        ("escalations", record.escalations, status.escalations),
    ]:
        if mine != theirs:
            return f"{name} {mine} in the record, {theirs} in the onboarding"
    return None


async def records_caught_up(
    tally: Tally, records_url: str, found: dict[str, OnboardingStatus | None]
) -> None:
    """Each onboarding's record shows its status (waiting up to `RECORDS_CATCH_UP_S` for
    writes still under way)."""
    store = await asyncio.to_thread(RecordStore.open, records_url, create=False)
    try:
        waiting = {a: s for a, s in found.items() if s is not None}
        tally.expected = len(waiting)
        why: dict[str, str] = {}
        for _ in range(RECORDS_CATCH_UP_S // 2):
            why = {}
            for account_id, status in waiting.items():
                record = await asyncio.to_thread(store.get, account_id)
                if (reason := behind(record, status)) is not None:
                    why[account_id] = reason
            waiting = {a: waiting[a] for a in why}
            if not waiting:
                break
            await asyncio.sleep(2)
        tally.actual = tally.expected - len(why)
        for account_id, reason in sorted(why.items()):
            tally.miss("lost", 1, f"{account_id}: {reason}")
    finally:
        store.close()
