"""The dashboard's portfolio page, computed from the records store and kept while the store
is unchanged: the report over 10,000 onboardings takes longer than the page may (1 s), and
most views of the page see the same store as the last one."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from activities.records.store import RecordStore, WriteMark
from starter.ingress import dashboard_charts as charts
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio
from starter.reports.rows import load_rows
from workflows.models import Playbook, Tier

# A portfolio computed within this many seconds, over an unchanged store, is shown again
# instead of recomputed: the figures that count what is due "by now" move with the clock.
REPORT_TTL_S = 60.0

Filters = tuple[Tier | None, str | None]


@dataclass(frozen=True)
class PortfolioView:
    """What the portfolio page shows: the report (`portfolio`), every cohort in the store
    (the filter's choices) and the charts."""

    report: PortfolioReport
    cohorts: list[str]
    charts: list[charts.Chart]


def portfolio_view(
    store: RecordStore, playbook: Playbook, tier: Tier | None, cohort: str | None
) -> PortfolioView:
    """The page over the onboardings of `tier` / closed-won month `cohort` (None: all), as
    of now. Raises what `load_rows` raises."""
    rows = load_rows(store, tier=tier, cohort=cohort)
    report = portfolio(rows, playbook, datetime.now(UTC), tier=tier, cohort=cohort)
    drawn = [
        charts.Chart.of("cohort-trends", charts.cohort_trends(report)),
        charts.Chart.of("health-bands", charts.health_bands(report)),
        *(
            charts.Chart.of(f"drop-off-{g.tier.value}", charts.drop_off(report, g.tier))
            for g in report.by_tier
            if g.tier is not None
        ),
        charts.Chart.of("escalations", charts.escalations(report)),
        charts.Chart.of("csm-load", charts.csm_load(report)),
    ]
    return PortfolioView(report, store.cohorts(), drawn)


class ReportCache:
    """The latest `PortfolioView` per filter, computed again once the store has changed
    (`RecordStore.write_mark`) or REPORT_TTL_S has passed. One computation per filter at a
    time: requests that come meanwhile wait for it rather than repeat it."""

    def __init__(self) -> None:
        self._kept: dict[Filters, tuple[WriteMark, float, PortfolioView]] = {}
        self._locks: dict[Filters, asyncio.Lock] = {}

    async def view(
        self, store: RecordStore, playbook: Playbook, tier: Tier | None, cohort: str | None
    ) -> PortfolioView:
        key = (tier, cohort)
        async with self._locks.setdefault(key, asyncio.Lock()):
            mark = await asyncio.to_thread(store.write_mark)
            kept = self._kept.get(key)
            if kept and kept[0] == mark and time.monotonic() - kept[1] < REPORT_TTL_S:
                return kept[2]
            view = await asyncio.to_thread(portfolio_view, store, playbook, tier, cohort)
            self._kept[key] = (mark, time.monotonic(), view)
            return view
