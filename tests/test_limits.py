"""What one onboarding may carry: refused at the door, or run to the end.

A deal pasted from a SOW (8,340 success criteria, 999 KB) was once answered 201 and then
stuck at continue-as-new, whose single payload (deal + playbook + state) Temporal refuses
above 2 MB. The limits in `workflows.models` keep the worst case well under it: the door
refuses more, naming the field, and the largest deal the door accepts runs, with the
largest playbook the loader accepts, through continue-as-new to handoff.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.deals import make_deal
from tests.support.histories import run_histories
from tests.support.ingress import deal_body, dumps, exists, std_headers
from tests.support.onboardings import Onboardings, status
from workflows.models import (
    MAX_CONTACTS,
    MAX_INTEGRATIONS,
    MAX_PRODUCT_SEATS,
    MAX_PRODUCTS,
    MAX_SUCCESS_CRITERIA,
    NAME_CHARS,
    PLAYBOOK_BYTES,
    TEMPLATE_CHARS,
    TEXT_CHARS,
    ClosedWonDeal,
    Contact,
    ContactRole,
    MilestoneReport,
    OnboardingState,
    ProductEvent,
    ProductEventBatch,
)
from workflows.onboarding import MAX_REJECTED, AccountOnboarding
from workflows.playbook import DEFAULT_PLAYBOOK, PlaybookError, parse_playbook
from workflows.progress.facts import MAX_SEEN_EVENT_IDS

# Temporal's default limit on one payload; continue-as-new sends the state as one.
TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024
DEFAULT_TEXT = DEFAULT_PLAYBOOK.read_text(encoding="utf-8")


def sow_deal(account_id: str) -> dict[str, Any]:
    """The real-world case: success criteria pasted from a statement of work."""
    criteria = [
        f"SOW 4.{i}: nightly export of the '{i:05d}' ledger reconciles within 0.5% of the "
        "source system for 30 consecutive days"
        for i in range(8340)
    ]
    return deal_body(account_id, success_criteria=criteria)


def with_long_templates(text: str, body_chars: int) -> str:
    """The default playbook with every template body padded to `body_chars`."""
    para = "We are glad to have you with us; your onboarding team will walk you through it. "

    def pad(match: re.Match[str]) -> str:
        body = match.group(1)
        filler = (para * (body_chars // len(para) + 1))[: body_chars - len(body) - 1]
        return f'body = "{body} {filler}"'

    return re.sub(r'^body = "(.*)"$', pad, text, flags=re.M)


def spare_template(n: int) -> str:
    return f'\n[templates.spare_{n}]\nsubject = "Spare"\nbody = "{"x" * TEMPLATE_CHARS}"\n'


def fits(text: str) -> bool:
    try:
        parse_playbook(text)
    except PlaybookError:
        return False
    return True


def largest_playbook_text() -> str:
    """Every template at its longest (or as long as all of them fit, once the playbook
    has more templates than `PLAYBOOK_BYTES` holds at their longest), then more of them
    until the next would not fit."""
    chars = TEMPLATE_CHARS
    while not fits(text := with_long_templates(DEFAULT_TEXT, chars)):
        chars -= 100
    n = 0
    while True:
        try:
            parse_playbook(text + spare_template(n))
        except PlaybookError:
            return text
        text, n = text + spare_template(n), n + 1


def largest_deal(closed_at: datetime) -> ClosedWonDeal:
    name = "N" * NAME_CHARS
    return make_deal(
        f"acct-big-{uuid.uuid4().hex[:8]}",
        account_name=name,
        close_date=closed_at,
        contacts=[
            Contact(
                name=name,
                email=f"{'c' * 200}{i:03d}@{'d' * 40}.example",
                role=ContactRole.CHAMPION if i == 0 else ContactRole.END_USER,
            )
            for i in range(MAX_CONTACTS)
        ],
        integrations=[f"{i:03d}{'i' * (NAME_CHARS - 3)}" for i in range(MAX_INTEGRATIONS)],
        success_criteria=[f"{i:03d}{'s' * (TEXT_CHARS - 3)}" for i in range(MAX_SUCCESS_CRITERIA)],
        crm={"source": "generic", "deal_id": "d" * 64, "company_id": "c" * 64},
        products=[
            {"id": f"p{i}{'x' * 30}", "name": f"{i}{'P' * (NAME_CHARS - 1)}"}
            | {"licensed_seats": MAX_PRODUCT_SEATS}
            for i in range(MAX_PRODUCTS)
        ],
    )


# --------------------------------------------------------------------------- the door


async def test_a_deal_over_the_limits_is_refused_naming_the_field(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    acct = f"acct-bigsow-{uuid.uuid4().hex[:6]}"
    body = dumps(sow_deal(acct))
    assert 900_000 < len(body) < 1_000_000  # under the request cap: the limits must catch it
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["field"] == "success_criteria"
    assert f"at most {MAX_SUCCESS_CRITERIA} items" in answer["reason"]
    assert not await exists(dev_env.client, acct)

    long_name = dumps(deal_body(acct, account_name="A" * (NAME_CHARS + 1)))
    response = await http.post("/webhooks/deals", content=long_name, headers=std_headers(long_name))
    assert (response.status_code, response.json()["field"]) == (422, "account_name")
    assert not await exists(dev_env.client, acct)


async def test_dates_a_plan_cannot_be_counted_from_are_refused(
    http: httpx.AsyncClient, dev_env: WorkflowEnvironment
) -> None:
    # 9999-12-01 parses, but its deadlines (+98 days) would leave the calendar.
    acct = f"acct-edge-{uuid.uuid4().hex[:6]}"
    body = dumps(deal_body(acct, close_date="9999-12-01"))
    response = await http.post("/webhooks/deals", content=body, headers=std_headers(body))
    assert (response.status_code, response.json()["field"]) == (422, "close_date")
    assert "must be between 2000-01-01 and 2999-12-31" in response.json()["reason"]
    assert not await exists(dev_env.client, acct)
    with pytest.raises(PlaybookError, match=r"timeline\.high_touch\.handoff: .*less than or equal"):
        parse_playbook(DEFAULT_TEXT.replace("handoff = 98", "handoff = 99999"))


def test_ordinary_long_templates_load_and_oversized_ones_are_named() -> None:
    # The case's playbook: every email a few paragraphs (about 4.5 KB).
    assert parse_playbook(with_long_templates(DEFAULT_TEXT, 4_500)).templates
    with pytest.raises(PlaybookError) as too_long:
        parse_playbook(with_long_templates(DEFAULT_TEXT, TEMPLATE_CHARS + 1), "long.toml")
    assert re.search(
        r"templates\.\w+\.body: String should have at most 10000 characters", str(too_long.value)
    )


def test_a_playbook_over_its_size_is_refused_with_its_size() -> None:
    text = largest_playbook_text()
    size = len(parse_playbook(text).model_dump_json())
    assert PLAYBOOK_BYTES - TEMPLATE_CHARS - 100 < size <= PLAYBOOK_BYTES
    with pytest.raises(PlaybookError, match=r"\(top level\): [\d,]+ bytes as each onboarding"):
        parse_playbook(text + spare_template(999))


# --------------------------------------------------------------------------- to the end


async def test_the_largest_deal_and_playbook_run_through_continue_as_new_to_handoff(
    onboardings: Onboardings,
) -> None:
    playbook = parse_playbook(largest_playbook_text())
    deal = largest_deal(await onboardings.now())
    handle = await onboardings.start(deal, playbook, max_history_events=100)
    # The most state an onboarding keeps: a full window of long event ids, a full list
    # of rejected messages, and an event of every name the playbook knows.
    names = sorted(
        {n for m in playbook.milestones if m.completed_by for n in m.completed_by.events}
    )
    sent = 0
    while sent < MAX_SEEN_EVENT_IDS + 1000:  # in 110 signals: history past 100 events
        events = [
            ProductEvent(event_id=f"{sent + i:08d}{'e' * 56}", name="user_logged_in")
            for i in range(100)
        ]
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=events))
        sent += 100
    unknown = [
        ProductEvent(event_id=f"u-{i}", name=f"{i:03d}{'x' * (NAME_CHARS - 3)}")
        for i in range(MAX_REJECTED + 50)
    ]
    await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=unknown))
    for i, name in enumerate(names):
        batch = ProductEventBatch(events=[ProductEvent(event_id=f"n-{i}", name=name)])
        await handle.signal(AccountOnboarding.product_events, batch)
    for product in deal.products:  # every product's seats taken by long user ids
        users = [
            ProductEvent(
                event_id=f"{product.id}-{i}",
                name="user_logged_in",
                user_id=f"{i:04d}{'u' * 96}",
                product=product.id,
            )
            for i in range(product.licensed_seats)
        ]
        await handle.signal(AccountOnboarding.product_events, ProductEventBatch(events=users))
    latest = onboardings.env.client.get_workflow_handle(handle.id)
    for _ in range(200):  # the run has continued as new (the signals may come as one task)
        if (await latest.describe()).run_id != handle.first_execution_run_id:
            break
        await asyncio.sleep(0.05)
    for m in (await status(latest)).milestones:  # the plan, a product's own gates included
        report = MilestoneReport(milestone_id=m.id, event_id=f"done-{m.id}", reported_by="csm")
        await handle.signal(AccountOnboarding.milestone_reached, report)
        await asyncio.sleep(0)
    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.state is OnboardingState.COMPLETED
    assert len(result.rejected) == MAX_REJECTED
    histories = await run_histories(onboardings.env.client, handle)
    assert len(histories) > 1, "never continued as new"
    inputs = [
        len(h.events[0].workflow_execution_started_event_attributes.input.payloads[0].data)
        for h in histories
    ]
    # The largest continue-as-new payload, with room to spare under Temporal's limit.
    assert max(inputs) < TEMPORAL_PAYLOAD_LIMIT * 0.75, f"input sizes: {inputs}"
    started = histories[-1].events[0].workflow_execution_started_event_attributes
    carried = json.loads(started.input.payloads[0].data)
    assert carried["deal"]["success_criteria"] == []  # carried once, in the progress
    assert len(carried["progress"]["success_criteria"]) == MAX_SUCCESS_CRITERIA
    assert len(carried["progress"]["seen_event_ids"]) == MAX_SEEN_EVENT_IDS
    users = [len(f["users"]) for f in carried["progress"]["products"].values()]
    assert users == [MAX_PRODUCT_SEATS] * MAX_PRODUCTS
