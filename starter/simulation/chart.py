"""The chart page of `onboarding simulate --chart`: the two playbooks side by side as
pygal SVG (in the dashboard's look, `dashboard_charts.styled`), inline in one standalone
HTML file that loads nothing from elsewhere and runs no script; or one SVG file holding
the escalations chart alone.
"""

from __future__ import annotations

from html import escape

import pygal
from pygal.graph.graph import Graph

from starter.ingress.dashboard_charts import WIDTH, styled
from starter.simulation.compare import Comparison

COLOURS = ("#90a4ae", "#1565c0")  # current, new


def _names(c: Comparison) -> tuple[str, str]:
    return f"current {c.current.playbook}", f"new {c.new.playbook}"


def escalations(c: Comparison) -> Graph:
    """Escalation notifications by trigger and audience, both playbooks."""
    keys = sorted(set(c.current.escalations) | set(c.new.escalations))
    chart = styled(
        pygal.HorizontalBar,
        "Escalations by trigger -> audience",
        110 + 30 * max(len(keys), 3),
        COLOURS,
        x_labels=keys[::-1],  # pygal lists horizontal bars bottom up
        legend_at_bottom_columns=1,
        value_formatter=lambda v: f"{v:g}",
    )
    for name, fig in zip(_names(c), (c.current, c.new), strict=True):
        chart.add(name, [fig.escalations.get(k, 0) for k in keys[::-1]])
    return chart


def workload(c: Comparison) -> Graph:
    """Notifications to the CSM per week, both playbooks."""
    weeks = max(len(c.current.csm_per_week), len(c.new.csm_per_week))
    chart = styled(
        pygal.Line,
        "CSM workload: notifications per week",
        340,
        COLOURS,
        x_labels=[str(w + 1) for w in range(weeks)],
        x_title="week from the cohort's first closed-won",
        value_formatter=lambda v: f"{v:g}",
        dots_size=3,
    )
    for name, fig in zip(_names(c), (c.current, c.new), strict=True):
        chart.add(name, fig.csm_per_week)
    return chart


def outcomes(c: Comparison) -> Graph:
    """Completion and activation rates (%), both playbooks."""
    chart = styled(
        pygal.Bar,
        "Completion and activation",
        340,
        COLOURS,
        x_labels=["completion %", "activation %"],
        range=(0, 100),
        print_values=True,
        value_formatter=lambda v: f"{v:g}",
    )
    for name, fig in zip(_names(c), (c.current, c.new), strict=True):
        chart.add(name, [fig.completion.pct or 0, fig.activation.pct or 0])
    return chart


def page(c: Comparison, table: str) -> str:
    """The standalone HTML page: the figures' table, then the charts."""
    svgs = "\n".join(
        f'<figure style="max-width:{WIDTH}px">{g.render(is_unicode=True)}</figure>'
        for g in (escalations(c), workload(c), outcomes(c))
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Playbook simulation</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}"
        "pre{background:#f5f7fa;padding:1em}</style></head><body>\n"
        f"<h1>Playbook simulation: {c.cohort} onboardings, {c.days:g} days, seed {c.seed}</h1>\n"
        f"<pre>{escape(table)}</pre>\n{svgs}\n</body></html>\n"
    )


def svg(c: Comparison) -> str:
    """The escalations chart alone, as an SVG file."""
    return escalations(c).render(is_unicode=True)
