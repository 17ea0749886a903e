"""The dashboard's charts as pygal charts, built from the portfolio report (rules §8,
docs/rules.md) and an account's timeline rows. Pure: each function returns a configured
`pygal` chart; `Chart.of` renders it to the SVG a page embeds.

The server draws them: a page holds each chart as inline `<svg>` (its text selectable,
its style in an SVG `<style>` block) and the browser runs no chart code. pygal's own
tooltip script (a CDN's, and its inline config script) is left out, so a point's figures
show as the browser's native tooltip (an SVG `<title>`) instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pygal
from markupsafe import Markup
from pygal.etree import etree
from pygal.graph.graph import Graph
from pygal.style import Style

from starter.ingress.dashboard_view import TimelineRow, days_text, pct_text
from starter.reports.model import DropOff, PortfolioReport
from workflows.models import HealthBand, Tier

BAND_COLOURS = {
    HealthBand.HEALTHY: "#2e7d32",
    HealthBand.AT_RISK: "#f9a825",
    HealthBand.CRITICAL: "#c62828",
}
OUTCOME_COLOURS = {
    "on_time": "#2e7d32",
    "late": "#ef6c00",
    "overdue": "#c62828",
    "open": "#64b5f6",
}
PLAN_COLOUR = "#b0bec5"
FLAGGED = "#c62828"
NORMAL = "#546e7a"
TREND_COLOURS = ("#1565c0", "#2e7d32", "#8e24aa")
NOW_COLOUR = "#37474f"
UNOWNED = "(no owner)"
PLAN = "plan (due)"
# How far a timeline row's plan (up) and actual (down) lanes sit from its label, in rows.
LANE = 0.18
# The width a portfolio chart is laid out at (SVG units; the page scales it to its
# column, half the page), and the account's timeline (the page's whole width).
WIDTH = 640
WIDE = 1100
# One horizontal bar's height in SVG units, for charts with a bar per CSM or milestone.
BAR_PX = 26
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _static(root: Any) -> Any:
    """pygal's XML filter (run on the tree before it is written out): drops every
    `<script>` (pygal always writes an inline config one, which the page's CSP would
    refuse) and gives each point a `<title>` from its `<desc>` figures, the tooltip a
    browser shows without any script."""
    for parent in root.iter():
        for child in list(parent):
            if child.tag == "script":
                parent.remove(child)
    for point in root.iter("g"):
        desc = {d.get("class", "").split(" ")[0]: d.text for d in point.findall("desc")}
        if "value" in desc:
            parts = (desc.get("x_label"), desc.get("label"), desc["value"])
            etree.SubElement(point, "title").text = ": ".join(p for p in parts if p)
    return root


def styled(
    kind: Callable[..., Graph],
    title: str,
    height: int,
    colours: Sequence[str],
    stroke_width: float = 1.5,
    width: int = WIDTH,
    **more: Any,
) -> Graph:
    """A pygal chart of `kind` in the dashboard's look, `width` x `height` SVG units,
    series coloured `colours` in order; `stroke_width` is every line's (pygal's per-series
    widths lose to it); `more` is pygal's config."""
    style = Style(
        background="white",
        plot_background="white",
        foreground="#1f2933",
        foreground_strong="#1f2933",
        foreground_subtle="#e4e7eb",
        guide_stroke_color="#e4e7eb",
        major_guide_stroke_color="#cfd5dc",
        guide_stroke_dasharray="none",
        major_guide_stroke_dasharray="none",
        stroke_width=stroke_width,
        stroke_width_hover=stroke_width,
        font_family=FONT,
        title_font_size=15,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        value_font_size=11,
        tooltip_font_size=11,
        colors=tuple(colours),
        opacity="1",
        opacity_hover="1",
        transition="none",
    )
    chart = kind(
        title=title,
        width=width,
        height=height,
        style=style,
        js=[],  # no tooltip script from a CDN
        disable_xml_declaration=True,  # inline in the page, not a file
        legend_at_bottom=True,
        truncate_label=-1,
        truncate_legend=-1,
        margin=10,
        **more,
    )
    return chart.add_xml_filter(_static)


def _outcome_name(outcome: str) -> str:
    return outcome.replace("_", " ")


