"""The dashboard's parts below the pages: the text of a figure, where a sign-in may send a
browser back to, an account's plan-against-actual rows, the charts (pure: their series
and their SVG), and the kept portfolio page over a real store, over records whose facts
the tests state (dates relative to now)."""

from __future__ import annotations

import asyncio
import html
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from pygal.graph.graph import Graph

from activities.records.store import RecordStore
from starter.ingress import dashboard_cache
from starter.ingress import dashboard_charts as charts
from starter.ingress.dashboard_cache import PortfolioView, ReportCache, portfolio_view
from starter.ingress.dashboard_view import (
    AT_RISK_SHOWN,
    NONE_TEXT,
    at_risk_shown,
    days_text,
    pct_text,
    range_text,
    safe_next,
    share_text,
    timeline_rows,
    when_text,
)
from starter.reports.model import PortfolioReport, Share
from starter.reports.portfolio import portfolio_report
from tests.support.records import DAY, make_record, milestone_view, sample_portfolio
from workflows.models import MilestoneStatus, Playbook, Tier


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, playbook: Playbook) -> PortfolioReport:
    """The report over `sample_portfolio`, through a real store."""
    now = datetime.now(UTC)
    store = RecordStore.open(f"sqlite:///{tmp_path_factory.mktemp('charts') / 'records.db'}")
    for record in sample_portfolio(now, playbook):
        store.save(record)
    try:
        return portfolio_report(store, playbook, now)
    finally:
        store.close()


# --------------------------------------------------------------------------- text


def test_figures_read_as_people_write_them() -> None:
    assert pct_text(72.45) == "72.5%"
    assert pct_text(None) == NONE_TEXT
    assert share_text(Share(count=29, of=40, pct=72.5)) == "72.5% (29/40)"
    assert share_text(Share(count=0, of=0, pct=None)) == f"{NONE_TEXT} (0/0)"
    assert days_text(12.345) == "12.3 d"
    assert days_text(None) == NONE_TEXT
    assert range_text((70, 80), "%") == "70-80%"
    assert range_text((14.5, 21), " d") == "14.5-21 d"
    assert range_text(None, "%") == NONE_TEXT
    at = datetime(2025, 3, 4, 14, 5, 59, tzinfo=UTC)
    assert when_text(at) == "2025-03-04 14:05 UTC"
    assert when_text(None) == NONE_TEXT


@pytest.mark.parametrize(
    "target",
    ["/dashboard", "/dashboard?tier=high_touch&cohort=2025-01", "/dashboard/accounts/001A"],
)
def test_a_sign_in_goes_back_to_the_dashboard_page_asked_for(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example/dashboard",
        "https://evil.example/dashboard",
        "/dashboard.evil.example",
        "/dashboardx",
        "/dashboard/\\evil.example",
        "/dashboard/\r\nSet-Cookie: x=1",
        "/codec/login",
        "dashboard",
    ],
)
def test_a_sign_in_never_sends_a_browser_elsewhere(target: str | None) -> None:
    assert safe_next(target) == "/dashboard"


def test_the_at_risk_list_is_capped(report: PortfolioReport) -> None:
    many = report.at_risk[:1] * (AT_RISK_SHOWN + 7)
    shown, left_out = at_risk_shown(many)
    assert (len(shown), left_out) == (AT_RISK_SHOWN, 7)
    assert at_risk_shown(report.at_risk) == (report.at_risk, 0)


# --------------------------------------------------------------------------- timeline


def test_the_timeline_puts_each_milestone_s_plan_beside_what_happened() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    won = now - 30.5 * DAY
    skipped = milestone_view("data_import", won, 12).model_copy(
        update={"status": MilestoneStatus.SKIPPED}
    )
    record = make_record(
        "001T",
        won,
        milestones=[
            milestone_view("first_login", won, 3, 2),  # on time
            milestone_view("kickoff_call", won, 7, 9),  # two days late
            skipped,
            milestone_view("technical_setup", won, 20),  # due 10.5 days ago: overdue
            milestone_view("first_value", won, 40),  # its turn has come: open, to now
        ],
    )
    rows = timeline_rows(record, now)
    assert [r.outcome for r in rows] == ["on_time", "late", "skipped", "overdue", "open"]
    # Plan windows run from one due date to the next, the first from closed-won.
    assert [(r.plan_start, r.plan_end) for r in rows] == [
        (won, won + 3 * DAY),
        (won + 3 * DAY, won + 7 * DAY),
        (won + 7 * DAY, won + 12 * DAY),
        (won + 12 * DAY, won + 20 * DAY),
        (won + 20 * DAY, won + 40 * DAY),
    ]
    # Actual windows from when the previous one was done; a skipped one has none and
    # passes its turn on; an open one runs to now.
    assert [r.actual for r in rows] == [
        (won, won + 2 * DAY),
        (won + 2 * DAY, won + 9 * DAY),
        None,
        (won + 9 * DAY, now),
        None,  # the overdue one before it is not done: its turn has not come
    ]


