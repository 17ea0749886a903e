"""Integration on the REAL dev server: the `onboarding` CLI against a running stack.

One dev server per module (free ports, its own SQLite file, no UI) and a real worker
in-process with the `log` channel. The CLI runs as a subprocess, exactly as a user runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import temporalio.client

from activities.client import connect
from starter.devserver import DevServer, DevServerError, free_port, start_dev_server
from tests.support.temporal import BIN, log_worker
from workflows.models import ClosedWonDeal, ContactChange, OnboardingStatus
from workflows.playbook import load_playbook
from workflows.rules import assign_tier

ONBOARDING = BIN / "onboarding"
ACCOUNT = "it-acme"
WORKFLOW_ID = f"onboarding-{ACCOUNT}"


@dataclass
class Stack:
    server: DevServer
    client: temporalio.client.Client
    tmp: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
        env["TEMPORAL_ADDRESS"] = self.server.address
        env["TEMPORAL_NAMESPACE"] = "default"
        # Keep a developer's ~/.config/temporalio profile out of the test.
        env["TEMPORAL_CONFIG_FILE"] = str(self.tmp / "no-such-temporal.toml")
        return env


@dataclass
class Result:
    code: int
    out: str
    err: str


async def cli(stack: Stack, *args: str) -> Result:
    """Run the real console script. Async, so the in-process worker keeps running."""
    proc = await asyncio.create_subprocess_exec(
        str(ONBOARDING),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=stack.env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> bool:
    """Visibility is eventually consistent: poll a few seconds."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.3)


def deal_json(**overrides: object) -> dict[str, object]:
    deal: dict[str, object] = {
        "account_id": ACCOUNT,
        "account_name": "Acme Integration Co",
        "acv_usd": 60000,
        "seats": 80,
        "close_date": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
        "contacts": [{"name": "Casey", "email": "casey@acme.example", "role": "champion"}],
        "crm": {"source": "hubspot", "deal_id": "D-1", "company_id": "C-1"},
    }
    deal.update(overrides)
    return deal


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("devserver")
    server = await start_dev_server(
        port=free_port(), ui_port=free_port(), db_path=tmp / "temporal.db", headless=True
    )
    stack = Stack(server=server, client=await connect(address=server.address), tmp=tmp)
    try:
        worker = log_worker(stack.client)
        async with worker:
            yield stack
    finally:
        await stack.server.stop()


@pytest.fixture(scope="module")
async def started(stack: Stack) -> tuple[Result, Path]:
    """The first `onboarding start` of the module's account."""
    path = stack.tmp / "deal.json"
    path.write_text(json.dumps(deal_json()))
    return await cli(stack, "start", "--file", str(path)), path


async def test_start_prints_id_and_a_second_start_attaches(
    stack: Stack, started: tuple[Result, Path]
) -> None:
    first, path = started
    assert first.code == 0, first.err
    assert WORKFLOW_ID in first.out
    assert "started" in first.out
    run_id = (await stack.client.get_workflow_handle(WORKFLOW_ID).describe()).run_id

    again = await cli(stack, "start", "--file", str(path))
    assert again.code == 0, again.err
    assert "already running" in again.out
    assert WORKFLOW_ID in again.out
    assert (await stack.client.get_workflow_handle(WORKFLOW_ID).describe()).run_id == run_id

    async def one_run() -> bool:
        count = await stack.client.count_workflows(f'WorkflowId = "{WORKFLOW_ID}"')
        return count.count == 1

    assert await eventually(one_run)


async def test_found_by_search_attribute_query(stack: Stack, started: tuple[Result, Path]) -> None:
    query = 'OnboardingTier = "high_touch" AND AcvUsd >= 50000'

    async def listed() -> bool:
        return WORKFLOW_ID in [wf.id async for wf in stack.client.list_workflows(query)]

    assert await eventually(listed), f"{WORKFLOW_ID} not found by {query}"