def _bars_height(bars: int) -> int:
    return 110 + BAR_PX * max(bars, 3)


def cohort_trends(report: PortfolioReport) -> Graph:
    """Completion and activation rates (left axis, %) and the TTV median (right axis,
    days, from 0) by closed-won month (rules §8 trends). No TTV series while no cohort
    has one: an empty days axis would show made-up ticks."""
    counted = [
        f"{g.onboardings} onboardings; completion {g.completion.count}/{g.completion.of}, "
        f"activation {g.activation.count}/{g.activation.of}"
        for g in report.by_cohort
    ]
    ttv = [g.ttv_median_days for g in report.by_cohort]
    longest = max((d for d in ttv if d is not None), default=None)
    chart = styled(
        pygal.Line,
        "Trends by closed-won month",
        340,
        TREND_COLOURS,
        range=(0, 100),
        secondary_range=(0, longest * 1.1) if longest else None,
        y_title="%",
        x_labels=[g.cohort for g in report.by_cohort],
        # Both axes' ticks: pygal spaces the right axis's as the left one's.
        value_formatter=lambda v: f"{v:.0f}",
        dots_size=4,
    )
    for name, shares in (
        ("Completion %", [g.completion for g in report.by_cohort]),
        ("Activation %", [g.activation for g in report.by_cohort]),
    ):
        chart.add(
            name,
            [{"value": s.pct, "label": c} for s, c in zip(shares, counted, strict=True)],
            formatter=pct_text,
        )
    if longest is not None:
        chart.add(
            "TTV median (days, right axis)",
            ttv,
            secondary=True,
            formatter=days_text,
            stroke_style={"dasharray": "4, 3"},
        )
    return chart


def health_bands(report: PortfolioReport) -> Graph:
    """Running onboardings per health band, stacked per tier, each part's count on it."""
    chart = styled(
        pygal.StackedBar,
        "Running onboardings by health band",
        340,
        [BAND_COLOURS[band] for band in HealthBand],
        x_labels=[g.tier.value if g.tier else "all" for g in report.by_tier],
        y_title="onboardings",
        print_values=True,
        print_zeroes=False,
        value_formatter=lambda n: f"{n:g}",
    )
    for band in HealthBand:
        chart.add(band.value, [g.health.get(band, 0) for g in report.by_tier])
    return chart


def drop_off(report: PortfolioReport, tier: Tier) -> Graph:
    """One tier's milestone funnel in plan order, top down: the share lost at each step
    (% of those for which it is due; the label gives it with the count), the steps over
    targets.drop_off_flag_pct in red, that limit in the title."""
    # pygal lists horizontal bars bottom up.
    steps: Sequence[DropOff] = [d for d in report.drop_off if d.tier is tier][::-1]
    limit = report.targets.drop_off_flag_pct
    chart = styled(
        pygal.HorizontalBar,
        f"Drop-off, {tier.value} (red: over the {limit:g}% flag)",
        _bars_height(len(steps)),
        [NORMAL],
        x_labels=[
            f"{d.milestone_id}  {pct_text(d.lost.pct)} ({d.lost.count}/{d.lost.of})" for d in steps
        ],
        range=(0, 100),
        x_title="% lost at this step",
        show_legend=False,
    )
    chart.add(
        "lost %",
        [{"value": d.lost.pct or 0, "color": FLAGGED if d.flagged else NORMAL} for d in steps],
        formatter=pct_text,
    )
    return chart


def escalations(report: PortfolioReport) -> Graph:
    """Escalations by tier, ladder step and trigger, most fired first (top down): firings
    (bars, bottom axis) and the share followed by a milestone done within
    targets.escalation_response_days (bars, top axis, %); the label gives both.
    Horizontal, so every label reads whole."""
    shown = report.escalations[::-1]  # pygal lists horizontal bars bottom up
    days = report.targets.escalation_response_days
    chart = styled(
        pygal.HorizontalBar,
        "Escalations by step and trigger",
        _bars_height(2 * len(shown)),
        [NORMAL, BAND_COLOURS[HealthBand.HEALTHY]],
        x_labels=[
            f"{e.tier.value} {e.step_id} ({e.trigger})  "
            f"{e.fired} · {pct_text(e.followed_by_progress.pct)}"
            for e in shown
        ],
        secondary_range=(0, 100),
        legend_at_bottom_columns=1,
        value_formatter=lambda v: f"{v:g}",
    )
    chart.add(
        "fired (bottom axis)",
        [{"value": e.fired, "label": f"{e.accounts} accounts"} for e in shown],
    )
    chart.add(
        f"% followed by progress in {days} d (top axis)",
        [e.followed_by_progress.pct for e in shown],
        secondary=True,
        formatter=pct_text,
    )
    return chart


