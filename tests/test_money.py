"""Deals in other currencies: ACV counted in US dollars with the operator's dated rates,
or refused naming the sender's currency field.

The conversion and the mappings are pure; the Salesforce callout goes through the real
ingress on the session's dev server, the HubSpot fetch through the real activity against
a local server shaped like HubSpot's API. Dates move with the clock under test.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities.crm import HubSpotClient
from activities.crm_records import PayloadError
from activities.hubspot_records import hubspot_deal
from activities.money import (
    DEFAULT_FX_RATES,
    FxRatesError,
    load_fx_rates,
    parse_fx_rates,
)
from activities.settings import Settings
from activities.starting import summary_line
from starter.cli import app
from starter.crm import generic_deal, salesforce_opportunity, salesforce_outbound
from tests.support.fake_crm import FakeCrmApi
from tests.support.fx import YEN, rates
from tests.support.ingress import (
    IngressFactory,
    account,
    dumps,
    exists,
    moved_to,
    salesforce_headers,
)
from workflows import search_attributes as sa
from workflows.models import ClosedWonDeal, HubSpotDealRef, Playbook, Tier
from workflows.rules import assign_tier

DATA = Path(__file__).parent / "data" / "real_world"
TODAY = datetime.now(UTC).date()
NO_YEN = rates(EUR=[(TODAY - timedelta(days=90), 0.9)])


def yen_callout(account_id: str | None = None) -> dict[str, Any]:
    """The case's Opportunity callout, closed today (and for another account if given)."""
    payload = json.loads((DATA / "salesforce-callout-jpy.json").read_text())
    payload["Opportunity"]["CloseDate"] = TODAY.isoformat()
    if account_id is not None:
        payload["Opportunity"]["AccountId"] = payload["Account"]["Id"] = account_id
    return payload


# --------------------------------------------------------------------------- the rule


def test_the_yen_deal_is_about_48000_dollars_and_tech_touch(playbook: Playbook) -> None:
    deal = salesforce_opportunity(yen_callout(), ["Closed Won"], rates=YEN)

    assert isinstance(deal, ClosedWonDeal)
    assert deal.acv_usd == 48_000
    assert (deal.acv, deal.currency) == (7_200_000, "JPY")
    assert deal.fx_rate is not None
    assert (deal.fx_rate.per_usd, deal.fx_rate.effective) == (150.0, TODAY - timedelta(days=90))
    decision = assign_tier(deal, playbook.tier_rule)
    assert decision.tier is Tier.TECH_TOUCH
    assert decision.reason.startswith("ACV $48,000 (7,200,000 JPY at 150 per USD) in $5,000-")
    assert summary_line(deal, decision) == (
        "Sakura Robotics K.K. · tech_touch · ACV $48,000 (7,200,000 JPY at 150 per USD)"
    )


def test_a_currency_without_a_rate_is_refused_naming_the_senders_field() -> None:
    with pytest.raises(PayloadError) as caught:
        salesforce_opportunity(yen_callout(), ["Closed Won"], rates=NO_YEN)

    assert caught.value.field == "Opportunity.CurrencyIsoCode"
    assert caught.value.reason == (
        f"cannot count JPY in US dollars on {TODAY}: no rate is configured for it "
        "(currencies with rates: EUR)"
    )


def test_the_rate_in_force_on_the_close_date_is_used() -> None:
    dated = rates(EUR=[(TODAY - timedelta(days=10), 0.8), (TODAY - timedelta(days=60), 0.9)])

    def usd_on(close: date) -> float:
        payload = yen_callout()
        payload["Opportunity"] |= {"CurrencyIsoCode": "EUR", "Amount": 72_000, "CloseDate": close}
        deal = salesforce_opportunity(payload, ["Closed Won"], rates=dated)
        assert isinstance(deal, ClosedWonDeal)
        return deal.acv_usd

    assert usd_on(TODAY - timedelta(days=30)) == 80_000  # 72,000 / 0.9
    assert usd_on(TODAY - timedelta(days=10)) == 90_000  # 72,000 / 0.8, from that day on
    assert usd_on(TODAY + timedelta(days=30)) == 90_000
    with pytest.raises(PayloadError) as before:
        usd_on(TODAY - timedelta(days=61))
    assert before.value.field == "Opportunity.CurrencyIsoCode"
    assert before.value.reason.endswith(
        f"its first configured rate takes effect on {TODAY - timedelta(days=60)}"
    )


