"""The dashboard's parts below the pages: the text of a figure, where a sign-in may send a
browser back to, an account's plan-against-actual rows, the charts' figures (pure), and
the kept portfolio page over a real store, over records whose facts the tests state
(dates relative to now)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

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


def _trace(figure: object, name: str) -> dict[str, object]:
    data = json.loads(figure.to_json())["data"]  # type: ignore[attr-defined]
    return next(t for t in data if t.get("name") == name)


def test_cohort_trends_plot_the_reports_rates(report: PortfolioReport) -> None:
    figure = charts.cohort_trends(report)
    assert _trace(figure, "Completion %")["x"] == [g.cohort for g in report.by_cohort]
    assert _trace(figure, "Completion %")["y"] == [g.completion.pct for g in report.by_cohort]
    assert _trace(figure, "Activation %")["y"] == [g.activation.pct for g in report.by_cohort]
    ttv = _trace(figure, "TTV median (days)")
    assert ttv["y"] == [g.ttv_median_days for g in report.by_cohort]
    assert ttv["yaxis"] == "y2"


def test_health_bands_stack_each_tiers_running_onboardings(report: PortfolioReport) -> None:
    figure = charts.health_bands(report)
    totals = [0] * len(report.by_tier)
    for band in ("healthy", "at_risk", "critical"):
        totals = [a + b for a, b in zip(totals, _trace(figure, band)["y"], strict=True)]  # type: ignore[call-overload]
    assert totals == [g.running for g in report.by_tier]


def test_drop_off_marks_the_steps_over_the_flag(report: PortfolioReport) -> None:
    steps = [d for d in report.drop_off if d.tier is Tier.TECH_TOUCH]
    assert any(d.flagged for d in steps) and not all(d.flagged for d in steps)
    figure = json.loads(charts.drop_off(report, Tier.TECH_TOUCH).to_json())
    bars = figure["data"][0]
    assert bars["y"] == [d.milestone_id for d in steps]
    assert bars["marker"]["color"] == [
        charts.FLAGGED if d.flagged else charts.NORMAL for d in steps
    ]
    (limit,) = figure["layout"]["shapes"]
    assert limit["x0"] == limit["x1"] == report.targets.drop_off_flag_pct


def test_escalations_show_firings_and_their_follow_up(report: PortfolioReport) -> None:
    figure = charts.escalations(report)
    fired = _trace(figure, "fired")
    assert fired["x"] == [e.fired for e in report.escalations]
    assert fired["y"] == [f"{e.tier.value} {e.step_id} ({e.trigger})" for e in report.escalations]
    (followed,) = [t for t in json.loads(figure.to_json())["data"] if t["type"] == "scatter"]
    assert followed["x"] == [e.followed_by_progress.pct for e in report.escalations]


def test_csm_load_lists_the_most_loaded_first(report: PortfolioReport) -> None:
    loads = sorted(report.csm_load, key=lambda c: c.load_pct, reverse=True)
    bars = json.loads(charts.csm_load(report).to_json())["data"][0]
    assert bars["x"] == [c.load_pct for c in loads]
    assert bars["y"] == [c.owner or charts.UNOWNED for c in loads]


def test_the_timeline_chart_draws_the_rows_windows() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    won = now - 10.5 * DAY
    record = make_record(
        "001C",
        won,
        milestones=[milestone_view("first_login", won, 3, 4), milestone_view("kickoff", won, 7)],
    )
    rows = timeline_rows(record, now)
    figure = charts.timeline(rows, now)
    plan = _trace(figure, "plan (due)")
    assert plan["base"] == [r.plan_start.isoformat() for r in rows]
    assert plan["x"] == [(r.plan_end - r.plan_start).total_seconds() * 1000 for r in rows]
    late, overdue = _trace(figure, "late"), _trace(figure, "overdue")
    assert (late["y"], late["base"]) == (["First Login"], [won.isoformat()])
    assert late["x"] == [4 * DAY.total_seconds() * 1000]
    assert overdue["base"] == [(won + 4 * DAY).isoformat()]
    assert {t.get("name") for t in json.loads(figure.to_json())["data"]} == {
        "plan (due)",
        "late",
        "overdue",
    }


def test_a_chart_s_json_cannot_end_its_script_block() -> None:
    now = datetime.now(UTC)
    record = make_record("001X", now - 5.5 * DAY, milestones=[])
    figure = charts.timeline(timeline_rows(record, now), now)
    figure.update_layout(title={"text": "</script><script>alert(1)</script>"})
    chart = charts.Chart.of("timeline", figure)
    assert "</script>" not in chart.figure_json and "<" not in chart.figure_json
    assert json.loads(chart.figure_json)["layout"]["title"]["text"].startswith("</script>")


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