def test_a_milestone_done_before_the_previous_one_has_a_window_of_no_length() -> None:
    now = datetime.now(UTC)
    won = now - 20.5 * DAY
    record = make_record(
        "001O",
        won,
        milestones=[
            milestone_view("first_login", won, 3, 10),
            milestone_view("kickoff", won, 7, 5),
        ],
    )
    second = timeline_rows(record, now)[1]
    assert second.actual == (won + 5 * DAY, won + 5 * DAY)
    assert second.outcome == "on_time"


# --------------------------------------------------------------------------- charts


def _series(chart: Graph, name: str) -> tuple[list[Any], dict[str, Any]]:
    """A pygal chart's series by name: its values (a value dict's figure) and options."""
    values, options = next((v, o) for v, o in chart.raw_series if o["title"] == name)
    return [v["value"] if isinstance(v, dict) else v for v in values], options


def _svg(chart: Graph) -> str:
    svg = str(charts.Chart.of("chart", chart).svg)
    # What a page embeds draws itself: no script (the page's CSP refuses inline ones), no
    # file from elsewhere.
    assert svg.startswith("<svg ") and "<script" not in svg and "href" not in svg
    return svg


def _texts(svg: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_cohort_trends_plot_the_reports_rates(report: PortfolioReport) -> None:
    chart = charts.cohort_trends(report)
    months = [g.cohort for g in report.by_cohort]
    assert chart.config.x_labels == months
    assert _series(chart, "Completion %")[0] == [g.completion.pct for g in report.by_cohort]
    assert _series(chart, "Activation %")[0] == [g.activation.pct for g in report.by_cohort]
    ttv, options = _series(chart, "TTV median (days, right axis)")
    assert ttv == [g.ttv_median_days for g in report.by_cohort]
    assert options["secondary"] is True
    texts = _texts(_svg(chart))
    assert "Trends by closed-won month" in texts and set(months) <= set(texts)


def test_without_any_ttv_the_trends_have_no_days_axis(report: PortfolioReport) -> None:
    cohorts = [g.model_copy(update={"ttv_median_days": None}) for g in report.by_cohort]
    chart = charts.cohort_trends(report.model_copy(update={"by_cohort": cohorts}))
    assert [o["title"] for _, o in chart.raw_series] == ["Completion %", "Activation %"]


def test_health_bands_stack_each_tiers_running_onboardings(report: PortfolioReport) -> None:
    chart = charts.health_bands(report)
    totals = [0] * len(report.by_tier)
    for band in ("healthy", "at_risk", "critical"):
        totals = [a + b for a, b in zip(totals, _series(chart, band)[0], strict=True)]
    assert totals == [g.running for g in report.by_tier]
    assert chart.config.x_labels == [g.tier.value for g in report.by_tier if g.tier]


def test_drop_off_marks_the_steps_over_the_flag(report: PortfolioReport) -> None:
    steps = [d for d in report.drop_off if d.tier is Tier.TECH_TOUCH]
    assert any(d.flagged for d in steps) and not all(d.flagged for d in steps)
    chart = charts.drop_off(report, Tier.TECH_TOUCH)
    # pygal lists bars bottom up: the plan's first step is drawn on top.
    labels = [f"{d.milestone_id}  {share_text(d.lost)}" for d in steps]
    assert chart.config.x_labels == labels[::-1]
    ((bars, _),) = chart.raw_series
    assert [b["value"] for b in bars] == [d.lost.pct or 0 for d in steps][::-1]
    assert [b["color"] for b in bars] == [
        charts.FLAGGED if d.flagged else charts.NORMAL for d in steps
    ][::-1]
    limit = f"over the {report.targets.drop_off_flag_pct:g}% flag"
    texts = _texts(_svg(chart))
    assert any(limit in t for t in texts) and set(labels) <= set(texts)


def test_escalations_show_firings_and_their_follow_up(report: PortfolioReport) -> None:
    chart = charts.escalations(report)
    shown = report.escalations[::-1]
    assert _series(chart, "fired (bottom axis)")[0] == [e.fired for e in shown]
    days = report.targets.escalation_response_days
    followed, options = _series(chart, f"% followed by progress in {days} d (top axis)")
    assert followed == [e.followed_by_progress.pct for e in shown]
    assert options["secondary"] is True
    texts = _texts(_svg(chart))
    for e in report.escalations:
        label = f"{e.tier.value} {e.step_id} ({e.trigger})  {e.fired} · "
        assert any(t.startswith(label) for t in texts), label


def test_csm_load_lists_the_most_loaded_first(report: PortfolioReport) -> None:
    loads = sorted(report.csm_load, key=lambda c: c.load_pct, reverse=True)
    chart = charts.csm_load(report)
    assert _series(chart, "load %")[0] == [c.load_pct for c in loads][::-1]
    labels = [f"{c.owner or charts.UNOWNED}  {pct_text(c.load_pct)}" for c in loads]
    assert chart.config.x_labels == labels[::-1]
    assert set(labels) <= set(_texts(_svg(chart)))


def test_the_timeline_chart_draws_the_rows_windows() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    won = now - 10.5 * DAY
    record = make_record(
        "001C",
        won,
        milestones=[milestone_view("first_login", won, 3, 4), milestone_view("kickoff", won, 7)],
    )
    rows = timeline_rows(record, now)
    chart = charts.timeline(rows, now)
    # Row i of 2 at y = 2 - i: plan windows just above, actual ones just below.
    plan, lane = [2 + charts.LANE, 1 + charts.LANE], [2 - charts.LANE, 1 - charts.LANE]
    assert _series(chart, "plan (due)")[0] == [
        (won, plan[0]),
        (won + 3 * DAY, plan[0]),
        None,
        (won + 3 * DAY, plan[1]),
        (won + 7 * DAY, plan[1]),
        None,
    ]
    assert _series(chart, "late")[0] == [(won, lane[0]), (won + 4 * DAY, lane[0]), None]
    assert _series(chart, "overdue")[0] == [(won + 4 * DAY, lane[1]), (now, lane[1]), None]
    names = [o["title"] for _, o in chart.raw_series]
    assert names == ["plan (due)", "late", "overdue", f"now ({now:%Y-%m-%d %H:%M} UTC)"]
    now_dots = {x for x, _ in _series(chart, names[-1])[0]}
    assert now_dots == {now}
    assert {"First Login", "Kickoff"} <= set(_texts(_svg(chart)))


def test_a_chart_s_svg_escapes_what_the_store_holds(report: PortfolioReport) -> None:
    load = report.csm_load[0].model_copy(update={"owner": "</svg><script>alert(1)</script>"})
    svg = _svg(charts.csm_load(report.model_copy(update={"csm_load": [load]})))
    assert "&lt;/svg&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert svg.count("</svg>") == 1


# --------------------------------------------------------------------------- the kept page


async def test_a_changed_store_is_shown_fresh_or_within_the_wait(
    tmp_path: Path, playbook: Playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RecordStore.open(f"sqlite:///{tmp_path / 'records.db'}")
    won = datetime.now(UTC) - 10.5 * DAY
    store.save(make_record("001A", won))
    cache = ReportCache()
    first = await cache.view(store, playbook, None, None)
    assert first.report.overall.onboardings == 1
    # Unchanged store: the same page, not computed again.
    assert await cache.view(store, playbook, None, None) is first

    # A computation slower than the wait: the kept page is shown meanwhile, and views
    # that come while it runs share it.
    release, calls = threading.Event(), []

    def slow(*args: object) -> PortfolioView:
        calls.append(args)
        release.wait(10)
        return portfolio_view(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(dashboard_cache, "portfolio_view", slow)
    store.save(make_record("001B", won))
    started = time.monotonic()
    shown = await asyncio.gather(*(cache.view(store, playbook, None, None) for _ in range(3)))
    assert time.monotonic() - started < dashboard_cache.FRESH_WAIT_S + 0.5
    assert all(view is first for view in shown)
    assert len(calls) == 1
    release.set()  # the next view waits for the computation, which now ends at once
    fresh = await cache.view(store, playbook, None, None)
    assert fresh.report.overall.onboardings == 2 and len(calls) == 1

    # Computed within the wait (a small store): shown fresh at once.
    monkeypatch.setattr(dashboard_cache, "portfolio_view", portfolio_view)
    store.save(make_record("001C", won))
    assert (await cache.view(store, playbook, None, None)).report.overall.onboardings == 3
    store.close()


async def test_a_failed_computation_keeps_the_last_page_and_is_logged(
    tmp_path: Path,
    playbook: Playbook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = RecordStore.open(f"sqlite:///{tmp_path / 'records.db'}")
    won = datetime.now(UTC) - 10.5 * DAY
    store.save(make_record("001A", won))
    cache = ReportCache()
    first = await cache.view(store, playbook, None, None)

    def broken(*args: object) -> PortfolioView:
        time.sleep(dashboard_cache.FRESH_WAIT_S + 0.2)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dashboard_cache, "portfolio_view", broken)
    store.save(make_record("001B", won))
    with structlog.testing.capture_logs() as logs:
        assert await cache.view(store, playbook, None, None) is first
        await asyncio.sleep(0.5)  # the computation fails after the view has answered
    assert [e["event"] for e in logs] == ["portfolio page not computed"]
    assert "disk on fire" in logs[0]["error"]
    # With nothing kept (another filter), the error reaches the view.
    with pytest.raises(RuntimeError, match="disk on fire"):
        await cache.view(store, playbook, Tier.HIGH_TOUCH, None)
    store.close()