def csm_load(report: PortfolioReport) -> Graph:
    """Each CSM's load against capacity (rules §7), most loaded first (top down), those
    over it in red; the axis reaches 100%, the high end of the capacity ranges."""
    loads = sorted(report.csm_load, key=lambda c: c.load_pct)  # bottom up
    chart = styled(
        pygal.HorizontalBar,
        "CSM load vs capacity (red: over 100%)",
        _bars_height(len(loads)),
        [NORMAL],
        x_labels=[f"{c.owner or UNOWNED}  {pct_text(c.load_pct)}" for c in loads],
        range=(0, max([100.0, *(c.load_pct for c in loads)])),
        x_title="% of capacity (its ranges' high end)",
        show_legend=False,
    )
    chart.add(
        "load %",
        [
            {
                "value": c.load_pct,
                "color": FLAGGED if c.over_capacity else NORMAL,
                "label": f"{c.high_touch} high-touch, {c.low_touch} low-touch",
            }
            for c in loads
        ],
        formatter=pct_text,
    )
    return chart


def timeline(rows: Sequence[TimelineRow], now: datetime) -> Graph:
    """An account's plan against what happened, Gantt-like on a date axis: per milestone
    (top down) its plan window (grey, upper lane) and its actual one (lower lane,
    coloured by outcome), each a thick line from start to end, and a dotted line at
    `now`. Row i of n sits at y = n - i; None between windows breaks a series' line."""
    n = len(rows)
    lanes: dict[str, list[tuple[datetime, float] | None]] = {PLAN: []}
    lanes |= {_outcome_name(outcome): [] for outcome in OUTCOME_COLOURS}
    for i, r in enumerate(rows):
        y = n - i
        lanes[PLAN] += [(r.plan_start, y + LANE), (r.plan_end, y + LANE), None]
        if r.actual is not None:
            start, end = r.actual
            lanes[_outcome_name(r.outcome)] += [(start, y - LANE), (end, y - LANE), None]
    colours = [PLAN_COLOUR, *OUTCOME_COLOURS.values()]
    drawn = [(name, points, c) for (name, points), c in zip(lanes.items(), colours, strict=True)]
    drawn = [d for d in drawn if d[1]]
    chart = styled(
        pygal.DateTimeLine,
        "Plan against actual",
        120 + 2 * BAR_PX * max(n, 2),
        [*(c for _, _, c in drawn), NOW_COLOUR],
        stroke_width=BAR_PX / 2,  # every line is a window; `now` is dots
        width=WIDE,
        y_labels=[{"label": r.title, "value": n - i} for i, r in enumerate(rows)],
        range=(0.4, n + 0.6),
        show_dots=False,
        allow_interruptions=True,
        x_value_formatter=lambda d: f"{d:%Y-%m-%d}",
        x_label_rotation=20,
        show_y_guides=False,
    )
    for name, points, _ in drawn:
        chart.add(name, points)
    steps = 10 * (n + 1)
    chart.add(
        f"now ({now:%Y-%m-%d %H:%M} UTC)",
        [(now, 0.4 + (n + 0.2) * k / steps) for k in range(steps + 1)],
        stroke=False,
        show_dots=True,
        dots_size=1,
    )
    return chart


@dataclass(frozen=True)
class Chart:
    """A chart as a page embeds it: the id of the element it sits in and its SVG (pygal
    escapes every text in it, so it is safe in the page as it is)."""

    element_id: str
    svg: Markup

    @classmethod
    def of(cls, element_id: str, chart: Graph) -> Chart:
        return cls(element_id, Markup(chart.render(is_unicode=True)))
