"""One customer, one onboarding: Salesforce's 15- and 18-character ids (in any letter
case, with stray white space) name one account on every way in.

The checksum is checked against an independent implementation written here; the case
(an Outbound Message, then an import of a report row with the 15-character id) runs
through the real ingress, the real import and the session's dev server and worker.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
from datetime import UTC, datetime
from pathlib import Path

import httpx
from hypothesis import given
from hypothesis import strategies as st
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from starter.bulk import Outcome, import_deals, read_deals
from starter.events import EventCall, parse_calls
from tests.support.ingress import (
    ORG_ID,
    OUTBOUND_TOKEN,
    exists,
    moved_to,
    post_events,
    runs,
    track,
)
from workflows.ids import canonical_account_id, salesforce_id18
from workflows.models import Playbook

DATA = Path(__file__).parent / "data" / "real_world"


def checksum(id15: str) -> str:
    """Salesforce's suffix, written independently of workflows.ids: per 5-character chunk,
    the upper-case positions read as a binary number, last character first."""
    alphabet = string.ascii_uppercase + "012345"
    chunks = [id15[i : i + 5] for i in range(0, 15, 5)]
    return "".join(
        alphabet[int("".join("1" if c.isupper() else "0" for c in reversed(chunk)), 2)]
        for chunk in chunks
    )


def random_account_id() -> str:
    """A 15-character Salesforce Account id no other test uses."""
    rest = "".join(random.choices(string.ascii_letters + string.digits, k=10))
    return f"0015g{rest}"


# --------------------------------------------------------------------------- the function


def test_the_case_ids_name_one_account() -> None:
    forms = [
        "0015g00000Zx9Yw",  # the report's 15 characters
        "0015g00000Zx9YwAAJ",  # the Outbound Message's 18
        "0015g00000zx9ywaaj",  # lower-cased by a spreadsheet
        "0015G00000ZX9YWAAJ",  # upper-cased
        "  0015g00000Zx9YwAAJ\t",  # pasted with white space
    ]

    assert {canonical_account_id(form) for form in forms} == {"0015g00000Zx9YwAAJ"}


@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=12, max_size=12))
def test_every_form_of_an_account_id_is_the_same_18_characters(rest: str) -> None:
    id15 = f"001{rest}"
    id18 = id15 + checksum(id15)

    assert salesforce_id18(id15) == id18
    for form in (id15, id18, id18.lower(), id18.upper(), f" {id15} "):
        assert canonical_account_id(form) == id18
    assert canonical_account_id(id18) == id18


def test_ids_of_other_systems_and_other_records_are_left_as_they_are() -> None:
    for other in (
        "31000000101",  # a HubSpot company
        "acme",
        "0065g00000Q1aBc",  # a Salesforce Opportunity, not an Account
        "001-5g00000Zx9Yw",
        "0015g00000Zx9YwAAK",  # 18 characters whose suffix does not match
        "0015g00000Zx9YwAbJ",
    ):
        assert canonical_account_id(other) == other
    assert salesforce_id18("0015g00000Zx9YwAA9") is None  # 9 is no checksum character


def test_an_events_group_id_names_the_canonical_account() -> None:
    [call] = parse_calls(
        {
            "type": "track",
            "messageId": "m-1",
            "event": "user_logged_in",
            "groupId": "0015g00000Zx9Yw",
        },
        ["groupId"],
    )

    assert isinstance(call, EventCall)
    assert call.account_id == "0015g00000Zx9YwAAJ"


# --------------------------------------------------------------------------- the case


async def welcome_keys(settings: Settings, id15: str) -> list[str]:
    """The welcome messages delivered for any workflow whose id begins with the
    account's 15-character id (its 18-character workflow id does too)."""
    log = settings.sent_log
    assert log is not None
    if not log.exists():
        return []
    keys = [json.loads(line)["key"] for line in log.read_text().splitlines() if line]
    return [k for k in keys if k.startswith(f"onboarding-{id15}") and ":welcome:" in k]


async def test_the_outbound_message_then_the_report_row_start_one_onboarding(
    http: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    dev_worker: Settings,
    playbook: Playbook,
    tmp_path: Path,
) -> None:
    id15 = random_account_id()
    id18 = id15 + checksum(id15)
    today = datetime.now(UTC).date()
    xml = (
        moved_to((DATA / "salesforce-om-closed-won.xml").read_text(), today)
        .replace("0015g00000Zx9YwAAJ", id18)
        .replace("0015g00000Zx9YxAAJ", random_account_id())
        .replace("00D000000000062AAA", ORG_ID)
    )
    report = tmp_path / "report.csv"
    report.write_text(
        moved_to((DATA / "salesforce-report-15char-id.csv").read_text("utf-8"), today).replace(
            "0015g00000Zx9Yw", id15
        ),
        "utf-8",
    )

    message = await http.post(
        f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}", content=xml.encode()
    )
    assert message.status_code == 200, message.text
    assert "<Ack>true</Ack>" in message.text

    [row] = read_deals(report, playbook)
    summary = await import_deals(dev_env.client, [row], playbook)

    [result] = summary.results
    assert (result.outcome, result.workflow_id) == (
        Outcome.ALREADY_RUNNING,
        f"onboarding-{id18}",
    )
    assert await runs(dev_env.client, id18) == 1
    assert not await exists(dev_env.client, id15)
    for _ in range(100):  # the welcome goes out from an activity, soon after the start
        if await welcome_keys(dev_worker, id15):
            break
        await asyncio.sleep(0.1)
    assert await welcome_keys(dev_worker, id15) == [f"onboarding-{id18}:welcome:customer"]

    # Looked up, or sent events, by any form of the id: the same onboarding.
    for form in (id15, id18.lower()):
        found = await http.get(f"/accounts/{form}")
        assert found.status_code == 200, found.text
        assert found.json()["account_id"] == id18
    answer = (await post_events(http, [track(id15, "user_logged_in")])).json()
    assert [e["account_id"] for e in answer["events"]] == [id18]
    assert not await exists(dev_env.client, id15)
