"""The portfolio report (rules §8, docs/rules.md) for people allowed to read customer data.

GET /reports/portfolio?tier=&cohort=&format=json|csv
    what `onboarding report --format json` prints (or, format=csv, its group figures as
    one flat table); read from the records store only, so it answers while Temporal is
    down. Needs `Authorization: Bearer <token>` or the sign-in cookie, as
    GET /accounts/{id} does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from activities.records.store import RecordStoreError
from starter.ingress.errors import UNAVAILABLE_RETRY_AFTER_S, ApiError
from starter.ingress.reading import reader
from starter.ingress.state import IngressDep
from starter.reports.flat import csv_text
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio_report
from starter.reports.rows import cohort_error
from workflows.models import Tier


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


router = APIRouter(tags=["Reports"])


@router.get(
    "/reports/portfolio",
    summary="The portfolio report from the records store; needs a token",
    description="Per tier, per cohort (closed-won month) and per tier x cohort against the "
    "playbook's targets, and the portfolio-wide sections; `tier` and `cohort` filter. "
    "`format=csv`: the group figures, one row per group. `Authorization: Bearer <token>` "
    "(one of ONBOARDING_API_TOKENS), or the cookie /codec/login sets in a browser.",
    response_model=PortfolioReport,
    responses={
        200: {"content": {"text/csv": {}}},
        401: {"description": "No valid token or sign-in"},
        422: {"description": "A bad tier, cohort or format (the field is named)"},
        503: {"description": "No token configured, or the records store cannot be read"},
    },
    dependencies=[Depends(reader)],
)
def portfolio(
    ingress: IngressDep,
    tier: Tier | None = None,
    cohort: str | None = None,
    format_: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.JSON,
) -> Response:
    # A plain `def`: FastAPI runs it in a worker thread, so the store's blocking reads
    # (about a second over 10,000 onboardings) never hold up the webhooks.
    if cohort is not None and (problem := cohort_error(cohort)):
        raise ApiError(422, "invalid_request", "cohort", problem)
    try:
        store = ingress.records()
        report = portfolio_report(
            store, ingress.playbook, datetime.now(UTC), tier=tier, cohort=cohort
        )
    except (RecordStoreError, sa.exc.SQLAlchemyError) as exc:
        raise ApiError(
            503, "records_unavailable", "records_store", str(exc), UNAVAILABLE_RETRY_AFTER_S
        ) from None
    if format_ is ReportFormat.CSV:
        return Response(csv_text(report), media_type="text/csv; charset=utf-8")
    return Response(report.model_dump_json(), media_type="application/json")
