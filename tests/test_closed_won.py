"""What closed-won means, and what a lost deal does to its onboarding.

The real-world cases in tests/data/real_world/ (a HubSpot deal won in a second pipeline, whose stage
id is numeric; a HubSpot batch where the deal was won then lost; a Salesforce Outbound
Message with IsWon) are sent through the real ingress, the real dev server and its worker,
and a fake HubSpot API that serves the deal and the portal's pipelines. Their dates are
moved to the test's clock. The `deal_lost` rule on the time-skipping server is in
`test_deal_lost.py`; the pipelines and HubSpotStages' cache in `test_hubspot_pipelines.py`.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities import Settings
from activities.crm import PIPELINES_PATH
from activities.crm_records import PayloadError
from activities.hubspot_records import hubspot_pipeline_stages
from starter.app import create_app
from starter.crm import hubspot_stage_changes, salesforce_opportunity, sort_stage_changes
from starter.settings import IngressSettings
from tests.support.fake_crm import (
    ENTERPRISE,
    HUBSPOT_DEFAULT_PIPELINE,
    FakeCrmApi,
)
from tests.support.ingress import (
    ORG_ID,
    OUTBOUND_TOKEN,
    IngressFactory,
    dumps,
    exists,
    hubspot_headers,
    runs,
    salesforce_headers,
    workflow_exists,
)
from tests.support.ingress import settings as ingress_settings
from workflows.ids import canonical_account_id

DATA = Path(__file__).parent / "data" / "real_world"
HUBSPOT_URI = "http://ingress.test/webhooks/hubspot"
OM_ORG = "00D000000000062AAA"  # the Outbound Message case's organization


# --------------------------------------------------------------------------- the cases


def case(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def moved(value: Any, delta: timedelta) -> Any:
    """The case with every date moved by `delta`: ISO strings and epoch milliseconds."""
    if isinstance(value, dict):
        return {
            k: int(v + delta / timedelta(milliseconds=1))
            if k == "occurredAt" and isinstance(v, int)
            else moved(v, delta)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [moved(v, delta) for v in value]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", value):
        at = datetime.fromisoformat(value) + delta
        return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return value


def hubspot_case(name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The webhook batch and the API's deal, moved so the last event happened now."""
    events = case(f"{name}.json")
    last = datetime.fromtimestamp(events[-1]["occurredAt"] / 1000, UTC)
    delta = datetime.now(UTC) - last
    return moved(events, delta), moved(case(f"{name}.api-deal.json"), delta)


def serve(fake: FakeCrmApi, deal: dict[str, Any], name: str = "Blue Heron Logistics") -> str:
    """Serve the deal with its company and contacts; the company (account) id."""
    fake.routes[f"/crm/v3/objects/deals/{deal['id']}"] = (200, deal)
    company = deal["associations"]["companies"]["results"][0]["id"]
    fake.routes[f"/crm/v3/objects/companies/{company}"] = (
        200,
        {"id": company, "properties": {"name": name, "domain": "example.test"}},
    )
    for contact in deal["associations"]["contacts"]["results"]:
        fake.routes[f"/crm/v3/objects/contacts/{contact['id']}"] = (
            200,
            {"id": contact["id"], "properties": {"email": f"c{contact['id']}@example.test"}},
        )
    return str(company)


@pytest.fixture
def make_ingress(ingress: IngressFactory, fake_crm: FakeCrmApi) -> IngressFactory:
    """Ingress clients that know the case's pipelines and Outbound Message organization."""
    fake_crm.hubspot_pipelines(ENTERPRISE)
    orgs = {"salesforce_org_ids": f"{ORG_ID},{OM_ORG}"}
    return lambda **overrides: ingress(**(orgs | overrides))


async def post_hubspot(http: httpx.AsyncClient, events: list[dict[str, Any]]) -> httpx.Response:
    body = dumps(events)
    return await http.post(
        "/webhooks/hubspot", content=body, headers=hubspot_headers(HUBSPOT_URI, body)
    )


