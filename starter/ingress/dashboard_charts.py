"""The dashboard's charts as Plotly figures (`plotly.graph_objects`), built from the
portfolio report (rules §8, docs/rules.md) and an account's timeline rows. Pure: each
function returns a `go.Figure`; `Chart.of` turns it into what a page embeds.

The browser draws them with the plotly.js that the `plotly` package bundles, served by the
ingress itself (`dashboard.py`): nothing comes from a CDN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import plotly.graph_objects as go
from markupsafe import Markup

from starter.ingress.dashboard_view import TimelineRow
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
UNOWNED = "(no owner)"
# One horizontal bar's height in pixels, for charts with a bar per CSM or milestone.
BAR_PX = 22


def _layout(title: str, height: int = 320, **more: object) -> go.Layout:
    # template "none": plotly.js's own plain style, and no theme copied into every figure.
    return go.Layout(
        title={"text": title, "x": 0, "font": {"size": 15}},
        template="none",
        height=height,
        margin={"l": 60, "r": 60, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        font={"family": "system-ui, sans-serif", "size": 12},
        **more,
    )


def cohort_trends(report: PortfolioReport) -> go.Figure:
    """Completion and activation rates (left axis, %) and the TTV median (right axis,
    days) by closed-won month (rules §8 trends)."""
    months = [g.cohort for g in report.by_cohort]
    counted = [
        f"{g.onboardings} onboardings; completion {g.completion.count}/{g.completion.of}, "
        f"activation {g.activation.count}/{g.activation.of}"
        for g in report.by_cohort
    ]
    return go.Figure(
        data=[
            go.Scatter(
                x=months,
                y=[g.completion.pct for g in report.by_cohort],
                name="Completion %",
                mode="lines+markers",
                hovertext=counted,
            ),
            go.Scatter(
                x=months,
                y=[g.activation.pct for g in report.by_cohort],
                name="Activation %",
                mode="lines+markers",
                hovertext=counted,
            ),
            go.Scatter(
                x=months,
                y=[g.ttv_median_days for g in report.by_cohort],
                name="TTV median (days)",
                mode="lines+markers",
                line={"dash": "dot"},
                yaxis="y2",
            ),
        ],
        layout=_layout(
            "Trends by closed-won month",
            xaxis={"type": "category"},
            yaxis={"title": {"text": "%"}, "range": [0, 105]},
            # No TTV yet: an empty days axis would show made-up ticks.
            yaxis2={
                "title": {"text": "days"},
                "overlaying": "y",
                "side": "right",
                "visible": any(g.ttv_median_days is not None for g in report.by_cohort),
                "rangemode": "tozero",
            },
        ),
    )


def health_bands(report: PortfolioReport) -> go.Figure:
    """Running onboardings per health band, stacked per tier."""
    tiers = [g.tier.value if g.tier else "all" for g in report.by_tier]
    return go.Figure(
        data=[
            go.Bar(
                x=tiers,
                y=[g.health.get(band, 0) for g in report.by_tier],
                name=band.value,
                marker={"color": BAND_COLOURS[band]},
            )
            for band in HealthBand
        ],
        layout=_layout(
            "Running onboardings by health band",
            barmode="stack",
            yaxis={"title": {"text": "onboardings"}},
        ),
    )


def drop_off(report: PortfolioReport, tier: Tier) -> go.Figure:
    """One tier's milestone funnel in plan order: the share lost at each step, the steps
    over targets.drop_off_flag_pct in red, that limit as a dashed line."""
    steps: Sequence[DropOff] = [d for d in report.drop_off if d.tier is tier]
    limit = report.targets.drop_off_flag_pct
    figure = go.Figure(
        data=[
            go.Bar(
                x=[d.lost.pct or 0 for d in steps],
                y=[d.milestone_id for d in steps],
                orientation="h",
                marker={"color": [FLAGGED if d.flagged else NORMAL for d in steps]},
                text=[f"{d.lost.count}/{d.lost.of}" for d in steps],
                textposition="outside",
                name="lost %",
            )
        ],
        layout=_layout(
            f"Drop-off, {tier.value}",
            height=100 + BAR_PX * max(len(steps), 3),
            xaxis={"title": {"text": "% lost at this step"}, "range": [0, 105]},
            yaxis={"autorange": "reversed", "automargin": True},
            showlegend=False,
        ),
    )
    figure.add_vline(x=limit, line={"dash": "dash", "color": FLAGGED, "width": 1})
    return figure


def escalations(report: PortfolioReport) -> go.Figure:
    """Escalations by tier, ladder step and trigger, most fired first: firings (bars) and
    the share followed by a milestone done within targets.escalation_response_days
    (dots, top axis, %). Horizontal, so every label reads whole."""
    shown = report.escalations
    labels = [f"{e.tier.value} {e.step_id} ({e.trigger})" for e in shown]
    days = report.targets.escalation_response_days
    return go.Figure(
        data=[
            go.Bar(
                x=[e.fired for e in shown],
                y=labels,
                orientation="h",
                name="fired",
                marker={"color": NORMAL},
                hovertext=[f"{e.accounts} accounts" for e in shown],
            ),
            go.Scatter(
                x=[e.followed_by_progress.pct for e in shown],
                y=labels,
                name=f"followed by progress within {days} d %",
                mode="markers",
                marker={"size": 11, "color": BAND_COLOURS[HealthBand.HEALTHY]},
                xaxis="x2",
            ),
        ],
        layout=_layout(
            "Escalations by step and trigger",
            height=130 + BAR_PX * max(len(shown), 3),
            xaxis={"title": {"text": "fired"}},
            xaxis2={
                "title": {"text": "%"},
                "overlaying": "x",
                "side": "top",
                "range": [0, 105],
                "dtick": 25,
            },
            yaxis={"autorange": "reversed", "automargin": True},
        ),
    )


def csm_load(report: PortfolioReport) -> go.Figure:
    """Each CSM's load against capacity (rules §7), most loaded first, those over it in
    red; 100% is the high end of the capacity ranges."""
    loads = sorted(report.csm_load, key=lambda c: c.load_pct, reverse=True)
    figure = go.Figure(
        data=[
            go.Bar(
                x=[c.load_pct for c in loads],
                y=[c.owner or UNOWNED for c in loads],
                orientation="h",
                marker={"color": [FLAGGED if c.over_capacity else NORMAL for c in loads]},
                hovertext=[f"{c.high_touch} high-touch, {c.low_touch} low-touch" for c in loads],
                name="load %",
            )
        ],
        layout=_layout(
            "CSM load vs capacity",
            height=100 + BAR_PX * max(len(loads), 3),
            xaxis={"title": {"text": "% of capacity"}},
            yaxis={"autorange": "reversed", "automargin": True},
            showlegend=False,
        ),
    )
    figure.add_vline(x=100, line={"dash": "dash", "color": FLAGGED, "width": 1})
    return figure


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def timeline(rows: Sequence[TimelineRow], now: datetime) -> go.Figure:
    """An account's plan against what happened: per milestone, its plan window (grey) and
    its actual one (coloured by outcome), on a date axis, with a line at `now`. Plotly's
    horizontal bars: `base` is the window's start, `x` its length in milliseconds."""
    plan = go.Bar(
        y=[r.title for r in rows],
        base=[r.plan_start.isoformat() for r in rows],
        x=[_ms(r.plan_start, r.plan_end) for r in rows],
        orientation="h",
        name="plan (due)",
        offsetgroup="plan",
        marker={"color": PLAN_COLOUR},
        hovertext=[f"due {r.plan_end:%Y-%m-%d}" for r in rows],
    )
    # One trace per outcome, so the legend names the colours; one offset group, so they
    # share the row's "actual" slot beside the plan.
    actual = []
    for outcome, colour in OUTCOME_COLOURS.items():
        spans = [(r, r.actual) for r in rows if r.outcome == outcome and r.actual is not None]
        if spans:
            actual.append(
                go.Bar(
                    y=[r.title for r, _ in spans],
                    base=[start.isoformat() for _, (start, _end) in spans],
                    x=[_ms(start, end) for _, (start, end) in spans],
                    orientation="h",
                    name=outcome.replace("_", " "),
                    offsetgroup="actual",
                    marker={"color": colour},
                )
            )
    figure = go.Figure(
        data=[plan, *actual],
        layout=_layout(
            "Plan against actual",
            height=120 + 2 * BAR_PX * max(len(rows), 2),
            barmode="group",
            xaxis={"type": "date"},
            yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        ),
    )
    figure.add_vline(x=now.isoformat(), line={"dash": "dot", "color": "#37474f"})
    return figure


@dataclass(frozen=True)
class Chart:
    """A chart as a page embeds it: the element id it is drawn in and the figure's JSON
    (plotly writes `<`, `>` and `/` as \\u escapes, so it is safe inside a script block)."""

    element_id: str
    figure_json: Markup

    @classmethod
    def of(cls, element_id: str, figure: go.Figure) -> Chart:
        return cls(element_id, Markup(figure.to_json()))