def test_a_currency_code_must_be_iso_4217() -> None:
    payload = yen_callout()
    payload["Opportunity"]["CurrencyIsoCode"] = "YEN"

    with pytest.raises(PayloadError) as caught:
        salesforce_opportunity(payload, ["Closed Won"], rates=YEN)

    assert caught.value.field == "Opportunity.CurrencyIsoCode"
    assert caught.value.reason == "'YEN' is not an ISO 4217 currency code (like USD, EUR, JPY)"
    payload["Opportunity"]["CurrencyIsoCode"] = "jpy"
    deal = salesforce_opportunity(payload, ["Closed Won"], rates=YEN)
    assert isinstance(deal, ClosedWonDeal) and deal.currency == "JPY"


def test_the_annual_value_field_comes_before_the_amount() -> None:
    payload = yen_callout()
    payload["Opportunity"] |= {"CurrencyIsoCode": "USD", "Amount": 90_000, "ACV__c": 30_000}
    deal = salesforce_opportunity(payload, ["Closed Won"], rates=YEN)
    assert isinstance(deal, ClosedWonDeal)
    assert (deal.acv_usd, deal.currency, deal.acv, deal.fx_rate) == (30_000, "USD", None, None)

    company = {"id": "31000000101", "properties": {"name": "Larkspur Bio"}}

    def hubspot(**props: str) -> ClosedWonDeal:
        base = {"closedate": f"{TODAY}T12:00:00Z", "amount": "150000"}
        return hubspot_deal({"id": "9", "properties": base | props}, company, [], rates=YEN)

    assert hubspot(hs_acv="50000", acv="40000").acv_usd == 50_000
    assert hubspot(acv="40000").acv_usd == 40_000
    # hs_acv is calculated from recurring line items: 0 on a deal that has none.
    assert hubspot(hs_acv="0").acv_usd == 150_000
    euro = hubspot(hs_acv="45000", deal_currency_code="EUR")
    assert (euro.acv_usd, euro.acv, euro.currency) == (50_000, 45_000, "EUR")
    with pytest.raises(PayloadError) as caught:
        hubspot(deal_currency_code="CHF")
    assert caught.value.field == "properties.deal_currency_code"


def test_an_outbound_message_names_its_currency_field() -> None:
    xml = moved_to((DATA / "salesforce-om-closed-won.xml").read_text(), TODAY).replace(
        "<sf:Amount>50000.0</sf:Amount>",
        "<sf:Amount>7200000.0</sf:Amount><sf:CurrencyIsoCode>JPY</sf:CurrencyIsoCode>",
    )

    [(_, deal)], _ = salesforce_outbound(xml.encode(), [], ["Closed Won"], rates=YEN)
    assert (deal.acv_usd, deal.currency) == (48_000, "JPY")
    with pytest.raises(PayloadError) as caught:
        salesforce_outbound(xml.encode(), [], ["Closed Won"], rates=NO_YEN)
    assert caught.value.field == "Notification[0].sObject.CurrencyIsoCode"


def test_a_generic_deal_gives_acv_and_currency_and_the_service_converts_it() -> None:
    body = {"account_id": "acme", "account_name": "Acme", "close_date": TODAY.isoformat()}

    deal = generic_deal(body | {"acv": 45_000, "currency": "EUR"}, rates=YEN)
    assert (deal.acv_usd, deal.acv, deal.currency) == (50_000, 45_000, "EUR")
    assert generic_deal(body | {"acv": 12_000}, rates=YEN).acv_usd == 12_000

    refusals = {
        "acv_usd": {"acv_usd": 50_000, "acv": 45_000, "currency": "EUR"},
        "acv": {"currency": "EUR"},
        "currency": {"acv": 1, "currency": "GBP"},
        "fx_rate": {
            "acv": 1,
            "currency": "EUR",
            "fx_rate": {"per_usd": 1, "effective": "2020-01-01"},
        },
    }
    for field, changes in refusals.items():
        with pytest.raises(PayloadError) as caught:
            generic_deal(body | changes, rates=YEN)
        assert caught.value.field == field, caught.value

    # A deal in dollars exported by this service (`fx_rate: null`) comes back in as it was.
    exported = generic_deal(body | {"acv_usd": 12_000}, rates=YEN).model_dump(mode="json")
    assert exported["fx_rate"] is None
    assert generic_deal(exported, rates=YEN).acv_usd == 12_000