def event_of(deal_id: str, stage: str) -> dict[str, Any]:
    return {
        "eventId": uuid.uuid4().int % 10**9,
        "portalId": 44556677,
        "occurredAt": int(datetime.now(UTC).timestamp() * 1000),
        "subscriptionType": "deal.propertyChange",
        "objectId": int(deal_id),
        "propertyName": "dealstage",
        "propertyValue": stage,
    }


# --------------------------------------------------------------------------- HubSpot


async def test_a_deal_won_in_a_second_pipeline_starts_one_onboarding(
    make_ingress: IngressFactory, dev_env: WorkflowEnvironment, fake_crm: FakeCrmApi
) -> None:
    """hubspot-numeric-stage: was 200 "ignored"; the stage is won in its own pipeline."""
    events, deal = hubspot_case("hubspot-numeric-stage")
    account = serve(fake_crm, deal)
    http = make_ingress()  # only `closedwon` listed: the pipelines say what 1187654321 is

    response = await post_hubspot(http, events)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ignored"] == []
    [started] = answer["deals"]
    assert (started["workflow_id"], started["started"]) == (f"onboarding-{account}", True)
    assert await runs(dev_env.client, account) == 1
    status = (await http.get(f"/accounts/{account}")).json()
    assert status["closed_won_at"].startswith(deal["properties"]["closedate"][:16])
    assert status["tier"] == "tech_touch"  # $24,000
    assert any(
        r["path"] == PIPELINES_PATH and r["authorization"] == "Bearer pat-test-token"
        for r in fake_crm.requests
    )


async def test_a_deal_won_then_lost_in_one_batch_starts_nothing_and_says_why(
    make_ingress: IngressFactory, dev_env: WorkflowEnvironment, fake_crm: FakeCrmApi
) -> None:
    """hubspot-closedwon-then-closedlost: was `started: true`, a welcome and a CSM."""
    events, deal = hubspot_case("hubspot-closedwon-then-closedlost")
    account = serve(fake_crm, deal, name="Kestrel Outdoor")

    response = await post_hubspot(make_ingress(), events)

    assert response.status_code == 200, response.text
    answer = response.json()
    [won] = answer["deals"]
    assert won["started"] is False
    assert won["detail"].startswith("deal 9100000007 is no longer closed-won: dealstage closedlost")
    [lost] = answer["lost"]
    assert (lost["applied"], lost["detail"]) == (False, "no onboarding")
    assert not await exists(dev_env.client, account)


async def test_a_running_onboarding_whose_hubspot_deal_is_lost_is_cancelled(
    make_ingress: IngressFactory, fake_crm: FakeCrmApi
) -> None:
    _, deal = hubspot_case("hubspot-numeric-stage")
    deal_id = str(uuid.uuid4().int % 10**11)
    company = str(uuid.uuid4().int % 10**10)
    deal = deal | {"id": deal_id}
    deal["associations"]["companies"]["results"][0]["id"] = company
    serve(fake_crm, deal)
    http = make_ingress()
    assert (await post_hubspot(http, [event_of(deal_id, "1187654321")])).json()["deals"][0][
        "started"
    ]

    lost_deal = json.loads(json.dumps(deal))
    lost_deal["properties"]["dealstage"] = "1187654322"
    serve(fake_crm, lost_deal)
    response = await post_hubspot(http, [event_of(deal_id, "1187654322")])

    assert response.status_code == 200, response.text
    [lost] = response.json()["lost"]
    assert (lost["applied"], lost["action"], lost["state"]) == (True, "cancel", "cancelled")
    status = (await http.get(f"/accounts/{company}")).json()
    assert status["state"] == "cancelled"
    [entry] = [a for a in status["audit"] if a["kind"] == "cancelled"]
    assert entry["by"] == f"hubspot deal {deal_id}"
    assert entry["detail"] == (
        "deal lost: dealstage 1187654322 (Lost to competitor in pipeline Enterprise)"
    )


