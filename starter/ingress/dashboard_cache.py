"""The dashboard's portfolio page, computed from the records store and kept while the store
is unchanged: the report over 10,000 onboardings takes longer than the page may (1 s), and
most views of the page see the same store as the last one. When the store has changed, a
view waits FRESH_WAIT_S for the new page and otherwise shows the last one (its time is
on it) while the new one is computed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from activities.records.store import RecordStore, WriteMark
from starter.ingress import dashboard_charts as charts
from starter.reports.model import PortfolioReport
from starter.reports.portfolio import portfolio_report
from workflows.models import Playbook, Tier

log = structlog.get_logger("dashboard")

# A portfolio computed within this many seconds, over an unchanged store, is shown again
# instead of recomputed: the figures that count what is due "by now" move with the clock.
REPORT_TTL_S = 60.0
# How long a view waits for a page being computed before it shows the last one: small
# stores are always shown fresh (10,000 onboardings take about 0.8 s here), and a view
# stays within its 1 s budget (the rest of the page takes a few hundredths).
FRESH_WAIT_S = 0.8

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
    of now. Raises what `portfolio_report` raises."""
    report = portfolio_report(store, playbook, datetime.now(UTC), tier=tier, cohort=cohort)
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


@dataclass(frozen=True)
class _Kept:
    mark: WriteMark
    computed: float  # time.monotonic()
    view: PortfolioView


class ReportCache:
    """The latest `PortfolioView` per filter. Kept while the store's `write_mark` is the
    same and for REPORT_TTL_S; then computed again, once per filter at a time (views that
    come meanwhile share the computation), in a thread. A view with nothing kept waits
    for it; one with a page kept waits at most FRESH_WAIT_S, then shows that page."""

    def __init__(self) -> None:
        self._kept: dict[Filters, _Kept] = {}
        self._computing: dict[Filters, asyncio.Task[PortfolioView]] = {}

    async def view(
        self, store: RecordStore, playbook: Playbook, tier: Tier | None, cohort: str | None
    ) -> PortfolioView:
        """Raises what `portfolio_view` raises, when it is waited for."""
        key = (tier, cohort)
        mark = await asyncio.to_thread(store.write_mark)
        kept = self._kept.get(key)
        if kept and kept.mark == mark and time.monotonic() - kept.computed < REPORT_TTL_S:
            return kept.view
        computing = self._computing.get(key)
        if computing is None:
            computing = asyncio.create_task(self._compute(key, mark, store, playbook))
            computing.add_done_callback(_log_failure)
            self._computing[key] = computing
        if kept is None:
            # shield: a view that goes away (the browser closed) leaves it to the others.
            return await asyncio.shield(computing)
        done, _ = await asyncio.wait({computing}, timeout=FRESH_WAIT_S)
        return computing.result() if done else kept.view

    async def _compute(
        self, key: Filters, mark: WriteMark, store: RecordStore, playbook: Playbook
    ) -> PortfolioView:
        try:
            view = await asyncio.to_thread(portfolio_view, store, playbook, *key)
            self._kept[key] = _Kept(mark, time.monotonic(), view)
            return view
        finally:
            del self._computing[key]


def _log_failure(task: asyncio.Task[PortfolioView]) -> None:
    # Also for a computation no view waited for to the end: its error is logged, not lost.
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("portfolio page not computed", error=f"{error.__class__.__name__}: {error}")
