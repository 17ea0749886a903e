"""Segment calls as real apps send them, through the ingress, on the real dev server.

The inputs are real-world cases (tests/data/real_world/): Segment's B2B SaaS spec event
names, and a mobile app's offline queue delivering a login three days late. Their dates
are moved relative to the dev server's clock (the wall clock).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from tests.support.ingress import dumps, iso, segment_headers, std_headers, until
from workflows.models import MilestoneStatus, OnboardingState, OnboardingStatus, workflow_id_for
from workflows.onboarding import AccountOnboarding

CASES = Path(__file__).parent / "data" / "real_world"
DAY = timedelta(days=1)


def case(name: str) -> Any:
    return json.loads((CASES / name).read_text(encoding="utf-8"))


async def start(http: httpx.AsyncClient, deal: dict[str, Any]) -> None:
    body = dumps(deal)
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert response.status_code == 201, response.text


async def status(dev_env: WorkflowEnvironment, account_id: str) -> OnboardingStatus:
    handle = dev_env.client.get_workflow_handle(workflow_id_for(account_id))
    return await handle.query(AccountOnboarding.status)


async def test_segment_b2b_spec_names_move_login_and_team_adoption(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = f"acct-b2b-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await start(
        http,
        {
            "account_id": acct,
            "account_name": "Wren Labs",
            "acv_usd": 20_000,
            "close_date": iso(now),
        },
    )
    calls = case("segment-b2b-spec-events.json")
    for i, call in enumerate(calls):  # the case's account and times, moved to this test
        call["context"]["groupId"] = acct
        call["messageId"] = f"{call['messageId']}-{acct}"
        call["timestamp"] = iso(now + i * timedelta(seconds=5))
    body = dumps(calls)
    response = await http.post("/events", content=body, headers=segment_headers(body))
    assert response.status_code == 200, response.text
    assert [e["outcome"] for e in response.json()["events"]] == ["accepted", "accepted"]

    async def counted() -> OnboardingStatus | None:
        st = await status(dev_env, acct)
        return st if st.event_counts.get("Invite Sent") else None

    st = await until(counted)
    assert st is not None
    done = {m.id: m.status for m in st.milestones}
    assert done["first_login"] is MilestoneStatus.DONE
    assert st.event_counts == {"Signed In": 1, "Invite Sent": 1}  # 1 of team adoption's 3


async def test_an_offline_queue_replayed_late_is_credited_when_it_happened(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    now = datetime.now(UTC)
    deal = case("segment-offline-replay.deal.json")
    event = case("segment-offline-replay.event.json")
    acct = f"{deal['account_id']}-{uuid.uuid4().hex[:6]}"
    # As in the case: closed five days ago, logged in two days after, sent just now.
    closed, logged_in = now - 5 * DAY, now - 3 * DAY
    await start(http, deal | {"account_id": acct, "close_date": iso(closed)})
    event["context"]["groupId"] = acct
    event |= {"timestamp": iso(logged_in), "sentAt": iso(now), "messageId": f"ios-{acct}"}
    body = dumps(event)
    response = await http.post("/events", content=body, headers=segment_headers(body))
    assert response.status_code == 200, response.text

    async def logged() -> OnboardingStatus | None:
        st = await status(dev_env, acct)
        return st if st.milestones[0].status is MilestoneStatus.DONE else None

    st = await until(logged)
    assert st is not None
    login = st.milestones[0]
    assert login.id == "first_login"
    assert login.done_at is not None and abs(login.done_at - logged_in) < timedelta(seconds=1)
    assert login.credit == 1.0  # on time (due on day 3), not late
    assert st.health.score == 100
    assert st.state is OnboardingState.ACTIVE