async def test_a_stage_nobody_can_explain_is_refused_503_so_hubspot_retries(
    dev_env: WorkflowEnvironment, dev_worker: Settings
) -> None:
    down = FakeCrmApi()
    down.routes[PIPELINES_PATH] = (503, {"status": "error"})
    app = create_app(
        ingress_settings(hubspot_api_url=down.url, hubspot_token="pat-test-token"), dev_env.client
    )
    deal_id = str(uuid.uuid4().int % 10**11)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingress.test"
    ) as http:
        response = await post_hubspot(http, [event_of(deal_id, "1187654321")])
    down.close()

    assert response.status_code == 503
    assert response.json()["error"] == "hubspot_unavailable"
    assert "503" in response.json()["reason"]
    assert not await workflow_exists(dev_env.client, f"hubspot-deal-44556677-{deal_id}")


def test_stage_changes_sort_into_won_lost_and_neither() -> None:
    events, _ = hubspot_case("hubspot-closedwon-then-closedlost")
    stages = hubspot_pipeline_stages({"results": [HUBSPOT_DEFAULT_PIPELINE, ENTERPRISE]})
    changes, ignored = hubspot_stage_changes(
        [*events, event_of("5", "contractsent"), event_of("6", "1187654321")]
    )
    won, lost, neither = sort_stage_changes(changes, stages)

    assert [(r.deal_id, r.event_id) for r in won] == [("9100000007", "1706121001"), ("6", ANY)]
    assert [(r.deal_id, r.event_id) for r in lost] == [("9100000007", "1706121002")]
    assert [i.reason for i in ignored + neither] == [
        "dealstage contractsent (Contract Sent in pipeline Sales Pipeline) is neither "
        "closed-won nor closed-lost"
    ]


class _Any:
    def __eq__(self, other: object) -> bool:
        return True


ANY: Any = _Any()


def test_closed_won_stages_are_a_list_and_the_old_setting_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HUBSPOT", "SALESFORCE"):
        monkeypatch.delenv(f"ONBOARDING_{name}_CLOSED_WON_STAGES", raising=False)
        monkeypatch.delenv(f"ONBOARDING_{name}_CLOSED_WON_STAGE", raising=False)
    defaults = IngressSettings()
    assert defaults.hubspot_closed_won_stages == ["closedwon"]
    assert defaults.salesforce_closed_won_stages == ["Closed Won"]

    monkeypatch.setenv("ONBOARDING_HUBSPOT_CLOSED_WON_STAGE", "closedwon, 1187654321")
    monkeypatch.setenv("ONBOARDING_SALESFORCE_CLOSED_WON_STAGE", "Closed Won")
    old = IngressSettings()
    assert old.hubspot_closed_won_stages == ["closedwon", "1187654321"]
    assert Settings().hubspot_closed_won_stages == ["closedwon", "1187654321"]  # the worker

    monkeypatch.setenv("ONBOARDING_SALESFORCE_CLOSED_WON_STAGES", "Closed Won,Signed")
    assert IngressSettings().salesforce_closed_won_stages == ["Closed Won", "Signed"]


# --------------------------------------------------------------------------- Salesforce


def opportunity(**fields: Any) -> dict[str, Any]:
    opp = {
        "Id": "006Ak000001",
        "AccountId": "001Ak000001",
        "Amount": 30000,
        "CloseDate": datetime.now(UTC).date().isoformat(),
        "StageName": "Signed",
    }
    return {"Opportunity": opp | fields, "Account": {"Id": "001Ak000001", "Name": "Initech"}}


@pytest.mark.parametrize(
    ("fields", "meaning", "reason"),
    [
        ({"IsWon": True}, "deal", None),
        ({"IsWon": "true", "StageName": "Closed Won"}, "deal", None),
        ({"IsWon": False, "StageName": "Closed Won"}, "ignored", "IsWon is false"),
        ({"StageName": "Closed Won"}, "deal", None),
        ({}, "ignored", "StageName is 'Signed', not 'Closed Won'"),
        ({"IsClosed": True, "IsWon": False}, "lost", "IsClosed and not IsWon"),
        ({"StageName": "Closed Lost"}, "lost", "StageName 'Closed Lost'"),
    ],
)
def test_salesforce_is_won_decides_when_present(
    fields: dict[str, Any], meaning: str, reason: str | None
) -> None:
    result = salesforce_opportunity(opportunity(**fields), ["Closed Won"])
    kind = {"ClosedWonDeal": "deal", "Ignored": "ignored", "Lost": "lost"}[type(result).__name__]
    assert kind == meaning
    if reason is not None:
        assert reason in getattr(result, "reason", "")