async def test_status_shows_tier_and_reason(stack: Stack, started: tuple[Result, Path]) -> None:
    decision = assign_tier(ClosedWonDeal.model_validate(deal_json()), load_playbook().tier_rule)
    result = await cli(stack, "status", ACCOUNT)
    assert result.code == 0, result.err
    assert decision.tier.value == "high_touch"
    assert "high_touch" in result.out
    assert decision.reason in result.out
    assert "first_login" in result.out  # the plan's checklist

    as_json = await cli(stack, "status", ACCOUNT, "--json")
    assert as_json.code == 0, as_json.err
    assert json.loads(as_json.out)["tier_decision"]["clause"] == decision.clause


async def test_pause_then_list_paused(stack: Stack, started: tuple[Result, Path]) -> None:
    paused = await cli(stack, "pause", ACCOUNT, "--by", "it", "--reason", "customer re-org")
    assert paused.code == 0, paused.err
    assert "paused" in paused.out

    again = await cli(stack, "pause", ACCOUNT, "--by", "it", "--reason", "twice")
    assert again.code != 0
    assert again.err.startswith("error: pause rejected") and "already paused" in again.err
    assert again.err.count("\n") == 1

    async def listed_paused() -> bool:
        result = await cli(stack, "list", "--state", "paused")
        return result.code == 0 and ACCOUNT in result.out

    assert await eventually(listed_paused)


async def test_a_milestone_not_in_the_plan_is_refused_and_a_real_one_reported(
    stack: Stack, started: tuple[Result, Path]
) -> None:
    typo = await cli(stack, "milestone", ACCOUNT, "first_logn")
    assert typo.code == 1 and typo.out == ""
    assert typo.err.startswith("error: MILESTONE_ID: no milestone 'first_logn' in the plan")
    assert "first_login" in typo.err  # the plan, to pick from

    reported = await cli(stack, "milestone", ACCOUNT, "kickoff_call", "--by", "csm")
    assert reported.code == 0, reported.err
    assert reported.out.strip() == f"reported kickoff_call done for {WORKFLOW_ID}"


async def test_bad_input_is_one_line_naming_the_problem(stack: Stack) -> None:
    bad = stack.tmp / "bad.json"
    bad.write_text(json.dumps(deal_json(account_id="it-bad", acv_usd=-5)))
    result = await cli(stack, "start", "--file", str(bad))
    assert result.code != 0
    assert "acv_usd" in result.err and "greater than or equal to 0" in result.err
    assert result.err.count("\n") == 1 and result.out == ""

    unknown = await cli(stack, "status", "it-nobody")
    assert unknown.code != 0
    assert unknown.err.strip() == "error: no onboarding for account it-nobody"


async def test_restart_on_same_sqlite_keeps_the_onboarding(
    stack: Stack, started: tuple[Result, Path]
) -> None:
    handle = stack.client.get_workflow_handle(WORKFLOW_ID)
    before = await handle.query("status", result_type=OnboardingStatus)
    old = stack.server
    await old.stop()
    stack.server = await start_dev_server(
        port=old.port, ui_port=old.ui_port, db_path=old.db_path, headless=True
    )
    # The worker's client reconnects by itself; the status query needs it polling again.
    last: list[Result] = []

    async def answers() -> bool:
        last[:] = [await cli(stack, "status", ACCOUNT, "--json")]
        return last[0].code == 0

    assert await eventually(answers, within=20), last[0].err if last else ""
    status = json.loads(last[0].out)
    assert status["workflow_id"] == WORKFLOW_ID
    assert status["state"] == before.state.value
    assert len(status["audit"]) >= len(before.audit)
    desc = await handle.describe()
    assert desc.status == temporalio.client.WorkflowExecutionStatus.RUNNING