def test_recorded_deals_decode_as_before_and_converted_ones_round_trip() -> None:
    recorded = {
        "account_id": "acme",
        "account_name": "Acme",
        "acv_usd": 20_000,
        "close_date": "2031-01-06T00:00:00Z",  # any day: decoding only
    }
    old = ClosedWonDeal.model_validate(recorded)
    assert (old.currency, old.acv, old.fx_rate) == ("USD", None, None)

    deal = salesforce_opportunity(yen_callout(), ["Closed Won"], rates=YEN)
    assert isinstance(deal, ClosedWonDeal)
    assert ClosedWonDeal.model_validate_json(deal.model_dump_json()) == deal


# --------------------------------------------------------------------------- the rates file


def test_the_shipped_rates_file_loads_and_says_its_numbers_are_examples() -> None:
    shipped = load_fx_rates()

    assert shipped.rates
    assert "EXAMPLE NUMBERS ONLY" in DEFAULT_FX_RATES.read_text()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[rates]\nJPY = [{ effective = 2026-01-01, per_usd = 0 }]", "rates.JPY[0].per_usd:"),
        (
            "[rates]\nJPY = [{ effective = 2026-01-01, per_usd = 1 },"
            " { effective = 2026-01-01, per_usd = 2 }]",
            "JPY: two rates take effect on the same day",
        ),
        ("[rates]\njpy = [{ effective = 2026-01-01, per_usd = 1 }]", "write the code in upper"),
        ("[rates]\nXYZ = [{ effective = 2026-01-01, per_usd = 1 }]", "'XYZ' is not an ISO 4217"),
        ("[rates]\nUSD = [{ effective = 2026-01-01, per_usd = 1 }]", "USD: needs no rate"),
        ("[rates]\nJPY = [{ from = 2026-01-01, per_usd = 1 }]", "rates.JPY[0].effective:"),
        ("rates = [", "not valid TOML"),
    ],
)
def test_a_bad_rates_file_is_refused_naming_the_key(text: str, problem: str) -> None:
    with pytest.raises(FxRatesError) as caught:
        parse_fx_rates(text, "fx.toml")

    assert str(caught.value).startswith("fx.toml: ")
    assert problem in str(caught.value)


# --------------------------------------------------------------------------- the ways in


