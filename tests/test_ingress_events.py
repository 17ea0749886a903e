"""Product events over HTTP, against the real app, a real dev server and its worker: one
signal per account, kept before the deal, answered one by one, never dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from tests.support.ingress import (
    account,
    dumps,
    error,
    post_events,
    runs,
    segment_headers,
    start_deal,
    std_headers,
    track,
    until,
)
from workflows.models import IDENTIFY, AwaitedEvents
from workflows.playbook import load_playbook

# --------------------------------------------------------------------------- product events


async def test_product_events_complete_milestones_with_one_signal_per_account(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    await start_deal(http, acct)
    login = track(acct, "user_logged_in")
    calls = [
        login,
        track(acct, "page_viewed"),
        dict(login),  # the same messageId twice in one request
        track(acct, "setup_completed"),
    ]
    response = await post_events(http, calls)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["signals"] == 1
    outcomes = [e["outcome"] for e in answer["events"]]
    assert outcomes == ["accepted", "ignored", "duplicate", "accepted"]
    assert "page_viewed" in answer["events"][1]["reason"]

    async def milestones() -> dict[str, str]:
        status = (await http.get(f"/accounts/{acct}")).json()
        done = {m["id"]: m["status"] for m in status["milestones"]}
        return done if done["technical_setup"] == "done" else {}

    done = await until(milestones)
    assert done["first_login"] == "done"
    assert done["technical_setup"] == "done"

    # Now no open milestone needs a sign-up (the workflow's memo says so once its task is
    # recorded): such events stop at the ingress and no longer reach the workflow. Logins
    # stay awaited: the skip net and the usage-drop steps count them (rules §6.4, §4).
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")

    async def sign_up_not_awaited() -> bool:
        awaited = await (await handle.describe()).memo_value("awaited", type_hint=AwaitedEvents)
        return "Signed Up" not in awaited.events and "user_logged_in" in awaited.events

    assert await until(sign_up_not_awaited)
    again = await post_events(http, [track(acct, "Signed Up")])
    [answer] = again.json()["events"]
    assert answer["outcome"] == "ignored"
    assert answer["reason"] == "no open milestone of this onboarding needs 'Signed Up'"
    history = [e async for e in handle.fetch_history_events()]
    signals = [e for e in history if e.HasField("workflow_execution_signaled_event_attributes")]
    assert len(signals) == 1


async def test_events_before_the_deal_are_kept_and_applied_when_it_comes(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    response = await post_events(
        http, [track(acct, "user_logged_in"), track(acct, "user_invited"), track(acct, "x_clicked")]
    )
    assert response.status_code == 200
    events = response.json()["events"]
    assert [e["outcome"] for e in events] == ["accepted", "accepted", "ignored"]
    assert "kept until" in events[0]["reason"]
    waiting = (await http.get(f"/accounts/{acct}")).json()
    assert waiting["state"] == "awaiting_deal"
    assert waiting["event_counts"] == {"user_logged_in": 1, "user_invited": 1}

    await start_deal(http, acct)
    status = (await http.get(f"/accounts/{acct}")).json()
    assert status["state"] == "active"
    assert {m["id"]: m["status"] for m in status["milestones"]}["first_login"] == "done"
    assert await runs(dev_env.client, acct) == 1


async def test_events_that_cannot_be_used_are_answered_one_by_one(http: httpx.AsyncClient) -> None:
    acct = account()
    calls = [
        {"type": "track", "event": "user_logged_in", "context": {"groupId": acct}},
        {"type": "track", "messageId": "m-1", "event": "user_logged_in"},
        track("bad account!", "user_logged_in"),
        track(acct, "core_workflow_completed") | {"timestamp": "yesterday"},
    ]
    response = await post_events(http, calls)
    assert response.status_code == 200
    answers = response.json()["events"]
    assert [a["outcome"] for a in answers] == ["rejected"] * 4
    assert "messageId" in answers[0]["reason"]
    assert "account" in answers[1]["reason"] or "groupId" in answers[1]["reason"]
    assert "timestamp" in answers[3]["reason"]


async def test_unsigned_or_forged_events_are_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps({"batch": [track(acct, "user_logged_in")]})
    unsigned = await http.post("/events", content=body)
    assert error(unsigned) == (401, "invalid_signature", "X-Signature")
    forged = await http.post("/events", content=body, headers=segment_headers(body, "guess"))
    assert error(forged) == (401, "invalid_signature", "X-Signature")
    standard = await http.post("/events", content=body, headers=std_headers(body))
    assert standard.status_code == 200  # the Standard Webhooks scheme is accepted too
    too_many = dumps({"batch": [track(acct, "page_viewed") for _ in range(1001)]})
    response = await http.post("/events", content=too_many, headers=segment_headers(too_many))
    assert error(response) == (422, "invalid_payload", "batch")
    not_json = b"\xff\xfe"
    assert (
        error(await http.post("/events", content=not_json, headers=segment_headers(not_json)))[0]
        == 400
    )


async def test_events_for_a_finished_onboarding_are_answered_not_dropped(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    await start_deal(http, acct)
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")
    await handle.execute_update("cancel", {"by": "ops", "reason": "deal churned"})
    await until(lambda: _closed(handle))
    response = await post_events(http, [track(acct, "user_logged_in")])
    [answer] = response.json()["events"]
    assert answer["outcome"] == "ignored"
    assert "finished" in answer["reason"]


async def _closed(handle: Any) -> bool:
    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING


async def test_once_no_milestone_needs_events_none_reach_the_workflow(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    await start_deal(http, acct)
    names = ["user_logged_in", "setup_completed", "data_import_validated"]
    names += ["core_workflow_completed"] + ["user_invited"] * 3
    first = await post_events(http, [track(acct, name) for name in names])
    assert first.json()["signals"] == 1
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")

    async def nothing_awaited() -> bool:
        """Only what the playbook watches whatever the plan (the skip net's usage and
        support tickets, rules §6.4; the roles' paths, §7) is still awaited, and identify
        calls while a role is not yet activated (these events name no user's role)."""
        memo = await (await handle.describe()).memo_value(
            "awaited", None, type_hint=AwaitedEvents | None
        )
        watched = load_playbook().event_names_watched() | {IDENTIFY}
        return memo is not None and set(memo.events) == watched

    assert await until(nothing_awaited)
    later = await post_events(
        http, [track(acct, "Signed Up"), track(acct, "data_import_validated")]
    )
    assert later.json()["signals"] == 0
    assert {e["outcome"] for e in later.json()["events"]} == {"ignored"}


async def test_requests_for_one_account_that_arrive_together_share_its_signals(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    # Each request is answered only once its events were signalled, and every event
    # reaches the onboarding; the requests that came while a signal was on its way go
    # together in the next, so the history grows by fewer signals than requests.
    acct = account()
    await start_deal(http, acct)
    requests = [[track(acct, "user_logged_in")] for _ in range(12)]
    responses = await asyncio.gather(*(post_events(http, calls) for calls in requests))
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["signals"] == 1
        assert [e["outcome"] for e in response.json()["events"]] == ["accepted"]

    async def logins() -> int:
        status = (await http.get(f"/accounts/{acct}")).json()
        counted: int = status["event_counts"].get("user_logged_in", 0)
        return counted if counted == len(requests) else 0

    assert await until(logins) == len(requests)
    handle = dev_env.client.get_workflow_handle(f"onboarding-{acct}")
    history = [e async for e in handle.fetch_history_events()]
    signals = [e for e in history if e.HasField("workflow_execution_signaled_event_attributes")]
    assert 1 <= len(signals) < len(requests)