async def test_the_customer_confirms_the_success_plan_from_the_cli(stack: Stack) -> None:
    plan_account = "it-plan"
    path = stack.tmp / "plan-deal.json"
    path.write_text(json.dumps(deal_json(account_id=plan_account)))
    assert (await cli(stack, "start", "--file", str(path))).code == 0
    before = json.loads((await cli(stack, "status", plan_account, "--json")).out)
    assert before["schedule_provisional"] is True

    past = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    refused = await cli(
        stack, "confirm-plan", plan_account, "--criterion", "3 teams live", "--by", "Casey",
        "--target", f"technical_setup={past}",
    )  # fmt: skip
    assert refused.code == 1
    assert "technical_setup" in refused.err and "future" in refused.err, refused.err

    target = (datetime.now(UTC) + timedelta(days=50)).date()
    confirmed = await cli(
        stack, "confirm-plan", plan_account, "--criterion", "3 teams live", "--by", "Casey",
        "--target", f"technical_setup={target.isoformat()}",
    )  # fmt: skip
    assert confirmed.code == 0, confirmed.err
    assert "success plan confirmed on onboarding-it-plan" in confirmed.out
    after = json.loads((await cli(stack, "status", plan_account, "--json")).out)
    assert after["schedule_provisional"] is False
    setup = next(m for m in after["milestones"] if m["id"] == "technical_setup")
    assert setup["due_at"].startswith(target.isoformat())


async def test_a_realignment_gate_is_reported_from_the_cli(stack: Stack) -> None:
    gate_account = "it-gate"
    path = stack.tmp / "gate-deal.json"
    path.write_text(json.dumps(deal_json(account_id=gate_account)))
    assert (await cli(stack, "start", "--file", str(path))).code == 0

    none_open = await cli(
        stack, "realignment-gate", gate_account, "realignment_call", "--by", "csm"
    )
    assert none_open.code == 1
    assert "no re-alignment window is open" in none_open.err, none_open.err

    handle = stack.client.get_workflow_handle(f"onboarding-{gate_account}")
    new_champion = {"name": "Robin", "email": "robin@acme.example", "role": "champion"}
    await handle.execute_update(
        "change_contact", ContactChange.model_validate({"contact": new_champion, "by": "csm"})
    )
    done = await cli(
        stack, "realignment-gate", gate_account, "realignment_call", "--by", "csm",
        "--note", "call held with Robin",
    )  # fmt: skip
    assert done.code == 0, done.err
    assert "re-alignment gate realignment_call done" in done.out
    status = json.loads((await cli(stack, "status", gate_account, "--json")).out)
    window = status["champion_windows"][-1]
    assert window["outcome"] == "open"
    assert window["gates"]["realignment_call"] is not None
    assert window["gates"]["new_primary_contact"] is None


async def test_a_port_taken_while_the_server_starts_is_tried_again(tmp_path: Path) -> None:
    """A port found free can be taken before the server binds it (most often by another
    program's outgoing connection, which binds without listening). Held through the
    first start and let go during it, the start is tried again and succeeds; held for
    good, the error names the port."""
    ui_port = free_port()
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", ui_port))  # bound, not listening: as a connection's port

    async def let_go() -> None:
        log = tmp_path / "t.db.log"
        # The server's log is the only sign its first start lost the port.
        while b"address already in use" not in (log.read_bytes() if log.exists() else b""):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        taken.close()

    freed = asyncio.create_task(let_go())
    server = await start_dev_server(port=free_port(), ui_port=ui_port, db_path=tmp_path / "t.db")
    try:
        assert freed.done()
        assert b"address already in use" in (tmp_path / "t.db.log").read_bytes()
        client = await temporalio.client.Client.connect(server.address)
        assert (await client.count_workflows()).count == 0
    finally:
        await server.stop()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", ui_port))
        with pytest.raises(DevServerError, match=f"{ui_port}.*address already in use"):
            await start_dev_server(port=free_port(), ui_port=ui_port, db_path=tmp_path / "u.db")