def test_salesforce_is_won_must_be_a_checkbox() -> None:
    with pytest.raises(PayloadError) as err:
        salesforce_opportunity(opportunity(IsWon="maybe"), ["Closed Won"])
    assert err.value.field == "Opportunity.IsWon"


def outbound_case() -> bytes:
    """The Outbound Message case, its close dates moved to today and next month."""
    xml = (DATA / "salesforce-om-closed-won.xml").read_text()
    today = datetime.now(UTC).date()
    dates = iter([today, today + timedelta(days=15)])
    return re.sub(
        r"<sf:CloseDate>[^<]+</sf:CloseDate>",
        lambda _: f"<sf:CloseDate>{next(dates).isoformat()}</sf:CloseDate>",
        xml,
    ).encode()


async def test_an_outbound_message_starts_the_won_opportunity_only(
    make_ingress: IngressFactory, dev_env: WorkflowEnvironment
) -> None:
    """salesforce-om-closed-won: IsWon true starts; IsWon false at 90% is ignored."""
    http = make_ingress()
    url = f"/webhooks/salesforce/outbound?token={OUTBOUND_TOKEN}"
    response = await http.post(url, content=outbound_case(), headers={"content-type": "text/xml"})

    assert response.status_code == 200, response.text
    assert "<Ack>true</Ack>" in response.text
    assert await runs(dev_env.client, "0015g00000Zx9YwAAJ") == 1
    assert not await exists(dev_env.client, "0015g00000Zx9YxAAJ")


async def test_a_lost_salesforce_deal_flags_its_running_onboarding_with_the_flag_rule(
    make_ingress: IngressFactory,
) -> None:
    http = make_ingress(deal_lost="flag")
    account = canonical_account_id(f"001{uuid.uuid4().hex[:12]}")
    won = dumps(opportunity(AccountId=account, IsWon=True, StageName="Closed Won"))
    started = await http.post("/webhooks/salesforce", content=won, headers=salesforce_headers(won))
    assert started.status_code == 201, started.text

    lost = dumps(
        opportunity(AccountId=account, IsClosed=True, IsWon=False, StageName="Closed Lost")
    )
    response = await http.post(
        "/webhooks/salesforce", content=lost, headers=salesforce_headers(lost)
    )

    assert response.status_code == 200, response.text
    [outcome] = response.json()["lost"]
    assert (outcome["applied"], outcome["action"], outcome["state"]) == (True, "flag", "at_risk")
    status = (await http.get(f"/accounts/{account}")).json()
    assert status["state"] == "at_risk" and status["decision_required"] is True
    assert any("deal lost: IsClosed and not IsWon" in flag for flag in status["risk_flags"])
    assert [a["kind"] for a in status["audit"]].count("deal_lost") == 1

    # Redelivered: applied once (one flag).
    again = await http.post("/webhooks/salesforce", content=lost, headers=salesforce_headers(lost))
    assert again.json()["lost"][0]["applied"] is True
    status = (await http.get(f"/accounts/{account}")).json()
    assert sum("deal lost" in flag for flag in status["risk_flags"]) == 1


async def test_a_lost_deal_without_an_onboarding_is_acknowledged_with_why(
    make_ingress: IngressFactory, dev_env: WorkflowEnvironment
) -> None:
    http = make_ingress()
    account = canonical_account_id(f"001{uuid.uuid4().hex[:12]}")
    lost = dumps(opportunity(AccountId=account, StageName="Closed Lost"))
    response = await http.post(
        "/webhooks/salesforce", content=lost, headers=salesforce_headers(lost)
    )
    assert response.status_code == 200, response.text
    [outcome] = response.json()["lost"]
    assert (outcome["applied"], outcome["detail"]) == (False, "no onboarding")
    assert not await exists(dev_env.client, account)