async def test_the_yen_callout_starts_a_tech_touch_onboarding_counted_in_dollars(
    ingress: IngressFactory, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps(yen_callout(acct))

    response = await ingress(fx_rates=YEN).post(
        "/webhooks/salesforce", content=body, headers=salesforce_headers(body)
    )

    assert response.status_code == 201, response.text
    assert "tech_touch: ACV $48,000 (7,200,000 JPY at 150 per USD)" in response.json()["detail"]
    status = (await ingress(fx_rates=YEN).get(f"/accounts/{acct}")).json()
    assert (status["tier"], status["acv_usd"]) == ("tech_touch", 48_000)
    # The status says what it was sold in, whichever clause decided the tier.
    assert (status["acv"], status["currency"], status["fx_rate"]["per_usd"]) == (
        7_200_000,
        "JPY",
        150,
    )
    desc = await dev_env.client.get_workflow_handle(f"onboarding-{acct}").describe()
    assert desc.typed_search_attributes.get(sa.ACV_USD) == 48_000
    assert await desc.static_summary() == (
        "Sakura Robotics K.K. · tech_touch · ACV $48,000 (7,200,000 JPY at 150 per USD)"
    )


async def test_the_yen_callout_without_a_rate_is_422_and_starts_nothing(
    ingress: IngressFactory, dev_env: WorkflowEnvironment
) -> None:
    acct = account()
    body = dumps(yen_callout(acct))

    response = await ingress(fx_rates=NO_YEN).post(
        "/webhooks/salesforce", content=body, headers=salesforce_headers(body)
    )

    assert response.status_code == 422
    answer = response.json()
    assert (answer["error"], answer["field"]) == ("invalid_payload", "Opportunity.CurrencyIsoCode")
    assert "JPY" in answer["reason"]
    assert not await exists(dev_env.client, acct)


async def test_the_hubspot_fetch_converts_the_deal_currency(tmp_path: Path) -> None:
    rates_file = tmp_path / "fx.toml"
    rates_file.write_text(
        f"[rates]\nEUR = [{{ effective = {TODAY - timedelta(days=30)}, per_usd = 0.9 }}]\n"
    )
    fake = FakeCrmApi()
    props = {
        "amount": "135000",
        "hs_acv": "45000",
        "deal_currency_code": "EUR",
        "closedate": f"{TODAY}T12:00:00Z",
        "dealstage": "closedwon",
    }
    fake.routes = {
        "/crm/v3/objects/deals/77": (
            200,
            {
                "id": "77",
                "properties": props,
                "associations": {"companies": {"results": [{"id": "31000000177"}]}},
            },
        ),
        "/crm/v3/objects/companies/31000000177": (
            200,
            {"id": "31000000177", "properties": {"name": "Larkspur"}},
        ),
    }
    try:
        client = HubSpotClient(
            Settings(hubspot_api_url=fake.url, hubspot_token="pat-test", fx_rates=rates_file)
        )
        ref = HubSpotDealRef(portal_id=1, deal_id="77", event_id="e-1")
        deal = await ActivityEnvironment().run(client.fetch_hubspot_deal, ref)
    finally:
        fake.close()

    assert (deal.acv_usd, deal.acv, deal.currency) == (50_000, 45_000, "EUR")
    [asked] = [r for r in fake.requests if r["path"] == "/crm/v3/objects/deals/77"]
    asked_for = asked["query"]["properties"][0].split(",")
    assert {"hs_acv", "acv", "amount", "deal_currency_code"} <= set(asked_for)


async def test_onboarding_start_converts_a_deal_in_another_currency(
    dev_env: WorkflowEnvironment, dev_worker: Settings, tmp_path: Path
) -> None:
    rates_file = tmp_path / "fx.toml"
    rates_file.write_text(
        f"[rates]\nEUR = [{{ effective = {TODAY - timedelta(days=30)}, per_usd = 0.9 }}]\n"
    )
    acct = account()
    deal = {"account_id": acct, "account_name": "Euro GmbH", "close_date": TODAY.isoformat()}
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(deal | {"acv": 4_500, "currency": "EUR"}))
    bad.write_text(json.dumps(deal | {"acv": 4_500, "currency": "GBP"}))
    env = {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
        "TEMPORAL_CONFIG_FILE": str(tmp_path / "no-such-temporal.toml"),
        "ONBOARDING_FX_RATES": str(rates_file),
    }

    def onboarding(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    refused = await asyncio.to_thread(onboarding, "start", "--file", str(bad))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: {bad}: currency: cannot count GBP in US dollars on {TODAY}: no rate is "
        "configured for it (currencies with rates: EUR)\n"
    )
    assert not await exists(dev_env.client, acct)

    # In a thread: the command runs its own event loop while this one runs the worker.
    started = await asyncio.to_thread(onboarding, "start", "--file", str(good))
    assert started.exit_code == 0, started.output
    assert f"started onboarding-{acct} (tech_touch: ACV $5,000 (4,500 EUR at 0.9 per USD)" in (
        started.stdout
    )
    shown = await asyncio.to_thread(onboarding, "status", acct)
    assert shown.exit_code == 0, shown.output
    assert "$5,000 (4,500 EUR at 0.9 per USD)" in shown.stdout
