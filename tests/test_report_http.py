"""GET /reports/portfolio on the real app, with no Temporal at all: the report from the
records store as JSON (the same numbers the report computes) or CSV, behind the token
that GET /accounts/{id} needs; a bad parameter is named; the store is opened once."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from activities.records.store import RecordStore
from starter.app import create_app
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio_report
from tests.support.ingress import READ_TOKEN, settings
from tests.support.records import DAY, make_record
from workflows.models import OnboardingState, Tier

AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The ingress app on a records store of its own, without a Temporal client: the
    report must not need one."""
    url = f"sqlite:///{tmp_path / 'records.db'}"
    store = RecordStore.open(url)
    won = datetime.now(UTC) - 40 * DAY
    store.save(make_record("401A", won, state=OnboardingState.COMPLETED, ttv_days=9))
    store.save(make_record("401B", won, tier=Tier.HIGH_TOUCH, acv_usd=70_000))
    store.close()
    app = create_app(settings(records_url=url))
    yield app
    app.state.ingress.close_records()


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress.test") as client:
        yield client


async def test_the_json_is_the_report_and_needs_the_status_token(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    refused = await http.get("/reports/portfolio")
    assert refused.status_code == 401
    assert refused.json()["field"] == "Authorization"
    wrong = await http.get("/reports/portfolio", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401

    answer = await http.get("/reports/portfolio", headers=AUTH)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    served = PortfolioReport.model_validate_json(answer.content)
    ingress = app.state.ingress
    assert served == portfolio_report(ingress.records(), ingress.playbook, served.as_of)
    assert served.overall.onboardings == 2


async def test_filters_and_csv(http: httpx.AsyncClient) -> None:
    high = await http.get("/reports/portfolio", params={"tier": "high_touch"}, headers=AUTH)
    assert high.status_code == 200, high.text
    assert (high.json()["tier"], high.json()["overall"]["onboardings"]) == ("high_touch", 1)

    cohort = (datetime.now(UTC) - 40 * DAY).strftime("%Y-%m")
    table = await http.get(
        "/reports/portfolio", params={"cohort": cohort, "format": "csv"}, headers=AUTH
    )
    assert table.status_code == 200, table.text
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    lines = list(csv.DictReader(io.StringIO(table.text)))
    assert [(line["group"], line["tier"], line["cohort"]) for line in lines] == [
        ("all", "", cohort),
        ("tier", "high_touch", cohort),
        ("tier", "tech_touch", cohort),
        ("cohort", "", cohort),
        ("tier_cohort", "high_touch", cohort),
        ("tier_cohort", "tech_touch", cohort),
    ]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"tier": "gold"}, "tier", "Input should be 'high_touch', 'tech_touch' or 'self_serve'"),
        ({"cohort": "2031-13"}, "cohort", "'2031-13' is not a month (YYYY-MM)"),
        ({"format": "xml"}, "format", "Input should be 'json' or 'csv'"),
    ],
)
async def test_a_bad_parameter_is_refused_naming_it(
    http: httpx.AsyncClient, params: dict[str, str], field: str, reason: str
) -> None:
    answer = await http.get("/reports/portfolio", params=params, headers=AUTH)

    assert answer.status_code == 422
    assert (answer.json()["field"], answer.json()["reason"]) == (field, reason)


async def test_the_store_is_opened_once_and_again_after_a_failure(
    tmp_path: Path, http: httpx.AsyncClient, app: FastAPI
) -> None:
    ingress = app.state.ingress
    assert (await http.get("/reports/portfolio", headers=AUTH)).status_code == 200
    store = ingress.records()
    assert (await http.get("/reports/portfolio", headers=AUTH)).status_code == 200
    assert ingress.records() is store

    # Pointed at a store that is not there: 503 naming it, and the next request tries again.
    gone = create_app(settings(records_url=f"sqlite:///{tmp_path / 'later.db'}"))
    transport = httpx.ASGITransport(app=gone)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingress.test") as client:
        missing = await client.get("/reports/portfolio", headers=AUTH)
        assert missing.status_code == 503
        assert missing.json()["field"] == "records_store"
        assert "no records store at" in missing.json()["reason"]
        RecordStore.open(f"sqlite:///{tmp_path / 'later.db'}").close()  # the worker made it
        assert (await client.get("/reports/portfolio", headers=AUTH)).status_code == 200
    gone.state.ingress.close_records()
